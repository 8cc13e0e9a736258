"""Interrupts per second through the full XICS path, emulated and in-kernel.

Each interrupt goes the whole way a guest sees it: the device line (or H_IPI), the ICS and ICP,
the external-interrupt line, H_XIRR, the handler, H_EOI. Run: .venv/bin/python benchmarks/bench_xics.py
"""

from __future__ import annotations

from rates import booted, rate
from spapr_irq.devices import Workload


def main(count: int = 50_000) -> None:
    for backend, irqchip in (("emulated", "off"), ("in-kernel (KVM)", "on")):
        machine = booted("xics", irqchip)
        workload = Workload(machine)
        driver = machine.driver
        msi = workload.source("msi", 0, 5)
        lsi = workload.source("lsi", 1, 5)
        print(f"XICS {backend} ({machine.backend}):")

        def msi_step():
            machine.set_irq(msi, 1)
            driver.handle_one(0)

        def lsi_step():
            machine.set_irq(lsi, 1)
            driver.handle_one(1)  # the handler acks the device: the line drops before H_EOI

        def ipi_step():
            driver.send_ipi(0, 1)
            driver.handle_one(1)

        rate("MSI -> H_XIRR -> H_EOI", count, msi_step)
        rate("LSI -> H_XIRR -> ack -> H_EOI", count, lsi_step)
        rate("H_IPI -> H_XIRR -> H_IPI(ff) -> H_EOI", count, ipi_step)
        assert not machine.irq_pending(0) and not machine.irq_pending(1)
        assert len(driver.handled) == 3 * (count + 1)


if __name__ == "__main__":
    main()
