"""The sPAPR interrupt controllers as the machine drives them: XICS and XIVE, emulated or in-kernel.

Each controller owns its architecture state (:mod:`xics`, :mod:`xive`) and, while it runs in the host
kernel, the KVM device that holds the live copy. ``connect_kvm`` follows QEMU's ``xics_kvm_connect``
and ``kvmppc_xive_connect`` call for call; any failure rolls everything back (``disconnect_kvm``)
before raising :class:`ConnectError` with QEMU's text. Whether a failure is fatal or falls back to
emulation is the machine's policy, not the controller's.
"""

from __future__ import annotations

import errno as E
from contextlib import contextmanager

from . import papr
from .errors import KvmError, SpaprIrqError, strerror
from .kvm import (
    KVM_CAP_IRQ_XICS,
    KVM_CAP_PPC_IRQ_XIVE,
    KVM_DEV_TYPE_XICS,
    KVM_DEV_TYPE_XIVE,
    KVM_DEV_XICS_GRP_CTRL,
    KVM_DEV_XICS_GRP_SOURCES,
    KVM_DEV_XICS_NR_SERVERS,
    KVM_DEV_XIVE_GRP_CTRL,
    KVM_DEV_XIVE_GRP_SOURCE,
    KVM_DEV_XIVE_NR_SERVERS,
    KVM_XICS_LEVEL_SENSITIVE,
    KVM_XICS_MASKED,
    KVM_XICS_PENDING,
    KVM_XICS_PRIORITY_SHIFT,
    KVM_XIVE_ESB_PAGE_OFFSET,
    KVM_XIVE_LEVEL_ASSERTED,
    KVM_XIVE_LEVEL_SENSITIVE,
    KVM_XIVE_TIMA_PAGE_OFFSET,
    KVM_XICS_PRESENTED,
    KVM_XICS_QUEUED,
    KVM_REG_PPC_ICP_STATE,
    Kvm,
)
from .kvm_xics import KVM_INTERRUPT_SET, KVM_INTERRUPT_SET_LEVEL, KVM_INTERRUPT_UNSET
from .xics import (ICP, ICS, XICS_STATUS_ASSERTED, XICS_STATUS_MASKED_PENDING,
                   XICS_STATUS_PRESENTED, XICS_STATUS_QUEUED, XICS_STATUS_REJECTED, IcsIrq, Xics)
from .xive import XIVE_STATUS_ASSERTED, SpaprXiveState, XiveTCTX, nvt_cam_line



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


class ConnectError(SpaprIrqError):
    """The in-kernel controller could not be set up; everything it did was undone."""


class ClaimError(SpaprIrqError):
    """An IRQ number could not be claimed."""


def _attr_error(exc: KvmError, group: int, attr: int) -> ConnectError:
    """QEMU's kvm_device_access() text."""
    return ConnectError(
        f"KVM_SET_DEVICE_ATTR failed: Group {group} attr {attr:#010x}: {strerror(exc.errno)}"
    )


class InterruptController:
    """What the machine needs of a controller; the two subclasses are the platform's two."""

    name = ""  # "xics" | "xive"
    label = ""  # "XICS" | "XIVE"
    hcalls: tuple[str, ...] = ()
    rtas_calls: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.kvm: Kvm | None = None
        self.fd: int | None = None

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


# ==========================================================================================================
# XICS
# ==========================================================================================================


class XicsController(InterruptController):
    """The sPAPR ICS with one ICP per vCPU; in-kernel through KVM_DEV_TYPE_XICS."""

    name, label = "xics", "XICS"
    hcalls = papr.XICS_HCALLS
    rtas_calls = papr.XICS_RTAS_CALLS
    #: Order in which QEMU defines the kernel RTAS tokens.
    KERNEL_TOKEN_ORDER = ("ibm,set-xive", "ibm,get-xive", "ibm,int-on", "ibm,int-off")

    def __init__(self, nr_irqs: int, max_cpus: int) -> None:
        super().__init__()
        self.max_cpus = max_cpus
        self.xics = Xics(papr.XICS_IRQ_BASE, nr_irqs)
        self.kvm_icps: set[int] = set()  # cap_irq_xics_enabled per ICP

    @property
    def ics(self) -> ICS:
        return self.xics.ics

    @property
    def icps(self) -> dict[int, ICP]:
        return self.xics.icps

    # -- IRQ numbers --------------------------------------------------------------------------------------
    def valid_irq(self, irq: int) -> bool:
        return self.ics.valid_irq(irq)

    def check_claim(self, irq: int) -> None:
        if not self.ics.valid_irq(irq):
            raise ClaimError(f"IRQ {irq} is not a valid number")
        if not self.ics.is_free(irq):
            raise ClaimError(f"IRQ {irq} is not free")

    def claim(self, irq: int, lsi: bool) -> str | None:
        """Allocate the source. Under KVM the source is pushed to the kernel; QEMU only reports a
        failed push (error_report_err) and the claim stands, so its text is returned."""
        self.check_claim(irq)
        self.ics.set_irq_type(irq, lsi)
        if self.in_kernel:
            try:
                self._push_source(irq)
            except ConnectError as exc:
                return exc.text
        return None

    def free(self, irq: int) -> None:
        if self.ics.valid_irq(irq):
            self.ics.free(irq)

    def is_claimed(self, irq: int) -> bool:
        return self.ics.valid_irq(irq) and not self.ics.is_free(irq)

    # -- presenters ---------------------------------------------------------------------------------------
    def cpu_intc_create(self, vcpu_id: int) -> None:
        """icp_create: a presenter for the vCPU, attached to the KVM device when in-kernel."""
        self.xics.icps[vcpu_id] = ICP(server=vcpu_id)
        if self.in_kernel:
            try:
                self._connect_icp(vcpu_id)
            except ConnectError:
                del self.xics.icps[vcpu_id]
                raise

    def cpu_intc_reset(self, vcpu_id: int) -> None:
        self.icps[vcpu_id].reset()
        if self.in_kernel:
            self._push_icp(vcpu_id)

    def cpu_intc_destroy(self, vcpu_id: int) -> None:
        self.xics.icps.pop(vcpu_id, None)
        self.kvm_icps.discard(vcpu_id)

    # -- reset --------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Device reset of the ICS (priorities 0xff, flags kept), pushed to KVM when in-kernel."""
        self.ics.reset()
        if self.in_kernel:
            for irq in self.ics.allocated():
                self._push_source(irq)

    # -- activation ---------------------------------------------------------------------------------------
    def activate(self) -> None:
        """Nothing to map for XICS: the hcalls and RTAS calls are always registered."""

    def deactivate(self) -> None:
        if self.in_kernel:
            self.disconnect_kvm()

    def connect_kvm(self, kvm: Kvm, nr_servers: int, max_cpus: int) -> None:
        """xics_kvm_connect: RTAS tokens, device, NR_SERVERS, vCPUs, then push sources and ICPs."""
        if self.fd is not None:
            return  # rebooting under the XICS-only interrupt mode
        if not _check_extension(kvm, KVM_CAP_IRQ_XICS):
            raise ConnectError("KVM and IRQ_XICS capability must be present for in-kernel XICS")
        self.kvm = kvm
        with self._connecting():
            for name in self.KERNEL_TOKEN_ORDER:
                try:
                    kvm.define_rtas_token(name, papr.RTAS_TOKENS[name])
                except KvmError as exc:
                    raise ConnectError(
                        f"kvmppc_define_rtas_kernel_token: {name}: {strerror(exc.errno)}"
                    ) from None
            try:
                fd = kvm.create_device(KVM_DEV_TYPE_XICS)
            except KvmError as exc:
                raise ConnectError(
                    f"Error on KVM_CREATE_DEVICE for XICS: {strerror(exc.errno)}"
                ) from None
            self.fd = fd
            if _has_attr(kvm, fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS):
                try:
                    kvm.set_attr(fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS, nr_servers)
                except KvmError as exc:
                    raise _attr_error(exc, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS) from None
            kvm.irqchip_in_kernel = True
            for vcpu_id in sorted(self.icps):
                self._connect_icp(vcpu_id)
            for irq in self.ics.allocated():
                self._push_source(irq)
            for vcpu_id in sorted(self.icps):
                self._push_icp(vcpu_id)

    def disconnect_kvm(self) -> None:
        """xics_kvm_disconnect: close the fd, undefine the kernel RTAS tokens, forget ICPs."""
        kvm = self.kvm
        if kvm is None:
            return
        if self.fd is not None:
            kvm.close(self.fd)
            self.fd = None
        for name in self.KERNEL_TOKEN_ORDER:
            try:
                kvm.define_rtas_token(name, 0)
            except KvmError:
                pass  # QEMU ignores the result; a leaked token is what the checker looks for
        kvm.irqchip_in_kernel = False
        self.kvm_icps.clear()
        self.kvm = None

    def _connect_icp(self, vcpu_id: int) -> None:
        if vcpu_id in self.kvm_icps:
            return
        try:
            self.kvm.enable_cap(vcpu_id, KVM_CAP_IRQ_XICS, self.fd, vcpu_id)
        except KvmError as exc:
            hints = (f"Try -smp maxcpus=N with N < {self.max_cpus}",) if exc.errno == E.ENOSPC else ()
            raise ConnectError(
                f"Unable to connect CPU{vcpu_id} to kernel XICS: {strerror(exc.errno)}", hints
            ) from None
        self.kvm_icps.add(vcpu_id)

    def _push_source(self, irq: int) -> None:
        try:
            self.kvm.set_attr(self.fd, KVM_DEV_XICS_GRP_SOURCES, irq,
                              ics_kvm_state(self.ics.source(irq)))
        except KvmError as exc:
            raise _attr_error(exc, KVM_DEV_XICS_GRP_SOURCES, irq) from None

    def _push_icp(self, vcpu_id: int) -> None:
        state = icp_kvm_state(self.icps[vcpu_id])
        try:
            self.kvm.set_one_reg(vcpu_id, KVM_REG_PPC_ICP_STATE, state)
        except KvmError as exc:
            raise ConnectError(
                f"Unable to restore KVM interrupt controller state ({state:#x}) for CPU {vcpu_id}: "
                f"{strerror(exc.errno)}"
            ) from None

    # -- device tree --------------------------------------------------------------------------------------
    # -- the guest interface, emulated (hw/intc/xics_spapr.c) ---------------------------------------------
    # Each handler gets the GuestContext the machine builds for the call, the calling vCPU and the
    # argument registers r4.. (always nine, unset ones 0). Returns (rc, *return registers).

    def hcall_handler(self, name: str):
        return getattr(self, "h_" + name[2:].lower(), None)

    def rtas_handler(self, name: str):
        return getattr(self, "rtas_" + name.split(",")[1].replace("-", "_"), None)

    def h_cppr(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        if not ctx.emulated_xics:
            return (papr.H_HARDWARE,)
        self.xics.set_cppr(self.icps[vcpu], args[0] & 0xFF)
        return (papr.H_SUCCESS,)

    def h_ipi(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        if not ctx.emulated_xics:
            return (papr.H_HARDWARE,)
        icp = self.icps.get(args[0])
        if icp is None:
            return (papr.H_PARAMETER,)
        self.xics.set_mfrr(icp, args[1] & 0xFF)
        return (papr.H_SUCCESS,)

    def h_xirr(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        xirr = self.xics.accept(self.icps[vcpu])  # QEMU accepts before its emulated-XICS check
        if not ctx.emulated_xics:
            return (papr.H_HARDWARE,)
        return (papr.H_SUCCESS, xirr)

    def h_xirr_x(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        xirr = self.xics.accept(self.icps[vcpu])
        if not ctx.emulated_xics:
            return (papr.H_HARDWARE,)
        return (papr.H_SUCCESS, xirr, ctx.timebase)

    def h_eoi(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        if not ctx.emulated_xics:
            return (papr.H_HARDWARE,)
        self.xics.eoi(self.icps[vcpu], args[0] & 0xFFFFFFFF)
        return (papr.H_SUCCESS,)

    def h_ipoll(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        if not ctx.emulated_xics:
            return (papr.H_HARDWARE,)
        icp = self.icps.get(args[0])
        if icp is None:
            return (papr.H_PARAMETER,)
        xirr, mfrr = self.xics.ipoll(icp)
        return (papr.H_SUCCESS, xirr, mfrr)

    def _rtas_source(self, ctx: GuestContext, args, nargs: int, nret: int, want_ret: int):
        """The checks every XICS RTAS call makes, in QEMU's order; a status or the IRQ number."""
        if not ctx.emulated_xics:
            return papr.RTAS_OUT_HW_ERROR, None
        if len(args) != nargs or nret != want_ret:
            return papr.RTAS_OUT_PARAM_ERROR, None
        if not self.ics.valid_irq(args[0]):
            return papr.RTAS_OUT_PARAM_ERROR, None
        return papr.RTAS_OUT_SUCCESS, args[0]

    def rtas_set_xive(self, ctx: GuestContext, vcpu: int, args, nret: int) -> tuple[int, ...]:
        status, irq = self._rtas_source(ctx, args, 3, nret, 1)
        if irq is None:
            return (status,)
        server, priority = args[1], args[2]
        if server not in self.icps or priority > 0xFF:
            return (papr.RTAS_OUT_PARAM_ERROR,)
        self.xics.write_xive(irq, server, priority, priority)
        return (papr.RTAS_OUT_SUCCESS,)

    def rtas_get_xive(self, ctx: GuestContext, vcpu: int, args, nret: int) -> tuple[int, ...]:
        status, irq = self._rtas_source(ctx, args, 1, nret, 3)
        if irq is None:
            return (status,)
        source = self.ics.source(irq)
        return (papr.RTAS_OUT_SUCCESS, source.server, source.priority)

    def rtas_int_off(self, ctx: GuestContext, vcpu: int, args, nret: int) -> tuple[int, ...]:
        status, irq = self._rtas_source(ctx, args, 1, nret, 1)
        if irq is None:
            return (status,)
        source = self.ics.source(irq)
        self.xics.write_xive(irq, source.server, 0xFF, source.priority)
        return (papr.RTAS_OUT_SUCCESS,)

    def rtas_int_on(self, ctx: GuestContext, vcpu: int, args, nret: int) -> tuple[int, ...]:
        status, irq = self._rtas_source(ctx, args, 1, nret, 1)
        if irq is None:
            return (status,)
        source = self.ics.source(irq)
        self.xics.write_xive(irq, source.server, source.saved_priority, source.saved_priority)
        return (papr.RTAS_OUT_SUCCESS,)

    # -- device lines -------------------------------------------------------------------------------------
    def set_irq(self, irq: int, level: int) -> None:
        """ics_set_irq: KVM_IRQ_LINE when in-kernel (MSI: only a non-zero value, as
        KVM_INTERRUPT_SET; LSI: SET_LEVEL or UNSET), else the emulated source."""
        if self.in_kernel:
            source = self.ics.source(irq)
            if source.lsi:
                line = KVM_INTERRUPT_SET_LEVEL if level else KVM_INTERRUPT_UNSET
            elif level:
                line = KVM_INTERRUPT_SET
            else:
                return
            try:
                self.kvm.irq_line(irq, line)
            except KvmError as exc:
                raise ConnectError(f"kvm_irq_line: {strerror(exc.errno)}") from None
            return
        self.xics.set_irq(irq, level)

    # -- state: QEMU's copy and the kernel's ------------------------------------------------------------
    def synchronize_state(self) -> None:
        """ics_get_kvm_state / icp_get_kvm_state: pull the kernel's state into QEMU's copy."""
        if not self.in_kernel:
            return
        for irq in self.ics.allocated():
            word = self.kvm.get_attr(self.fd, KVM_DEV_XICS_GRP_SOURCES, irq)
            source = self.ics.source(irq)
            source.server = word & 0xFFFFFFFF
            source.saved_priority = (word >> KVM_XICS_PRIORITY_SHIFT) & 0xFF
            source.priority = 0xFF if word & KVM_XICS_MASKED else source.saved_priority
            source.status = 0
            if word & KVM_XICS_PENDING:
                if word & KVM_XICS_LEVEL_SENSITIVE:
                    source.status |= XICS_STATUS_ASSERTED
                else:  # a pending edge must have been rejected before: remember it both ways
                    source.status |= XICS_STATUS_MASKED_PENDING | XICS_STATUS_REJECTED
            if word & KVM_XICS_PRESENTED:
                source.status |= XICS_STATUS_PRESENTED
            if word & KVM_XICS_QUEUED:
                source.status |= XICS_STATUS_QUEUED
        for vcpu_id, icp in self.icps.items():
            state = self.kvm.get_one_reg(vcpu_id, KVM_REG_PPC_ICP_STATE)
            icp.xirr = (state >> 32) & 0xFFFFFFFF
            icp.mfrr = (state >> 24) & 0xFF
            icp.pending_priority = (state >> 16) & 0xFF

    def pre_save(self) -> dict:
        """The ics and icp/server vmstate fields, pulled from KVM first when in-kernel."""
        self.synchronize_state()
        return {
            "ics": {irq: (s.server, s.priority, s.saved_priority, s.status, s.flags)
                    for irq in self.ics.allocated() for s in (self.ics.source(irq),)},
            "icp": {vcpu: (icp.xirr, icp.pending_priority, icp.mfrr)
                    for vcpu, icp in self.icps.items()},
        }

    def post_load(self, state: dict) -> None:
        """Load vmstate fields, then push them to KVM (in-kernel) or resend on every ICP."""
        if set(state["ics"]) != set(self.ics.allocated()) or set(state["icp"]) != set(self.icps):
            raise ConnectError("XICS state does not match this machine's sources and vCPUs")
        for irq, (server, priority, saved, status, flags) in state["ics"].items():
            source = self.ics.source(irq)
            source.server, source.priority, source.saved_priority = server, priority, saved
            source.status, source.flags = status, flags
        for vcpu, (xirr, pending, mfrr) in state["icp"].items():
            icp = self.icps[vcpu]
            icp.xirr, icp.pending_priority, icp.mfrr = xirr, pending, mfrr
            icp.xirr_owned = False  # not migrated
            icp.output = bool(icp.xisr) and pending < icp.cppr
        if self.in_kernel:
            for irq in self.ics.allocated():
                self._push_source(irq)
            for vcpu_id in sorted(self.icps):
                self._push_icp(vcpu_id)
        else:
            for vcpu_id in sorted(self.icps):
                self.xics.resend(self.icps[vcpu_id])

    def dt_node(self, nr_servers: int) -> tuple[str, dict]:
        return "interrupt-controller", {
            "device_type": "PowerPC-External-Interrupt-Presentation",
            "compatible": "IBM,ppc-xicp",
            "interrupt-controller": True,
            "ibm,interrupt-server-ranges": [0, nr_servers],
            "#interrupt-cells": 2,
            "linux,phandle": papr.PHANDLE_INTC,
            "phandle": papr.PHANDLE_INTC,
        }

    def root_props(self) -> dict:
        return {}

    # -- info pic -----------------------------------------------------------------------------------------
    def print_info(self) -> list[str]:
        lines = []
        for vcpu_id in sorted(self.icps):
            icp = self.icps[vcpu_id]
            lines.append(f"CPU {vcpu_id} XIRR={icp.xirr:08x} ({icp.xirr:#x}) PP={icp.pending_priority:02x}"
                         f" MFRR={icp.mfrr:02x}")
        last = self.ics.offset + self.ics.nr_irqs - 1
        lines.append(f"ICS {self.ics.offset:4x}..{last:4x} {'':>10}")
        for irq in self.ics.allocated():
            s = self.ics.source(irq)
            kind = "LSI" if s.lsi else "MSI"
            lines.append(f"  {irq:4x} {kind} {s.priority:02x} {s.status:02x}")
        return lines


def _check_extension(kvm: Kvm, cap: int) -> int:
    """kvm_check_extension(): an ioctl that fails answers 0, as QEMU treats it."""
    try:
        return kvm.check_extension(cap)
    except KvmError:
        return 0


def _has_attr(kvm: Kvm, fd: int, group: int, attr: int) -> bool:
    """kvm_device_check_attr(): a failed KVM_HAS_DEVICE_ATTR means "not supported"."""
    try:
        return kvm.has_attr(fd, group, attr)
    except KvmError:
        return False


def ics_kvm_state(source: IcsIrq) -> int:
    """The KVM_DEV_XICS_GRP_SOURCES word for a source (ics_set_kvm_state_one): the saved priority,
    MASKED when the live priority is 0xff, PENDING for an asserted LSI or a masked-pending MSI."""
    state = (source.server & 0xFFFFFFFF) | (source.saved_priority & 0xFF) << KVM_XICS_PRIORITY_SHIFT
    if source.priority == 0xFF:
        state |= KVM_XICS_MASKED
    if source.lsi:
        state |= KVM_XICS_LEVEL_SENSITIVE
        if source.status & XICS_STATUS_ASSERTED:
            state |= KVM_XICS_PENDING
    elif source.status & XICS_STATUS_MASKED_PENDING:
        state |= KVM_XICS_PENDING
    if source.status & XICS_STATUS_PRESENTED:
        state |= KVM_XICS_PRESENTED
    if source.status & XICS_STATUS_QUEUED:
        state |= KVM_XICS_QUEUED
    return state


def icp_kvm_state(icp: ICP) -> int:
    """The KVM_REG_PPC_ICP_STATE word: CPPR<<56 | XISR<<32 | MFRR<<24 | PPRI<<16."""
    return (icp.cppr << 56) | (icp.xisr << 32) | (icp.mfrr << 24) | (icp.pending_priority << 16)


# ==========================================================================================================
# XIVE
# ==========================================================================================================


class XiveController(InterruptController):
    """The sPAPR XIVE; in-kernel through KVM_DEV_TYPE_XIVE with ESB and TIMA pages mapped."""

    name, label = "xive", "XIVE"
    hcalls = papr.XIVE_HCALLS

    def __init__(self, nr_irqs: int, nr_ends: int, max_cpus: int) -> None:
        super().__init__()
        self.state = SpaprXiveState(nr_irqs, nr_ends)
        self.tctxs: dict[int, XiveTCTX] = {}
        self.kvm_vcpus: set[int] = set()
        self.mmio_enabled = False
        self.mappings: list[int] = []  # KVM mmap page offsets in place
        self.change_handler = False  # VM run-state handler registered
        self.max_cpus = max_cpus
        self.vc_base = papr.SPAPR_XIVE_VC_BASE
        self.tm_base = papr.SPAPR_XIVE_TM_BASE

    @property
    def nr_irqs(self) -> int:
        return self.state.nr_irqs

    # -- IRQ numbers --------------------------------------------------------------------------------------
    def valid_irq(self, irq: int) -> bool:
        return 0 <= irq < self.nr_irqs

    def check_claim(self, irq: int) -> None:
        if not self.valid_irq(irq):
            raise ClaimError(f"IRQ {irq} is not a valid number")
        if self.state.eas_valid(irq):
            raise ClaimError(f"IRQ {irq} is not free")

    def claim(self, irq: int, lsi: bool) -> None:
        """Make the LISN valid; under KVM a failed source reset fails the claim, as in QEMU."""
        self.check_claim(irq)
        self.state.claim(irq, lsi)
        if self.in_kernel:
            try:
                self._reset_source(irq)
            except ConnectError:
                self.state.free(irq)
                raise

    def free(self, irq: int) -> None:
        if self.valid_irq(irq):
            self.state.free(irq)

    def is_claimed(self, irq: int) -> bool:
        return self.valid_irq(irq) and self.state.eas_valid(irq)

    # -- presenters ---------------------------------------------------------------------------------------
    def cpu_intc_create(self, vcpu_id: int) -> None:
        """xive_tctx_create: a thread context, connected to the KVM device when in-kernel."""
        self.tctxs[vcpu_id] = XiveTCTX(vcpu_id)
        if self.in_kernel:
            try:
                self._connect_vcpu(vcpu_id)
            except ConnectError:
                del self.tctxs[vcpu_id]
                raise

    def cpu_intc_reset(self, vcpu_id: int) -> None:
        """TCTX reset, then the OS CAM line of NVT 0x400 + vcpu_id (QEMU 4.2+)."""
        tctx = self.tctxs[vcpu_id]
        tctx.reset()
        tctx.set_os_cam(nvt_cam_line(0, papr.SPAPR_XIVE_NVT_BASE + vcpu_id))

    def cpu_intc_destroy(self, vcpu_id: int) -> None:
        self.tctxs.pop(vcpu_id, None)
        self.kvm_vcpus.discard(vcpu_id)

    # -- reset --------------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.state.reset()

    # -- activation ---------------------------------------------------------------------------------------
    def activate(self) -> None:
        """Enable the source ESB and TIMA MMIO regions (the END ESB region stays off)."""
        self.mmio_enabled = True

    def deactivate(self) -> None:
        self.mmio_enabled = False
        if self.in_kernel:
            self.disconnect_kvm()

    def connect_kvm(self, kvm: Kvm, nr_servers: int, max_cpus: int) -> None:
        """kvmppc_xive_connect: device, NR_SERVERS, ESB and TIMA mappings, vCPUs, source reset."""
        if self.fd is not None:
            return  # rebooting under the XIVE-only interrupt mode
        self.kvm = kvm
        if not kvm.cap_xive:
            self.kvm = None
            raise ConnectError("IRQ_XIVE capability must be present for KVM")
        try:
            fd = kvm.create_device(KVM_DEV_TYPE_XIVE)
        except KvmError as exc:
            self.kvm = None
            raise ConnectError(f"XIVE: error creating KVM device: {strerror(exc.errno)}") from None
        self.fd = fd
        with self._connecting():
            if _has_attr(kvm, fd, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS):
                try:
                    kvm.set_attr(fd, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS, nr_servers)
                except KvmError as exc:
                    raise _attr_error(exc, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS) from None
            for pgoff, npages in ((KVM_XIVE_ESB_PAGE_OFFSET, 2 * self.nr_irqs),
                                  (KVM_XIVE_TIMA_PAGE_OFFSET, 4)):
                try:
                    kvm.mmap(fd, pgoff, npages)
                except KvmError as exc:
                    raise ConnectError(
                        f"XIVE: unable to set memory mapping: {strerror(exc.errno)}"
                    ) from None
                self.mappings.append(pgoff)
            self.change_handler = True
            for vcpu_id in sorted(self.tctxs):
                self._connect_vcpu(vcpu_id)
            for lisn in self.state.valid_lisns():
                self._reset_source(lisn)
            kvm.irqchip_in_kernel = True

    def disconnect_kvm(self) -> None:
        """kvmppc_xive_disconnect: unmap, close the fd, forget vCPUs, drop the run-state handler."""
        kvm = self.kvm
        if kvm is None:
            return
        for pgoff in self.mappings:
            kvm.munmap(self.fd, pgoff)
        self.mappings.clear()
        if self.fd is not None:
            kvm.close(self.fd)
            self.fd = None
        kvm.irqchip_in_kernel = False
        self.kvm_vcpus.clear()
        self.change_handler = False
        self.kvm = None

    def _connect_vcpu(self, vcpu_id: int) -> None:
        if vcpu_id in self.kvm_vcpus:
            return
        try:
            self.kvm.enable_cap(vcpu_id, KVM_CAP_PPC_IRQ_XIVE, self.fd, vcpu_id)
        except KvmError as exc:
            hints = (f"Try -smp maxcpus=N with N < {self.max_cpus}",) if exc.errno == E.ENOSPC else ()
            raise ConnectError(
                f"XIVE: unable to connect CPU{vcpu_id} to KVM device: {strerror(exc.errno)}", hints
            ) from None
        self.kvm_vcpus.add(vcpu_id)

    def _reset_source(self, lisn: int) -> None:
        flags = 0
        if lisn in self.state.source.lsi:
            flags |= KVM_XIVE_LEVEL_SENSITIVE
            if self.state.source.status[lisn] & XIVE_STATUS_ASSERTED:
                flags |= KVM_XIVE_LEVEL_ASSERTED
        try:
            self.kvm.set_attr(self.fd, KVM_DEV_XIVE_GRP_SOURCE, lisn, flags)
        except KvmError as exc:
            raise _attr_error(exc, KVM_DEV_XIVE_GRP_SOURCE, lisn) from None

    # -- device tree --------------------------------------------------------------------------------------
    def dt_node(self, nr_servers: int) -> tuple[str, dict]:
        page = papr.XIVE_TM_PAGE_SIZE
        user, os_ring = self.tm_base + 3 * page, self.tm_base + 2 * page
        return f"interrupt-controller@{user:x}", {
            "device_type": "power-ivpe",
            "reg": [user, page, os_ring, page],
            "compatible": "ibm,power-ivpe",
            "ibm,xive-eq-sizes": [16],
            "ibm,xive-lisn-ranges": [0, nr_servers],
            "interrupt-controller": True,
            "#interrupt-cells": 2,
            "linux,phandle": papr.PHANDLE_INTC,
            "phandle": papr.PHANDLE_INTC,
        }

    def root_props(self) -> dict:
        hv_prio = papr.SPAPR_XIVE_HV_PRIO
        return {"ibm,plat-res-int-priorities": [hv_prio, 0xFF - hv_prio]}

    # -- info pic -----------------------------------------------------------------------------------------
    def print_info(self) -> list[str]:
        lines = []
        for vcpu_id in sorted(self.tctxs):
            regs = self.tctxs[vcpu_id].regs
            os_ring = regs[0x10:0x18]
            lines.append(f"CPU[{vcpu_id:04x}]:   QW   NSR CPPR IPB LSMFB ACK# INC AGE PIPR  W2")
            lines.append(f"CPU[{vcpu_id:04x}]: OS    {os_ring[0]:02x}   {os_ring[1]:02x}  {os_ring[2]:02x}"
                         f"    {os_ring[3]:02x}   {os_ring[4]:02x}  {os_ring[5]:02x}  {os_ring[6]:02x}"
                         f"   {os_ring[7]:02x}  {int.from_bytes(regs[0x18:0x1c], 'big'):08x}")
        lines.append(f"XIVE Source {0:08x} .. {self.nr_irqs - 1:08x}")
        for lisn in self.state.valid_lisns():
            kind = "LSI" if lisn in self.state.source.lsi else "MSI"
            pq = self.state.source.pq(lisn)
            lines.append(f"  {lisn:08x} {kind} {'P' if pq & 2 else '-'}{'Q' if pq & 1 else '-'}"
                         f" {'M' if self.state.eas(lisn) & (1 << 31) else ' '}")
        return lines
