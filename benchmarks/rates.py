"""What the interrupt-rate benchmarks share: a booted machine and a timed loop."""

from __future__ import annotations

import time

from spapr_irq import Machine


def booted(ic_mode: str, irqchip: str) -> Machine:
    """A 2-vCPU POWER9 guest on a 5.10 host, booted with the Linux XIVE-capable guest."""
    machine = Machine.create(f"-M pseries,ic-mode={ic_mode},kernel-irqchip={irqchip} -cpu power9 "
                             "-smp 2", host="power9-linux-5.10")
    assert machine.boot("linux-xive") == ic_mode
    return machine


def rate(label: str, count: int, step) -> float:
    """Run `step` `count` times after one warm-up; print and return the rate per second."""
    step()
    start = time.perf_counter()
    for _ in range(count):
        step()
    elapsed = time.perf_counter() - start
    per_second = count / elapsed
    print(f"  {label:44} {per_second:10,.0f}/s  ({elapsed / count * 1e6:6.2f} us each)")
    return per_second
