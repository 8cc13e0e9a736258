"""The KVM device ABI a PowerPC host offers, as the ioctls QEMU makes (spec/linux.md A.1-A.6).

One :class:`Kvm` is one VM's view of the host kernel: capabilities, interrupt-controller devices
(create, attributes by group, mmap, close with or without release), vCPU connection and the RTAS
tokens served in the kernel. Every call goes through :meth:`Kvm._enter`, which logs it and fails it
with -errno when the :class:`FaultPlan` says so, so that callers' error paths can be exercised.
The three teardown calls Linux cannot fail for a well-formed request -- close, munmap and undefining
an RTAS token -- are logged but never fault-injected.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass, field

from ..errors import KvmError
from .device import DeviceErrno, KvmDevice, KvmVcpu, Sigbus
from .host import Host
from .uapi import (KERNEL_RTAS_CALLS, DEVICE_TYPE_NAMES, KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE,
                   KVM_CAP_PPC_RTAS, KVM_DEV_TYPE_XICS, KVM_DEV_TYPE_XIVE, KVM_REG_PPC_ICP_STATE,
                   KVM_XIVE_ESB_PAGE_OFFSET, KVM_XIVE_TIMA_PAGE_OFFSET)
from .xics import XicsDevice
from .xive_native import XiveNativeDevice


def host_capability(host: Host, cap: int) -> int:
    """What KVM_CHECK_EXTENSION answers on a VM fd of `host` (spec/linux.md A.1)."""
    if not host.has_kvm:
        return 0
    if cap in (KVM_CAP_IRQ_XICS, KVM_CAP_PPC_RTAS):
        return 1  # CONFIG_KVM_XICS: unconditional on Book3S-64
    if cap == KVM_CAP_PPC_IRQ_XIVE:
        # xive_enabled() && CPU_FTR_HVMODE && kvmppc_xive_native_supported()
        return int(host.xive_native and host.hv_mode)
    return 0


# --- Fault injection -----------------------------------------------------------------------------------


@dataclass
class _Fault:
    errno: int
    call: str | None  # None: any call
    nth: int  # 1-based index among matching calls, counted from when the fault was armed
    seen: int = 0


@dataclass
class FaultPlan:
    """Calls to fail. ``fail(errno, nth=3)`` fails the third KVM call made from now on;
    ``fail(errno, call="create_device")`` the next create. Each fault fires once."""

    faults: list[_Fault] = field(default_factory=list)
    fired: list[tuple[str, int]] = field(default_factory=list)  # (call, errno) of faults that fired

    def fail(self, errno: int = E.EIO, *, call: str | None = None, nth: int = 1) -> None:
        if nth < 1:
            raise ValueError("nth counts from 1")
        self.faults.append(_Fault(errno=errno, call=call, nth=nth))

    def clear(self) -> None:
        self.faults.clear()

    def check(self, call: str) -> int:
        """0, or the errno the call `call` must fail with now. Every armed fault counts every call
        it matches, independently; if two are due on the same call the first armed one wins."""
        due = []
        for fault in self.faults:
            if fault.call in (None, call):
                fault.seen += 1
                if fault.seen == fault.nth:
                    due.append(fault)
        for fault in due:
            self.faults.remove(fault)
        if not due:
            return 0
        self.fired.append((call, due[0].errno))
        return due[0].errno

    @property
    def armed(self) -> bool:
        return bool(self.faults)


# --- The VM ---------------------------------------------------------------------------------------------


class Kvm:
    """A VM's KVM: what QEMU's ioctls reach. Failures raise KvmError(call, errno)."""

    def __init__(self, host: Host) -> None:
        if not host.has_kvm:
            raise ValueError(f"host {host.name} has no KVM")
        self.host = host
        self.faults = FaultPlan()
        self.calls: list[str] = []  # every ioctl made, in order, as "name(args)"
        self.fds: dict[int, KvmDevice] = {}  # open device fds
        self.arch_xics: KvmDevice | None = None  # kvm->arch.xics (software XICS)
        self.arch_xive: KvmDevice | None = None  # kvm->arch.xive (XICS-on-XIVE or native)
        self.devices: list[KvmDevice] = []  # kvm->devices: every device not yet released
        self.vcpus: dict[int, KvmVcpu] = {}
        self.rtas_tokens: dict[int, str] = {}  # kvm->arch.rtas_tokens: token -> call name
        self._next_fd = 20
        #: QEMU's kvm_kernel_irqchip / kvm_msi_via_irqfd_allowed / kvm_gsi_direct_mapping globals,
        #: which connect sets and disconnect clears (one flag stands for the three).
        self.irqchip_in_kernel = False
        #: kvm_arch_init() caches KVM_CAP_PPC_IRQ_XIVE once; see arch_init().
        self.cap_xive = 0
        self._clock = 0
        self.memory = None  # guest RAM, given by set_user_memory (KVM_SET_USER_MEMORY_REGION)

    def set_user_memory(self, memory) -> None:
        self.memory = memory

    def arch_init(self) -> None:
        """kvm_arch_init: ask the VM fd for KVM_CAP_PPC_IRQ_XIVE once (a failed ioctl reads 0)."""
        try:
            self.cap_xive = self.check_extension(KVM_CAP_PPC_IRQ_XIVE)
        except KvmError:
            self.cap_xive = 0

    # -- plumbing -----------------------------------------------------------------------------------
    def _enter(self, call: str, text: str) -> None:
        self.calls.append(text)
        code = self.faults.check(call)
        if code:
            raise KvmError(call, code)

    def _device(self, call: str, fd: int) -> KvmDevice:
        device = self.fds.get(fd)
        if device is None:
            raise KvmError(call, E.EBADF)
        return device

    # -- capabilities -------------------------------------------------------------------------------
    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION on the VM fd."""
        self._enter("check_extension", f"check_extension({cap})")
        return host_capability(self.host, cap)

    # -- devices ------------------------------------------------------------------------------------
    def create_device(self, type_id: int) -> int:
        """KVM_CREATE_DEVICE: a new fd, or ENODEV (type not registered) / EEXIST (slot taken)."""
        name = DEVICE_TYPE_NAMES.get(type_id, str(type_id))
        self._enter("create_device", f"create_device({name})")
        if type_id == KVM_DEV_TYPE_XICS:
            kind = self.host.xics_device_kind
            slot = "arch_xive" if kind == "kvm-xive" else "arch_xics"
        elif type_id == KVM_DEV_TYPE_XIVE and self.host.xive_native:
            kind, slot = "kvm-xive-native", "arch_xive"
        else:
            raise KvmError("create_device", E.ENODEV)
        if getattr(self, slot) is not None:
            raise KvmError("create_device", E.EEXIST)
        fd = self._next_fd
        self._next_fd += 1
        device = XiveNativeDevice(self, fd) if kind == "kvm-xive-native" else XicsDevice(self, fd, kind)
        setattr(self, slot, device)
        self.devices.append(device)
        self.fds[fd] = device
        return fd

    def close(self, fd: int) -> None:
        """close(2) on a device fd. Kernels with a 'release' method free the device; older ones
        keep it (and its kvm->arch slot) until the VM is destroyed. close itself cannot fail."""
        self.calls.append(f"close({fd})")
        device = self.fds.pop(fd, None)
        if device is None:
            raise KvmError("close", E.EBADF)
        if self.host.device_has_release(device.kind):
            device.release()
            self.devices.remove(device)
            for slot in ("arch_xics", "arch_xive"):
                if getattr(self, slot) is device:
                    setattr(self, slot, None)

    def set_attr(self, fd: int, group: int, attr: int, value=None) -> None:
        """KVM_SET_DEVICE_ATTR."""
        self._enter("set_attr", f"set_attr({fd}, {group}, {attr:#x})")
        device = self._device("set_attr", fd)
        try:
            device.set_attr(group, attr, value)
        except DeviceErrno as exc:
            raise KvmError("set_attr", exc.errno) from None

    def get_attr(self, fd: int, group: int, attr: int):
        """KVM_GET_DEVICE_ATTR."""
        self._enter("get_attr", f"get_attr({fd}, {group}, {attr:#x})")
        device = self._device("get_attr", fd)
        try:
            return device.get_attr(group, attr)
        except DeviceErrno as exc:
            raise KvmError("get_attr", exc.errno) from None

    def has_attr(self, fd: int, group: int, attr: int) -> bool:
        """KVM_HAS_DEVICE_ATTR (QEMU's kvm_device_check_attr: true when the ioctl returns 0)."""
        self._enter("has_attr", f"has_attr({fd}, {group}, {attr:#x})")
        return self._device("has_attr", fd).has_attr(group, attr)

    def mmap(self, fd: int, pgoff: int, npages: int) -> None:
        """mmap of a XIVE device fd at page offset `pgoff` (TIMA 0, ESB 4)."""
        self._enter("mmap", f"mmap({fd}, pgoff={pgoff}, pages={npages})")
        device = self._device("mmap", fd)
        if not isinstance(device, XiveNativeDevice):
            raise KvmError("mmap", E.ENODEV)
        try:
            device.mmap(pgoff, npages)
        except DeviceErrno as exc:
            raise KvmError("mmap", exc.errno) from None

    def munmap(self, fd: int, pgoff: int) -> None:
        """munmap of a mapping made by mmap; cannot fail."""
        self.calls.append(f"munmap({fd}, pgoff={pgoff})")
        device = self.fds.get(fd)
        if isinstance(device, XiveNativeDevice):
            device.mappings.discard(pgoff)

    # -- vCPUs --------------------------------------------------------------------------------------
    def create_vcpu(self, vcpu_id: int) -> KvmVcpu:
        """KVM_CREATE_VCPU; QEMU parks vCPU fds on unplug and takes them back on re-plug."""
        self._enter("create_vcpu", f"create_vcpu({vcpu_id})")
        if vcpu_id in self.vcpus:
            return self.vcpus[vcpu_id]
        vcpu = KvmVcpu(vcpu_id)
        self.vcpus[vcpu_id] = vcpu
        return vcpu

    def enable_cap(self, vcpu_id: int, cap: int, fd: int, server: int) -> None:
        """KVM_ENABLE_CAP on a vCPU fd: attach its presenter to an interrupt-controller device."""
        self._enter("enable_cap", f"enable_cap(vcpu {vcpu_id}, {cap}, {fd}, {server})")
        vcpu = self.vcpus.get(vcpu_id)
        if vcpu is None:
            raise KvmError("enable_cap", E.EBADF)
        device = self._device("enable_cap", fd)
        if cap == KVM_CAP_PPC_IRQ_XIVE and not self.host.xive_enabled:
            raise KvmError("enable_cap", E.ENXIO)
        expected = XicsDevice if cap == KVM_CAP_IRQ_XICS else XiveNativeDevice
        if cap not in (KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE) or not isinstance(device, expected):
            raise KvmError("enable_cap", E.EPERM if cap in (KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE)
                           else E.EINVAL)
        if vcpu.device is not None:
            raise KvmError("enable_cap", E.EBUSY)
        try:
            device.connect_vcpu(vcpu, server)
        except DeviceErrno as exc:
            raise KvmError("enable_cap", exc.errno) from None

    def set_one_reg(self, vcpu_id: int, reg: int, value: int) -> None:
        """KVM_SET_ONE_REG on a vCPU; the ICP state register needs an attached XICS presenter."""
        self._enter("set_one_reg", f"set_one_reg(vcpu {vcpu_id}, {reg:#x}, {value:#x})")
        device, server = self._xics_presenter("set_one_reg", vcpu_id, reg)
        try:
            device.state.set_icp(server, value)
        except DeviceErrno as exc:
            raise KvmError("set_one_reg", exc.errno) from None

    def get_one_reg(self, vcpu_id: int, reg: int) -> int:
        """KVM_GET_ONE_REG on a vCPU."""
        self._enter("get_one_reg", f"get_one_reg(vcpu {vcpu_id}, {reg:#x})")
        device, server = self._xics_presenter("get_one_reg", vcpu_id, reg)
        return device.state.get_icp(server)

    def set_vp_state(self, vcpu_id: int, value: int) -> None:
        """KVM_SET_ONE_REG KVM_REG_PPC_VP_STATE: the vCPU's XIVE OS ring words 0-1."""
        self._enter("set_one_reg", f"set_one_reg(vcpu {vcpu_id}, VP_STATE, {value:#x})")
        vcpu = self.vcpus.get(vcpu_id)
        if vcpu is None or not isinstance(vcpu.device, XiveNativeDevice):
            raise KvmError("set_one_reg", E.EPERM if vcpu else E.EBADF)
        vcpu.device.state.set_vp_state(vcpu.server, value)

    def get_vp_state(self, vcpu_id: int) -> int:
        self._enter("get_one_reg", f"get_one_reg(vcpu {vcpu_id}, VP_STATE)")
        vcpu = self.vcpus.get(vcpu_id)
        if vcpu is None or not isinstance(vcpu.device, XiveNativeDevice):
            raise KvmError("get_one_reg", E.EPERM if vcpu else E.EBADF)
        return vcpu.device.state.get_vp_state(vcpu.server)

    def _xics_presenter(self, call: str, vcpu_id: int, reg: int) -> tuple[XicsDevice, int]:
        vcpu = self.vcpus.get(vcpu_id)
        if vcpu is None:
            raise KvmError(call, E.EBADF)
        if reg != KVM_REG_PPC_ICP_STATE or not isinstance(vcpu.device, XicsDevice):
            raise KvmError(call, E.EINVAL)
        return vcpu.device, vcpu.server

    # -- the guest's way in: hcalls, RTAS, lines ------------------------------------------------------
    def xics_for(self, vcpu_id: int) -> tuple[XicsDevice, int] | None:
        """kvmppc_xics_enabled(vcpu): the in-kernel XICS and server the vCPU is attached to."""
        vcpu = self.vcpus.get(vcpu_id)
        if vcpu is None or not isinstance(vcpu.device, XicsDevice):
            return None
        return vcpu.device, vcpu.server

    def hcall(self, vcpu_id: int, name: str, args) -> tuple[int, ...] | None:
        """kvmppc_pseries_do_hcall for the XICS hcalls: handled in the kernel when the vCPU's
        presenter is attached to an in-kernel XICS; None means "exit to userspace"."""
        attached = self.xics_for(vcpu_id)
        if attached is None:
            return None
        device, server = attached
        xics = device.state
        icp = xics.icps.get(server)
        if icp is None:
            return (-1,)  # H_HARDWARE: no ICP
        if name == "H_XIRR":
            return (0, xics.h_xirr(icp))
        if name == "H_XIRR_X":
            return (0, xics.h_xirr(icp), self.timebase())
        if name == "H_IPOLL":
            rc, xirr, mfrr = xics.h_ipoll(args[0])
            return (rc,) if rc else (rc, xirr, mfrr)
        if name == "H_CPPR":
            xics.h_cppr(icp, args[0])
            return (0,)
        if name == "H_EOI":
            return (xics.h_eoi(icp, args[0] & 0xFFFFFFFF),)
        if name == "H_IPI":
            return (xics.h_ipi(args[0], args[1]),)
        return None

    def timebase(self) -> int:
        """get_tb() as the kernel reads it: the model's clock advances one tick per read."""
        self._clock += 1
        return self._clock

    def rtas(self, token: int, args, nret: int) -> tuple[int, ...] | None:
        """H_RTAS served in the kernel (book3s_rtas.c) when `token` is defined; else None.
        Every error is status -3."""
        name = self.rtas_tokens.get(token)
        if name is None:
            return None
        device = self.arch_xics if self.arch_xics is not None else self.arch_xive
        xics = device.state if isinstance(device, XicsDevice) else None
        want = {"ibm,set-xive": (3, 1), "ibm,get-xive": (1, 3), "ibm,int-off": (1, 1),
                "ibm,int-on": (1, 1)}[name]
        if (len(args), nret) != want or xics is None:
            return (-3,)
        try:
            if name == "ibm,set-xive":
                xics.set_xive(args[0], args[1], args[2])
            elif name == "ibm,get-xive":
                server, priority = xics.get_xive(args[0])
                return (0, server, priority)
            elif name == "ibm,int-off":
                xics.int_off(args[0])
            else:
                xics.int_on(args[0])
        except DeviceErrno:
            return (-3,)
        return (0,)

    def xive_esb(self, fd: int, page: int, offset: int, value: int | None) -> int | None:
        """A load (value None) or store on page `page` of the XIVE device's ESB mapping."""
        device = self._xive_mapped(fd, KVM_XIVE_ESB_PAGE_OFFSET)
        return device.state.esb(page, offset, value)

    def xive_tima(self, fd: int, vcpu_id: int, offset: int, value: int | None, size: int):
        """A load or store on the XIVE device's TIMA mapping, from `vcpu_id` (its pushed VP)."""
        device = self._xive_mapped(fd, KVM_XIVE_TIMA_PAGE_OFFSET)
        vcpu = self.vcpus.get(vcpu_id)
        if vcpu is None or vcpu.device is not device:
            raise Sigbus(f"vCPU {vcpu_id} has no XIVE context in KVM")
        return device.state.tima(vcpu.server, offset, value, size)

    def xive_output(self, fd: int, vcpu_id: int) -> bool:
        device = self.fds.get(fd)
        vcpu = self.vcpus.get(vcpu_id)
        if not isinstance(device, XiveNativeDevice) or vcpu is None or vcpu.device is not device:
            return False
        tctx = device.state.router.tctxs.get(vcpu.server)
        return bool(tctx and tctx.output)

    def _xive_mapped(self, fd: int, pgoff: int) -> "XiveNativeDevice":
        device = self.fds.get(fd)
        if not isinstance(device, XiveNativeDevice) or pgoff not in device.mappings:
            raise Sigbus(f"no XIVE mapping at page offset {pgoff}")
        return device

    def irq_line(self, irq: int, level: int) -> None:
        """KVM_IRQ_LINE into the in-kernel XICS."""
        self._enter("irq_line", f"irq_line({irq:#x}, {level:#x})")
        device = self.arch_xics if self.arch_xics is not None else self.arch_xive
        if not isinstance(device, XicsDevice) or device.released:
            raise KvmError("irq_line", E.ENXIO)
        try:
            device.state.irq_line(irq, level)
        except DeviceErrno as exc:
            raise KvmError("irq_line", exc.errno) from None

    # -- RTAS ---------------------------------------------------------------------------------------
    def define_rtas_token(self, name: str, token: int) -> None:
        """KVM_PPC_RTAS_DEFINE_TOKEN: serve RTAS `name` in the kernel at `token`; 0 undefines."""
        text = f"define_rtas_token({name}, {token:#x})"
        if token == 0:
            # Undefining only unlinks the kernel's entry: Linux cannot fail it for a well-formed
            # request, so, like close and munmap, it is logged but never fault-injected.
            self.calls.append(text)
        else:
            self._enter("define_rtas_token", text)
        if token == 0:
            # rtas_token_undefine drops every entry for the name; an undefined name is no error.
            for defined, defined_name in list(self.rtas_tokens.items()):
                if defined_name == name:
                    del self.rtas_tokens[defined]
            return
        if token in self.rtas_tokens:
            raise KvmError("define_rtas_token", E.EEXIST)
        if name not in KERNEL_RTAS_CALLS:
            raise KvmError("define_rtas_token", E.ENOENT)
        self.rtas_tokens[token] = name

    # -- introspection ------------------------------------------------------------------------------
    def live_devices(self) -> list[str]:
        """Kinds of the devices still in the VM (open, or closed but never released)."""
        return [device.kind for device in self.devices]
