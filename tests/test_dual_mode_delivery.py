"""Dual mode end to end: a guest that negotiated XIVE, then a reset and a XICS boot, and back,
handles its interrupts each time, emulated and in-kernel.

Each boot claims fresh device sources (the PHB frees its MSIs at reset), fires MSIs, LSIs and IPIs
on both vCPUs and expects every one handled exactly once, with no line left up and nothing leaked.
"""

from __future__ import annotations

import pytest

from spapr_irq import Machine
from spapr_irq.devices import Event, Workload

EVENTS = [Event("msi", 0, 5), Event("lsi", 1, 6), Event("ipi", 1, source=0), Event("msi", 1, 3),
          Event("ipi", 0, source=1), Event("lsi", 0, 5)]
BOOTS = ["linux-xive", "linux-legacy", "linux-xive", "linux-legacy"]


def handled_once_each(machine: Machine) -> None:
    got = Workload(machine).run(EVENTS)
    real = sorted((h.vcpu, h.kind) for h in got if h.kind != "spurious")
    assert real == sorted((e.vcpu, e.kind) for e in EVENTS), got
    assert machine.driver.warnings == []
    assert not any(machine.irq_pending(v) for v in machine.vcpus)


@pytest.mark.parametrize("irqchip", ["off", "on", None], ids=["off", "on", "default-allowed"])
def test_xive_then_xics_then_xive_handles_interrupts_each_boot(irqchip):
    """CAS XIVE -> reset -> CAS XICS -> reset -> ..., interrupts handled after every boot."""
    option = f",kernel-irqchip={irqchip}" if irqchip else ""
    machine = Machine.create(f"-M pseries,ic-mode=dual{option} -cpu power9 -smp 2",
                             host="power9-linux-5.10")
    backend = "emulated" if irqchip == "off" else "kvm"
    for n, guest in enumerate(BOOTS):
        if n:
            machine.reset()
        mode = machine.boot(guest)
        assert mode == ("xive" if guest == "linux-xive" else "xics")
        assert (machine.interrupt_mode, machine.backend) == (mode, backend)
        handled_once_each(machine)
        assert machine.leaks() == []
        if backend == "kvm":  # only the active controller's device is open
            assert [d.kind for d in machine.kvm.fds.values()] == \
                (["kvm-xive-native"] if mode == "xive" else [machine.host.xics_device_kind])
    assert machine.reports == []


@pytest.mark.parametrize("irqchip", ["off", "on"])
def test_xive_state_left_by_a_guest_does_not_leak_into_the_next_xive_boot(irqchip):
    """Events queued but never handled before a reset are gone after it: the new guest sees none."""
    machine = Machine.create(f"-M pseries,ic-mode=dual,kernel-irqchip={irqchip} -cpu power9 -smp 2",
                             host="power9-linux-5.10")
    machine.boot("linux-xive")
    work = Workload(machine)
    msi = work.source("msi", 1, 6)
    machine.set_irq(msi, 1)
    machine.driver.send_ipi(0, 0)
    assert machine.irq_pending(1) and machine.irq_pending(0)
    machine.reset()
    assert not any(machine.irq_pending(v) for v in machine.vcpus)
    machine.boot("linux-xive")
    assert machine.driver.drain() == []
    handled_once_each(machine)


@pytest.mark.parametrize("guest, after_unmask", [("linux-legacy", 1), ("linux-xive", 0)])
@pytest.mark.parametrize("irqchip", ["off", "on"])
def test_an_msi_fired_while_masked_waits_on_xics_and_is_dropped_by_an_off_xive_esb(
        guest, after_unmask, irqchip):
    """XICS: the ICS marks a masked source's trigger pending and resends it at the unmask. XIVE:
    Linux masks with the ESB's PQ=01 ("off"), where a trigger is ignored; the unmask sets PQ=00
    and nothing comes."""
    m = Machine.create(f"-M pseries,kernel-irqchip={irqchip} -cpu host -smp 1",
                       host="power9-linux-5.10")
    m.boot(guest)
    irq = Workload(m).fire_masked(0, 4)
    assert [h for h in m.driver.drain() if h.kind != "spurious"] == []
    m.driver.unmask(irq, 0, 4)
    handled = [h for h in m.driver.drain() if h.kind != "spurious"]
    assert [(h.kind, h.irq) for h in handled] == [("msi", irq)] * after_unmask
