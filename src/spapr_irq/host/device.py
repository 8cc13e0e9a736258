"""What every in-kernel interrupt-controller device shares: the device and vCPU objects, and the
errno a kernel handler answers with.

A device is what ``KVM_CREATE_DEVICE`` makes; its ``kind`` is the name of the kernel's ops
(kvm-xics, kvm-xive, kvm-xive-native). A vCPU is attached to at most one device at a time.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass


class DeviceErrno(Exception):
    """A kernel handler returned -errno; the VM's ioctl layer turns it into a KvmError."""

    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno


class Sigbus(Exception):
    """A guest access to a page of the KVM mapping that the kernel does not back."""


class KvmDevice:
    """An in-kernel interrupt-controller device. `kind` is the kernel's ops name."""

    kind = ""

    def __init__(self, kvm, fd: int) -> None:
        self.kvm = kvm
        self.fd = fd
        self.files = 0  # references to the device's file: the fd and each mapping
        self.released = False
        self.vcpus: set[int] = set()  # vCPU ids whose presenter is attached

    def injectable(self, call: str, group: int | None = None, attr: int | None = None) -> set[int]:
        """The errnos the device can meet on its own in `call` now (see host.faults)."""
        return set()

    # Attribute access: subclasses map (group, attr) to handlers returning a value or raising errno.
    def set_attr(self, group: int, attr: int, value) -> None:
        raise DeviceErrno(E.ENXIO)

    def get_attr(self, group: int, attr: int):
        raise DeviceErrno(E.ENXIO)

    def has_attr(self, group: int, attr: int) -> bool:
        return False

    def connect_vcpu(self, vcpu: "KvmVcpu", server: int, fault: int = 0) -> None:
        raise DeviceErrno(E.EPERM)

    def release(self) -> None:
        """The 'release' method: detach every presenter and forget the device's state."""
        for vcpu_id in list(self.vcpus):
            self.kvm.vcpus[vcpu_id].detach()
        self.vcpus.clear()
        self.released = True


@dataclass
class KvmVcpu:
    """A vCPU fd. `irq_type` is which presenter it is attached to (None = KVMPPC_IRQ_DEFAULT)."""

    vcpu_id: int
    device: KvmDevice | None = None
    server: int | None = None

    @property
    def irq_type(self) -> str | None:
        return None if self.device is None else self.device.kind

    def attach(self, device: KvmDevice, server: int) -> None:
        self.device, self.server = device, server
        device.vcpus.add(self.vcpu_id)

    def detach(self) -> None:
        self.device, self.server = None, None


# --- XIVE virtual processors (book3s_xive.c, shared by XICS-on-XIVE and XIVE native) -----------------

_BLOCK_OFFSETS = (0, 4, 2, 6, 1, 5, 3, 7)


def prio_from_guest(priority: int) -> int:
    """xive_prio_from_guest (priorities and CPPRs alike): 0-5 and 0xff kept, 6..0xfe become 6
    (7 is the escalation queue)."""
    priority &= 0xFF
    return priority if priority < 6 or priority == 0xFF else 6
MAX_SMT_THREADS = 8


def pack_vcpu_id(vcpu_id: int, emul_smt_mode: int, max_vcpus: int) -> int:
    """kvmppc_pack_vcpu_id (Linux 4.19+): fold the sparse vCPU ids of a VSMT mode onto
    0..KVM_MAX_VCPUS-1. An id too large to pack becomes 0 (the kernel warns)."""
    stride = max(emul_smt_mode, 1)
    block = (vcpu_id // max_vcpus) * (MAX_SMT_THREADS // stride)
    if block >= MAX_SMT_THREADS:
        return 0
    packed = vcpu_id % max_vcpus + _BLOCK_OFFSETS[block]
    return packed if packed < max_vcpus else 0


class XiveVps:
    """The VP block of a XIVE device and the id checks of its vCPU connect, as each kernel
    release makes them (kvmppc_xive_compute_vp_id and its ancestors).

    The device provides ``kvm`` (host, emul_smt_mode), ``nr_servers``, ``vp_block_allocated``
    and ``vp_ids`` (server -> VP id of every connected vCPU)."""

    VP_BASE = 0x400  # the first VP of the block; not visible to the guest

    def vp_id(self, server: int) -> int:
        kvm = self.kvm
        if kvm.host.has("pack-vcpu-ids"):
            return self.VP_BASE + pack_vcpu_id(server, kvm.emul_smt_mode, kvm.max_vcpus)
        return self.VP_BASE + server

    def _early_check(self, server: int) -> int:
        """The errno the release's id checks give `server` before any allocation, or 0. Before
        5.5 these are all the checks; from 5.5 only the bound comes before the VP block."""
        host, kvm = self.kvm.host, self.kvm
        if not host.has("nr-servers"):  # before 5.5: VP block allocated at create
            limit = kvm.max_vcpus * (kvm.emul_smt_mode if host.has("pack-vcpu-ids") else 1)
            if host.has("vp-in-use-check"):  # 5.4 (and 5.3.8): bound first, then the VP
                if server >= limit:
                    return E.EINVAL
                if self.vp_id(server) in self.vp_ids.values():
                    return E.EEXIST
            else:  # the server number itself is the duplicate check, before the bound
                if server in self.vp_ids:
                    return E.EEXIST
                if server >= limit:
                    return E.EINVAL
            return 0
        if host.has("packed-vcpu-id-check"):
            valid = pack_vcpu_id(server, kvm.emul_smt_mode, kvm.max_vcpus) < self.nr_servers
        else:
            valid = server < self.nr_servers * max(kvm.emul_smt_mode, 1)
        return 0 if valid else E.EINVAL

    def connect_injectable(self, server: int) -> set[int]:
        """The errnos a connect of `server` can meet on its own now: none once a check fails
        first; the VP block (ENOSPC) if it is still to be made; then, unless the VP is taken,
        the vCPU's allocation (ENOMEM) and the firmware (EIO)."""
        if self._early_check(server):
            return set()
        if not self.kvm.host.has("nr-servers"):
            return {E.ENOMEM, E.EIO}  # before 5.5 the checks are all done
        possible = set() if self.vp_block_allocated else {E.ENOSPC}
        if self.vp_id(server) in self.vp_ids.values():
            return possible  # EEXIST, after the VP block
        return possible | {E.ENOMEM, E.EIO}

    def compute_vp_id(self, server: int, fault: int) -> int:
        """The VP a connecting vCPU gets, or DeviceErrno. `fault` is an injected failure of the
        firmware or allocator (ENOSPC, ENOMEM, EIO; see connect_injectable), raised where the
        kernel meets it: after the checks, and after the VP block was allocated (5.5+) unless
        the block itself failed."""
        error = self._early_check(server)
        if error:
            raise DeviceErrno(error)
        if not self.kvm.host.has("nr-servers"):  # before 5.5: the checks are all done
            if fault:
                raise DeviceErrno(fault)
            return self.vp_id(server)
        if not self.vp_block_allocated:
            if fault == E.ENOSPC:
                raise DeviceErrno(E.ENOSPC)  # xive_native_alloc_vp_block failed: nothing kept
            self.vp_block_allocated = True
        vp = self.vp_id(server)
        if vp in self.vp_ids.values():
            raise DeviceErrno(E.EEXIST)
        if fault:
            raise DeviceErrno(fault)  # after the VP block: a later NR_SERVERS gets EBUSY
        return vp

    def set_nr_servers(self, value: int) -> None:
        """kvmppc_xive_set_nr_servers (5.5+): 0 or beyond KVM_MAX_VCPU_IDS is EINVAL, EBUSY once
        the VP block exists, and values above KVM_MAX_VCPUS are clamped."""
        kvm = self.kvm
        if value == 0 or value > kvm.max_vcpus * MAX_SMT_THREADS:
            raise DeviceErrno(E.EINVAL)
        if self.vp_block_allocated:
            raise DeviceErrno(E.EBUSY)
        self.nr_servers = min(value, kvm.max_vcpus)
