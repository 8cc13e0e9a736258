"""Save + load time of a booted guest with busy queues: -smp 8 and -smp 256, XICS and XIVE,
emulated (tcg) and in-kernel (power9-linux-5.10). Prints figures; asserts nothing."""

from __future__ import annotations

import statistics
import time

from spapr_irq import Event, Workload
from spapr_irq.machine.machine import Machine


def busy(options: str, host: str) -> Machine:
    machine = Machine.create(options, host=host)
    machine.boot("linux-xive")
    workload = Workload(machine)
    for vcpu in machine.vcpus[::max(1, len(machine.vcpus) // 32)]:
        workload.run([Event("msi", vcpu, 6), Event("ipi", vcpu, source=machine.vcpus[0])])
        workload.fire(Event("msi", vcpu, 5))  # left pending across the move
    return machine


def measure(mode: str, smp: int, host: str, rounds: int = 5) -> None:
    cpu = "host" if host != "tcg" else "power9"
    options = f"-M pseries,ic-mode={mode} -cpu {cpu} -smp {smp}"
    saves, loads, size = [], [], 0
    for _ in range(rounds):
        machine = busy(options, host)
        start = time.perf_counter()
        stream = machine.save()
        saves.append(time.perf_counter() - start)
        size = len(stream)
        target = Machine.create(options, host=host, incoming=True)
        start = time.perf_counter()
        target.load(stream)
        loads.append(time.perf_counter() - start)
    print(f"{mode:5} -smp {smp:<4} {host:18} save {statistics.median(saves) * 1e3:8.1f} ms  "
          f"load {statistics.median(loads) * 1e3:8.1f} ms  stream {size / 1024:8.1f} KiB")


if __name__ == "__main__":
    for smp in (8, 256):
        for mode in ("xics", "xive"):
            for host in ("tcg", "power9-linux-5.10"):
                measure(mode, smp, host, rounds=5 if smp == 8 else 3)
