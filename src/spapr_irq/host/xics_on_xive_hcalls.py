"""A vCPU of XICS-on-XIVE and the XICS hypercalls it answers (struct kvmppc_xive_vcpu, and
arch/powerpc/kvm/book3s_xive_template.c, folded into book3s_xive.c in 5.x): H_XIRR and H_IPOLL
scan the vCPU's XIVE event queues most favoured first,
H_CPPR pushes pending work to the thread context or resends rerouted sources, H_EOI EOIs the
source's hardware IPI, H_IPI sets the software MFRR and triggers the vCPU's own IPI.

:class:`XicsHcalls` is the part of :class:`~spapr_irq.host.xics_on_xive.XicsOnXiveDevice` the
guest's XICS hcalls reach; the sources and the device's attributes stay there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arch.xive import TM_PIPR, TM_QW1_OS, XIVE_ESB_SET_PQ_11, XiveTCTX
from ..papr import H_PARAMETER, H_SUCCESS
from .device import prio_from_guest

MASKED = 0xFF  # a guest priority of 0xff: the source is masked
XICS_DUMMY = 1  # a queue entry left by a source moved away: skipped by the scan
XICS_IPI = 2  # the XISR of an IPI (the MFRR)
KVMPPC_XIVE_Q_COUNT = 8  # event queues per vCPU, one per priority
Q_SHIFT = 16  # xive_native_default_eq_shift() on POWER9: 64K queues


@dataclass
class Queue:
    """struct xive_q: a vCPU's event queue for one priority, in host memory (None: notify only)."""

    qpage: int | None = None
    idx: int = 0
    toggle: int = 0
    msk: int = (1 << (Q_SHIFT - 2)) - 1
    count: int = 0  # sources targeted here (capacity reservation)
    pending_count: int = 0  # sources moved away while they may still sit here


@dataclass
class XiveVcpu:
    """struct kvmppc_xive_vcpu: the XICS view of one vCPU and its hardware context."""

    server: int
    vp_id: int
    vp_ipi: int
    tctx: XiveTCTX
    cppr: int = 0
    hw_cppr: int = 0
    mfrr: int = 0xFF
    pending: int = 0
    delayed_irq: int = 0
    queues: list[Queue] = field(default_factory=lambda: [Queue() for _ in range(KVMPPC_XIVE_Q_COUNT)])


class XicsHcalls:
    """kvmppc_xive_xics_hcall and the scan behind it (part of the device)."""

    def hcall(self, server: int, name: str, args) -> tuple[int, ...]:
        """One of the six XICS hcalls from a vCPU connected as `server`."""
        xc = self.xcs[server]
        if name == "H_XIRR":
            return (H_SUCCESS, self._h_xirr(xc))
        if name == "H_XIRR_X":
            return (H_SUCCESS, self._h_xirr(xc), self.kvm.timebase())
        if name == "H_CPPR":
            self._h_cppr(xc, args[0])
            return (H_SUCCESS,)
        if name == "H_EOI":
            return (self._h_eoi(xc, args[0] & 0xFFFFFFFF),)
        if name == "H_IPI":
            return (self._h_ipi(args[0], args[1]),)
        return self._h_ipoll(xc, args)  # H_IPOLL

    def _ack_pending(self, xc: XiveVcpu) -> None:
        """The ACK_OS cycle on the TIMA: the most favoured pending priority becomes pending in
        software and the hardware CPPR."""
        ack = xc.tctx.accept(TM_QW1_OS)
        if not (ack >> 8) & 0x80:
            return
        cppr = ack & 0xFF
        if cppr < 8:
            xc.pending |= 1 << cppr
        xc.hw_cppr = cppr

    def _scan(self, xc: XiveVcpu, pending: int, scan: str) -> int:
        """scan_interrupts (Linux 5.2+ order): queues most favoured first, below the CPPR; an
        MFRR at least as favoured as the found priority wins and leaves the entry queued; the
        notifications of the MFRR IPI are consumed and EOId on a fetch."""
        hirq, prio = 0, 0xFF
        memory = self.router.memory
        while (xc.mfrr != 0xFF or pending) and hirq == 0:
            prio = (pending & -pending).bit_length() - 1 if pending else 0xFF
            if prio >= xc.cppr or prio > 7:
                if xc.mfrr < xc.cppr:
                    prio, hirq = xc.mfrr, XICS_IPI
                break
            queue = xc.queues[prio]
            idx, toggle = queue.idx, queue.toggle
            while True:  # skip_ipi
                hirq = 0
                if queue.qpage is not None:
                    hirq, idx, toggle = self._read_eq(memory, queue, idx, toggle)
                if hirq == XICS_IPI or (prio == 0 and queue.qpage is None):
                    if scan == "fetch":
                        self._source_eoi(xc.vp_ipi)
                        queue.idx, queue.toggle = idx, toggle
                    if hirq:
                        continue
                if hirq == XICS_DUMMY:
                    continue
                break
            if not hirq:
                pending &= ~(1 << prio)
                if queue.pending_count:
                    queue.count -= queue.pending_count
                    queue.pending_count = 0
            if prio >= xc.mfrr and xc.mfrr < xc.cppr:
                prio, hirq = xc.mfrr, XICS_IPI
                break
            if scan == "fetch":
                queue.idx, queue.toggle = idx, toggle
        if scan == "poll":
            return hirq
        xc.pending = pending
        if scan == "eoi":
            return hirq
        if hirq:
            xc.cppr = prio
        if xc.cppr != xc.hw_cppr:
            xc.hw_cppr = xc.cppr
            xc.tctx.set_cppr(xc.cppr)
        return hirq

    def _push_pending_to_hw(self, xc: XiveVcpu) -> None:
        pending = xc.pending
        if xc.mfrr != 0xFF:
            pending |= 1 << xc.mfrr if xc.mfrr < 8 else 0x80
        if pending:
            xc.tctx.ipb_update((pending & -pending).bit_length() - 1, TM_QW1_OS)

    def _h_xirr(self, xc: XiveVcpu) -> int:
        self._ack_pending(xc)
        old_cppr = xc.cppr
        hirq = self._scan(xc, xc.pending, "fetch")
        return hirq | (old_cppr << 24)

    def _h_ipoll(self, xc: XiveVcpu, args) -> tuple[int, ...]:
        """Only r4 is written, and for another server it is that vCPU's r4 the kernel writes
        (every release read has the bug): the caller sees its own r4 and r5 unchanged."""
        server = args[0] & 0xFFFFFFFF
        if server != xc.server:
            target = self.xcs.get(server)
            if target is None:
                return (H_PARAMETER,)
            self._scan(target, 0xFF, "poll")
            return (H_SUCCESS, args[0], args[1])
        pending = xc.pending
        pipr = xc.tctx.regs[TM_QW1_OS + TM_PIPR]
        if pipr < 8:
            pending |= 1 << pipr
        hirq = self._scan(xc, pending, "poll")
        return (H_SUCCESS, hirq | (xc.cppr << 24), args[1])

    def _h_cppr(self, xc: XiveVcpu, cppr: int) -> None:
        cppr = prio_from_guest(cppr)
        old = xc.cppr
        xc.cppr = cppr
        if cppr > old:
            self._push_pending_to_hw(xc)
        else:
            self._scan_for_rerouted_irqs(xc)
        xc.hw_cppr = cppr
        xc.tctx.set_cppr(cppr)

    def _scan_for_rerouted_irqs(self, xc: XiveVcpu) -> None:
        """Entries of sources moved to another server, in queues now masked by the CPPR, become
        dummies and their sources are resent (MSIs as PQ=11 then EOI)."""
        memory = self.router.memory
        for prio in range(xc.cppr, KVMPPC_XIVE_Q_COUNT):
            queue = xc.queues[prio]
            if queue.qpage is None:
                continue
            idx, toggle = queue.idx, queue.toggle
            while True:
                addr = queue.qpage + 4 * idx
                entry = memory.read_u32(addr)
                if entry >> 31 == toggle:
                    break
                irq = entry & 0x7FFFFFFF
                state = self.find_source(irq) if irq not in (XICS_DUMMY, XICS_IPI) else None
                if state is not None and state.ipi is not None and state.act_server != xc.server:
                    memory.write_u32(addr, (entry & 0x80000000) | XICS_DUMMY)
                    self._esb_load(state.ipi, XIVE_ESB_SET_PQ_11)  # its IPI is never an LSI
                    self._source_eoi(state.ipi)
                idx = (idx + 1) & queue.msk
                if idx == 0:
                    toggle ^= 1

    def _h_eoi(self, xc: XiveVcpu, xirr: int) -> int:
        xc.cppr = prio_from_guest(xirr >> 24)
        irq = xirr & 0xFFFFFF
        rc = H_SUCCESS
        if irq not in (0, XICS_IPI):
            state = self.find_source(irq)
            if state is None:
                rc = H_PARAMETER
            elif state.guest_priority == MASKED:
                state.old_p = False  # the unmask will do the EOI
            else:
                self._source_eoi(state.ipi)
                if state.lsi and state.asserted:
                    self._trigger(state.ipi)
        self._scan(xc, xc.pending, "eoi")
        self._push_pending_to_hw(xc)
        xc.hw_cppr = xc.cppr
        xc.tctx.set_cppr(xc.cppr)
        return rc

    def _h_ipi(self, server: int, mfrr: int) -> int:
        """xive_vm_h_ipi: the MFRR keeps the low byte, but the whole register is compared with
        the CPPR, so an MFRR of 0x100 or more stores its low byte and sends no IPI."""
        target = self.xcs.get(server & 0xFFFFFFFF)
        if target is None:
            return H_PARAMETER
        mfrr &= (1 << 64) - 1
        target.mfrr = mfrr & 0xFF
        if mfrr < target.cppr:
            self._trigger(target.vp_ipi)
        return H_SUCCESS
