"""QEMU's sPAPR XICS (hw/intc/xics_spapr.c on hw/intc/xics.c): the ICS with one ICP per vCPU,
its hcalls and RTAS calls, device-tree node, vmstate and `info pic`; in-kernel through
:class:`~spapr_irq.intc.xics_kvm.XicsKvm`.
"""

from __future__ import annotations

from .. import papr
from ..arch.xics import ICP, ICS, Xics
from .base import (ClaimError, ConnectError, GuestContext, InterruptController, format_pointer,
                   object_pointer)
from .xics_kvm import XicsKvm


class XicsController(XicsKvm, InterruptController):
    """The sPAPR ICS with one ICP per vCPU; in-kernel through KVM_DEV_TYPE_XICS."""

    name, label = "xics", "XICS"
    hcalls = papr.XICS_HCALLS
    rtas_calls = papr.XICS_RTAS_CALLS

    def __init__(self, nr_irqs: int, max_cpus: int) -> None:
        super().__init__()
        self.max_cpus = max_cpus
        self.xics = Xics(papr.XICS_IRQ_BASE, nr_irqs)

    @property
    def ics(self) -> ICS:
        return self.xics.ics

    @property
    def icps(self) -> dict[int, ICP]:
        return self.xics.icps

    # -- IRQ numbers --------------------------------------------------------------------------------------
    def valid_irq(self, irq: int) -> bool:
        return self.ics.valid_irq(irq)

    def claim(self, irq: int, lsi: bool, kernel_irqchip: bool = False) -> str | None:
        """xics_spapr_claim_irq and ics_set_irq_type: allocate the source as LSI or MSI. While any
        controller is in the kernel (QEMU's global kvm_irqchip_in_kernel()) the source is first
        reset to priority 0xff, then pushed if XICS is the one in KVM; QEMU only reports a failed
        push (error_report_err) and the claim stands, so its text is returned."""
        if not self.ics.is_free(irq):
            raise ClaimError(f"IRQ {irq} is not free")
        self.ics.set_irq_type(irq, lsi)
        if kernel_irqchip:
            source = self.ics.source(irq)
            source.priority = source.saved_priority = 0xFF
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

    def claimed_irqs(self) -> list[int]:
        return self.ics.allocated()

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
        """icp_destroy. A vCPU connected to the KVM device stays connected: QEMU parks its fd
        and keeps it in kvm_enabled_icps, so a re-plug skips the connect."""
        self.xics.icps.pop(vcpu_id, None)

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
        """ics_set_irq: KVM_IRQ_LINE when in-kernel, else the emulated source."""
        if self.in_kernel:
            self._kvm_set_irq(irq, level)
            return
        self.xics.set_irq(irq, level)

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
        self._load_icps(state["icp"])
        self.push_loaded_state()

    # -- migration (vmstate ics, icp/server) ---------------------------------------------------------------
    def save_state(self) -> dict:
        """The whole ics array and every icp/server, with QEMU's copy pulled from KVM first."""
        self.synchronize_state()
        return {"ics": self.ics.records(),
                "icp": {vcpu: (icp.xirr, icp.pending_priority, icp.mfrr)
                        for vcpu, icp in self.icps.items()}}

    def load_state(self, state: dict) -> None:
        """Set QEMU's copy from a migration stream; the vCPUs the stream does not name keep
        their reset state. Nothing reaches KVM until push_loaded_state()."""
        self.ics.restore(state["ics"])
        self._load_icps({vcpu: icp for vcpu, icp in state["icp"].items() if vcpu in self.icps})

    def _load_icps(self, icps: dict) -> None:
        for vcpu, (xirr, pending, mfrr) in icps.items():
            icp = self.icps[vcpu]
            icp.xirr, icp.pending_priority, icp.mfrr = xirr, pending, mfrr
            icp.xirr_owned = False  # not migrated
            icp.output = bool(icp.xisr) and pending < icp.cppr

    def push_loaded_state(self) -> None:
        """After a load: in KVM every source and ICP is set (ics/icp post_load); emulated, every
        ICP resends (xics_spapr_post_load)."""
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
    def print_info(self, cpus: list[tuple[int, int]]) -> list[str]:
        """hw/intc/xics.c icp_pic_print_info then ics_pic_print_info. `cpus` is (cpu index,
        vCPU id) in CPU order: QEMU numbers the line with the index, not the server number.
        The ``(%p)`` is the ICS that presented the pending XISR, ``(nil)`` for an IPI or none."""
        ics_ptr = object_pointer("ics")
        lines = []
        for cpu_index, vcpu_id in cpus:
            icp = self.icps.get(vcpu_id)
            if icp is None:  # a vCPU not realized yet: QEMU skips it
                continue
            owner = format_pointer(ics_ptr if icp.xirr_owned else 0)
            lines.append(f"CPU {cpu_index} XIRR={icp.xirr:08x} ({owner}) PP={icp.pending_priority:02x}"
                         f" MFRR={icp.mfrr:02x}")
        last = self.ics.offset + self.ics.nr_irqs - 1
        lines.append(f"ICS {self.ics.offset:4x}..{last:4x} {format_pointer(ics_ptr)}")
        for irq in self.ics.allocated():
            s = self.ics.source(irq)
            kind = "LSI" if s.lsi else "MSI"
            lines.append(f"  {irq:4x} {kind} {s.priority:02x} {s.status:02x}")
        return lines
