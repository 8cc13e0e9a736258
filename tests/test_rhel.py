"""RHEL 8's qemu-kvm (release 6.2-rhel8): its pseries-rhel machine types, each following an
upstream version, chosen by itself when a pasted command line names one."""

from __future__ import annotations

import pytest

from spapr_irq.cli import main
from spapr_irq.config import parse_options
from spapr_irq.errors import ConfigError
from spapr_irq.explore import resolve
from spapr_irq.releases import RELEASES, RHEL8_MACHINES, release_for_machine

RHEL = "6.2-rhel8"

#: A libvirt log line from a RHEL 8.10 POWER9 host (libvirt 8.0 writes dies=1 and the memory
#: backend; the program is /usr/libexec/qemu-kvm).
RHEL_LOG = (
    "LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin "
    "HOME=/var/lib/libvirt/qemu/domain-3-rhel8 QEMU_AUDIO_DRV=none /usr/libexec/qemu-kvm "
    "-name guest=rhel8,debug-threads=on -S "
    "-object secret,id=masterKey0,format=raw,file=/var/lib/libvirt/qemu/domain-3-rhel8/master-key.aes "
    "-machine pseries-rhel8.6.0,accel=kvm,usb=off,dump-guest-core=off,memory-backend=ppc_spapr.ram "
    "-cpu POWER9 -m 4096 -object memory-backend-ram,id=ppc_spapr.ram,size=4294967296 "
    "-overcommit mem-lock=off -smp 4,sockets=4,dies=1,cores=1,threads=1 "
    "-uuid 5b0c3d5e-7f4e-4d3a-9a55-0f7c8f2b1c11 -display none -no-user-config -nodefaults "
    "-chardev socket,id=charmonitor,fd=31,server=on,wait=off "
    "-mon chardev=charmonitor,id=monitor,mode=control -rtc base=utc -no-shutdown -boot strict=on "
    "-device qemu-xhci,p2=15,p3=15,id=usb,bus=pci.0,addr=0x2 "
    "-device virtio-scsi-pci,id=scsi0,bus=pci.0,addr=0x3 "
    "-chardev pty,id=charserial0 -device spapr-vty,chardev=charserial0,id=serial0,reg=0x30000000 "
    "-msg timestamp=on")


@pytest.mark.parametrize("machine, version, ic_mode, cpu", [
    ("pseries-rhel7.6.0", (3, 0), "legacy", "power8_v2.0"),
    ("pseries-rhel7.6.0-sxxm", (3, 0), "legacy", "power8_v2.0"),
    ("pseries-rhel8.0.0", (4, 0), "xics", "power8_v2.0"),
    ("pseries-rhel8.1.0", (4, 1), "dual", "power9_v2.0"),
    ("pseries-rhel8.2.0", (5, 0), "dual", "power9_v2.0"),
    ("pseries-rhel8.3.0", (5, 1), "dual", "power9_v2.0"),
    ("pseries-rhel8.4.0", (5, 2), "dual", "power9_v2.0"),
    ("pseries-rhel8.5.0", (6, 0), "dual", "power9_v2.0"),
    ("pseries-rhel8.6.0", (6, 2), "dual", "power9_v2.0"),
])
def test_each_rhel_machine_type_follows_its_upstream_version(machine, version, ic_mode, cpu):
    config = parse_options(f"-M {machine}", qemu=RHEL)
    assert (config.machine_type, config.version, config.ic_mode, config.cpu) == \
        (machine, version, ic_mode, cpu)


def test_the_table_is_every_machine_type_rhel_8_defines():
    assert set(RELEASES[RHEL].machine_types()) == {name for name, _v in RHEL8_MACHINES} | {"pseries"}


def test_pseries_in_rhel_8_is_pseries_rhel8_6_0_the_name_migration_carries():
    config = parse_options("-M pseries", qemu=RHEL)
    assert (config.machine_type, config.version) == ("pseries-rhel8.6.0", (6, 2))


def test_rhel_compiles_qemus_own_machine_types_out_with_qemus_refusal_and_a_note():
    with pytest.raises(ConfigError) as info:
        parse_options("-M pseries-6.2", qemu=RHEL)
    assert info.value.text == ("-M pseries-6.2: unsupported machine type\n"
                               "Use -machine help to list supported machines")
    assert "compiles QEMU's own pseries-X.Y types out" in info.value.note
    assert "pseries-rhel8.6.0" in info.value.note


def test_a_rhel_type_named_without_qemu_picks_rhels_qemu_kvm_and_says_so():
    config = parse_options("-machine type=pseries-rhel8.4.0,accel=kvm")
    assert (config.qemu, config.qemu_chosen_by, config.version) == (RHEL, "pseries-rhel8.4.0", (5, 2))
    outcome = resolve("-M pseries-rhel8.4.0", "power9-linux-5.10", "linux-xive")
    assert outcome.qemu == RHEL and "pseries-rhel8.4.0" in outcome.note


def test_the_last_machine_type_named_is_the_one_that_picks():
    assert parse_options("-M pseries-rhel8.6.0 -M pseries-7.2").qemu == "10.1"
    assert parse_options("-M pseries-7.2 -M pseries-rhel8.6.0").qemu == RHEL
    assert parse_options("-M pseries-rhel8.6.0 -M ic-mode=xics").qemu == RHEL


def test_a_release_named_on_purpose_is_kept_and_its_refusal_says_which_build_has_the_type():
    with pytest.raises(ConfigError) as info:
        parse_options("-M pseries-rhel8.6.0", qemu="7.2")
    assert info.value.text.startswith("-M pseries-rhel8.6.0: unsupported machine type")
    assert info.value.note == ("pseries-rhel8.6.0 is a machine type of RHEL's qemu-kvm: --qemu "
                               "6.2-rhel8 models it, and is chosen without --qemu")


@pytest.mark.parametrize("machine", ["pseries-rhel9.4.0", "pseries-rhel9.0.0"])
def test_no_qemu_kvm_defines_pseries_rhel9_and_the_note_says_why(machine):
    with pytest.raises(ConfigError) as info:
        parse_options(f"-M {machine}")
    assert info.value.message == f"-M {machine}: unsupported machine type"
    assert "RHEL 9 supports KVM hosts on x86-64, IBM Z and 64-bit ARM only" in info.value.note
    assert "end at pseries-rhel8.5.0" in info.value.note
    assert release_for_machine(machine).version == "10.1"


def test_a_rhel_type_rhel_8s_build_lacks_lists_the_ones_it_has():
    with pytest.raises(ConfigError) as info:
        parse_options("-M pseries-rhel7.5.0")
    assert "defines pseries-rhel7.6.0, pseries-rhel7.6.0-sxxm, pseries-rhel8.0.0" in info.value.note


def test_rhel_machine_types_take_at_most_384_cpus():
    assert parse_options("-M pseries-rhel8.6.0 -smp 384").max_cpus == 384
    with pytest.raises(ConfigError) as info:
        parse_options("-M pseries-rhel8.6.0 -smp 4,maxcpus=385")
    assert info.value.text == ("Invalid SMP CPUs 385. The max CPUs supported by machine "
                               "'pseries-rhel8.6.0' is 384")


def test_pseries_rhel7_6_0_is_legacy_xics_and_refuses_ic_mode():
    with pytest.raises(ConfigError) as info:
        parse_options("-M pseries-rhel7.6.0,ic-mode=xics")
    assert info.value.text == "This machine only uses the legacy XICS backend, don't pass ic-mode"


def test_pseries_rhel8_1_0_keeps_vsmt_8_like_4_1_and_8_2_0_takes_it_from_threads():
    assert parse_options("-M pseries-rhel8.1.0 -smp 2").vsmt == 8
    assert parse_options("-M pseries-rhel8.2.0 -smp 2").vsmt == 1


def test_a_rhel_machine_property_error_names_the_rhel_machine_class():
    with pytest.raises(ConfigError) as info:
        parse_options("-M pseries-rhel8.6.0,no-such-thing=1")
    assert info.value.text == "Property 'pseries-rhel8.6.0-machine.no-such-thing' not found"


def test_rhel_8s_smp_knows_dies_but_not_clusters_and_warns_about_a_zero():
    assert parse_options("-M pseries-rhel8.6.0 -smp 4,sockets=4,dies=1,cores=1,threads=1").smp_cpus == 4
    with pytest.raises(ConfigError) as info:
        parse_options("-M pseries-rhel8.6.0 -smp 4,dies=2")
    assert info.value.text == "dies not supported by this machine's CPU topology"
    with pytest.raises(ConfigError) as info:
        parse_options("-M pseries-rhel8.6.0 -smp 4,clusters=1")
    assert info.value.text == "Parameter 'smp.clusters' is unexpected"
    assert parse_options("-M pseries-rhel8.6.0 -smp 2,maxcpus=0").warnings


def test_a_rhel_8_libvirt_log_line_resolves_under_rhels_qemu_kvm(capsys):
    outcome = resolve(RHEL_LOG, "power9-linux-5.10", "linux-xive")
    assert (outcome.qemu, outcome.result, outcome.interrupt_mode, outcome.backend) == \
        (RHEL, "ok", "xive", "kvm")
    ignored = {item["option"] for item in outcome.ignored_options}
    assert "-machine usb=off" in ignored and "-machine memory-backend=ppc_spapr.ram" in ignored
    assert main(["resolve", "--host", "power9-linux-5.10", *RHEL_LOG.split()]) == 0
    captured = capsys.readouterr()
    assert "XIVE in-kernel (KVM); offered: dual; modeled: QEMU 6.2-rhel8" in captured.out
    assert "note: QEMU 6.2-rhel8 modeled: the options name pseries-rhel8.6.0" in captured.err


def test_a_rhel_domain_names_its_machine_type_and_resolves(tmp_path, capsys):
    domain = tmp_path / "rhel.xml"
    domain.write_text("<domain type='kvm'><vcpu>2</vcpu><os><type arch='ppc64le' "
                      "machine='pseries-rhel8.6.0'>hvm</type></os>"
                      "<cpu mode='host-model'><model>power8</model></cpu></domain>")
    assert main(["resolve", "--host", "power9-linux-5.10", "--domain", str(domain), "--json"]) == 0
    import json

    answer = json.loads(capsys.readouterr().out)
    assert (answer["qemu"], answer["interrupt_mode"], answer["backend"]) == (RHEL, "xics", "kvm")


def test_the_cli_refusal_of_a_rhel9_type_is_qemus_line_then_the_models_note(capsys):
    assert main(["matrix", "-M", "pseries-rhel9.4.0"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "spapr-irq: -M pseries-rhel9.4.0: unsupported machine type"
    assert err[1].startswith("spapr-irq: note: no qemu-kvm defines pseries-rhel9 machine types")


def test_the_full_check_space_uses_the_releases_own_legacy_machine():
    from spapr_irq.check.engine import space_configs

    assert any("pseries-rhel7.6.0 " in c for c in space_configs("full", RHEL))
    assert any("pseries-3.0 " in c for c in space_configs("full", "7.2"))
    assert not any("pseries-3.0" in c for c in space_configs("full", RHEL))


def test_rhel_8_answers_as_qemu_7_2_over_the_full_space_on_a_power9_host():
    """The same interrupt code and the same default CPU: the full space, its legacy machine
    paired by position (pseries-3.0 against pseries-rhel7.6.0), boots alike."""
    from spapr_irq.check.compare import compare

    differences, a, b = compare("7.2", RHEL, depth=0, hosts=["power9-linux-5.10"],
                                guests=["linux-legacy"], jobs=1, space="full")
    assert differences == [] and a.units == b.units == 24


def test_the_release_is_chosen_only_when_none_is_named_and_only_for_a_type_only_rhel_has():
    assert parse_options("-M pseries-rhel8.6.0", qemu=RHEL).qemu_chosen_by is None
    assert parse_options("-M pseries-7.2").qemu_chosen_by is None
    with pytest.raises(ConfigError) as info:
        parse_options("-M no-such-board")
    assert info.value.note is None


def test_a_version_the_release_has_no_type_for_is_refused_by_name():
    assert RELEASES[RHEL].name_of((3, 0)) == "pseries-rhel7.6.0"
    with pytest.raises(ConfigError, match="6.2-rhel8 has no machine type like pseries-2.12"):
        RELEASES[RHEL].name_of((2, 12))


def test_explain_says_why_rhels_qemu_kvm_was_modeled(capsys):
    assert main(["explain", "--host", "power9-linux-5.10", "-M", "pseries-rhel8.0.0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3:5] == ["modeled: QEMU 6.2-rhel8",
                          "note: QEMU 6.2-rhel8 modeled: the options name pseries-rhel8.0.0, a "
                          "machine type only it defines"]


def test_matrix_and_advise_name_the_release_they_modeled(capsys):
    assert main(["matrix", "--host", "tcg", "--guest", "linux-xive", "-M", "pseries-rhel8.4.0"]) == 0
    assert "  options: -M pseries-rhel8.4.0; modeled: QEMU 6.2-rhel8" in capsys.readouterr().out
    assert main(["matrix", "--host", "tcg", "--guest", "linux-xive", "--format", "markdown"]) == 0
    assert "; modeled: QEMU 10.1" in capsys.readouterr().out
    assert main(["advise", "--host", "tcg", "--host", "power9-linux-5.10", "-M",
                 "pseries-rhel8.6.0"]) == 0
    assert capsys.readouterr().out.endswith("\nmodeled: QEMU 6.2-rhel8\n")
    assert main(["advise", "--host", "tcg", "--host", "power9-linux-5.10", "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["qemu"] == "10.1"
