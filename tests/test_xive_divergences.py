"""Where QEMU's emulated XIVE and its in-kernel XIVE differ, as the guest sees it.

Both follow the same ESB and END rules; the differences come from how QEMU drives an LSI into the
kernel: since 5.0 it records the level in its own copy and then stores to the source's trigger page
in the kernel's ESB mapping, for a raise and for a lower alike (kvmppc_xive_source_set_irq). The
kernel backs every guest source with an IPI, whose PQ logic has no notion of a level. One more
comes from QEMU's run-state handler, which the emulated XIVE does not need: what it puts back at
resume is the PQ saved at stop, so a Q set in the kernel meanwhile is lost when P was set. And
H_INT_RESET resets only the kernel's tables: QEMU's device_cold_reset() reaches no reset method.
"""

from __future__ import annotations

from conftest import booted_xive as machine_for, migrate_xive
from spapr_irq import Machine
from spapr_irq.devices import Workload
from spapr_irq.arch.xive import XIVE_ESB_PENDING, XIVE_ESB_QUEUED


def kinds(machine: Machine) -> list[tuple[str, int]]:
    return [(h.kind, h.irq) for h in machine.driver.drain() if h.kind != "spurious"]


def esb_get(machine: Machine, lisn: int) -> int:
    return machine.hcall(0, "H_INT_ESB", 0, lisn, 0x800, 0)[1]


def test_lsi_raised_again_while_pending_sets_q_in_kvm_only():
    """Emulated: a raised LSI stays at PQ=10 (a level has no Q). KVM: the trigger store sets Q."""
    pqs = {}
    for irqchip in ("off", "on"):
        machine = machine_for(irqchip)
        lsi = Workload(machine).source("lsi", 0, 6)
        machine.set_irq(lsi, 1)
        machine.set_irq(lsi, 1)
        pqs[irqchip] = esb_get(machine, lsi)
        assert kinds(machine) == [("lsi", lsi)]  # KVM's LSI EOI (SET_PQ_00) drops the Q
    assert pqs == {"off": XIVE_ESB_PENDING, "on": XIVE_ESB_QUEUED}


def test_lsi_q_held_in_kvm_is_replayed_once_after_migrating_to_the_emulated_xive():
    """The Q moves with the vmstate; the emulated EOI turns 11 into 10 and notifies once more."""
    source, target = machine_for("on"), machine_for("off")
    lsi = Workload(source).source("lsi", 0, 6)
    assert Workload(target).source("lsi", 0, 6) == lsi
    source.set_irq(lsi, 1)
    source.set_irq(lsi, 1)
    migrate_xive(source, target)
    assert kinds(target) == [("lsi", lsi), ("lsi", lsi)]


def test_lowering_an_idle_lsi_in_kvm_delivers_an_event_the_emulated_xive_does_not():
    """A device dropping its line with no event in flight: KVM sees a trigger, QEMU a level."""
    got = {}
    for irqchip in ("off", "on"):
        machine = machine_for(irqchip)
        lsi = Workload(machine).source("lsi", 1, 6)
        machine.set_irq(lsi, 0)
        got[irqchip] = kinds(machine)
    assert got == {"off": [], "on": [("lsi", lsi)]}


def test_msi_refired_while_stopped_with_its_event_in_flight_is_lost_in_kvm():
    """QEMU's run-state handler puts back the saved PQ=10 and re-triggers only from a saved 00:
    the Q a second firing set in the kernel while stopped is dropped. Emulated, it is kept."""
    got = {}
    for irqchip in ("off", "on"):
        machine = machine_for(irqchip)
        msi = Workload(machine).source("msi", 1, 5)
        machine.set_irq(msi, 1)  # presented, not handled: PQ=10
        machine.stop()
        machine.set_irq(msi, 1)  # in KVM the masked-for-stop source goes 10 -> 11
        machine.cont()
        got[irqchip] = kinds(machine)
    assert got == {"off": [("msi", msi)] * 2, "on": [("msi", msi)]}


def test_h_int_reset_masks_routed_sources_in_kvm_only():
    """H_INT_RESET (kexec): KVM_DEV_XIVE_RESET masks every routed source and frees the queues;
    QEMU's own EAT, ENDT and PQs stay, so under emulation a routed MSI still reaches its queue."""
    got = {}
    for irqchip in ("off", "on"):
        machine = machine_for(irqchip)
        msi = Workload(machine).source("msi", 1, 6)
        assert machine.hcall(0, "H_INT_RESET", 0) == (0,)
        machine.set_irq(msi, 1)
        got[irqchip] = machine.irq_pending(1)
    assert got == {"off": True, "on": False}
