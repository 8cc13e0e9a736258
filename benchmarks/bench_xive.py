"""Interrupts per second through the full XIVE path, emulated and in-kernel.

Each interrupt goes the whole way a guest sees it: the trigger (device line, or an IPI's ESB
store), the PQ bits, the EAS and END, the event queue in guest RAM, the OS ring of the target's
TIMA and its line, the ACK load, the queue scan, the handler and the source EOI (ESB load, or
H_INT_ESB for an LSI). Run: .venv/bin/python benchmarks/bench_xive.py
"""

from __future__ import annotations

from rates import booted, rate
from spapr_irq.devices import Workload


def main(count: int = 50_000) -> None:
    for backend, irqchip in (("emulated", "off"), ("in-kernel (KVM)", "on")):
        machine = booted("xive", irqchip)
        workload = Workload(machine)
        driver = machine.driver
        msi = workload.source("msi", 0, 6)
        lsi = workload.source("lsi", 1, 6)
        print(f"XIVE {backend} ({machine.backend}):")

        def msi_step():
            machine.set_irq(msi, 1)
            driver.handle_one(0)

        def lsi_step():
            machine.set_irq(lsi, 1)
            driver.handle_one(1)  # the handler acks the device, then the H_INT_ESB EOI

        def ipi_step():
            driver.send_ipi(0, 1)
            driver.handle_one(1)

        rate("MSI -> queue -> ACK -> ESB EOI", count, msi_step)
        rate("LSI -> queue -> ACK -> ack -> H_INT_ESB EOI", count, lsi_step)
        rate("IPI ESB store -> queue -> ACK -> ESB EOI", count, ipi_step)
        assert driver.warnings == []
        assert len([h for h in driver.handled if h.kind != "spurious"]) == 3 * (count + 1)
        driver.drain()  # the queue peek after the last EOI reopens the CPPR
        assert not machine.irq_pending(0) and not machine.irq_pending(1)


if __name__ == "__main__":
    main()
