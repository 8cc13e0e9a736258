"""The device side of a running guest: interrupts fired at it and what it handled, in order.

A :class:`Workload` plays the devices (the default PHB's MSIs, level-sensitive lines) and the other
CPUs' IPIs against a booted guest's driver; it is not part of the guest, and the guest does not
import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError, StateError
from .guest.driver import Handled
from .guest.linux_xics import DEFAULT_PRIORITY


@dataclass(frozen=True)
class Event:
    """One interrupt to fire: an IPI from `source` to `vcpu`, or a device MSI/LSI routed to
    `vcpu` at `priority`."""

    kind: str  # ipi | msi | lsi
    vcpu: int
    priority: int = DEFAULT_PRIORITY
    source: int = 0


class Workload:
    """Fires interrupts at a booted guest and collects what it handled, in order.

    Device sources are claimed on demand, one per (kind, vCPU, priority): MSIs from the PHB's MSI
    allocator, LSIs as free external numbers claimed level-sensitive. Works with either driver; on
    XIVE an IPI goes at the driver's one priority (6) and device priorities get their own queue."""

    def __init__(self, machine) -> None:
        if getattr(machine, "driver", None) is None:
            raise StateError("boot a guest before running a workload")
        self.m = machine
        self.driver = machine.driver
        self.sources: dict[tuple[str, int, int], int] = {}

    def source(self, kind: str, vcpu: int, priority: int) -> int:
        key = (kind, vcpu, priority)
        if key not in self.sources:
            if kind == "msi":
                irq = self.m.msi_alloc(1)
            else:
                irq = next(n for n in range(0x1FFF, 0x1000, -1) if not any(self.m.irq_claimed(n).values()))
                self.m.claim_irq(irq, lsi=True)
            self.driver.startup(irq, vcpu, priority, lsi=kind == "lsi")
            self.sources[key] = irq
        return self.sources[key]

    def lsis(self) -> list[int]:
        """The level-triggered lines its devices hold (a destination's same devices claim them)."""
        return [irq for (kind, _vcpu, _priority), irq in self.sources.items() if kind == "lsi"]

    def fire(self, event: Event) -> None:
        """Fire one event; an unknown kind or a vCPU the machine does not have is refused the
        same way whichever controller runs."""
        if event.kind not in ("ipi", "msi", "lsi"):
            raise ValueError(f"unknown event kind {event.kind!r} (ipi, msi or lsi)")
        for role, vcpu in (("target", event.vcpu), ("source", event.source)):
            if (event.kind == "ipi" or role == "target") and vcpu not in self.m.vcpus:
                raise InputError(f"no vCPU {vcpu} ({role} of {event.kind}): the machine has "
                                 f"{sorted(self.m.vcpus)}")
        if event.kind == "ipi":
            self.driver.send_ipi(event.source, event.vcpu)
            return
        self.m.set_irq(self.source(event.kind, event.vcpu, event.priority), 1)

    def fire_masked(self, vcpu: int, priority: int) -> int:
        """An MSI to `vcpu` fired while the guest has it masked: XICS (QEMU's ICS, and both KVM
        XICS devices) keeps it and presents it at the unmask; a XIVE ESB the guest turned off
        (PQ=01) drops the trigger. Returns its number."""
        irq = self.source("msi", vcpu, priority)
        self.driver.mask(irq)
        self.m.set_irq(irq, 1)
        return irq

    def run(self, events, drain_each: bool = False) -> list[Handled]:
        """Fire `events` (draining after each if asked), drain, and return what was handled."""
        out: list[Handled] = []
        for event in events:
            self.fire(event)
            if drain_each:
                out.extend(self.driver.drain())
        out.extend(self.driver.drain())
        return out
