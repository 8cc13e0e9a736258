"""QEMU releases as data: 7.2 reproduced as the real binary behaves, the newest as the default."""

from __future__ import annotations

import pytest

from spapr_irq.config import parse_options
from spapr_irq.errors import ConfigError
from spapr_irq.machine.machine import Machine
from spapr_irq.releases import DEFAULT_RELEASE, RELEASES, get_release


def test_qemu_7_2_machine_types_are_2_1_to_7_2_with_2_12_sxxm():
    names = set(get_release("7.2").machine_types())
    assert {"pseries", "pseries-2.1", "pseries-2.12-sxxm", "pseries-3.1", "pseries-7.2"} <= names
    assert "pseries-8.0" not in names and "pseries-2.0" not in names
    assert len(names) == 12 + 1 + 2 + 3 + 3 + 3 + 3 + 1  # 2.x, sxxm, 3.x..7.x, "pseries"


def test_pseries_is_the_newest_machine_of_the_release():
    assert parse_options("-M pseries", qemu="7.2").machine_type == "pseries-7.2"
    assert parse_options("-M pseries").machine_type == f"pseries-{RELEASES[DEFAULT_RELEASE].latest[0]}.1"


@pytest.mark.parametrize("machine, cpu", [("pseries-2.7", "power7_v2.3"), ("pseries-3.1", "power8_v2.0"),
                                          ("pseries-4.0", "power9_v2.0"), ("pseries", "power9_v2.0")])
def test_qemu_7_2_default_cpu_per_machine_version(machine, cpu):
    assert parse_options(f"-M {machine}", qemu="7.2").cpu == cpu


def test_power9_v2_2_does_not_exist_in_qemu_7_2_and_power9_names_v2_0():
    with pytest.raises(ConfigError) as info:
        parse_options("-cpu power9_v2.2", qemu="7.2")
    assert info.value.text == "unable to find CPU model 'power9_v2.2'"
    assert parse_options("-cpu POWER9", qemu="7.2").cpu == "power9_v2.0"
    assert parse_options("-cpu POWER9").cpu == "power9_v2.2"


def test_pseries_2_12_sxxm_is_named_as_given_and_follows_2_12():
    config = parse_options("-M pseries-2.12-sxxm", qemu="7.2")
    assert (config.machine_type, config.version, config.ic_mode) == ("pseries-2.12-sxxm", (2, 12), "legacy")


@pytest.mark.parametrize("smp, text", [
    ("2,dies=2", "dies not supported by this machine's CPU topology"),
    ("2,clusters=2", "clusters not supported by this machine's CPU topology"),
    ("2,books=1", "Parameter 'smp.books' is unexpected"),
    ("2,modules=2", "Parameter 'smp.modules' is unexpected"),
])
def test_qemu_7_2_smp_texts(smp, text):
    with pytest.raises(ConfigError) as info:
        parse_options(f"-smp {smp}", qemu="7.2")
    assert info.value.text == text


def test_qemu_7_2_warns_about_a_zero_smp_member_and_goes_on():
    config = parse_options("-smp 2,maxcpus=0", qemu="7.2")
    assert config.warnings == ("Deprecated CPU topology (considered invalid): CPU topology "
                               "parameters must be greater than zero",)
    machine = Machine.create(config, host="tcg")
    assert machine.warnings[0] == config.warnings[0] and len(machine.vcpus) == 2
    with pytest.raises(ConfigError):
        parse_options("-smp 2,maxcpus=0")


def test_tcg_smt_is_refused_in_7_2_and_allowed_on_power8_in_the_newest():
    from spapr_irq.errors import MachineError

    with pytest.raises(MachineError) as info:
        Machine.create(parse_options("-cpu POWER9 -smp 2,threads=2", qemu="7.2"), host="tcg")
    assert info.value.text == "TCG cannot support more than 1 thread/core on a pseries machine"
    assert len(Machine.create(parse_options("-cpu POWER9 -smp 2,threads=2"), host="tcg").vcpus) == 2


def test_an_unknown_release_is_bad_input():
    with pytest.raises(ConfigError) as info:
        parse_options("", qemu="6.6")
    assert "unknown QEMU release '6.6'" in info.value.text


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_each_release_says_what_it_changes_and_the_text_matches_its_data(version):
    release = RELEASES[version]
    text = "\n".join(release.changes)
    assert ("TCG refuses threads > 1" in text) == (release.tcg_smt == "refused")
    assert ("zero member is refused" in text) == (release.smp_zero == "invalid")
    assert release.pseries_name in text
    assert all(cpu in text for _last, cpu in release.default_cpus[2:])


def test_the_releases_command_lists_every_release_and_marks_the_default(capsys):
    from spapr_irq.cli import main

    assert main(["releases"]) == 0
    out = capsys.readouterr().out
    assert f"QEMU {DEFAULT_RELEASE} (default)" in out
    for version, release in RELEASES.items():
        assert f"QEMU {version}" in out and all(f"  - {c}" in out for c in release.changes)
