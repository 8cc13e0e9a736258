"""The checker: its events, its canonical states, each guarantee shown able to fail on a
deliberately broken machine (with the right guarantee and the shortest sequence), and what it
finds in today's QEMU."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, strategies as st

from spapr_irq import Machine, MachineError, papr
from spapr_irq.check.engine import Unit, check, explore_unit, space_configs
from spapr_irq.check.events import START, Event, Fault, replay
from spapr_irq.config import parse_options
from spapr_irq.errors import InputError
from spapr_irq.guest.profiles import get_guest
from spapr_irq.host.host import PRESETS

DUAL = "-M pseries,ic-mode=dual -smp 2,maxcpus=3"
XICS = "-M pseries,ic-mode=xics -smp 2,maxcpus=3"
XIVE = "-M pseries,ic-mode=xive -smp 2,maxcpus=3"


def findings(options, hosts, guest="linux-xive", depth=2, qemu="10.1", faults="last"):
    result = explore_unit(Unit(options, guest, qemu, tuple(hosts)), depth, faults)
    return result.findings


def only(found, guarantee):
    return [f for f in found if f.guarantee == guarantee]


# --- events ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["start", "boot", "kexec", "cas-invalid", "reset", "stop", "cont",
                                  "hotplug", "unplug", "migrate:tcg",
                                  "reset!create_device=ENOMEM", "boot!set_attr=EIO#3",
                                  "migrate:power9-linux-5.10!enable_cap=ENOSPC#2"])
def test_an_event_reads_back_as_written(text):
    assert str(Event.parse(text)) == text


@pytest.mark.parametrize("text, message", [
    ("jump", "unknown event 'jump'"),
    ("migrate", "migrate needs a host"),
    ("migrate:power11", "unknown host"),
    ("reset:now", "reset takes no argument"),
    ("reset!open=ENOMEM", "unknown KVM call 'open'"),
    ("reset!create_device=EIO", "create_device cannot fail with 'EIO' on its own"),
    ("reset!create_device=ENOMEM#0", "'#0' is not a count from 1"),
    ("", "non-empty"),
])
def test_a_malformed_event_is_refused_with_what_is_wrong(text, message):
    with pytest.raises(InputError) as info:
        Event.parse(text)
    assert message in info.value.text


@given(st.text(max_size=40))
def test_any_event_text_parses_or_is_refused_cleanly(text):
    try:
        event = Event.parse(text)
    except InputError:
        return
    assert Event.parse(str(event)) == event


# --- canonical states ----------------------------------------------------------------------------------

def run(options, host, events, guest="linux-xive", qemu="10.1"):
    return replay(parse_options(options, qemu=qemu), PRESETS[host], get_guest(guest),
                  [START, *map(Event.parse, events)])


def test_the_same_sequence_gives_the_same_state_whatever_fd_numbers_kvm_handed_out():
    a = run(DUAL, "power9-linux-5.10", ["boot"])
    b = run(DUAL, "power9-linux-5.10", ["boot"])
    b.machine.kvm._next_fd += 7  # fd numbers are history, not state
    b.machine.trace.clear()
    assert a.state() == b.state()


def test_stop_then_cont_and_kexec_come_back_to_the_same_state():
    booted = run(XICS, "power9-linux-5.10", ["boot"]).state()
    assert run(XICS, "power9-linux-5.10", ["boot", "stop", "cont"]).state() == booted
    assert run(XICS, "power9-linux-5.10", ["boot", "kexec"]).state() == booted


def test_states_differ_where_behaviour_can_differ():
    started = run(DUAL, "power9-linux-5.10", []).state()
    assert run(DUAL, "power9-linux-5.10", ["boot"]).state() != started
    assert run(DUAL, "power9-linux-5.10", ["stop"]).state() != started
    assert run(DUAL, "power9-linux-5.2", []).state() != started  # another host
    booted = run(DUAL, "power9-linux-5.10", ["boot"])
    before = booted.state()
    booted.machine.driver.online.discard(1)  # the guest took a CPU offline: only it knows
    assert booted.state() != before


def test_a_migration_the_destination_refuses_leaves_the_source_running_as_it_was():
    """QEMU leaves the source paused after a failed migration and libvirt resumes it; the
    checker does the same, so the step changes nothing (G3)."""
    from spapr_irq.check.engine import _settled

    source = run(DUAL, "power9-linux-5.10", ["boot"])
    before = source.state()
    step = source.apply(Event("migrate", "power8-linux-5.10"))  # another CPU: refused at load
    assert step.outcome == "refused" and "Unknown savevm section" in step.text
    assert source.machine.runstate == "running"
    assert _settled(source.state()) == _settled(before)


def test_a_fault_in_a_step_counts_its_failure_points_and_fires_at_the_one_asked():
    r = run(XIVE, "power9-linux-5.10", [])
    step = r.apply(Event("boot"), probe=True)
    assert step.outcome == "ok" and step.points[("set_attr", errno.EIO)] >= 2
    faulted = run(XIVE, "power9-linux-5.10", ["boot!set_attr=EIO#2"])
    assert faulted.faulted and faulted.plan.fired == [("set_attr", errno.EIO)]


# --- each guarantee can fail ------------------------------------------------------------------------------

def test_g1_is_broken_when_the_offered_modes_depend_on_the_host(monkeypatch):
    real = Machine.advertised_byte23.fget
    monkeypatch.setattr(Machine, "advertised_byte23", property(
        lambda self: papr.OV5_XIVE_LEGACY if self.host.nested else real(self)))
    found = only(findings(DUAL, ["power9-linux-5.10", "power9-nested-linux-5.10"]), "G1")
    assert [f.sequence for f in found] == [["start"]]
    assert "offered byte 23: 0 on power9-nested-linux-5.10, 128 on power9-linux-5.10" in \
        found[0].detail or "128 on power9-linux-5.10" in found[0].detail


def test_g2_is_broken_by_a_fallback_without_its_warning(monkeypatch):
    real = Machine._warn
    monkeypatch.setattr(Machine, "_warn", lambda self, message, hints=(): None if
                        message.startswith("kernel_irqchip allowed") else real(self, message, hints))
    found = only(findings(XIVE, ["power9-linux-4.19"]), "G2")
    assert found[0].sequence == ["start"]
    assert "XIVE is emulated under KVM without the 'kernel_irqchip allowed but unavailable'" in \
        found[0].detail


def test_g3_catches_the_fd_qemu_leaks_when_nr_servers_fails(monkeypatch):
    """QEMU keeps a new XICS fd only after KVM_DEV_XICS_NR_SERVERS succeeds (xics_kvm_connect),
    so a failure there leaves the device open. Linux fails it only with EINVAL beyond
    KVM_MAX_VCPU_IDS, which pseries' 1024 CPUs cannot reach, or EBUSY once a VP block exists,
    which a new device never has: made to fail here, the leak is the shortest finding."""
    from spapr_irq.host.device import DeviceErrno, XiveVps

    def busy(self, value):
        raise DeviceErrno(errno.EBUSY)

    monkeypatch.setattr(XiveVps, "set_nr_servers", busy)
    found = only(findings(XICS, ["power9-linux-5.10"], depth=1), "G3")
    assert found[0].sequence == ["start"]
    assert found[0].detail.startswith("leak: ")


def test_g3_catches_a_failed_step_that_changes_the_machine(monkeypatch):
    def half_plug(self, core_id):
        self.claim_irq(0x1F00, lsi=False)  # something stays claimed
        raise MachineError("refused after all", stage="hotplug")

    monkeypatch.setattr(Machine, "hotplug_cpu", half_plug)
    found = only(findings(XICS, ["tcg"], depth=1), "G3")
    assert [f.sequence for f in found] == [["start", "hotplug"]]
    assert "hotplug failed (refused after all) and changed the machine" in found[0].detail


def test_g3_catches_a_reset_that_keeps_the_cas_result(monkeypatch):
    real = Machine._reset

    def keep(self, cas_reboot=False):
        real(self, cas_reboot=True)

    monkeypatch.setattr(Machine, "_reset", keep)
    found = only(findings(DUAL, ["tcg"]), "G3")
    assert found[0].sequence == ["start", "boot", "reset"]
    assert "the reset did not return to the boot-time state (active controller, CAS result" in \
        found[0].detail


def test_g4_catches_a_machine_that_drops_device_interrupts(monkeypatch):
    real = Machine.set_irq
    seen = []

    def lossy(self, irq, level):
        seen.append(irq)
        if len(seen) % 2 == 0 and level:
            return None
        return real(self, irq, level)

    monkeypatch.setattr(Machine, "set_irq", lossy)
    found = only(findings(XICS, ["tcg"], depth=1), "G4")
    assert found[0].sequence == ["start", "boot"]
    assert found[0].detail.startswith("lost ")


def test_g5_catches_a_destination_that_refuses_a_matching_stream(monkeypatch):
    from spapr_irq.machine.vmstate import LoadError

    def refuse(self, sections):
        raise LoadError("error while loading state for instance 0x0 of device 'spapr'")

    monkeypatch.setattr(Machine, "_check_loaded", refuse)
    found = only(findings(XICS, ["tcg"], depth=1), "G5")
    assert found[0].sequence == ["start", "migrate:tcg"]
    assert "the destination refused the stream" in found[0].detail


def test_a_model_crash_is_a_finding_with_its_sequence(monkeypatch):
    def broken(self):
        raise KeyError("oops")

    monkeypatch.setattr(Machine, "stop", broken)
    found = only(findings(XICS, ["tcg"], depth=1), "crash")
    assert found[0].sequence == ["start", "stop"] and "KeyError" in found[0].detail


# --- what the checker finds in the releases ---------------------------------------------------------------

HOSTS = ["tcg", "power8-linux-4.19", "power9-linux-4.19", "power9-linux-5.10",
         "power9-nested-linux-5.4", "power10-linux-6.6"]


def details(result):
    return {(f.guarantee, f.detail) for f in result.findings}


def test_todays_qemu_keeps_g1_g2_and_g4_and_breaks_g3_and_g5_where_the_platform_does():
    """QEMU 10.1, pseries x ic-mode x kernel-irqchip, two guests, six hosts, depth 2. G3: a dual
    machine on a POWER9 Linux 4.19 whose guest took XIVE cannot create its XICS-on-XIVE device
    again at the reset (EEXIST; kernel-irqchip allowed falls back, on is refused at init); a
    XIVE-only machine's reset leaves the kernel's XIVE device as the guest left it (set_active_intc
    does nothing when the controller stays, and only H_INT_RESET calls kvmppc_xive_reset). G5: the
    XICS migrations of tests/test_migration_divergences.py."""
    result = check(qemu="10.1", depth=2, hosts=HOSTS, jobs=1)
    found = details(result)
    assert {g for g, _ in found} == {"G3", "G5"}
    assert ("G3", "the reset did not return to the boot-time state (backend, QEMU's XICS, KVM open "
            "devices, KVM vCPU attachments, KVM RTAS tokens, KVM irqchip flag differ; XICS "
            "emulated after it)") in found
    assert ("G3", "the reset did not return to the boot-time state (the state of KVM device "
            "kvm-xive-native differ; XIVE in-kernel (kvm-xive-native) after it)") in found
    g5 = {d for g, d in found if g == "G5"}
    assert {"interrupts pending at a move from XICS emulated to XICS in-kernel (kvm-xive): lost "
            "MSIs (not all) and handled twice an LSI",
            "interrupts pending at a move from XICS in-kernel (kvm-xive) to XICS in-kernel "
            "(kvm-xics): lost every IPI, every MSI, an LSI",
            "interrupts pending at a move from XICS in-kernel (kvm-xics) to XICS in-kernel "
            "(kvm-xics): handled twice an LSI"} <= g5
    assert all("XIVE" not in d.split(": ")[0] for d in g5)  # a XIVE guest moves cleanly


def test_qemu_4_0_breaks_g2_it_had_no_kvm_xive_and_no_kvm_dual():
    """QEMU 4.0 (spec 2.4): dual under KVM is refused unless kernel-irqchip=off, and XIVE is only
    emulated, silently, even on a host that has KVM XIVE: both break G2's promise that an unset
    kernel-irqchip means in-kernel when the host can."""
    result = check(qemu="4.0", depth=0, hosts=["power9-linux-5.10"], guests=["linux-xive"],
                   configs=[DUAL, XIVE], jobs=1)
    assert details(result) == {
        ("G2", "kernel-irqchip=allowed, yet QEMU exits: No KVM support for the 'dual' machine"),
        ("G2", "kernel-irqchip allowed: XIVE is emulated under KVM without the 'kernel_irqchip "
               "allowed but unavailable' warning")}


def test_qemu_4_1_breaks_g3_at_the_first_reboot_on_an_old_power9_kvm():
    """QEMU 4.1 destroys and re-creates the KVM devices at every dual reset (spec 4.3); a POWER9
    Linux before 5.2 cannot create the XICS device twice: 'Error on KVM_CREATE_DEVICE for XICS:
    File exists' at the first reboot, the fallback the 2019 thread discusses (spec 9.3)."""
    result = check(qemu="4.1", depth=1, hosts=["power9-linux-4.19"], guests=["linux-legacy"],
                   configs=[DUAL], jobs=1)
    g3 = only(result.findings, "G3")
    assert g3[0].sequence == ["start", "reset"]
    assert "XICS emulated after it" in g3[0].detail
    assert any("File exists" in line for line in g3[0].steps)


def test_kurz_2019_breaks_g1_as_david_gibson_said_it_would():
    """The rejected patch makes dual XICS-only when KVM lacks XIVE: the guest is offered XICS on
    a POWER9 Linux 4.19 and both modes on a 5.10, 'silently changing the guest visible
    environment based on host capabilities' (seed thread, 2019-06-07)."""
    result = check(qemu="4.1+kurz-2019", depth=0, hosts=["power9-linux-4.19", "power9-linux-5.10"],
                   guests=["linux-xive"], configs=[DUAL], jobs=1)
    g1 = only(result.findings, "G1")
    assert g1[0].sequence == ["start"]
    assert "offered byte 23: 0 on power9-linux-4.19, 128 on power9-linux-5.10" in g1[0].detail
    plain = check(qemu="4.1", depth=0, hosts=["power9-linux-4.19", "power9-linux-5.10"],
                  guests=["linux-xive"], configs=[DUAL], jobs=1)
    assert not only(plain.findings, "G1")


def test_qemu_4_2_reboots_at_cas_but_breaks_only_what_5_0_breaks():
    """4.2 re-creates KVM devices only when the active controller changes (spec 4.2), so the
    4.1 first-reboot failure is gone; its CAS reboot (spec 9.5: the guest goes through SLOF
    twice) costs a boot but keeps every guarantee, so 4.2 and 5.0 break the same ones."""
    common = dict(depth=2, hosts=["tcg", "power9-linux-4.19", "power9-linux-5.10"],
                  guests=["linux-xive"], configs=[DUAL], jobs=1)
    assert details(check(qemu="4.2", **common)) == details(check(qemu="5.0", **common))
    assert not [f for f in check(qemu="4.2", depth=1, hosts=["power9-linux-4.19"],
                                 guests=["linux-legacy"], configs=[DUAL], jobs=1).findings
                if f.sequence == ["start", "reset"]]


def test_qemu_5_0_and_5_2_differ_only_in_the_broken_disconnect_text():
    from spapr_irq.check.compare import compare

    differences, _a, _b = compare("5.0", "5.2", depth=1, hosts=["power9-linux-4.19"],
                                  guests=["linux-xive"], jobs=1)
    assert differences
    for d in differences:
        assert d.broken[0] == d.broken[1]
        assert "KVM is too old" in d.boot[0] and "KVM is incompatible" in d.boot[1]


def test_qemu_7_2_and_10_1_break_the_same_guarantees_on_kvm_hosts():
    """Their interrupt code is the same. Under TCG they differ in the CPU a guest gets (7.2's
    pseries-7.2 runs a POWER9, 10.1's pseries-10.1 a POWER10), so only 7.2's TCG guest can move
    to and from the POWER9 hosts, and meets the emulated XICS's migration findings there."""
    common = dict(depth=2, hosts=["power9-linux-4.19", "power9-linux-5.10"],
                  guests=["linux-xive"], configs=space_configs()[:6], jobs=1)
    assert details(check(qemu="7.2", **common)) == details(check(qemu="10.1", **common))
    common["hosts"] = common["hosts"] + ["tcg"]
    extra = details(check(qemu="7.2", **common)) - details(check(qemu="10.1", **common))
    assert extra and all("XICS emulated" in detail for _g, detail in extra)


# --- the engine itself ----------------------------------------------------------------------------------

def test_exploration_is_deterministic_and_jobs_change_nothing_but_time():
    common = dict(depth=2, hosts=["tcg", "power9-linux-4.19"], guests=["linux-legacy"],
                  configs=[DUAL, XICS])
    one, two = check(jobs=1, **common), check(jobs=2, **common)
    assert (one.states, one.transitions) == (two.states, two.transitions)
    assert [f.as_dict() for f in one.findings] == [f.as_dict() for f in two.findings]


def test_every_finding_is_reached_by_a_sequence_no_longer_than_the_depth_plus_start():
    result = check(depth=2, hosts=["power9-linux-4.19", "tcg"], guests=["linux-xive"], jobs=1,
                   configs=[DUAL])
    assert result.findings
    assert all(len(f.sequence) <= 3 and f.sequence[0].startswith("start")
               for f in result.findings)


def test_faults_none_explores_fewer_states_than_last_and_last_fewer_than_any():
    unit = Unit(XIVE, "linux-xive", "10.1", ("power9-linux-5.10",))
    sizes = [explore_unit(unit, 2, mode).states for mode in ("none", "last", "any")]
    assert sizes[0] < sizes[1] < sizes[2]


def test_a_migration_goes_only_to_hosts_giving_the_guest_the_same_cpu():
    r = run(DUAL, "power9-linux-5.10", ["boot"])
    from spapr_irq.check.engine import _Explorer

    explorer = _Explorer(Unit(DUAL, "linux-xive", "10.1", tuple(PRESETS)), 1, "none")
    for host in PRESETS:
        explorer.guest_cpus[host] = explorer._guest_cpu(host)
    targets = explorer._migration_targets(r, (START,))
    assert "power9-linux-4.19" in targets and "power9-nested-linux-5.4" in targets
    assert not {"tcg", "power8-linux-4.19", "power10-linux-6.6"} & set(targets)
    assert explorer._migration_targets(r, (START, Event("migrate", "power9-linux-5.2"))) == ()


def test_a_fault_is_an_event_attribute_with_a_readable_name():
    assert str(Fault("enable_cap", errno.EIO, 2)) == "enable_cap=EIO#2"
