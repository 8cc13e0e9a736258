"""The KVM device ABI a PowerPC host offers, as the ioctls QEMU makes (spec/linux.md A.1-A.6).

One :class:`Kvm` is one VM's view of the host kernel: capabilities and the SMT mode, the
interrupt-controller devices (create, attributes by group, mmap, close with or without release),
vCPUs and their presenters, the RTAS tokens served in the kernel, and the guest's ways in (the XICS
hypercalls, RTAS, KVM_IRQ_LINE, the mapped XIVE pages). Every ioctl is logged in :attr:`Kvm.calls`
and may be failed by the :class:`~spapr_irq.host.faults.FaultPlan` with an errno Linux can return
there on its own, at the point Linux fails it, leaving what Linux leaves.
"""

from __future__ import annotations

import errno as E

from ..config import CPU_FAMILIES
from ..errors import KvmError
from ..papr import RTAS_OUT_PARAM_ERROR, RTAS_OUT_SUCCESS
from .device import DeviceErrno, KvmDevice, KvmVcpu, Sigbus, pack_vcpu_id
from .faults import INJECTABLE, FaultPlan
from .host import Host
from .uapi import (DEVICE_TYPE_NAMES, KERNEL_RTAS_CALLS, KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE,
                   KVM_CAP_PPC_RTAS, KVM_CAP_PPC_SMT, KVM_CAP_PPC_SMT_POSSIBLE,
                   KVM_DEV_TYPE_XICS, KVM_DEV_TYPE_XIVE,
                   KVM_MAX_VCPU_IDS, KVM_MAX_VCPUS, KVM_REG_PPC_ICP_STATE, KVM_REG_PPC_VP_STATE,
                   KVM_XIVE_ESB_PAGE_OFFSET, KVM_XIVE_TIMA_PAGE_OFFSET, RTAS_ARGS_MAX,
                   THREADS_PER_SUBCORE)
from .xics import XicsDevice
from .xics_on_xive import XicsOnXiveDevice
from .xive_native import XiveNativeDevice

#: Which device answers each type on a host, and which kvm->arch slot it takes.
_XICS_KINDS = {"kvm-xics": XicsDevice, "kvm-xive": XicsOnXiveDevice}

#: What a failed create left in kvm->arch.xive on kernels with that bug: later creates see EEXIST.
STALE_SLOT = "stale kvmppc_xive"

__all__ = ["FaultPlan", "Kvm", "host_capability"]


def _power9_or_later(host: Host) -> bool:
    return CPU_FAMILIES.index(host.cpu) >= CPU_FAMILIES.index("power9")


def host_capability(host: Host, cap: int) -> int:
    """What KVM_CHECK_EXTENSION answers on a new VM fd of `host` (spec/linux.md A.1)."""
    if not host.has_kvm:
        return 0
    if cap in (KVM_CAP_IRQ_XICS, KVM_CAP_PPC_RTAS):
        return 1  # CONFIG_KVM_XICS: unconditional on Book3S-64
    if cap == KVM_CAP_PPC_IRQ_XIVE:
        # xive_enabled() && CPU_FTR_HVMODE && kvmppc_xive_native_supported()
        return int(host.xive_native and host.hv_mode)
    if cap == KVM_CAP_PPC_SMT:
        return 1 if _power9_or_later(host) else THREADS_PER_SUBCORE
    if cap == KVM_CAP_PPC_SMT_POSSIBLE:
        if not host.has("smt-mode"):
            return 0
        # POWER9 emulates doorbells, so any mode up to 8; POWER8 up to its threads per subcore.
        return 0b1111 if _power9_or_later(host) else (THREADS_PER_SUBCORE << 1) - 1
    return 0


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
        self.arch_xive: KvmDevice | str | None = None  # kvm->arch.xive (XICS-on-XIVE or native)
        self.devices: list[KvmDevice] = []  # kvm->devices: every device not yet released
        self.mappings: dict[tuple[int, int], KvmDevice] = {}  # (fd, pgoff) -> device, until munmap
        self.vcpus: dict[int, KvmVcpu] = {}
        self._rtas: list[tuple[int, str]] = []  # kvm->arch.rtas_tokens, oldest first
        self._cached_xics_on_xive: XicsOnXiveDevice | None = None  # xive_devices.xics_on_xive
        self._next_fd = 20
        self.max_vcpus = KVM_MAX_VCPUS
        self.power9 = _power9_or_later(host)
        self.smt_mode = 1 if self.power9 else THREADS_PER_SUBCORE
        self.emul_smt_mode = 1
        #: QEMU's kvm_kernel_irqchip / kvm_msi_via_irqfd_allowed / kvm_gsi_direct_mapping globals,
        #: which connect sets and disconnect clears (one flag stands for the three).
        self.irqchip_in_kernel = False
        #: What kvm_arch_init() caches once (QEMU's cap_* globals); see arch_init().
        self.cap_ppc_smt_possible = 0
        self.cap_ppc_smt = 0
        self.cap_xive = 0
        self._clock = 0
        self.memory = None  # guest RAM, given by set_user_memory (KVM_SET_USER_MEMORY_REGION)

    def set_user_memory(self, memory) -> None:
        self.memory = memory

    def arch_init(self) -> None:
        """kvm_arch_init: read, in QEMU's order, the VM capabilities the machine needs later."""
        self.cap_ppc_smt_possible = self.check_extension(KVM_CAP_PPC_SMT_POSSIBLE)
        self.cap_ppc_smt = self.check_extension(KVM_CAP_PPC_SMT)
        self.cap_xive = self.check_extension(KVM_CAP_PPC_IRQ_XIVE)

    # -- plumbing -----------------------------------------------------------------------------------
    def _enter(self, call: str, text: str, possible=()) -> int:
        """Log the call; return the errno of a fault to inject now (0: none). `possible` are the
        errnos the call can meet on its own in the current state."""
        self.calls.append(text)
        return self.faults.check(call, possible)

    def _device(self, call: str, fd: int) -> KvmDevice:
        device = self.fds.get(fd)
        if device is None:
            raise KvmError(call, E.EBADF)
        return device

    @staticmethod
    def _run(call: str, fn, *args):
        try:
            return fn(*args)
        except DeviceErrno as exc:
            raise KvmError(call, exc.errno) from None

    # -- capabilities and the SMT mode ----------------------------------------------------------------
    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION on the VM fd."""
        self._enter("check_extension", f"check_extension({cap})")
        if cap == KVM_CAP_PPC_SMT:  # the VM's mode: the emulated one on POWER9 once set
            return self.emul_smt_mode if self.emul_smt_mode > 1 else self.smt_mode
        return host_capability(self.host, cap)

    def enable_vm_cap(self, cap: int, mode: int) -> None:
        """KVM_ENABLE_CAP on the VM fd; only KVM_CAP_PPC_SMT (kvmhv_set_smt_mode, Linux 4.13+):
        a power of two up to 8, before any vCPU. POWER9 emulates it (vCPU ids spaced by the mode
        on one hardware thread each); POWER8 runs it, up to its threads per subcore."""
        self._enter("enable_vm_cap", f"enable_vm_cap({cap}, {mode})")
        if cap != KVM_CAP_PPC_SMT or not self.host.has("smt-mode"):
            raise KvmError("enable_vm_cap", E.EINVAL)
        if mode < 1 or mode > 8 or mode & (mode - 1):
            raise KvmError("enable_vm_cap", E.EINVAL)
        # (POWER8 also refuses a mode above its threads per subcore: 8, as split-core mode is
        # not modelled, so the bound above already covers it.)
        if self.vcpus:
            raise KvmError("enable_vm_cap", E.EBUSY)
        if self.power9:
            self.emul_smt_mode, self.smt_mode = mode, 1
        else:
            self.emul_smt_mode, self.smt_mode = 0, mode  # esmt stays 0 on POWER8

    # -- devices ------------------------------------------------------------------------------------
    def create_device(self, type_id: int) -> int:
        """KVM_CREATE_DEVICE: a new fd, or ENODEV (type not registered) / EEXIST (slot taken)."""
        name = DEVICE_TYPE_NAMES.get(type_id, str(type_id))
        text = f"create_device({name})"
        host = self.host
        if type_id == KVM_DEV_TYPE_XICS:
            kind = host.xics_device_kind
            slot = "arch_xive" if kind == "kvm-xive" else "arch_xics"
        elif type_id == KVM_DEV_TYPE_XIVE and host.xive_native:
            kind, slot = "kvm-xive-native", "arch_xive"
        else:
            self._enter("create_device", text)
            raise KvmError("create_device", E.ENODEV)
        taken = getattr(self, slot) is not None
        vps_at_create = not host.has("nr-servers")  # before 5.5 the VP block comes with the device
        possible = {E.ENOMEM} | ({E.ENXIO} if kind == "kvm-xive-native" and vps_at_create
                                 and not taken else set())
        fault = self._enter("create_device", text, possible)
        if fault and taken:
            # kvm_ioctl_create_device allocates the kvm_device before ops->create looks at the
            # slot: the first failure a taken slot can meet, and it leaves nothing.
            raise KvmError("create_device", fault)
        cached = self._cached_xics_on_xive
        if (kind == "kvm-xive" and host.has("xive-release") and not host.has("xive-slot-after-vps")
                and cached is not None and self.arch_xive is cached):
            cached.zero()  # kvmppc_xive_get_device memsets the live device before the check
        if taken:
            raise KvmError("create_device", E.EEXIST)
        if fault:
            at_vp_block = (kind == "kvm-xive" and vps_at_create) or fault == E.ENXIO
            if at_vp_block and not host.has("xive-slot-after-vps"):
                self.arch_xive = STALE_SLOT  # kvm->arch.xive stays set: creates are EEXIST
            raise KvmError("create_device", fault)
        fd = self._next_fd
        self._next_fd += 1
        device = XiveNativeDevice(self, fd) if kind == "kvm-xive-native" else _XICS_KINDS[kind](self, fd)
        if kind == "kvm-xive":
            self._cached_xics_on_xive = device
        setattr(self, slot, device)
        self.devices.append(device)
        self.fds[fd] = device
        device.files = 1
        return fd

    def close(self, fd: int) -> None:
        """close(2) on a device fd; cannot fail for an open fd. The device is released at its last
        reference (an mmap keeps one) if the kernel has a 'release' method; otherwise it stays,
        with its kvm->arch slot, until the VM is destroyed."""
        self.calls.append(f"close({fd})")
        device = self.fds.pop(fd, None)
        if device is None:
            raise KvmError("close", E.EBADF)
        self._put(device)

    def _put(self, device: KvmDevice) -> None:
        device.files -= 1
        if device.files or not self.host.device_has_release(device.kind):
            return
        device.release()
        self.devices.remove(device)
        for slot in ("arch_xics", "arch_xive"):
            if getattr(self, slot) is device:
                setattr(self, slot, None)

    def set_attr(self, fd: int, group: int, attr: int, value=None) -> None:
        """KVM_SET_DEVICE_ATTR."""
        text = f"set_attr({fd}, {group}, {attr:#x})"
        device = self.fds.get(fd)
        fault = self._enter("set_attr", text, device.injectable("set_attr", group, attr)
                            if device is not None else ())
        device = self._device("set_attr", fd)
        self._run("set_attr", device.set_attr, group, attr, value, fault)

    def get_attr(self, fd: int, group: int, attr: int):
        """KVM_GET_DEVICE_ATTR."""
        device = self.fds.get(fd)
        fault = self._enter("get_attr", f"get_attr({fd}, {group}, {attr:#x})",
                            device.injectable("get_attr", group, attr) if device is not None else ())
        device = self._device("get_attr", fd)
        if fault:
            return self._run("get_attr", device.get_attr, group, attr, fault)
        return self._run("get_attr", device.get_attr, group, attr)

    def has_attr(self, fd: int, group: int, attr: int) -> bool:
        """KVM_HAS_DEVICE_ATTR (QEMU's kvm_device_check_attr: true when the ioctl returns 0)."""
        self._enter("has_attr", f"has_attr({fd}, {group}, {attr:#x})")
        return self._device("has_attr", fd).has_attr(group, attr)

    def mmap(self, fd: int, pgoff: int, npages: int) -> None:
        """mmap of a XIVE device fd at page offset `pgoff` (TIMA 0, ESB 4); ENODEV for devices
        without an mmap method."""
        device = self.fds.get(fd)
        mappable = isinstance(device, XiveNativeDevice)
        fault = self._enter("mmap", f"mmap({fd}, pgoff={pgoff}, pages={npages})",
                            device.injectable("mmap") if mappable else ())
        device = self._device("mmap", fd)
        if not mappable:
            raise KvmError("mmap", E.ENODEV)
        self._run("mmap", device.mmap, pgoff, npages, fault)
        device.files += 1
        self.mappings[(fd, pgoff)] = device

    def munmap(self, fd: int, pgoff: int) -> None:
        """munmap of a mapping made by mmap (found by the fd it was made from, even if that fd is
        closed since); cannot fail. The last reference releases the device."""
        self.calls.append(f"munmap({fd}, pgoff={pgoff})")
        device = self.mappings.pop((fd, pgoff), None)
        if device is not None:
            device.mappings.discard(pgoff)
            self._put(device)

    # -- vCPUs --------------------------------------------------------------------------------------
    def create_vcpu(self, vcpu_id: int) -> KvmVcpu:
        """KVM_CREATE_VCPU (QEMU takes a parked vCPU back without the ioctl). POWER9 packs vCPU
        ids by the emulated SMT mode: an id beyond KVM_MAX_VCPUS * mode, or one whose packed
        vcore is taken, is EINVAL; POWER8 counts vcores by its SMT mode."""
        if vcpu_id in self.vcpus:
            return self.vcpus[vcpu_id]
        in_range = 0 <= vcpu_id < KVM_MAX_VCPU_IDS
        fault = self._enter("create_vcpu", f"create_vcpu({vcpu_id})", {E.ENOMEM} if in_range else ())
        if not in_range:  # kvm_vm_ioctl_create_vcpu, before any allocation
            raise KvmError("create_vcpu", E.EINVAL)
        if fault:  # the vCPU's allocation comes before the vcore checks
            raise KvmError("create_vcpu", fault)
        if self.power9:
            if self.host.has("pack-vcpu-ids"):
                if vcpu_id >= self.max_vcpus * self.emul_smt_mode:
                    raise KvmError("create_vcpu", E.EINVAL)
                core = pack_vcpu_id(vcpu_id, self.emul_smt_mode, self.max_vcpus)
                taken = {pack_vcpu_id(v, self.emul_smt_mode, self.max_vcpus) for v in self.vcpus}
                if core in taken:
                    raise KvmError("create_vcpu", E.EINVAL)  # vcore collision
            elif vcpu_id >= self.max_vcpus:
                raise KvmError("create_vcpu", E.EINVAL)
        elif vcpu_id // self.smt_mode >= self.max_vcpus:
            raise KvmError("create_vcpu", E.EINVAL)
        vcpu = KvmVcpu(vcpu_id)
        self.vcpus[vcpu_id] = vcpu
        return vcpu

    def enable_cap(self, vcpu_id: int, cap: int, fd: int, server: int) -> None:
        """KVM_ENABLE_CAP on a vCPU fd: attach its presenter to an interrupt-controller device
        (kvm_vcpu_ioctl_enable_cap, then the device's connect function)."""
        text = f"enable_cap(vcpu {vcpu_id}, {cap}, {fd}, {server})"
        vcpu = self.vcpus.get(vcpu_id)
        device = self.fds.get(fd)
        known = cap == KVM_CAP_IRQ_XICS or (cap == KVM_CAP_PPC_IRQ_XIVE and self.host.has("xive-native"))
        expected = (self.host.xics_device_kind if cap == KVM_CAP_IRQ_XICS else "kvm-xive-native")
        reachable = (vcpu is not None and known and device is not None and vcpu.device is None
                     and device.kind == expected
                     and (cap != KVM_CAP_PPC_IRQ_XIVE or self.host.xive_enabled))
        fault = self._enter("enable_cap", text,
                            device.injectable("enable_cap", attr=server) if reachable else ())
        if vcpu is None:
            raise KvmError("enable_cap", E.EBADF)
        if not known:
            raise KvmError("enable_cap", E.EINVAL)  # an unknown capability (XIVE before 5.2)
        device = self._device("enable_cap", fd)
        if cap == KVM_CAP_PPC_IRQ_XIVE and not self.host.xive_enabled:
            raise KvmError("enable_cap", E.ENXIO)
        if device.kind != expected:
            raise KvmError("enable_cap", E.EPERM)  # dev->ops is not the connect function's
        if vcpu.device is not None:
            raise KvmError("enable_cap", E.EBUSY)
        self._run("enable_cap", device.connect_vcpu, vcpu, server, fault)

    def set_one_reg(self, vcpu_id: int, reg: int, value: int) -> None:
        """KVM_SET_ONE_REG: ICP_STATE needs an attached XICS or XIVE presenter (ENXIO), VP_STATE
        a vCPU of the XIVE native device (EPERM otherwise)."""
        name = "VP_STATE" if reg == KVM_REG_PPC_VP_STATE else f"{reg:#x}"
        self._enter("set_one_reg", f"set_one_reg(vcpu {vcpu_id}, {name}, {value:#x})")
        vcpu = self._presenter("set_one_reg", vcpu_id, reg)
        if reg == KVM_REG_PPC_ICP_STATE:
            self._run("set_one_reg", vcpu.device.set_icp, vcpu.server, value)
        else:
            self._run("set_one_reg", vcpu.device.set_vp_state, vcpu.server, value)

    def get_one_reg(self, vcpu_id: int, reg: int) -> int:
        """KVM_GET_ONE_REG, as set_one_reg."""
        name = "VP_STATE" if reg == KVM_REG_PPC_VP_STATE else f"{reg:#x}"
        vcpu = self.vcpus.get(vcpu_id)
        native = vcpu is not None and isinstance(vcpu.device, XiveNativeDevice)
        possible = vcpu.device.injectable("get_one_reg") if native and reg == KVM_REG_PPC_VP_STATE else ()
        fault = self._enter("get_one_reg", f"get_one_reg(vcpu {vcpu_id}, {name})", possible)
        vcpu = self._presenter("get_one_reg", vcpu_id, reg)
        if reg == KVM_REG_PPC_ICP_STATE:
            return self._run("get_one_reg", vcpu.device.get_icp, vcpu.server)
        return self._run("get_one_reg", vcpu.device.get_vp_state, vcpu.server, fault)

    def _presenter(self, call: str, vcpu_id: int, reg: int) -> KvmVcpu:
        vcpu = self.vcpus.get(vcpu_id)
        if vcpu is None:
            raise KvmError(call, E.EBADF)
        if reg == KVM_REG_PPC_ICP_STATE:
            if vcpu.device is None:
                raise KvmError(call, E.ENXIO)
            return vcpu
        if reg == KVM_REG_PPC_VP_STATE:
            if vcpu.device is None or vcpu.device.kind == "kvm-xics" or not self.host.xive_enabled:
                raise KvmError(call, E.ENXIO)
            if not isinstance(vcpu.device, XiveNativeDevice):
                raise KvmError(call, E.EPERM)
            return vcpu
        raise KvmError(call, E.EINVAL)

    # -- the guest's way in: hcalls, RTAS, lines ------------------------------------------------------
    def xics_device(self, vcpu_id: int):
        """kvmppc_xics_enabled(vcpu): the in-kernel XICS (either kind) and the vCPU's server."""
        vcpu = self.vcpus.get(vcpu_id)
        if vcpu is None or vcpu.device is None or vcpu.device.kind not in _XICS_KINDS:
            return None
        return vcpu.device, vcpu.server

    def xics_output(self, vcpu_id: int) -> bool:
        """The external-interrupt request of a vCPU attached to an in-kernel XICS."""
        attached = self.xics_device(vcpu_id)
        return bool(attached and attached[0].output(attached[1]))

    def hcall(self, vcpu_id: int, name: str, args) -> tuple[int, ...] | None:
        """kvmppc_pseries_do_hcall for the XICS hcalls: handled in the kernel when the vCPU's
        presenter is attached to an in-kernel XICS; None means "exit to userspace"."""
        attached = self.xics_device(vcpu_id)
        if attached is None:
            return None
        device, server = attached
        return device.hcall(server, name, args)

    def timebase(self) -> int:
        """get_tb() as the kernel reads it: the model's clock advances one tick per read."""
        self._clock += 1
        return self._clock

    def rtas(self, token: int, args, nret: int) -> tuple[int, ...] | None:
        """H_RTAS in the kernel (kvmppc_rtas_hcall): with no token defined it goes to userspace;
        otherwise 16 or more arguments fail KVM_RUN with EINVAL (whatever the token), an unknown
        token goes to userspace, and every handler error is status -3."""
        if not self._rtas:
            return None
        if len(args) >= RTAS_ARGS_MAX:
            raise KvmError("run", E.EINVAL)
        name = next((n for t, n in self._rtas if t == token), None)
        if name is None:
            return None
        want = {"ibm,set-xive": (3, 1), "ibm,get-xive": (1, 3), "ibm,int-off": (1, 1),
                "ibm,int-on": (1, 1)}[name]
        if (len(args), nret) != want:
            return (RTAS_OUT_PARAM_ERROR,)
        device = self.arch_xive if self.host.xics_on_xive else self.arch_xics
        if device is None or device is STALE_SLOT:
            return (RTAS_OUT_PARAM_ERROR,)  # -ENODEV
        if device.kind not in _XICS_KINDS:
            raise NotImplementedError("an RTAS XICS call served against the XIVE native device "
                                      "(QEMU undefines the tokens first)")
        if name == "ibm,get-xive":
            rc, server, priority = device.get_xive(args[0])
            return (RTAS_OUT_PARAM_ERROR,) if rc else (RTAS_OUT_SUCCESS, server, priority)
        if name == "ibm,set-xive":
            rc = device.set_xive(args[0], args[1], args[2])
        elif name == "ibm,int-off":
            rc = device.int_off(args[0])
        else:
            rc = device.int_on(args[0])
        return (RTAS_OUT_PARAM_ERROR,) if rc else (RTAS_OUT_SUCCESS,)

    def irq_line(self, irq: int, level: int) -> int:
        """KVM_IRQ_LINE: ENXIO without an in-kernel irqchip; otherwise 0, whatever the device
        made of it (the status goes only to KVM_IRQ_LINE_STATUS)."""
        self._enter("irq_line", f"irq_line({irq:#x}, {level:#x})")
        if self.arch_xics is None and self.arch_xive is None:
            raise KvmError("irq_line", E.ENXIO)
        device = self.arch_xive if self.host.xics_on_xive else self.arch_xics
        if isinstance(device, KvmDevice):
            device.set_irq(irq, level)
        return 0

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
        device = self.mappings.get((fd, KVM_XIVE_TIMA_PAGE_OFFSET))
        vcpu = self.vcpus.get(vcpu_id)
        if device is None or vcpu is None or vcpu.device is not device:
            return False
        tctx = device.state.router.tctxs.get(vcpu.server)
        return bool(tctx and tctx.output)

    def _xive_mapped(self, fd: int, pgoff: int) -> XiveNativeDevice:
        device = self.mappings.get((fd, pgoff))
        if device is None:
            raise Sigbus(f"no XIVE mapping at page offset {pgoff}")
        return device

    # -- RTAS ---------------------------------------------------------------------------------------
    @property
    def rtas_tokens(self) -> dict[int, str]:
        """kvm->arch.rtas_tokens: token -> call name, oldest first."""
        return dict(self._rtas)

    def define_rtas_token(self, name: str, token: int) -> None:
        """KVM_PPC_RTAS_DEFINE_TOKEN: serve RTAS `name` in the kernel at `token`; token 0 removes
        the oldest definition of the name (an undefined name is no error, and cannot fail)."""
        text = f"define_rtas_token({name}, {token:#x})"
        if token == 0:
            self.calls.append(text)
            for index, (_, defined) in enumerate(self._rtas):
                if defined == name:
                    del self._rtas[index]
                    break
            return
        fault = self._enter("define_rtas_token", text, {E.ENOMEM})
        if any(defined == token for defined, _ in self._rtas):
            raise KvmError("define_rtas_token", E.EEXIST)
        if name not in KERNEL_RTAS_CALLS:
            raise KvmError("define_rtas_token", E.ENOENT)
        if fault:
            raise KvmError("define_rtas_token", fault)
        self._rtas.append((token, name))

    # -- introspection ------------------------------------------------------------------------------
    def live_devices(self) -> list[str]:
        """Kinds of the devices still in the VM (open, or closed but never released)."""
        return [device.kind for device in self.devices]


# Every call name the fault plan knows is a method of Kvm.
assert all(hasattr(Kvm, call) for call in INJECTABLE)
