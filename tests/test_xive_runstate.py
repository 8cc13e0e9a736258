"""Stopping and resuming a XIVE machine (QMP stop / cont).

Under KVM, QEMU's run-state handler masks every source at stop (PQ=10 in the kernel unless it was
off) keeping the real PQ in its own copy, then syncs the queues (EQ_SYNC); at resume it puts the
PQs back and re-triggers an event that arrived while the VM was stopped. The emulated XIVE has no
handler: it lives in QEMU and stops with it.
"""

from __future__ import annotations

import errno as E

import pytest

from spapr_irq import Machine
from spapr_irq.errors import StateError
from spapr_irq.devices import Workload
from spapr_irq.host.kvm import FaultPlan
from spapr_irq.host.uapi import KVM_DEV_XIVE_EQ_SYNC, KVM_DEV_XIVE_GRP_CTRL
from spapr_irq.arch.xive import XIVE_ESB_OFF, XIVE_ESB_PENDING, XIVE_ESB_QUEUED, XIVE_ESB_RESET

from conftest import assert_clean, booted_xive as xive_machine


def kernel_pq(machine: Machine, lisn: int) -> int:
    """The PQ bits the kernel holds for `lisn` (a GET load on its management page)."""
    return machine.kvm.xive_esb(machine.xive.fd, 2 * lisn + 1, 0x800, None)


@pytest.mark.parametrize("irqchip", ["off", "on"])
def test_stop_then_cont_moves_runstate_paused_then_running(irqchip):
    """stop pauses a running machine, cont resumes it; each refuses the wrong state."""
    machine = xive_machine(irqchip)
    with pytest.raises(StateError, match="cannot continue: the machine is running"):
        machine.cont()
    machine.stop()
    assert machine.runstate == "paused"
    with pytest.raises(StateError, match="cannot stop: the machine is paused"):
        machine.stop()
    machine.cont()
    assert machine.runstate == "running"
    assert machine.leaks() == []


@pytest.mark.parametrize("irqchip", ["off", "on"])
def test_paused_vcpus_make_no_hcall_or_mmio(irqchip):
    """While paused no vCPU runs: hcalls and MMIO are refused and nothing changes."""
    machine = xive_machine(irqchip)
    machine.stop()
    before = machine.xive.pre_save() if irqchip == "off" else None
    with pytest.raises(StateError, match="the machine is paused"):
        machine.hcall(0, "H_INT_RESET", 0)
    with pytest.raises(StateError, match="the machine is paused"):
        machine.mmio_read(0, machine.xive.tm_base, 8)
    if before is not None:
        assert machine.xive.pre_save() == before
    machine.cont()


def test_stop_masks_every_kernel_source_and_keeps_its_pq_in_qemu():
    """kvmppc_xive_change_state_handler: PQ=10 in KVM unless off, the old PQ in QEMU's copy."""
    machine = xive_machine("on")
    work = Workload(machine)
    msi = work.source("msi", 1, 5)
    off = work.source("msi", 0, 5)
    machine.driver.mask(off)  # PQ 01 in the kernel
    machine.set_irq(msi, 1)  # PQ 10: presented, not yet handled
    assert kernel_pq(machine, msi) == XIVE_ESB_PENDING
    quiet = machine.driver.ipis[0].lisn
    machine.kvm.calls.clear()
    machine.stop()
    source = machine.xive.state.source
    assert (source.pq(msi), kernel_pq(machine, msi)) == (XIVE_ESB_PENDING, XIVE_ESB_PENDING)
    assert (source.pq(off), kernel_pq(machine, off)) == (XIVE_ESB_OFF, XIVE_ESB_OFF)
    assert (source.pq(quiet), kernel_pq(machine, quiet)) == (XIVE_ESB_RESET, XIVE_ESB_PENDING)
    # the ESB accesses go through the mapping, so the only ioctl is the queue sync
    fd = machine.xive.fd
    assert machine.kvm.calls == [f"set_attr({fd}, {KVM_DEV_XIVE_GRP_CTRL}, {KVM_DEV_XIVE_EQ_SYNC:#x})"]
    machine.cont()
    assert (source.pq(quiet), kernel_pq(machine, quiet)) == (XIVE_ESB_RESET, XIVE_ESB_RESET)
    assert kernel_pq(machine, off) == XIVE_ESB_OFF


def test_msi_fired_while_stopped_in_kernel_is_delivered_after_cont():
    """A trigger on a masked-for-stop source sets Q; at resume QEMU sees 11 and re-triggers."""
    machine = xive_machine("on")
    work = Workload(machine)
    msi = work.source("msi", 1, 5)
    machine.stop()
    machine.set_irq(msi, 1)
    assert kernel_pq(machine, msi) == XIVE_ESB_QUEUED
    assert not machine.irq_pending(1)
    machine.cont()
    assert machine.irq_pending(1)
    assert [(h.vcpu, h.kind, h.irq) for h in machine.driver.drain()] == [(1, "msi", msi)]
    assert machine.driver.drain() == []


def test_msi_fired_while_stopped_emulated_is_presented_at_once_and_handled_after_cont():
    """The emulated XIVE has no handler: the event is queued and presented while paused."""
    machine = xive_machine("off")
    work = Workload(machine)
    msi = work.source("msi", 1, 5)
    machine.stop()
    machine.set_irq(msi, 1)
    assert machine.irq_pending(1)
    machine.cont()
    assert [(h.vcpu, h.kind, h.irq) for h in machine.driver.drain()] == [(1, "msi", msi)]


def test_lsi_held_across_stop_is_handled_once_after_cont():
    """An asserted LSI stays asserted across stop/cont and is taken once its device acks it."""
    machine = xive_machine("on")
    work = Workload(machine)
    lsi = work.source("lsi", 0, 5)
    machine.stop()
    machine.set_irq(lsi, 1)
    machine.cont()
    assert [(h.kind, h.irq) for h in machine.driver.drain()] == [("lsi", lsi)]
    assert not machine.irq_pending(0)


def test_eq_sync_at_stop_cannot_fail_on_its_own():
    """KVM_DEV_XIVE_EQ_SYNC always succeeds in Linux: no fault reaches it."""
    faults = FaultPlan()
    machine = xive_machine("on", faults)
    faults.fail(E.EIO, call="set_attr")
    machine.stop()
    assert machine.runstate == "paused" and faults.fired == []
    machine.cont()
    assert machine.leaks() == []


def test_xics_machine_stops_and_continues_without_a_handler():
    """The in-kernel XICS registers no run-state handler: stop and cont touch no KVM state."""
    machine = Machine.create("-M pseries,ic-mode=xics,kernel-irqchip=on -cpu power9 -smp 2",
                             host="power9-linux-5.10")
    machine.boot("linux-legacy")
    calls = len(machine.kvm.calls)
    machine.stop()
    machine.cont()
    assert len(machine.kvm.calls) == calls
    assert_clean(machine)


def test_info_pic_under_kvm_shows_the_kernel_pq_and_the_os_ring():
    """info pic synchronizes from KVM first: a presented, unhandled MSI shows P and the IPB."""
    machine = xive_machine("on")
    msi = Workload(machine).source("msi", 1, 5)
    machine.set_irq(msi, 1)
    lines = machine.info_pic().splitlines()
    assert any(line.startswith(f"  {msi:08x} MSI P-    ") for line in lines)
    ring = next(line for line in lines if line.startswith("CPU[0001]:   OS"))
    assert ring.split()[2:5] == ["80", "ff", "04"]  # NSR EO, CPPR, IPB bit of priority 5
    quiet = machine.driver.ipis[0].lisn
    machine.stop()  # the kernel now holds PQ=10 for every source; QEMU shows the saved ones
    assert kernel_pq(machine, quiet) == XIVE_ESB_PENDING
    assert any(line.startswith(f"  {quiet:08x} MSI --    ")
               for line in machine.info_pic().splitlines())
