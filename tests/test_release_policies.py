"""The interrupt-controller code of older QEMU releases, each rule as spec/qemu.md 2.4, 3.3 and
4.2-4.3 reads it, and the rejected 2019 patch as a variant of 4.1."""

from __future__ import annotations

import pytest

from spapr_irq import Machine, MachineError, papr
from spapr_irq.config import parse_options
from spapr_irq.releases import RELEASES


def machine(options: str, host: str, qemu: str) -> Machine:
    m = Machine(parse_options(options, qemu=qemu), __import__("spapr_irq").PRESETS[host])
    m.start()
    return m


def refusal(options: str, host: str, qemu: str) -> str:
    with pytest.raises(MachineError) as info:
        machine(options, host, qemu)
    return info.value.text


def rules(m: Machine) -> list[str]:
    return [step.rule for step in m.trace if step.rule]


# --- 4.0 ----------------------------------------------------------------------------------------

def test_qemu_4_0_has_no_kvm_support_for_the_dual_machine_unless_kernel_irqchip_is_off():
    assert refusal("-M pseries,ic-mode=dual", "power9-linux-5.10", "4.0") == \
        "No KVM support for the 'dual' machine"
    assert refusal("-M pseries,ic-mode=dual,kernel-irqchip=on", "power9-linux-5.10", "4.0") == \
        "No KVM support for the 'dual' machine"
    m = machine("-M pseries,ic-mode=dual,kernel-irqchip=off", "power9-linux-5.10", "4.0")
    assert (m.interrupt_mode, m.backend) == ("xics", "emulated")


def test_qemu_4_0_refuses_kernel_irqchip_on_with_xive_and_emulates_xive_otherwise_silently():
    assert refusal("-M pseries,ic-mode=xive,kernel-irqchip=on", "power9-linux-5.10", "4.0") == \
        "kernel_irqchip requested. no KVM XIVE support"
    m = machine("-M pseries,ic-mode=xive", "power9-linux-5.10", "4.0")
    assert (m.interrupt_mode, m.backend, m.warnings) == ("xive", "emulated", [])


def test_qemu_4_0_falls_back_to_the_emulated_xics_without_a_word():
    from spapr_irq.host.faults import FaultPlan
    import errno

    plan = FaultPlan()
    plan.fail(errno.ENOMEM, call="create_device")
    m = Machine(parse_options("-M pseries", qemu="4.0"),
                __import__("spapr_irq").PRESETS["power9-linux-5.10"], plan)
    m.start()
    assert (m.interrupt_mode, m.backend, m.warnings) == ("xics", "emulated", [])


def test_qemu_4_0_pseries_is_pseries_4_0_whose_default_mode_is_xics():
    config = parse_options("-M pseries", qemu="4.0")
    assert (config.machine_type, config.ic_mode) == ("pseries-4.0", "xics")
    assert "pseries-4.1" not in RELEASES["4.0"].machine_types()


def test_qemu_4_0_takes_any_interrupt_mode_at_cas():
    """No "invalid" or "unavailable" checks yet: a guest asking for both modes gets the
    intersection (XICS), one asking for XICS on a XIVE-only machine stays in XIVE."""
    m = machine("-M pseries,ic-mode=dual", "tcg", "4.0")
    m.cas(0, papr.ov5_with(papr.OV5_INTC_BYTE, papr.OV5_XIVE_BOTH))
    assert m.interrupt_mode == "xics"
    m = machine("-M pseries,ic-mode=xive", "tcg", "4.0")
    m.cas(0, papr.ov5_with(papr.OV5_INTC_BYTE, papr.OV5_XIVE_LEGACY))
    assert m.interrupt_mode == "xive"


# --- 4.1 ----------------------------------------------------------------------------------------

def test_qemu_4_1_creates_the_kvm_device_at_the_first_reset_not_at_init():
    m = machine("-M pseries,ic-mode=xics", "power9-linux-5.10", "4.1")
    steps = [s.step for s in m.trace]
    reset = steps.index("reset")
    connect = next(i for i, s in enumerate(m.trace) if s.step == "backend" and "in-kernel" in
                   s.detail)
    assert connect > reset and m.backend == "kvm"


def test_qemu_4_1_destroys_and_recreates_the_kvm_devices_at_every_dual_reset():
    """spapr_irq_reset_dual: on a POWER9 Linux 4.19 the XICS-on-XIVE device cannot be created
    twice in a VM, so the second reset falls back to the emulated XICS (spec 4.3)."""
    m = machine("-M pseries,ic-mode=dual", "power9-linux-4.19", "4.1")
    assert m.backend == "kvm"
    m.reset()
    assert "dual-reset-recreate" in rules(m)
    assert m.backend == "emulated"
    assert m.warnings[-1].startswith("kernel_irqchip allowed but unavailable: Error on "
                                     "KVM_CREATE_DEVICE for XICS: File exists")


def test_qemu_4_1_to_5_1_word_the_broken_disconnect_refusal_as_kvm_too_old_without_hints():
    for qemu in ("4.1", "4.2", "5.0"):
        assert refusal("-M pseries,ic-mode=dual,kernel-irqchip=on", "power9-linux-4.19", qemu) == \
            "KVM is too old to support ic-mode=dual,kernel-irqchip=on"
    assert refusal("-M pseries,ic-mode=dual,kernel-irqchip=on", "power9-linux-4.19", "5.2") == (
        "KVM is incompatible with ic-mode=dual,kernel-irqchip=on\n"
        "This can happen with an old KVM or in a KVM nested guest.\n"
        "Try without kernel-irqchip or with kernel-irqchip=off.")


@pytest.mark.parametrize("qemu, refused", [("4.0", True), ("4.1", True), ("4.2", True),
                                           ("5.0", False), ("7.2", False)])
def test_kernel_irqchip_on_under_tcg_is_refused_until_it_moved_to_the_accelerator(qemu, refused):
    options = "-M pseries,kernel-irqchip=on -accel tcg"
    if refused:
        assert refusal(options, "tcg", qemu) == \
            "kernel_irqchip requested but only available with KVM"
    else:
        assert machine(options, "tcg", qemu).backend == "emulated"


@pytest.mark.parametrize("qemu, refused", [("4.2", True), ("5.0", False)])
def test_split_is_refused_under_tcg_only_while_kernel_irqchip_belongs_to_the_machine(qemu, refused):
    options = "-M pseries,kernel-irqchip=split -accel tcg"
    if refused:
        assert refusal(options, "tcg", qemu) == "kernel_irqchip split mode not supported on pseries"
    else:
        assert machine(options, "tcg", qemu).backend == "emulated"


# --- CAS reboot (4.0-4.2) -------------------------------------------------------------------------

@pytest.mark.parametrize("qemu, reboots", [("4.1", True), ("4.2", True), ("5.0", False),
                                           ("10.1", False)])
def test_xive_newly_negotiated_on_a_dual_machine_reboots_through_cas_until_5_0(qemu, reboots):
    m = machine("-M pseries,ic-mode=dual", "tcg", qemu)
    m.boot("linux-xive")
    assert m.interrupt_mode == "xive"
    assert ("cas-reboot" in rules(m)) == reboots
    assert sum(s.step == "cas" and "guest asks" in s.detail for s in m.trace) == (2 if reboots else 1)


def test_a_cas_reboot_keeps_the_cas_result_and_the_second_cas_does_not_reboot_again():
    m = machine("-M pseries,ic-mode=dual", "power9-linux-5.10", "4.2")
    m.boot("linux-xive")
    assert rules(m).count("cas-reboot") == 1
    assert (m.interrupt_mode, m.backend) == ("xive", "kvm")
    assert papr.ov5_byte(m.ov5_cas, papr.OV5_INTC_BYTE) & papr.OV5_XIVE_EXPLOIT


# --- NR_SERVERS (5.0+) ------------------------------------------------------------------------------

@pytest.mark.parametrize("qemu, sets", [("4.2", False), ("5.0", True), ("10.1", True)])
def test_qemu_sets_nr_servers_in_kvm_from_5_0(qemu, sets):
    m = machine("-M pseries,ic-mode=xive -smp 2,maxcpus=4", "power9-linux-5.10", qemu)
    assert any(call.startswith("set_attr(") and call.endswith(", 1, 0x3)") for call in m.kvm.calls) == sets


# --- the rejected patch ----------------------------------------------------------------------------

def test_kurz_2019_turns_dual_into_xics_when_kvm_lacks_xive_whatever_kernel_irqchip():
    """Greg Kurz's patch, appended to spapr_irq_check: kvm_enabled() && !kvmppc_has_cap_xive()
    makes dual the XICS backend (spec 3.4)."""
    for irqchip in ("", ",kernel-irqchip=off"):
        m = machine(f"-M pseries,ic-mode=dual{irqchip}", "power9-linux-4.19", "4.1+kurz-2019")
        assert (m.mode, m.advertised_mode) == ("xics", "xics")
    m = machine("-M pseries,ic-mode=dual", "power9-linux-5.10", "4.1+kurz-2019")
    assert m.advertised_mode == "dual"
    assert machine("-M pseries,ic-mode=dual", "power9-linux-4.19", "4.1").advertised_mode == "dual"


def test_the_variant_is_4_1_with_the_patch_and_not_a_real_binary():
    variant, base = RELEASES["4.1+kurz-2019"], RELEASES["4.1"]
    assert variant.base == "4.1" and base.base is None
    assert variant.machine_versions == base.machine_versions
    assert variant.irq.init_checks == base.irq.init_checks + ("dual-xics-without-kvm-xive",)


@pytest.mark.parametrize("qemu, limit", [("4.0", 1024), ("5.2", 1024), ("7.2", 4096),
                                         ("10.1", 4096)])
def test_maxcpus_is_limited_by_the_machine_class_of_each_release(qemu, limit):
    from spapr_irq.errors import ConfigError

    assert parse_options(f"-smp 1,maxcpus={limit}", qemu=qemu).max_cpus == limit
    with pytest.raises(ConfigError) as info:
        parse_options(f"-smp 1,maxcpus={limit + 1}", qemu=qemu)
    machine_type = parse_options("", qemu=qemu).machine_type
    assert info.value.text == (f"Invalid SMP CPUs {limit + 1}. The max CPUs supported by "
                               f"machine '{machine_type}' is {limit}")


def test_the_old_releases_refuse_smp_members_they_are_not_modeled_for_plainly():
    for options in ("-smp 2,dies=1", "-smp 0,maxcpus=2"):
        with pytest.raises(NotImplementedError) as info:
            parse_options(options, qemu="4.2")
        assert "QEMU 4.2" in str(info.value) and "not modeled" in str(info.value)


def test_machine_create_takes_the_release_to_model():
    with pytest.raises(MachineError) as info:
        Machine.create("-M pseries,ic-mode=dual", host="power9-linux-5.10", qemu="4.0")
    assert info.value.text == "No KVM support for the 'dual' machine"
    m = Machine.create("-M pseries", host="tcg", qemu="7.2")
    assert (m.config.qemu, m.config.machine_type) == ("7.2", "pseries-7.2")
    from spapr_irq.errors import ConfigError

    with pytest.raises(ConfigError):
        Machine.create(parse_options("", qemu="7.2"), host="tcg", qemu="10.1")
