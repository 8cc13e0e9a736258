"""XICS architecture state: the ICS (interrupt sources) and one ICP (presenter) per vCPU.

Plain state with no knowledge of KVM or of the machine (spec/qemu.md 5.1). Delivery (accept, EOI,
rejection and resend) is issue 3; this module holds what the lifecycle needs: allocation and reset.
"""

from __future__ import annotations

from dataclasses import dataclass

XICS_IPI = 0x2
XICS_STATUS_ASSERTED = 0x1
XICS_STATUS_SENT = 0x2
XICS_STATUS_REJECTED = 0x4
XICS_STATUS_MASKED_PENDING = 0x8
XICS_FLAGS_IRQ_LSI = 0x1
XICS_FLAGS_IRQ_MSI = 0x2
XICS_FLAGS_IRQ_MASK = 0x3


@dataclass
class IcsIrq:
    """One source: ics/irq vmstate fields."""

    server: int = 0
    priority: int = 0xFF
    saved_priority: int = 0xFF
    status: int = 0
    flags: int = 0  # 0 = not allocated

    @property
    def lsi(self) -> bool:
        return bool(self.flags & XICS_FLAGS_IRQ_LSI)


class ICS:
    """The sPAPR ICS: `nr_irqs` sources numbered from `offset` (0x1000).

    Sources are kept sparsely: one never touched reads as a fresh, unallocated IcsIrq.
    """

    def __init__(self, offset: int, nr_irqs: int) -> None:
        self.offset = offset
        self.nr_irqs = nr_irqs
        self._irqs: dict[int, IcsIrq] = {}

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

    def free(self, irq: int) -> None:
        """spapr_irq_free zeroes the entry: server, priorities, status and flags all 0 (a freed
        source reads priority 0 until the next device reset sets it to 0xff)."""
        self._irqs[irq] = IcsIrq(server=0, priority=0, saved_priority=0, status=0, flags=0)

    def allocated(self) -> list[int]:
        return sorted(irq for irq, s in self._irqs.items() if s.flags & XICS_FLAGS_IRQ_MASK)

    def reset(self) -> None:
        """Device reset: every source masked and idle, allocation flags kept."""
        for s in self._irqs.values():
            s.server, s.priority, s.saved_priority, s.status = 0, 0xFF, 0xFF, 0


@dataclass
class ICP:
    """A vCPU's presenter: XIRR = CPPR << 24 | XISR, pending priority, MFRR."""

    server: int
    xirr: int = 0
    pending_priority: int = 0xFF
    mfrr: int = 0xFF

    @property
    def cppr(self) -> int:
        return self.xirr >> 24

    @property
    def xisr(self) -> int:
        return self.xirr & 0xFFFFFF

    def reset(self) -> None:
        self.xirr, self.pending_priority, self.mfrr = 0, 0xFF, 0xFF
