"""The checker's speed: states and transitions per second on single units, and the whole default
check (depth 4, every host preset) with 1 job and with 2. Prints figures; asserts nothing.

    python benchmarks/bench_check.py            # everything (about a minute here)
    python benchmarks/bench_check.py --quick    # the single units only
"""

from __future__ import annotations

import sys
import time

from spapr_irq.check.engine import Unit, check, explore_unit
from spapr_irq.host.host import PRESETS

UNITS = [
    ("-M pseries,ic-mode=dual -smp 2,maxcpus=3", "linux-xive"),
    ("-M pseries,ic-mode=xics -smp 2,maxcpus=3", "linux-legacy"),
    ("-M pseries,ic-mode=xive,kernel-irqchip=on -smp 2,maxcpus=3", "linux-xive"),
]


def units() -> None:
    print("one configuration x guest on all", len(PRESETS), "hosts, depth 4, faults at the last "
          "step:")
    for options, guest in UNITS:
        start = time.perf_counter()
        result = explore_unit(Unit(options, guest, "10.1", tuple(PRESETS)), 4, "last")
        seconds = time.perf_counter() - start
        print(f"  {options:58} {guest:13} {result.states:6} states {result.transitions:7} "
              f"transitions {seconds:6.2f} s  {result.states / seconds:6.0f} states/s "
              f"{result.transitions / seconds:6.0f} transitions/s")


def default_check() -> None:
    print("the default check (spapr-irq check), QEMU 10.1, depth 4:")
    for jobs in (1, 2):
        result = check(jobs=jobs)
        print(f"  --jobs {jobs}: {result.units} units, {result.states} states, "
              f"{result.transitions} transitions, {len(result.findings)} findings in "
              f"{result.seconds:.1f} s ({result.states / result.seconds:.0f} states/s)")


if __name__ == "__main__":
    units()
    if "--quick" not in sys.argv:
        default_check()
