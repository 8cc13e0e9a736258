"""What both Linux interrupt drivers share: the record of a handled interrupt and the drain loop
that lets every vCPU take its interrupts in turn.

A driver talks to the machine only through what a guest has: hypercalls, RTAS calls, MMIO, its
external-interrupt line, guest memory and the device tree. It imports nothing of the machine.
"""

from __future__ import annotations

from typing import NamedTuple


class Handled(NamedTuple):
    """One interrupt the guest handled: on which vCPU, what (ipi, msi, lsi, spurious), which."""

    vcpu: int
    kind: str
    irq: int


class Driver:
    """What both interrupt drivers share: each vCPU's `handle` run, taken in turns by `drain`
    over the CPUs the kernel has online."""

    m = None  # the machine
    online: set[int] = frozenset()  # the CPUs the kernel runs on (a hot-plugged one once up)

    def moved_to(self, machine) -> None:
        """The kernel arrived on another machine with its RAM (an incoming migration): from now
        on its hypercalls, RTAS calls and MMIO go there."""
        self.m = machine

    def handle(self, vcpu: int, limit: int = 10_000) -> list[Handled]:
        raise NotImplementedError

    def drain(self, limit: int = 100_000) -> list[Handled]:
        """Every vCPU in turn handles until none has anything left."""
        out: list[Handled] = []
        progress = True
        while progress and len(out) < limit:
            progress = False
            for vcpu in [v for v in self.m.vcpus if v in self.online]:
                got = self.handle(vcpu)
                if got:
                    out.extend(got)
                    progress = True
        return out
