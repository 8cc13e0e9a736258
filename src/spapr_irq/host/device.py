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
        self.released = False
        self.vcpus: set[int] = set()  # vCPU ids whose presenter is attached

    # Attribute access: subclasses map (group, attr) to handlers returning a value or raising errno.
    def set_attr(self, group: int, attr: int, value) -> None:
        raise DeviceErrno(E.ENXIO)

    def get_attr(self, group: int, attr: int):
        raise DeviceErrno(E.ENXIO)

    def has_attr(self, group: int, attr: int) -> bool:
        return False

    def connect_vcpu(self, vcpu: "KvmVcpu", server: int) -> None:
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
