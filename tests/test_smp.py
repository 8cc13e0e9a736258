"""-smp as QEMU parses and completes it (spapr_irq.smp, hw/core/machine-smp.c), and the core
checks of spapr_init_cpus. The texts were checked on the real QEMU 7.2 where it agrees with the
newer QEMU this model follows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import P9, make, refused
from spapr_irq.config import parse_options
from spapr_irq.errors import ConfigError, InputError
from spapr_irq.smp import Topology, read_smp, topology


def smp_error(value: str, machine: str = "pseries") -> str:
    with pytest.raises(ConfigError) as info:
        parse_options(["-M", machine, "-smp", value])
    return info.value.message


# --- reading ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, given", [
    ("4", {"cpus": 4}), ("cpus=4", {"cpus": 4}), ("0x10", {"cpus": 16}), ("010", {"cpus": 8}),
    (" 4", {"cpus": 4}), ("+4", {"cpus": 4}), ("-1", {"cpus": -1}),
    ("4,maxcpus=8,threads=2", {"cpus": 4, "maxcpus": 8, "threads": 2}),
    ("cpus=2,cpus=4", {"cpus": 4}), ("sockets=2,cores=2", {"sockets": 2, "cores": 2}),
])
def test_smp_members_read_as_qemus_int64_visitor(value, given):
    assert read_smp(f"-smp {value}", value.split(",")) == given


@pytest.mark.parametrize("value, message", [
    ("four", "Parameter 'smp.cpus' expects integer"),
    ("4,maxcpus=lots", "Parameter 'smp.maxcpus' expects integer"),
    ("4,threads=2.0", "Parameter 'smp.threads' expects integer"),
    ("4,cores=x", "Parameter 'smp.cores' expects integer"),
    ("4,threads=", "Parameter 'smp.threads' expects integer"),
    ("9223372036854775808", "Parameter 'smp.cpus' expects integer"),
    ("4,foo=1", "Parameter 'smp.foo' is unexpected"),
    ("4,8", "-smp 4,8: Invalid parameter '8'"),
    ("4,threads", "-smp 4,threads: Expected '=' after parameter 'threads'"),
])
def test_smp_bad_member_is_refused_with_qemus_text(value, message):
    assert smp_error(value) == message


@given(st.text(alphabet="0123456789abcx=,+- ", max_size=24))
def test_smp_any_text_is_read_or_refused_as_input_error(value):
    try:
        config = parse_options(["-smp", value])
    except InputError as error:
        assert error.message
    else:
        assert 1 <= config.smp_cpus <= config.max_cpus <= 4096


def test_smp_options_merge_member_by_member():
    config = parse_options("-smp 4 -smp maxcpus=8")
    assert (config.smp_cpus, config.max_cpus) == (4, 8)


# --- completing the topology ------------------------------------------------------------------------------


@pytest.mark.parametrize("value, cpus, maxcpus, threads", [
    ("4", 4, 4, 1), ("maxcpus=8", 8, 8, 1), ("4,maxcpus=16,threads=2", 4, 16, 2),
    ("threads=2", 2, 2, 2), ("sockets=2,cores=2", 4, 4, 1), ("4,sockets=1,cores=4", 4, 4, 1),
    ("4294967297", 1, 1, 1),  # held in a C unsigned: 2**32 + 1 is 1
])
def test_smp_completes_cpus_maxcpus_and_threads(value, cpus, maxcpus, threads):
    config = parse_options(["-smp", value])
    assert (config.smp_cpus, config.max_cpus, config.threads) == (cpus, maxcpus, threads)


def test_no_smp_is_one_cpu():
    config = parse_options("")
    assert (config.smp_cpus, config.max_cpus, config.threads) == (1, 1, 1)


@pytest.mark.parametrize("prefer_sockets, expected", [
    (False, Topology(8, 1, 4, 2, 8)),  # pseries-6.2 and later: cores first
    (True, Topology(8, 4, 1, 2, 8)),   # pseries-6.1 and older: sockets first
])
def test_missing_levels_are_filled_cores_first_since_6_2(prefer_sockets, expected):
    assert topology({"cpus": 8, "threads": 2}, prefer_sockets, "pseries", 4096) == (expected, [])


@pytest.mark.parametrize("machine, value, hierarchy, maxcpus", [
    ("pseries", "3,threads=2", "sockets (1) * cores (1) * threads (2)", 3),
    ("pseries", "4,maxcpus=6,threads=4", "sockets (1) * cores (1) * threads (4)", 6),
    ("pseries", "4,threads=16", "sockets (1) * cores (0) * threads (16)", 4),
    ("pseries", "8,sockets=2,cores=3", "sockets (2) * cores (3) * threads (1)", 8),
    ("pseries-6.1", "7,threads=2", "sockets (3) * cores (1) * threads (2)", 7),
    ("pseries-6.2", "7,threads=2", "sockets (1) * cores (3) * threads (2)", 7),
])
def test_smp_product_not_matching_maxcpus_is_refused_with_the_hierarchy(machine, value, hierarchy,
                                                                        maxcpus):
    assert smp_error(value, machine) == (
        "Invalid CPU topology: product of the hierarchy must match maxcpus: "
        f"{hierarchy} != maxcpus ({maxcpus})")


def test_smp_maxcpus_below_cpus_is_refused_with_the_hierarchy():
    assert smp_error("4,maxcpus=2") == (
        "Invalid CPU topology: maxcpus must be equal to or greater than smp: "
        "sockets (1) * cores (2) * threads (1) == maxcpus (2) < smp_cpus (4)")


@pytest.mark.parametrize("value", ["0", "8,threads=0", "2,maxcpus=0", "cpus=0,maxcpus=4",
                                   "4,sockets=0", "4,dies=0"])
def test_smp_explicit_zero_is_refused(value):
    assert smp_error(value) == (
        "Invalid CPU topology: CPU topology parameters must be greater than zero")


@pytest.mark.parametrize("level", ["dies", "clusters", "books", "drawers", "modules"])
def test_smp_a_level_pseries_lacks_may_only_be_1(level):
    assert parse_options(["-smp", f"4,{level}=1"]).smp_cpus == 4
    assert smp_error(f"4,{level}=2") == f"{level} > 1 not supported by this machine's CPU topology"


def test_smp_unsupported_levels_are_refused_in_qemus_order():
    assert smp_error("4,dies=2,modules=2") == (
        "modules > 1 not supported by this machine's CPU topology")


def test_smp_4096_cpus_are_accepted_and_4097_refused_naming_the_version():
    assert parse_options("-smp 1,maxcpus=4096").max_cpus == 4096
    assert smp_error("1,maxcpus=4097") == (
        "Invalid SMP CPUs 4097. The max CPUs supported by machine 'pseries-10.1' is 4096")
    assert smp_error("4097", "pseries-5.0").endswith("machine 'pseries-5.0' is 4096")


@pytest.mark.parametrize("value", ["-1", "4,maxcpus=-1"])
def test_smp_minus_one_wraps_and_is_printed_as_qemu_prints_it(value):
    assert smp_error(value) == (
        "Invalid SMP CPUs -1. The max CPUs supported by machine 'pseries-10.1' is 4096")


# --- spapr_init_cpus ---------------------------------------------------------------------------------------


def test_boot_cpus_not_a_whole_number_of_cores_stop_the_machine():
    error = refused(f"{P9} -smp 3,maxcpus=4,threads=2", host="tcg")
    assert error.text == "smp_cpus (3) must be multiple of threads (2)"
    assert error.stage == "init"


def test_the_core_check_comes_after_vsmt_and_the_interrupt_controller():
    error = refused(f"-M pseries,vsmt=1 {P9} -smp 3,maxcpus=4,threads=2", host="tcg")
    assert error.text == "Cannot support VSMT mode 1 because it must be >= threads/core (2)"


def test_machines_before_2_7_have_no_room_for_hot_plugged_cpus():
    error = refused("-M pseries-2.6 -cpu power8 -smp 2,maxcpus=4", host="tcg")
    assert error.text == "This machine version does not support CPU hotplug"
    assert make("-M pseries-2.7,cap-htm=off -cpu power8 -smp 2,maxcpus=4", host="tcg").vcpus == [0, 8]
