"""Migration: the stream QEMU 7.2 writes and refuses, and a guest that moves between hosts.

The refusal texts and which ic-mode pairs load are those of a real QEMU 7.2.22 (source and
destination under TCG, -M pseries,ic-mode=S / D -cpu POWER9): see tests/test_conform.py for how
the real binary is driven."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spapr_irq import Event, Workload
from spapr_irq.errors import MachineError, StateError
from spapr_irq.machine.machine import Machine

P9 = "-cpu POWER9 -smp 2"
UNKNOWN = ("Unknown savevm section or instance '{}' 0. Make sure that your current VM setup "
           "matches your saved VM setup, including any hotplugged devices")
FAILED = "load of migration failed: Invalid argument"


def booted(options: str, guest: str = "linux-xive", host: str = "tcg") -> Machine:
    machine = Machine.create(options, host=host)
    machine.boot(guest)
    return machine


def incoming(options: str, host: str = "tcg") -> Machine:
    return Machine.create(options, host=host, incoming=True)


# --- QEMU 7.2's table: source ic-mode (guest) x destination ic-mode ------------------------------------
TABLE = [
    ("xics", "linux-xive", {"xics": "xics", "xive": "ics", "dual": "xics"}),
    ("xive", "linux-xive", {"xics": "xive-source", "xive": "xive", "dual": "xive"}),
    ("dual", "linux-xive", {"xics": "xive-source", "xive": "ics", "dual": "xive"}),
    ("dual", "linux-xive-off", {"xics": "xive-source", "xive": "ics", "dual": "xics"}),
]
CELLS = [(src, guest, dst, outcome) for src, guest, row in TABLE for dst, outcome in row.items()]


@pytest.mark.parametrize("src, guest, dst, outcome", CELLS,
                         ids=[f"{s}-{g}-to-{d}" for s, g, d, _ in CELLS])
def test_qemu_7_2_ic_mode_pairs_load_or_are_refused_with_its_text(src, guest, dst, outcome):
    source = booted(f"-M pseries,ic-mode={src} {P9}", guest)
    stream = source.save()
    target = incoming(f"-M pseries,ic-mode={dst} {P9}")
    if outcome in ("xics", "xive"):
        target.load(stream)
        assert (target.runstate, target.interrupt_mode) == ("running", outcome)
        assert target.leaks() == []
        return
    with pytest.raises(MachineError) as info:
        target.load(stream)
    assert (info.value.stage, info.value.message, info.value.hints) == (
        "load", UNKNOWN.format(outcome), (FAILED,))


def test_a_dual_source_never_loads_into_a_single_mode_destination_even_for_its_guests_mode():
    stream = booted(f"-M pseries,ic-mode=dual {P9}", "linux-xive-off").save()
    with pytest.raises(MachineError, match="'xive-source' 0"):
        incoming(f"-M pseries,ic-mode=xics {P9}").load(stream)


def test_the_stream_holds_qemus_sections_in_qemus_order():
    stream = booted(f"-M pseries,ic-mode=dual {P9}").save()
    import json
    vmdesc = json.loads(stream[stream.rindex(b'{"devices"'):])
    names = [(d["name"], d["instance_id"]) for d in vmdesc["devices"]]
    assert names == [("ram", 0), ("ics", 0), ("xive-source", 0), ("spapr-xive", 0),
                     ("cpu_common", 0), ("icp/server", 0), ("xive-tctx", 0),
                     ("cpu_common", 1), ("icp/server", 1), ("xive-tctx", 1),
                     ("spapr_pci", 0), ("spapr", 0)]
    machine = next(d for d in vmdesc["devices"] if d["name"] == "spapr")
    assert machine["subsections"] == ["spapr_option_vector_ov5_cas"]


# --- other incompatibilities, with the texts a real QEMU 7.2 printed -----------------------------------
@pytest.mark.parametrize("src, dst, lines", [
    ("-M pseries-3.0 -cpu POWER9", "-M pseries-3.1 -cpu POWER9",
     ("Machine type received is 'pseries-3.0' and local is 'pseries-3.1'", FAILED)),
    ("-M pseries-3.0 -cpu POWER9", "-M pseries,ic-mode=xics -cpu POWER9",
     ("Machine type received is 'pseries-3.0' and local is 'pseries-10.1'", FAILED)),
    (f"-M pseries,ic-mode=xics {P9}", "-M pseries,ic-mode=xics -cpu POWER9",
     (UNKNOWN.format("cpu_common").replace("' 0.", "' 1."), FAILED)),
    ("-M pseries,ic-mode=xive -cpu POWER9 -smp 2,maxcpus=4", f"-M pseries,ic-mode=xive {P9}",
     ("Missing section footer for spapr-xive", FAILED)),
])
def test_incompatible_machines_are_refused_as_qemu_refuses_them(src, dst, lines):
    stream = booted(src).save()
    target = incoming(dst)
    with pytest.raises(MachineError) as info:
        target.load(stream)
    assert (info.value.message, *info.value.hints) == lines
    assert target.runstate == "inmigrate" and target.leaks() == []


def test_a_destination_with_more_vcpus_loads_and_the_extra_one_keeps_its_reset_state():
    stream = booted(f"-M pseries,ic-mode=xics {P9}").save()
    target = incoming("-M pseries,ic-mode=xics -cpu POWER9 -smp 3")
    target.load(stream)
    assert target.xics.icps[2].xirr == 0 and target.xics.icps[0].cppr == 0xFF


@pytest.mark.parametrize("mangle, lines", [
    (lambda s: b"\0" * 4 + s[4:], ("Not a migration stream", FAILED)),
    (lambda s: s.replace(b"icp/server", b"xcp/server", 1), (UNKNOWN.format("xcp/server"), FAILED)),
    (lambda s: s[:s.index(b"icp/server") + 22],  # name, instance, version, xirr
     ("Failed to load icp/server:pending_priority",
      "error while loading state for instance 0x0 of device 'icp/server'",
      "load of migration failed: Input/output error")),
    (lambda s: s[:8], ("load of migration failed: Input/output error",)),
    (lambda s: b"", ("load of migration failed: Input/output error",)),
])
def test_a_truncated_or_corrupted_stream_is_refused_with_qemus_lines(mangle, lines):
    stream = booted(f"-M pseries,ic-mode=xics {P9}").save()
    target = incoming(f"-M pseries,ic-mode=xics {P9}")
    with pytest.raises(MachineError) as info:
        target.load(mangle(stream))
    assert (info.value.message, *info.value.hints) == lines


def test_load_needs_an_incoming_machine_and_a_stream_of_bytes():
    stream = booted(f"-M pseries {P9}").save()
    with pytest.raises(StateError, match="create it with incoming=True"):
        booted(f"-M pseries {P9}").load(stream)
    with pytest.raises(TypeError):
        incoming(f"-M pseries {P9}").load("not bytes")


# --- any mutation: refused or loaded, never a crash; a refusal changes nothing ------------------------
def _snapshot(machine: Machine) -> tuple:
    """What a load could change: controllers, RAM, the CAS result, MSIs, the device tree."""
    return (machine.info_pic(), machine.memory.pages(), machine.ov5_cas, bytes(machine.msi.used),
            dict(machine.msi_blocks), repr(machine.fdt), machine.interrupt_mode, machine._clock)


_SOURCE = booted(f"-M pseries,ic-mode=dual {P9}")
Workload(_SOURCE).run([Event("msi", 0, 6)])
_STREAM = _SOURCE.save()


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_any_mutation_of_a_valid_stream_is_refused_cleanly_or_loads(data):
    stream = bytearray(_STREAM)
    how = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
    at = data.draw(st.integers(0, len(stream) - 1))
    if how == "flip":
        stream[at] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        del stream[at:]
    else:
        stream[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    target = incoming(f"-M pseries,ic-mode=dual {P9}")
    before = _snapshot(target)
    try:
        target.load(bytes(stream))
    except MachineError as exc:
        assert exc.stage == "load" and exc.text.splitlines()[-1].startswith("load of migration failed")
        assert target.runstate == "inmigrate" and _snapshot(target) == before
        assert target.leaks() == []
    else:
        assert target.runstate == "running"


# --- the guest moves: what was pending arrives once, on any backend pair -------------------------------
EVENTS = [Event("msi", 0, 6), Event("lsi", 1, 3), Event("ipi", 0, source=1), Event("msi", 1, 5),
          Event("ipi", 1, source=0)]


def _options(mode: str, host: str) -> str:
    return f"-M pseries,ic-mode={mode} -cpu {'power9' if host == 'tcg' else 'host'} -smp 2"


def move(mode: str, guest: str, src_host: str, dst_host: str):
    """Fire EVENTS at a booted guest without letting it run, migrate, then let it run on the
    destination; return what it handled there and what it handles without a migration."""
    source = booted(_options(mode, src_host), guest, src_host)
    workload = Workload(source)
    for event in EVENTS:
        workload.fire(event)
    stream = source.save()
    target = incoming(_options(mode, dst_host), dst_host)
    for (kind, _vcpu, _priority), irq in workload.sources.items():
        if kind == "lsi":  # the same device exists on the destination: it claimed its line
            target.claim_irq(irq, lsi=True)
    target.load(stream)
    target.resume_guest(source.driver, source.guest)
    moved = target.driver.drain()
    reference = booted(_options(mode, src_host), guest, src_host)
    Workload(reference).run(EVENTS)
    return target, sorted(moved), sorted(reference.driver.handled)


XIVE_HOSTS = ["tcg", "power9-linux-5.10", "power9-linux-4.19", "power9-nested-linux-5.10",
              "power9-oldfw-linux-5.4"]


@pytest.mark.parametrize("mode", ["xive", "dual"])
@pytest.mark.parametrize("src_host, dst_host", list(itertools.product(XIVE_HOSTS, XIVE_HOSTS)))
def test_a_xive_guest_moved_between_any_backends_gets_every_pending_interrupt_once(
        mode, src_host, dst_host):
    target, moved, reference = move(mode, "linux-xive", src_host, dst_host)
    assert target.interrupt_mode == "xive"
    assert moved == reference and len(moved) == len(EVENTS)
    assert target.leaks() == []


@pytest.mark.parametrize("mode, guest", [("xics", "linux-xive"), ("dual", "linux-xive-off")])
@pytest.mark.parametrize("src_host, dst_host", [
    ("tcg", "tcg"), ("power9-linux-5.10", "tcg"), ("power9-linux-5.10", "power9-linux-4.19"),
    ("power9-linux-4.19", "power9-oldfw-linux-5.4"), ("power9-linux-4.19", "tcg"),
])
def test_a_xics_guest_moved_between_these_backends_gets_every_pending_interrupt_once(
        mode, guest, src_host, dst_host):
    target, moved, reference = move(mode, guest, src_host, dst_host)
    assert target.interrupt_mode == "xics"
    assert moved == reference and len(moved) == len(EVENTS)
    assert target.leaks() == []


def test_the_destinations_kernel_irqchip_applies_there():
    """kernel-irqchip=on on a host without KVM XIVE refuses at init, before any stream; allowed
    falls back to emulated XIVE with QEMU's warning and the guest goes on."""
    stream = booted(_options("xive", "power9-linux-5.10"), host="power9-linux-5.10").save()
    with pytest.raises(MachineError) as info:
        incoming("-M pseries,ic-mode=xive,kernel-irqchip=on -cpu host -smp 2", "power9-linux-4.19")
    assert info.value.stage == "init"
    target = incoming(_options("xive", "power9-linux-4.19"), "power9-linux-4.19")
    target.load(stream)
    assert (target.interrupt_mode, target.backend) == ("xive", "emulated")
    assert target.warnings[0].startswith("kernel_irqchip allowed but unavailable")


def test_an_nr_irqs_that_differs_from_the_destinations_is_refused_as_vmstate_equal_does():
    stream = bytearray(booted(f"-M pseries,ic-mode=xics {P9}").save())
    at = stream.index(b"ics") + 3 + 8  # the name, then instance and version: nr_irqs follows
    assert int.from_bytes(stream[at:at + 4], "big") == 0x1000
    stream[at:at + 4] = (0x400).to_bytes(4, "big")
    target = incoming(f"-M pseries,ic-mode=xics {P9}")
    with pytest.raises(MachineError) as info:
        target.load(bytes(stream))
    assert (info.value.message, *info.value.hints) == (
        "1024 != 4096", "Failed to load ics:nr_irqs",
        "error while loading state for instance 0x0 of device 'ics'", FAILED)
    assert target.runstate == "inmigrate" and target.leaks() == []


# --- every host preset a POWER9 guest can run on, each way, with an interrupt behind a mask ----------
def _power9_options(mode: str, host: str) -> str:
    from spapr_irq.host.host import PRESETS

    preset = PRESETS[host]
    if not preset.has_kvm:
        return f"-M pseries,ic-mode={mode} -cpu power9 -smp 2"
    compat = ",max-cpu-compat=power9" if preset.cpu == "power10" else ""
    return f"-M pseries,ic-mode={mode}{compat} -cpu host -smp 2"


def _power9_hosts() -> list[str]:
    from spapr_irq.host.host import PRESETS

    return [name for name, host in PRESETS.items() if not host.has_kvm or host.cpu != "power8"]


@pytest.mark.parametrize("mode, guest", [("xive", "linux-xive"), ("xive", "linux-xive-off"),
                                         ("dual", "linux-xive")])
def test_a_xive_guest_moves_between_every_pair_of_hosts_and_gets_everything_once(mode, guest):
    """`spapr-irq migrate`'s workload (MSIs and an LSI in queues, IPIs both ways, an MSI fired
    behind a mask and unmasked after the move), from every host preset to every other."""
    from spapr_irq.explore import migrate

    hosts = _power9_hosts()
    assert len(hosts) == 9
    for src in hosts:
        for dst in hosts:
            result = migrate(_power9_options(mode, src), src, dst, guest,
                             to_options=_power9_options(mode, dst))
            assert (result["result"], result["delivered"]) == ("ok", True), (src, dst)
            assert result["destination"]["interrupt_mode"] == "xive"


def test_a_destination_starts_with_the_sources_cores_and_device_lines_then_waits():
    """start_incoming: QEMU's -incoming with the source's hot-plugged cores (-device) and the
    same devices, whose LSIs are claimed at realize; the stream then loads."""
    source = Machine.create("-M pseries,ic-mode=xics -cpu power9 -smp 1,maxcpus=2", host="tcg")
    source.boot("linux-xive")
    source.hotplug_cpu(1)
    workload = Workload(source)
    lsi = workload.source("lsi", 0, 4)
    workload.source("msi", 0, 4)
    assert workload.lsis() == [lsi]
    target = Machine(source.config, source.host)
    target.start_incoming(cores=[1], lsis=workload.lsis())
    assert (target.runstate, target.vcpus, target.xics.is_claimed(lsi)) == ("inmigrate", [0, 1], True)
    target.load(source.save())
    assert target.runstate == "running" and target.leaks() == []


def test_a_destination_that_refuses_the_sources_cores_exits_and_holds_nothing():
    config = Machine.create("-M pseries -cpu host -smp 1,maxcpus=2", host="power9-linux-5.10").config
    target = Machine(config, Machine.create("", host="power9-linux-5.10").host)
    with pytest.raises(MachineError, match="core id 2 out of range"):
        target.start_incoming(cores=[2])
    assert target.runstate == "shutdown" and target.leaks() == []
