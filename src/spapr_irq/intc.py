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
    KVM_DEV_XIVE_GRP_EQ_CONFIG,
    KVM_DEV_XIVE_EQ_SYNC,
    KVM_DEV_XIVE_GRP_SOURCE,
    KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
    KVM_DEV_XIVE_GRP_SOURCE_SYNC,
    KVM_DEV_XIVE_RESET,
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
from .kvm_xive import KvmPpcXiveEq, Sigbus
from .xics import (ICP, ICS, XICS_STATUS_ASSERTED, XICS_STATUS_MASKED_PENDING,
                   XICS_STATUS_PRESENTED, XICS_STATUS_QUEUED, XICS_STATUS_REJECTED, IcsIrq, Xics)
from .xive import (EAS_END_BLOCK_MASK, EAS_END_BLOCK_SHIFT, EAS_END_DATA_MASK, EAS_END_INDEX_MASK,
                   EAS_END_INDEX_SHIFT, EAS_MASKED, EAS_VALID, END_W0_ENQUEUE, END_W0_QSIZE_MASK,
                   END_W0_QSIZE_SHIFT, END_W0_UCOND_NOTIFY, END_W0_VALID, END_W1_GENERATION,
                   END_W1_PAGE_OFF_MASK, END_W6_NVT_INDEX_MASK, END_W7_F0_PRIORITY_SHIFT,
                   XIVE_STATUS_ASSERTED, XiveRouter, XiveTCTX, end_qaddr, end_reset_value,
                   nvt_cam_line)



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


# sPAPR XIVE hcall flags (PPC bit numbering: bit 63 = 0x1)
SPAPR_XIVE_SRC_H_INT_ESB = 0x8
SPAPR_XIVE_SRC_LSI = 0x4
SPAPR_XIVE_SRC_TRIGGER = 0x2
SPAPR_XIVE_SRC_STORE_EOI = 0x1
SPAPR_XIVE_SRC_SET_EISN = 0x2
SPAPR_XIVE_SRC_MASK = 0x1
SPAPR_XIVE_END_ALWAYS_NOTIFY = 0x1
SPAPR_XIVE_END_DEBUG = 0x1
SPAPR_XIVE_ESB_STORE = 0x1
MINUS_ONE = (1 << 64) - 1  # -1 in a 64-bit return register


class ConnectError(SpaprIrqError):
    """The in-kernel controller could not be set up; everything it did was undone."""


class ClaimError(SpaprIrqError):
    """An IRQ number could not be claimed."""


def _attr_error(exc: KvmError, group: int, attr: int, write: bool = True) -> ConnectError:
    """QEMU's kvm_device_access() text: the attribute as 0x%016 PRIx64."""
    return ConnectError(
        f"KVM_{'SET' if write else 'GET'}_DEVICE_ATTR failed: Group {group} "
        f"attr 0x{attr:016x}: {strerror(exc.errno)}"
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

    def vm_state_change(self, running: bool) -> None:
        """The VM change-state handler; only the in-kernel XIVE registers one."""


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

    def __init__(self, nr_irqs: int, nr_ends: int, max_cpus: int, memory) -> None:
        super().__init__()
        self.state = XiveRouter(nr_irqs, nr_ends, memory)
        self.memory = memory
        self.kvm_vcpus: set[int] = set()
        self.mmio_enabled = False
        self.mappings: list[int] = []  # KVM mmap page offsets in place
        self.change_handler = False  # VM run-state handler registered
        self.max_cpus = max_cpus
        self.vc_base = papr.SPAPR_XIVE_VC_BASE
        self.tm_base = papr.SPAPR_XIVE_TM_BASE
        self.hv_prio = papr.SPAPR_XIVE_HV_PRIO
        self.reports: list[str] = []  # QEMU's error_report lines from the hcalls

    @property
    def tctxs(self) -> dict[int, XiveTCTX]:
        return self.state.tctxs

    @property
    def nr_irqs(self) -> int:
        return self.state.nr_irqs

    @property
    def nr_ends(self) -> int:
        return self.state.nr_ends

    @property
    def end_base(self) -> int:
        return self.vc_base + (self.nr_irqs << papr.XIVE_ESB_SHIFT)

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
        self.state.tctxs[vcpu_id] = XiveTCTX(vcpu_id)
        if self.in_kernel:
            try:
                self._connect_vcpu(vcpu_id)
            except ConnectError:
                del self.state.tctxs[vcpu_id]
                raise

    def cpu_intc_reset(self, vcpu_id: int) -> None:
        """TCTX reset, then the OS CAM line of NVT 0x400 + vcpu_id (QEMU 4.2+)."""
        tctx = self.tctxs[vcpu_id]
        tctx.reset()
        tctx.set_os_cam(nvt_cam_line(0, papr.SPAPR_XIVE_NVT_BASE + vcpu_id))

    def cpu_intc_destroy(self, vcpu_id: int) -> None:
        self.state.tctxs.pop(vcpu_id, None)
        self.kvm_vcpus.discard(vcpu_id)

    # -- reset --------------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.state.reset_tables()
        self.state.source.reset()

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
    # -- the guest interface: H_INT_* (hw/intc/spapr_xive.c) ------------------------------------------------
    # Every handler answers H_FUNCTION until the guest negotiated XIVE at CAS, then checks its flags,
    # LISN, priority and target in QEMU's order. Under KVM the same checks run in QEMU, which then
    # programs the kernel; a KVM failure is reported and answers H_HARDWARE.

    def hcall_handler(self, name: str):
        return getattr(self, "h_" + name[2:].lower(), None)

    def _lisn_error(self, lisn: int) -> int | None:
        if lisn >= self.nr_irqs:
            self.reports.append(f"XIVE: Unknown LISN {lisn:#x}")
            return papr.H_P2
        if not self.state.eas_valid(lisn):
            self.reports.append(f"XIVE: Invalid LISN {lisn:#x}")
            return papr.H_P2
        return None

    def _reserved(self, priority: int) -> bool:
        """spapr_xive_priority_is_reserved, which takes the priority as a uint8_t."""
        return priority & 0xFF >= self.hv_prio

    def _target_end(self, ctx: GuestContext, target: int, priority: int) -> int | None:
        """spapr_xive_target_to_end: END index (target << 3) + priority for a present vCPU,
        the target taken as a uint32_t and the priority as a uint8_t."""
        target &= 0xFFFFFFFF
        if target not in self.tctxs:
            return None
        return (target << 3) + (priority & 0xFF)

    def h_int_get_source_info(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, lisn = args[0], args[1]
        if not ctx.xive_negotiated:
            return (papr.H_FUNCTION,)
        if flags:
            return (papr.H_PARAMETER,)
        error = self._lisn_error(lisn)
        if error:
            return (error,)
        out_flags = 0
        if self.state.source.store_eoi:
            out_flags |= SPAPR_XIVE_SRC_STORE_EOI
        if lisn in self.state.source.lsi:  # H_INT_ESB, so KVM can re-trigger a level
            out_flags |= SPAPR_XIVE_SRC_H_INT_ESB | SPAPR_XIVE_SRC_LSI
        trigger = self.vc_base + (lisn << papr.XIVE_ESB_SHIFT)
        mgmt = trigger + (1 << (papr.XIVE_ESB_SHIFT - 1))
        esb = out_flags & SPAPR_XIVE_SRC_H_INT_ESB
        return (papr.H_SUCCESS, out_flags, MINUS_ONE if esb else mgmt,
                MINUS_ONE if esb else trigger, papr.XIVE_ESB_SHIFT - 1)

    def h_int_set_source_config(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, lisn, target, priority, eisn = args[:5]
        if not ctx.xive_negotiated:
            return (papr.H_FUNCTION,)
        if flags & ~(SPAPR_XIVE_SRC_SET_EISN | SPAPR_XIVE_SRC_MASK):
            return (papr.H_PARAMETER,)
        error = self._lisn_error(lisn)
        if error:
            return (error,)
        eas = self.state.eas(lisn)
        if priority == 0xFF:  # resets the EAS; QEMU skips the KVM update here
            self.state.eat[lisn] = EAS_VALID | EAS_MASKED
            return (papr.H_SUCCESS,)
        new = eas | EAS_MASKED if flags & SPAPR_XIVE_SRC_MASK else eas & ~EAS_MASKED
        if self._reserved(priority):
            self.reports.append(f"XIVE: priority {priority} is reserved")
            return (papr.H_P4,)
        end_idx = self._target_end(ctx, target, priority)
        if end_idx is None:
            return (papr.H_P3,)
        new &= ~((EAS_END_BLOCK_MASK << EAS_END_BLOCK_SHIFT) | (EAS_END_INDEX_MASK << EAS_END_INDEX_SHIFT))
        new |= (end_idx & EAS_END_INDEX_MASK) << EAS_END_INDEX_SHIFT
        if flags & SPAPR_XIVE_SRC_SET_EISN:
            new = (new & ~EAS_END_DATA_MASK) | (eisn & EAS_END_DATA_MASK)
        if self.in_kernel:
            failure = self._kvm_set_source_config(lisn, new)
            if failure:
                return (papr.H_HARDWARE,)
        self.state.eat[lisn] = new
        return (papr.H_SUCCESS,)

    def h_int_get_source_config(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, lisn = args[0], args[1]
        if not ctx.xive_negotiated:
            return (papr.H_FUNCTION,)
        if flags:
            return (papr.H_PARAMETER,)
        error = self._lisn_error(lisn)
        if error:
            return (error,)
        eas = self.state.eas(lisn)
        end = self.state.end((eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK)
        nvt_idx = end[6] & END_W6_NVT_INDEX_MASK
        target = (nvt_idx - papr.SPAPR_XIVE_NVT_BASE) & 0xFFFFFFFF
        priority = 0xFF if eas & EAS_MASKED else (end[7] >> END_W7_F0_PRIORITY_SHIFT) & 0xFF
        return (papr.H_SUCCESS, target, priority, eas & EAS_END_DATA_MASK)

    def h_int_get_queue_info(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, target, priority = args[0], args[1], args[2]
        if not ctx.xive_negotiated:
            return (papr.H_FUNCTION,)
        if flags:
            return (papr.H_PARAMETER,)
        if self._reserved(priority):
            self.reports.append(f"XIVE: priority {priority} is reserved")
            return (papr.H_P3,)
        end_idx = self._target_end(ctx, target, priority)
        if end_idx is None:
            return (papr.H_P2,)
        end = self.state.end(end_idx)
        qsize = ((end[0] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 12 if end[0] & END_W0_ENQUEUE else 0
        return (papr.H_SUCCESS, self.end_base + (1 << (papr.XIVE_ESB_SHIFT + 1)) * end_idx, qsize)

    def h_int_set_queue_config(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, target, priority, qpage, qsize = args[:5]
        if not ctx.xive_negotiated:
            return (papr.H_FUNCTION,)
        if flags & ~SPAPR_XIVE_END_ALWAYS_NOTIFY:
            return (papr.H_PARAMETER,)
        if self._reserved(priority):
            self.reports.append(f"XIVE: priority {priority} is reserved")
            return (papr.H_P3,)
        end_idx = self._target_end(ctx, target, priority)
        if end_idx is None:
            return (papr.H_P2,)
        end = list(self.state.end(end_idx))
        if qsize in (12, 16, 21, 24):
            if qpage & ((1 << qsize) - 1):
                self.reports.append(f"XIVE: EQ @{qpage:#x} is not naturally aligned with "
                                    f"{1 << qsize:x}")
                return (papr.H_P4,)
            if not self.memory.contains(qpage, 1 << qsize):
                self.reports.append(f"XIVE: failed to map EQ @{qpage:#x}")
                return (papr.H_P4,)
            end[2] = (qpage >> 32) & 0x0FFFFFFF
            end[3] = qpage & 0xFFFFFFFF
            end[0] |= END_W0_ENQUEUE
            end[0] = (end[0] & ~(END_W0_QSIZE_MASK << END_W0_QSIZE_SHIFT)) | ((qsize - 12) << END_W0_QSIZE_SHIFT)
            end[6] = nvt_cam_line(0, papr.SPAPR_XIVE_NVT_BASE + (end_idx >> 3))  # the vCPU's NVT
            end[7] = (priority & 0xFF) << END_W7_F0_PRIORITY_SHIFT
            if flags & SPAPR_XIVE_END_ALWAYS_NOTIFY:
                end[0] |= END_W0_UCOND_NOTIFY
            else:
                end[0] &= ~END_W0_UCOND_NOTIFY
            end[1] = END_W1_GENERATION  # generation 1, page offset 0, ESn 00
            end[0] |= END_W0_VALID
        elif qsize == 0:
            end = end_reset_value()  # reset the queue and disable queueing
        else:
            self.reports.append(f"XIVE: invalid EQ size {qsize:x}")
            return (papr.H_P5,)
        if self.in_kernel:
            failure = self._kvm_set_queue_config(end_idx, end)
            if failure:
                return (papr.H_HARDWARE,)
        self.state.endt[end_idx] = end
        return (papr.H_SUCCESS,)

    def h_int_get_queue_config(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, target, priority = args[0], args[1], args[2]
        if not ctx.xive_negotiated:
            return (papr.H_FUNCTION,)
        if flags & ~SPAPR_XIVE_END_DEBUG:
            return (papr.H_PARAMETER,)
        if self._reserved(priority):
            self.reports.append(f"XIVE: priority {priority} is reserved")
            return (papr.H_P3,)
        end_idx = self._target_end(ctx, target, priority)
        if end_idx is None:
            return (papr.H_P2,)
        end = self.state.end(end_idx)
        out_flags = SPAPR_XIVE_END_ALWAYS_NOTIFY if end[0] & END_W0_UCOND_NOTIFY else 0
        if end[0] & END_W0_ENQUEUE:
            qaddr, qsize = end_qaddr(end), ((end[0] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 12
        else:
            qaddr = qsize = 0
        if self.in_kernel:
            failure = self._kvm_get_queue_config(end_idx, end)
            if failure:
                return (papr.H_HARDWARE,)
        offset = 0
        if flags & SPAPR_XIVE_END_DEBUG:
            out_flags |= (1 if end[1] & END_W1_GENERATION else 0) << 62  # QEMU's bit placement
            offset = end[1] & END_W1_PAGE_OFF_MASK
        return (papr.H_SUCCESS, out_flags, qaddr, qsize, offset)

    def h_int_set_os_reporting_line(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        return (papr.H_FUNCTION,)  # not supported by QEMU, negotiated or not

    def h_int_get_os_reporting_line(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        return (papr.H_FUNCTION,)

    def h_int_esb(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, lisn, offset, data = args[:4]
        if not ctx.xive_negotiated:
            return (papr.H_FUNCTION,)
        if flags & ~SPAPR_XIVE_ESB_STORE:
            return (papr.H_PARAMETER,)
        error = self._lisn_error(lisn)
        if error:
            return (error,)
        if offset > (1 << papr.XIVE_ESB_SHIFT):
            return (papr.H_P3,)
        store = bool(flags & SPAPR_XIVE_ESB_STORE)
        if self.in_kernel:
            return (papr.H_SUCCESS, self._kvm_esb_rw(lisn, offset, data, store))
        addr = self.vc_base + (lisn << papr.XIVE_ESB_SHIFT) + (1 << (papr.XIVE_ESB_SHIFT - 1)) + offset
        if not self.esb_contains(addr):
            self.reports.append(f"XIVE: failed to access ESB @{addr:#x}")
            return (papr.H_HARDWARE,)
        if store:
            self.esb_write(addr - self.vc_base, data, 8)
            return (papr.H_SUCCESS, MINUS_ONE)
        return (papr.H_SUCCESS, self.esb_read(addr - self.vc_base, 8))

    def h_int_sync(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, lisn = args[0], args[1]
        if not ctx.xive_negotiated:
            return (papr.H_FUNCTION,)
        if flags:
            return (papr.H_PARAMETER,)
        error = self._lisn_error(lisn)
        if error:
            return (error,)
        if self.in_kernel and self._kvm_attr(KVM_DEV_XIVE_GRP_SOURCE_SYNC, lisn, None):
            return (papr.H_HARDWARE,)
        return (papr.H_SUCCESS,)

    def h_int_reset(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        if not ctx.xive_negotiated:
            return (papr.H_FUNCTION,)
        if args[0]:
            return (papr.H_PARAMETER,)
        self.state.reset_tables()  # cold reset of the sPAPR XIVE device
        if self.in_kernel and self._kvm_attr(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_RESET, None):
            return (papr.H_HARDWARE,)
        return (papr.H_SUCCESS,)

    # -- MMIO: the ESB pages at vc_base and the TIMA at tm_base ------------------------------------------
    def esb_contains(self, addr: int) -> bool:
        return self.vc_base <= addr < self.vc_base + (self.nr_irqs << papr.XIVE_ESB_SHIFT)

    def esb_read(self, offset: int, size: int) -> int:
        """A load at `offset` into the source ESB region (emulated, or the kernel's pages)."""
        srcno = offset >> papr.XIVE_ESB_SHIFT
        trigger_page = not (offset >> (papr.XIVE_ESB_SHIFT - 1)) & 1
        if self.fd is not None:  # in_kernel, on the hot path
            return self._kvm_esb(srcno, trigger_page, offset & 0xFFF, None, size)
        value = self.state.esb_load(srcno, trigger_page, offset & 0xFFF)
        return value & ((1 << (8 * size)) - 1)

    def esb_write(self, offset: int, value: int, size: int) -> None:
        srcno = offset >> papr.XIVE_ESB_SHIFT
        trigger_page = not (offset >> (papr.XIVE_ESB_SHIFT - 1)) & 1
        if self.fd is not None:  # in_kernel, on the hot path
            self._kvm_esb(srcno, trigger_page, offset & 0xFFF, value, size)
            return
        self.state.esb_store(srcno, trigger_page, offset & 0xFFF)

    def tima_read(self, vcpu: int, offset: int, size: int) -> int:
        if self.fd is not None:
            return self._kvm_tima(vcpu, offset, None, size)
        value, error = self.state.tctxs[vcpu].tm_read(offset, size)
        if error:
            self.state.errors.append(error)
        return value

    def tima_write(self, vcpu: int, offset: int, value: int, size: int) -> None:
        if self.fd is not None:
            self._kvm_tima(vcpu, offset, value, size)
            return
        error = self.state.tctxs[vcpu].tm_write(offset, value, size)
        if error:
            self.state.errors.append(error)

    def set_irq(self, irq: int, level: int) -> None:
        """xive_source_set_irq, or under KVM a trigger store on the kernel's ESB page (after
        recording the LSI level in QEMU's copy), as QEMU 5.0+ does."""
        if self.fd is not None:  # in_kernel, on the hot path
            source = self.state.source
            if irq in source.lsi:
                source._set_asserted(irq, bool(level))
            elif not level:
                return
            self._kvm_esb(irq, True, 0, 0, 8)
            return
        self.state.set_irq(irq, level)

    def output(self, vcpu: int) -> bool:
        if self.fd is not None:  # in_kernel, on the hot path
            return self._kvm_output(vcpu)
        return self.tctxs[vcpu].output

    # -- the kernel side (hw/intc/spapr_xive_kvm.c) ----------------------------------------------------
    def _kvm_attr(self, group: int, attr: int, value) -> bool:
        """kvm_device_access for a write; a failure is reported, and True is returned."""
        try:
            self.kvm.set_attr(self.fd, group, attr, value)
        except KvmError as exc:
            self.reports.append(_attr_error(exc, group, attr).message)
            return True
        return False

    def _kvm_set_source_config(self, lisn: int, eas: int) -> bool:
        """kvmppc_xive_set_source_config: priority b0-2, server << 3, masked << 32, EISN << 33."""
        end_idx = (eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK
        server, priority = end_idx >> 3, end_idx & 7
        word = (priority & 0x7) | ((server << 3) & 0xFFFFFFF8)
        word |= (1 if eas & EAS_MASKED else 0) << 32
        word |= ((eas & EAS_END_DATA_MASK) << 33) & 0xFFFFFFFE00000000
        return self._kvm_attr(KVM_DEV_XIVE_GRP_SOURCE_CONFIG, lisn, word)

    def _kvm_set_queue_config(self, end_idx: int, end: list[int]) -> bool:
        """kvmppc_xive_set_queue_config: the 64-byte kvm_ppc_xive_eq for (server, priority)."""
        eq = KvmPpcXiveEq()
        eq.flags = 1 if end[0] & END_W0_UCOND_NOTIFY else 0
        if end[0] & END_W0_VALID:  # a disabled queue goes down with size and page 0
            eq.qshift = ((end[0] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 12
            eq.qaddr = end_qaddr(end)
            eq.qtoggle = 1 if end[1] & END_W1_GENERATION else 0
            eq.qindex = end[1] & END_W1_PAGE_OFF_MASK
        return self._kvm_attr(KVM_DEV_XIVE_GRP_EQ_CONFIG, end_idx, eq)

    def _kvm_get_queue_config(self, end_idx: int, end: list[int]) -> bool:
        """kvmppc_xive_get_queue_config: refresh the END's generation and index from KVM."""
        try:
            eq = self.kvm.get_attr(self.fd, KVM_DEV_XIVE_GRP_EQ_CONFIG, end_idx)
        except KvmError as exc:
            # kvm_device_access() text, as error_report_err prints it (KVM_GET_DEVICE_ATTR)
            self.reports.append(_attr_error(exc, KVM_DEV_XIVE_GRP_EQ_CONFIG, end_idx,
                                            write=False).message)
            return True
        end[1] = (END_W1_GENERATION if eq.qtoggle else 0) | (eq.qindex & END_W1_PAGE_OFF_MASK)
        return False

    def _kvm_esb(self, srcno: int, trigger_page: bool, offset: int, value, size: int):
        page = 2 * srcno + (0 if trigger_page else 1)
        try:
            answer = self.kvm.xive_esb(self.fd, page, offset, value)
        except Sigbus as exc:
            raise ConnectError(f"QEMU received SIGBUS on the KVM XIVE ESB mapping: {exc}") from None
        return None if answer is None else answer & ((1 << (8 * size)) - 1)

    def _kvm_esb_rw(self, lisn: int, offset: int, data: int, store: bool) -> int:
        """kvmppc_xive_esb_rw: a load at LOAD_EOI on an LSI is SET_PQ_00 plus a re-trigger while
        the level is held; anything else is the access itself on the mapped page."""
        if not store and lisn in self.state.source.lsi and offset == 0x000:
            self._kvm_esb(lisn, False, 0xC00, None, 8)
            if self.state.source.asserted(lisn):
                self._kvm_esb(lisn, True, 0, 0, 8)
            return 0
        # the access lands in the contiguous mapping, maybe past this source's management page
        addr = (lisn << papr.XIVE_ESB_SHIFT) + (1 << (papr.XIVE_ESB_SHIFT - 1)) + offset
        page = addr >> (papr.XIVE_ESB_SHIFT - 1)
        srcno, trigger_page, in_page = page >> 1, not page & 1, addr & 0xFFF
        if store:
            self._kvm_esb(srcno, trigger_page, in_page, data, 8)
            return MINUS_ONE
        return self._kvm_esb(srcno, trigger_page, in_page, None, 8)

    def _kvm_tima(self, vcpu: int, offset: int, value, size: int):
        try:
            return self.kvm.xive_tima(self.fd, vcpu, offset, value, size)
        except Sigbus as exc:
            raise ConnectError(f"QEMU received SIGBUS on the KVM XIVE TIMA mapping: {exc}") from None

    def _kvm_output(self, vcpu: int) -> bool:
        return self.kvm.xive_output(self.fd, vcpu)

    # -- VM run state and migration -------------------------------------------------------------------
    def vm_state_change(self, running: bool) -> None:
        """kvmppc_xive_change_state_handler: on stop, mask every source (PQ=10 unless off) keeping
        the old PQ in QEMU's copy, then EQ_SYNC; on resume, put each PQ back, re-triggering an
        event that was queued while stopped."""
        if not self.in_kernel:
            return
        source = self.state.source
        if running:
            for lisn in self.state.valid_lisns():
                pq = source.pq(lisn)
                old = self._kvm_esb(lisn, False, 0xC00 + (pq << 8), None, 8)
                if pq == 0b00 and old == 0b11:
                    self._kvm_esb(lisn, True, 0, 0, 8)
            return
        for lisn in self.state.valid_lisns():
            pq = self._kvm_esb(lisn, False, 0x800, None, 8)
            if pq != 0b01:
                pq = self._kvm_esb(lisn, False, 0xE00, None, 8)
            source.set_pq(lisn, pq)
        self._kvm_attr(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_EQ_SYNC, None)

    def synchronize_state(self, running: bool) -> None:
        """kvmppc_xive_synchronize_state: refresh QEMU's copy from KVM (before `info pic` or a
        save): the PQs only while running (stopped, QEMU's copy holds the real ones and the
        kernel the masked ones), the queues' generation and index, each vCPU's OS ring."""
        if not self.in_kernel:
            return
        if running:
            for lisn in self.state.valid_lisns():
                self.state.source.set_pq(lisn, self._kvm_esb(lisn, False, 0x800, None, 8))
        for end_idx, end in self.state.endt.items():
            if end[0] & END_W0_VALID:
                self._kvm_get_queue_config(end_idx, end)
        for vcpu, tctx in self.tctxs.items():
            tctx.regs[0x10:0x18] = self.kvm.get_vp_state(vcpu).to_bytes(8, "big")

    def pre_save(self) -> dict:
        """spapr-xive, xive-source and xive-tctx vmstate, with QEMU's copy synchronized from KVM
        (the VM is stopped, so PQs are those the run-state handler saved)."""
        self.synchronize_state(running=False)
        return {
            "eat": dict(self.state.eat),
            "endt": {idx: list(end) for idx, end in self.state.endt.items()},
            "source": bytes(self.state.source.status),
            "tctx": {vcpu: bytes(t.regs) for vcpu, t in self.tctxs.items()},
        }

    def post_load(self, state: dict) -> None:
        """Load the vmstate; in KVM restore queues first, then each valid source (reset and
        config), then the vCPU contexts (kvmppc_xive_post_load)."""
        if set(state["tctx"]) != set(self.tctxs) or len(state["source"]) != self.nr_irqs:
            raise ConnectError("XIVE state does not match this machine's sources and vCPUs")
        self.state.eat = dict(state["eat"])
        self.state.endt = {idx: list(end) for idx, end in state["endt"].items()}
        self.state.source.status[:] = state["source"]
        for vcpu, regs in state["tctx"].items():
            self.tctxs[vcpu].regs[:] = regs
            tctx = self.tctxs[vcpu]
            tctx.output = bool(regs[0x10] & 0x80)
        if not self.in_kernel:
            return
        for end_idx, end in sorted(self.state.endt.items()):
            if end[0] & END_W0_VALID:
                self._kvm_set_queue_config(end_idx, end)
        for lisn in self.state.valid_lisns():  # the EAT: every valid entry, masked or not
            self._reset_source(lisn)
            self._kvm_set_source_config(lisn, self.state.eas(lisn))
        for vcpu, tctx in self.tctxs.items():
            self.kvm.set_vp_state(vcpu, int.from_bytes(tctx.regs[0x10:0x18], "big"))

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
