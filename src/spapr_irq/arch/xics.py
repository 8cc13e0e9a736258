"""XICS as QEMU emulates it: the ICS (interrupt sources) and one ICP (presenter) per vCPU.

Plain state machines with no knowledge of KVM or of the machine (spec/qemu.md 5.1-5.3). Priorities
are 0 (most favoured) to 0xff (least favoured, "masked"). An ICP presents at most one interrupt, in
its XISR; a less favoured one is *rejected* back to its source, which remembers it (MSI: REJECTED,
LSI: not SENT) and offers it again on the next *resend* (EOI, or CPPR made less favoured).
"""

from __future__ import annotations

from dataclasses import dataclass

XICS_IPI = 0x2
XICS_STATUS_ASSERTED = 0x1
XICS_STATUS_SENT = 0x2
XICS_STATUS_REJECTED = 0x4
XICS_STATUS_MASKED_PENDING = 0x8
XICS_STATUS_PRESENTED = 0x10  # KVM state, carried through QEMU by migration only
XICS_STATUS_QUEUED = 0x20
XICS_FLAGS_IRQ_LSI = 0x1
XICS_FLAGS_IRQ_MSI = 0x2
XICS_FLAGS_IRQ_MASK = 0x3
CPPR_MASK = 0xFF000000
XISR_MASK = 0x00FFFFFF


@dataclass
class IcsIrq:
    """One source: the ics/irq vmstate fields."""

    server: int = 0
    priority: int = 0xFF
    saved_priority: int = 0xFF
    status: int = 0
    flags: int = 0  # 0 = not allocated

    @property
    def lsi(self) -> bool:
        return bool(self.flags & XICS_FLAGS_IRQ_LSI)


@dataclass
class ICP:
    """A vCPU's presenter: XIRR = CPPR << 24 | XISR, pending priority, MFRR, output line."""

    server: int
    xirr: int = 0
    pending_priority: int = 0xFF
    mfrr: int = 0xFF
    xirr_owned: bool = False  # the XISR came from the ICS (not an IPI); not migrated
    output: bool = False  # the vCPU's external-interrupt input

    @property
    def cppr(self) -> int:
        return self.xirr >> 24

    @property
    def xisr(self) -> int:
        return self.xirr & XISR_MASK

    def reset(self) -> None:
        self.xirr, self.pending_priority, self.mfrr = 0, 0xFF, 0xFF
        self.xirr_owned = self.output = False


class ICS:
    """The sPAPR ICS: `nr_irqs` sources numbered from `offset` (0x1000).

    Sources are kept sparsely: one never touched reads as a fresh, unallocated IcsIrq.
    """

    def __init__(self, offset: int, nr_irqs: int) -> None:
        self.offset = offset
        self.nr_irqs = nr_irqs
        self._irqs: dict[int, IcsIrq] = {}
        self._order: list[int] | None = []  # allocated numbers in order, rebuilt lazily
        self._items: list[tuple[int, IcsIrq]] | None = []  # (number, source), same order

    def valid_irq(self, irq: int) -> bool:
        return self.offset <= irq < self.offset + self.nr_irqs

    def source(self, irq: int) -> IcsIrq:
        assert self.valid_irq(irq), f"IRQ {irq:#x} outside the ICS"
        source = self._irqs.get(irq)
        if source is None:
            source = self._irqs[irq] = IcsIrq()
        return source

    def is_free(self, irq: int) -> bool:
        source = self._irqs.get(irq)
        return source is None or source.flags & XICS_FLAGS_IRQ_MASK == 0

    def set_irq_type(self, irq: int, lsi: bool) -> None:
        """Allocate a free source as LSI or MSI."""
        assert self.is_free(irq), f"IRQ {irq:#x} already allocated"
        self.source(irq).flags |= XICS_FLAGS_IRQ_LSI if lsi else XICS_FLAGS_IRQ_MSI
        self._order = self._items = None

    def free(self, irq: int) -> None:
        """spapr_irq_free zeroes the entry: server, priorities, status and flags all 0 (a freed
        source reads priority 0 until the next device reset sets it to 0xff)."""
        self._irqs[irq] = IcsIrq(server=0, priority=0, saved_priority=0, status=0, flags=0)
        self._order = self._items = None

    def allocated(self) -> list[int]:
        if self._order is None:
            self._order = sorted(irq for irq, s in self._irqs.items()
                                 if s.flags & XICS_FLAGS_IRQ_MASK)
        return self._order

    def allocated_items(self) -> list[tuple[int, IcsIrq]]:
        """(number, source) of every allocated source, in number order."""
        if self._items is None:
            self._items = [(irq, self._irqs[irq]) for irq in self.allocated()]
        return self._items

    def records(self) -> list[tuple[int, int, int, int, int]]:
        """The ics vmstate array: (server, priority, saved_priority, status, flags) of every
        source, untouched ones at their initial values."""
        out = [(0, 0xFF, 0xFF, 0, 0)] * self.nr_irqs
        for irq, s in self._irqs.items():
            out[irq - self.offset] = (s.server, s.priority, s.saved_priority, s.status, s.flags)
        return out

    def restore(self, records: list[tuple[int, int, int, int, int]]) -> None:
        """Load the ics vmstate array (its length is this ICS's nr_irqs, checked by the loader)."""
        assert len(records) == self.nr_irqs
        blank = (0, 0xFF, 0xFF, 0, 0)
        self._irqs = {self.offset + n: IcsIrq(*record) for n, record in enumerate(records)
                      if record != blank and tuple(record) != blank}
        self._order = self._items = None

    def reset(self) -> None:
        """Device reset: every source masked and idle, allocation flags kept."""
        for s in self._irqs.values():
            s.server, s.priority, s.saved_priority, s.status = 0, 0xFF, 0xFF, 0


class Xics:
    """The emulated XICS fabric: one ICS and the ICPs by server number (hw/intc/xics.c)."""

    def __init__(self, offset: int, nr_irqs: int) -> None:
        self.ics = ICS(offset, nr_irqs)
        self.icps: dict[int, ICP] = {}

    # -- ICP ---------------------------------------------------------------------------------------------
    def _raise(self, icp: ICP) -> None:
        icp.output = True

    def _lower(self, icp: ICP) -> None:
        icp.output = False

    def check_ipi(self, icp: ICP) -> None:
        """Present the IPI (XISR 2 at MFRR) unless something at least as favoured is pending."""
        if icp.xisr and icp.pending_priority <= icp.mfrr:
            return
        if icp.xisr and icp.xirr_owned:
            self.ics_reject(icp.xisr)
        icp.xirr = (icp.xirr & CPPR_MASK) | XICS_IPI
        icp.pending_priority = icp.mfrr
        icp.xirr_owned = False
        self._raise(icp)

    def resend(self, icp: ICP) -> None:
        """Offer the IPI if MFRR beats CPPR, then ask the ICS to resend what it holds."""
        if icp.mfrr < icp.cppr:
            self.check_ipi(icp)
        self.ics_resend()

    def set_cppr(self, icp: ICP, cppr: int) -> None:
        """More favoured: reject a pending interrupt no longer above it. Less: resend if empty."""
        old = icp.cppr
        icp.xirr = (icp.xirr & XISR_MASK) | (cppr << 24)
        if cppr < old:
            if icp.xisr and cppr <= icp.pending_priority:
                old_xisr, owned = icp.xisr, icp.xirr_owned
                icp.xirr &= CPPR_MASK
                icp.pending_priority = 0xFF
                self._lower(icp)
                if owned:
                    self.ics_reject(old_xisr)
                    icp.xirr_owned = False
        elif not icp.xisr:
            self.resend(icp)

    def set_mfrr(self, icp: ICP, mfrr: int) -> None:
        icp.mfrr = mfrr
        if mfrr < icp.cppr:
            self.check_ipi(icp)

    def accept(self, icp: ICP) -> int:
        """H_XIRR: return XIRR; CPPR becomes the pending priority (0xff if none), XISR clears."""
        xirr = icp.xirr
        self._lower(icp)
        icp.xirr = icp.pending_priority << 24
        icp.pending_priority = 0xFF
        icp.xirr_owned = False
        return xirr

    def ipoll(self, icp: ICP) -> tuple[int, int]:
        return icp.xirr, icp.mfrr

    def eoi(self, icp: ICP, xirr: int) -> None:
        """H_EOI: CPPR from the top byte, EOI the source at the ICS, resend if nothing pending."""
        icp.xirr = (icp.xirr & XISR_MASK) | (xirr & CPPR_MASK)
        irq = xirr & XISR_MASK
        if self.ics.valid_irq(irq):
            self.ics_eoi(irq)
        if not icp.xisr:
            self.resend(icp)

    def icp_irq(self, server: int, irq: int, priority: int) -> None:
        """The ICS presents `irq` to a server: taken if more favoured than CPPR and anything
        pending (which is then rejected), else rejected back to the ICS."""
        icp = self.icps.get(server)
        if icp is None or priority >= icp.cppr or (icp.xisr and icp.pending_priority <= priority):
            self.ics_reject(irq)
            return
        if icp.xisr and icp.xirr_owned:
            self.ics_reject(icp.xisr)
        icp.xirr = (icp.xirr & CPPR_MASK) | (irq & XISR_MASK)
        icp.xirr_owned = True
        icp.pending_priority = priority
        self._raise(icp)

    # -- ICS ---------------------------------------------------------------------------------------------
    def ics_reject(self, irq: int) -> None:
        if not self.ics.valid_irq(irq):
            return
        source = self.ics.source(irq)
        if source.flags & XICS_FLAGS_IRQ_LSI:
            source.status &= ~XICS_STATUS_SENT
        elif source.flags & XICS_FLAGS_IRQ_MSI:
            source.status |= XICS_STATUS_REJECTED

    def _resend_msi(self, irq: int, source: IcsIrq) -> None:
        if source.status & XICS_STATUS_REJECTED:
            source.status &= ~XICS_STATUS_REJECTED
            if source.priority != 0xFF:
                self.icp_irq(source.server, irq, source.priority)

    def _resend_lsi(self, irq: int, source: IcsIrq) -> None:
        if (source.priority != 0xFF and source.status & XICS_STATUS_ASSERTED
                and not source.status & XICS_STATUS_SENT):
            source.status |= XICS_STATUS_SENT
            self.icp_irq(source.server, irq, source.priority)

    def ics_resend(self) -> None:
        """Offer again every rejected MSI and every asserted, unsent LSI (all servers)."""
        for irq, source in self.ics.allocated_items():
            if source.flags & XICS_FLAGS_IRQ_LSI:
                if source.status & (XICS_STATUS_ASSERTED | XICS_STATUS_SENT) == XICS_STATUS_ASSERTED:
                    self._resend_lsi(irq, source)
            elif source.status & XICS_STATUS_REJECTED:
                self._resend_msi(irq, source)

    def ics_eoi(self, irq: int) -> None:
        source = self.ics.source(irq)
        if source.flags & XICS_FLAGS_IRQ_LSI:
            source.status &= ~XICS_STATUS_SENT

    def set_irq(self, irq: int, level: int) -> None:
        """A device line: an MSI fires on a non-zero value; an LSI follows the level."""
        source = self.ics.source(irq)
        if source.flags & XICS_FLAGS_IRQ_LSI:
            if level:
                source.status |= XICS_STATUS_ASSERTED
            else:
                source.status &= ~XICS_STATUS_ASSERTED
            self._resend_lsi(irq, source)
        elif level:
            if source.priority == 0xFF:
                source.status |= XICS_STATUS_MASKED_PENDING
            else:
                self.icp_irq(source.server, irq, source.priority)

    def write_xive(self, irq: int, server: int, priority: int, saved_priority: int) -> None:
        """ibm,set-xive / int-off / int-on: store routing; deliver what masking held back."""
        source = self.ics.source(irq)
        source.server, source.priority, source.saved_priority = server, priority, saved_priority
        if source.flags & XICS_FLAGS_IRQ_LSI:
            self._resend_lsi(irq, source)
        elif source.status & XICS_STATUS_MASKED_PENDING and priority != 0xFF:
            source.status &= ~XICS_STATUS_MASKED_PENDING
            self.icp_irq(server, irq, priority)

    def output(self, server: int) -> bool:
        icp = self.icps.get(server)
        return bool(icp and icp.output)
