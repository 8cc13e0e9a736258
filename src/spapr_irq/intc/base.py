"""The sPAPR interrupt-controller interface the machine drives (QEMU's SpaprInterruptController):
what both controllers share, emulated or in-kernel, and the errors their KVM side raises.

A controller owns its architecture state (:mod:`spapr_irq.arch`) and, while it runs in the host
kernel, the KVM device that holds the live copy. Its ``connect_kvm`` follows QEMU call for call; any
failure rolls everything back (``disconnect_kvm``) before raising :class:`ConnectError` with QEMU's
text. Whether a failure is fatal or falls back to emulation is the machine's policy, not the
controller's.
"""

from __future__ import annotations

from contextlib import contextmanager

from ..errors import KvmError, SpaprIrqError, strerror
from ..host.kvm import Kvm


class GuestContext:
    """What a guest-facing handler may know of the machine, built by the machine for each call.

    `emulated_xics`: QEMU's spapr_is_emulated_xics() (XIVE not negotiated, no in-kernel irqchip).
    `xive_negotiated`: OV5_XIVE_EXPLOIT in the CAS result. `timebase`: the vCPU's time base.
    """

    __slots__ = ("emulated_xics", "xive_negotiated", "timebase")

    def __init__(self, emulated_xics: bool, xive_negotiated: bool, timebase: int) -> None:
        self.emulated_xics = emulated_xics
        self.xive_negotiated = xive_negotiated
        self.timebase = timebase


MINUS_ONE = (1 << 64) - 1  # -1 in a 64-bit return register


class ConnectError(SpaprIrqError):
    """The in-kernel controller could not be set up; everything it did was undone."""


class ClaimError(SpaprIrqError):
    """An IRQ number could not be claimed."""


def attr_error(exc: KvmError, group: int, attr: int, write: bool = True) -> ConnectError:
    """QEMU's kvm_device_access() text: the attribute as 0x%016 PRIx64."""
    return ConnectError(
        f"KVM_{'SET' if write else 'GET'}_DEVICE_ATTR failed: Group {group} "
        f"attr 0x{attr:016x}: {strerror(exc.errno)}"
    )


def object_pointer(name: str) -> int:
    """A stable, pointer-shaped number standing for a QEMU object's address in `info pic` (QEMU
    prints heap pointers with %p; a user diffing against QEMU normalises them anyway)."""
    import zlib

    return 0x5555_0000_0000 | (zlib.crc32(name.encode()) & 0xFFFF_FFF0)


def format_pointer(value: int) -> str:
    """glibc's %p: ``(nil)`` for NULL, else 0x and lower-case hex."""
    return f"{value:#x}" if value else "(nil)"


class InterruptController:
    """What the machine needs of a controller; the two subclasses are the platform's two."""

    name = ""  # "xics" | "xive"
    label = ""  # "XICS" | "XIVE"
    hcalls: tuple[str, ...] = ()
    rtas_calls: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.kvm: Kvm | None = None
        self.fd: int | None = None
        #: vCPUs whose presenter is connected to the KVM device (QEMU's kvm_enabled_icps/cpus).
        self.kvm_presenters: set[int] = set()

    @property
    def in_kernel(self) -> bool:
        """The per-device test QEMU uses since 5.2 (``xive->fd != -1``), not the global flag."""
        return self.fd is not None

    @property
    def backend(self) -> str:
        return "kvm" if self.in_kernel else "emulated"

    def hcall_handler(self, name: str):
        """The handler of a registered hcall, or None while it is not built."""
        return None

    def disconnect_kvm(self) -> None:
        raise NotImplementedError

    @contextmanager
    def _connecting(self):
        """A connect in progress: on any failure undo all it did, then raise ConnectError."""
        try:
            yield
        except (ConnectError, KvmError) as exc:
            self.disconnect_kvm()
            if isinstance(exc, KvmError):
                raise ConnectError(str(exc)) from None
            raise

    def rtas_handler(self, name: str):
        return None

    def vm_state_change(self, running: bool) -> None:
        """The VM change-state handler; only the in-kernel XIVE registers one."""


def check_extension(kvm: Kvm, cap: int) -> int:
    """kvm_check_extension(): an ioctl that fails answers 0, as QEMU treats it."""
    try:
        return kvm.check_extension(cap)
    except KvmError:
        return 0


def has_attr(kvm: Kvm, fd: int, group: int, attr: int) -> bool:
    """kvm_device_check_attr(): a failed KVM_HAS_DEVICE_ATTR means "not supported"."""
    try:
        return kvm.has_attr(fd, group, attr)
    except KvmError:
        return False
