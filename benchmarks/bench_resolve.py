"""Figures for the selection model: resolve in-process, resolve as a process, the full matrix.

Run with `make bench` (or `.venv/bin/python benchmarks/bench_resolve.py`). Prints plain figures;
nothing here asserts a time.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from spapr_irq.explore import matrix, resolve
from spapr_irq.guest.profiles import GUESTS
from spapr_irq.host.host import PRESETS


def best_of(n: int, fn) -> tuple[float, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    cases = [("-M pseries -cpu power9 -smp 2", "power9-linux-5.10", "linux-xive"),
             ("-M pseries,kernel-irqchip=on -cpu power9 -smp 2", "power9-linux-4.19", "linux-xive"),
             ("-M pseries -cpu power9 -smp 8,maxcpus=64", "power9-linux-5.10", "linux-xive")]
    for options, host, guest in cases:
        runs = 200
        start = time.perf_counter()
        for _ in range(runs):
            resolve(options, host, guest)
        per = (time.perf_counter() - start) / runs
        print(f"resolve in-process  {per * 1e3:7.3f} ms  ({1 / per:8.0f}/s)  {options} on {host}")

    command = [sys.executable, "-m", "spapr_irq.cli", "resolve", "-M", "pseries", "-cpu", "power9",
               "--host", "power9-linux-5.10", "--guest", "linux-xive", "--json"]
    low, median = best_of(10, lambda: subprocess.run(command, capture_output=True, check=True))
    print(f"resolve --json as a process: best {low * 1e3:.0f} ms, median {median * 1e3:.0f} ms")

    low, median = best_of(5, lambda: matrix())
    cells = len(PRESETS) * len(GUESTS) * 9
    print(f"full matrix ({len(PRESETS)} hosts x {len(GUESTS)} guests x 9 cells = {cells} boots): "
          f"best {low * 1e3:.0f} ms, median {median * 1e3:.0f} ms")
    command = [sys.executable, "-m", "spapr_irq.cli", "matrix"]
    low, median = best_of(5, lambda: subprocess.run(command, capture_output=True, check=True))
    print(f"spapr-irq matrix as a process: best {low * 1e3:.0f} ms, median {median * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
