"""CPU hot-plug: device_add/device_del of a spapr-cpu-core, as QEMU 7.2 does it (texts checked
on the real binary), on every backend, then migrated."""

from __future__ import annotations

import pytest

from spapr_irq import Event, Workload
from spapr_irq.errors import MachineError
from spapr_irq.machine.machine import Machine

HOSTS = ["tcg", "power9-linux-5.10", "power9-linux-4.19", "power9-nested-linux-5.10"]


def options(mode: str, host: str, smp: str = "1,maxcpus=4") -> str:
    return f"-M pseries,ic-mode={mode} -cpu {'power9' if host == 'tcg' else 'host'} -smp {smp}"


@pytest.mark.parametrize("core, text", [
    (4, "core id 4 out of range"),
    (0, "core 0 already populated"),
])
def test_plugging_a_core_is_refused_with_qemus_text(core, text):
    machine = Machine.create(options("xics", "tcg"), host="tcg")
    with pytest.raises(MachineError) as info:
        machine.hotplug_cpu(core)
    assert (info.value.stage, info.value.text) == ("hotplug", text)
    assert machine.vcpus == [0] and machine.leaks() == []


def test_a_core_id_off_a_core_boundary_is_refused():
    machine = Machine.create("-M pseries -cpu power9 -smp 2,threads=2,maxcpus=8", host="tcg")
    with pytest.raises(MachineError, match="^invalid core id 3$"):
        machine.hotplug_cpu(3)
    assert machine.hotplug_cpu(2) == [2, 3]  # a core's threads, ids by vsmt (2 from 4.2)


def test_plugging_a_populated_core_again_is_refused():
    machine = Machine.create(options("xics", "tcg"), host="tcg")
    machine.hotplug_cpu(1)
    with pytest.raises(MachineError, match="^core 1 already populated$"):
        machine.hotplug_cpu(1)


@pytest.mark.parametrize("core, text", [(2, "Unable to find CPU core with core-id: 2"),
                                        (0, "Boot CPU core may not be unplugged")])
def test_unplugging_is_refused_with_qemus_text(core, text):
    machine = Machine.create(options("xics", "tcg"), host="tcg")
    with pytest.raises(MachineError) as info:
        machine.unplug_cpu(core)
    assert info.value.text == text


def test_machines_before_2_7_have_no_cpu_hotplug():
    machine = Machine.create("-M pseries-2.6 -cpu power7", host="tcg")
    with pytest.raises(MachineError, match="CPU hotplug not supported for this machine"):
        machine.hotplug_cpu(1)


def test_before_cas_the_hotplug_event_is_pulsed_on_the_epow_source():
    """QEMU 7.2, -S, -smp 1,maxcpus=4, three device_add: `1000 MSI ff 08` (masked, pending)."""
    machine = Machine.create(options("xics", "tcg") + " -serial none", host="tcg")
    for core in (1, 2, 3):
        machine.hotplug_cpu(core)
    lines = machine.info_pic().splitlines()
    assert [line for line in lines if line.startswith("CPU")] == [
        f"CPU {n} XIRR=00000000 ((nil)) PP=ff MFRR=ff" for n in range(4)]
    assert "  1000 MSI ff 08" in lines and "  1001 MSI ff 00" in lines


def test_after_cas_a_linux_guest_gets_hotplug_events_on_their_own_source():
    machine = Machine.create(options("xics", "tcg"), host="tcg")
    machine.boot("linux-xive")
    machine.hotplug_cpu(1)
    assert machine.driver.drain() == [(0, "msi", 0x1001)]


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("mode", ["xics", "xive", "dual"])
def test_plug_unplug_replug_then_migrate_on_every_backend(mode, host):
    machine = Machine.create(options(mode, host), host=host)
    machine.boot("linux-xive")
    machine.driver.drain()
    vcpu, = machine.hotplug_cpu(1)
    machine.driver.drain()  # the hot-plug event
    machine.driver.online_cpu(vcpu)
    handled = Workload(machine).run([Event("msi", vcpu, 6), Event("ipi", vcpu, source=0),
                                     Event("ipi", 0, source=vcpu)])
    assert sorted((h.vcpu, h.kind) for h in handled) == [(0, "ipi"), (vcpu, "ipi"), (vcpu, "msi")]
    machine.driver.offline_cpu(vcpu)
    machine.unplug_cpu(1)
    machine.driver.drain()
    assert machine.vcpus == [0] and machine.leaks() == []
    assert machine.hotplug_cpu(1) == [vcpu]  # the parked KVM vCPU is taken back
    machine.driver.drain()
    machine.driver.online_cpu(vcpu)
    stream = machine.save()
    target = Machine.create(options(mode, host), host=host, incoming=True)
    with pytest.raises(MachineError, match="'cpu_common' 1"):
        target.load(stream)  # the destination must have the same cores
    target.hotplug_cpu(1)
    target.load(stream)
    target.resume_guest(machine.driver)
    handled = Workload(target).run([Event("ipi", vcpu, source=0), Event("msi", vcpu, 5)])
    assert sorted((h.vcpu, h.kind) for h in handled) == [(vcpu, "ipi"), (vcpu, "msi")]
    assert target.leaks() == []


def test_a_hot_plugged_cores_state_comes_after_the_machine_section_as_in_qemu_7_2():
    """QEMU 7.2, -smp 1,maxcpus=2, device_add core-id=1, then migrate: the stream's description
    lists ics, xive-source, spapr-xive, CPU 0's sections, spapr_pci, spapr, then CPU 1's."""
    import json

    machine = Machine.create(options("dual", "tcg", "1,maxcpus=2"), host="tcg")
    machine.hotplug_cpu(1)
    stream = machine.save()
    names = [(d["name"], d["instance_id"])
             for d in json.loads(stream[stream.rindex(b'{"devices"'):])["devices"]]
    assert names == [("ram", 0), ("ics", 0), ("xive-source", 0), ("spapr-xive", 0),
                     ("cpu_common", 0), ("icp/server", 0), ("xive-tctx", 0), ("spapr_pci", 0),
                     ("spapr", 0), ("cpu_common", 1), ("icp/server", 1), ("xive-tctx", 1)]
    target = Machine.create(options("dual", "tcg", "1,maxcpus=2"), host="tcg", incoming=True)
    with pytest.raises(MachineError) as info:
        target.load(stream)
    assert info.value.message.startswith("Unknown savevm section or instance 'cpu_common' 1.")
