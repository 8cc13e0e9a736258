"""spapr_set_vsmt_mode: threads per core under TCG and KVM, the VSMT mode QEMU asks KVM for, and
what QEMU says when KVM refuses it (hw/ppc/spapr.c, target/ppc/kvm.c, Linux kvmhv_set_smt_mode)."""

from __future__ import annotations

import pytest

from conftest import P9, assert_clean, make, refused
from spapr_irq import Machine, MachineError
from spapr_irq.config import ConfigError, parse_options
from spapr_irq.host.host import parse_host
from spapr_irq.host.kvm import Kvm, host_capability
from spapr_irq.host.uapi import KVM_CAP_PPC_IRQ_XIVE, KVM_CAP_PPC_SMT, KVM_CAP_PPC_SMT_POSSIBLE

OLD_P8 = "kvm:cpu=power8,kernel=4.10"  # before KVM_ENABLE_CAP(KVM_CAP_PPC_SMT), Linux 4.13
NEW_P8 = "kvm:cpu=power8,kernel=4.19"


# --- the vsmt machine property ------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [("4", 4), ("010", 8), ("0x10", 16), ("+2", 2), (" 4", 4),
                                         ("0", 0), ("-0", 0)])
def test_vsmt_property_reads_like_qemus_string_visitor(text, value):
    assert parse_options(["-M", f"pseries,vsmt={text}"]).vsmt_user == value


@pytest.mark.parametrize("text, message", [
    ("x", "Parameter 'vsmt' expects integer"), ("1e3", "Parameter 'vsmt' expects integer"),
    ("08", "Parameter 'vsmt' expects integer"), ("", "Parameter 'vsmt' expects integer"),
    ("99999999999999999999", "Parameter 'vsmt' expects integer"),
    ("-1", "Parameter 'vsmt' expects uint32_t"), ("4294967296", "Parameter 'vsmt' expects uint32_t"),
])
def test_vsmt_property_bad_value_is_refused_with_qemus_text(text, message):
    with pytest.raises(ConfigError) as info:
        parse_options(["-M", f"pseries,vsmt={text}"])
    assert info.value.message == message


def test_vsmt_property_spaces_vcpu_ids_and_is_echoed_on_the_command_line():
    config = parse_options("-M pseries,vsmt=4 -smp 2,maxcpus=4")
    assert [config.vcpu_id(i) for i in range(4)] == [0, 4, 8, 12]
    assert config.nr_servers == 16
    assert "vsmt=4" in config.command_line()


def test_vsmt_zero_is_the_machine_default():
    assert parse_options("-M pseries-4.1,vsmt=0 -smp 2").vsmt == 8


# --- TCG -------------------------------------------------------------------------------------------------


def test_tcg_runs_smt_on_power8_and_later():
    machine = make("-cpu power8 -smp 4,threads=4", host="tcg")
    assert machine.vcpus == [0, 1, 2, 3]


@pytest.mark.parametrize("options", ["-cpu power7 -smp 2,threads=2",
                                     f"-M pseries,max-cpu-compat=power7 {P9} -smp 2,threads=2"])
def test_tcg_smt_before_power8_is_refused(options):
    assert refused(options, host="tcg").text == "TCG only supports SMT on POWER8 or newer CPUs"


def test_tcg_power7_without_smt_is_accepted():
    assert make("-cpu power7 -smp 2", host="tcg").runstate != "shutdown"


def test_tcg_more_than_8_threads_is_refused():
    error = refused(f"{P9} -smp 16,threads=16", host="tcg")
    assert error.text == "TCG cannot support more than 8 threads/core on a pseries machine"


@pytest.mark.parametrize("host", ["tcg", "power9-linux-5.10"])
def test_threads_not_a_power_of_2_are_refused(host):
    error = refused(f"{P9} -smp 6,threads=6", host=host)
    assert error.text == ("Cannot support 6 threads/core on a pseries machine because it must be "
                          "a power of 2")


def test_user_vsmt_below_threads_is_refused():
    error = refused(f"-M pseries,vsmt=2 {P9} -smp 4,threads=4", host="tcg")
    assert error.text == "Cannot support VSMT mode 2 because it must be >= threads/core (4)"


def test_tcg_asks_kvm_nothing():
    machine = make("-M pseries,vsmt=3", host="tcg")  # any mode: TCG only spaces the ids
    assert machine.kvm is None and machine.warnings == []


# --- KVM -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host, smt, possible", [
    ("power9-linux-5.10", 1, 0b1111), (NEW_P8, 8, 0b1111), (OLD_P8, 8, 0),
])
def test_kvm_reports_its_smt_mode_and_the_modes_it_can_set(host, smt, possible):
    assert host_capability(parse_host(host), KVM_CAP_PPC_SMT) == smt
    assert host_capability(parse_host(host), KVM_CAP_PPC_SMT_POSSIBLE) == possible


def test_kvm_arch_init_reads_the_smt_capabilities_before_xive():
    kvm = Kvm(parse_host(NEW_P8))
    kvm.arch_init()
    assert kvm.calls == [f"check_extension({KVM_CAP_PPC_SMT_POSSIBLE})",
                         f"check_extension({KVM_CAP_PPC_SMT})", f"check_extension({KVM_CAP_PPC_IRQ_XIVE})"]
    assert (kvm.cap_ppc_smt_possible, kvm.cap_ppc_smt) == (0b1111, 8)


@pytest.mark.parametrize("host, mode, smt_mode, emul", [
    ("power9-linux-5.10", 4, 1, 4), (NEW_P8, 4, 4, 0), (NEW_P8, 1, 1, 0),  # esmt 0 on POWER8
])
def test_kvm_takes_the_vsmt_mode_power9_emulates_it_power8_runs_it(host, mode, smt_mode, emul):
    machine = make(f"-M pseries -smp {mode},threads={mode}", host=host)
    assert (machine.kvm.smt_mode, machine.kvm.emul_smt_mode) == (smt_mode, emul)
    assert ("vsmt", f"KVM's VSMT mode set to {mode} (vCPU ids spaced by {mode})") in [
        (step.step, step.detail) for step in machine.trace]


def test_kvm_already_in_the_vsmt_mode_is_not_asked():
    machine = make("-M pseries-4.1", host=NEW_P8)  # vsmt 8 == KVM's 8 threads per subcore
    assert not any(call.startswith("enable_vm_cap") for call in machine.kvm.calls)


def test_kvm_refusing_a_mode_it_divides_is_only_a_warning():
    machine = make(f"-M pseries,vsmt=16 {P9} -smp 2")
    assert machine.warnings == ["Failed to set KVM's VSMT mode to 16 (errno -22)"]
    assert machine.vcpus == [0, 16]
    assert machine.runstate != "shutdown"


def test_old_kvm_refusing_vsmt_1_stops_qemu_with_both_hints():
    error = refused("-M pseries", host=OLD_P8)
    assert error.message == "Failed to set KVM's VSMT mode to 1 (errno -22)"
    assert error.hints == (
        "On PPC, a VM with 1 threads/core on a host with 8 threads/core requires the use of "
        "VSMT mode 1.",
        "This KVM seems to be too old to support VSMT.")


def test_old_kvm_runs_a_machine_that_wants_its_own_mode():
    machine = make("-M pseries-4.1", host=OLD_P8)
    assert machine.warnings == [] and machine.runstate != "shutdown"
    assert_clean(machine)


def test_user_vsmt_refusal_lists_the_available_modes_without_the_default_hint():
    error = refused("-M pseries,vsmt=3 -smp 2", host=NEW_P8)
    assert error.message == "Failed to set KVM's VSMT mode to 3 (errno -22)"
    assert error.hints == ("Available VSMT modes: 8 4 2 1.",)


def test_vsmt_refusal_stops_before_the_interrupt_controller_and_leaves_nothing():
    machine = Machine(parse_options("-M pseries"), parse_host(OLD_P8))
    with pytest.raises(MachineError) as info:
        machine.start()
    assert info.value.stage == "init"
    assert machine.runstate == "shutdown"
    assert machine.xics is None and machine.xive is None
    assert_clean(machine)


def test_kvm_mode_below_threads_makes_a_refusal_fatal_even_when_it_divides():
    """POWER9 KVM runs in mode 1: a user's vsmt=16 with 2 threads/core cannot fall back to it."""
    error = refused(f"-M pseries,vsmt=16 {P9} -smp 2,threads=2")
    assert error.text == "Failed to set KVM's VSMT mode to 16 (errno -22)\nAvailable VSMT modes: 8 4 2 1."
