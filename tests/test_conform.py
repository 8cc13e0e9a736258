"""spapr-irq conform: recorded real runs compared with the model, the comparison itself, and real
boots of QEMU when it and the guest are installed (`make conform-setup`; CI installs them)."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spapr_irq.conform.cases import Case, default_cases, load_cases
from spapr_irq.conform.compare import differences, observe_model, observe_run
from spapr_irq.conform.guest import BEGIN, END, INIT, build_initramfs, parse_report
from spapr_irq.conform.qemu import Run, _stderr_lines
from spapr_irq.errors import InputError

DATA = Path(__file__).parent / "data" / "conform"
RECORDED = sorted(DATA.glob("*.json"))
CASES = {case.name: case for case in default_cases()}


def recorded(path: Path) -> Run:
    return Run.from_dict(json.loads(path.read_text()))


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_recorded_real_qemu_7_2_run_agrees_with_the_model(path):
    run = recorded(path)
    assert differences(observe_run(run), observe_model(CASES[run.case], "7.2")) == []


def test_recorded_runs_hold_qmp_transcripts_of_the_real_binary():
    run = recorded(DATA / "dual-reset.json")
    commands = [step["execute"] for step in run.transcript]
    assert commands[:3] == ["qom-get", "human-monitor-command", "cont"]
    assert "system_reset" in commands and commands[-1] == "quit"
    assert len(run.console) == len(run.pic_post) == 2


@pytest.mark.parametrize("change, expected", [
    (lambda r: replace(r, ic_mode="xics"), "ic-mode property: QEMU 'xics', model 'xive'"),
    (lambda r: replace(r, pic_pre=r.pic_pre.replace("00001203 LSI", "00001203 MSI")),
     "info pic before CAS"),
    (lambda r: replace(r, console=[c.replace("XIVE-IRQ", "XICS").replace("XIVE-IPI", "XICS")
                                   for c in r.console]), "boot 1 mode: QEMU 'xics', model 'xive'"),
    (lambda r: replace(r, warnings=["kernel_irqchip allowed but unavailable"]), "warnings:"),
    (lambda r: replace(r, status=1, errors=["boom"]), "exit status: QEMU 1, model 0"),
])
def test_the_comparison_reports_each_kind_of_difference(change, expected):
    run = change(recorded(DATA / "7.2-power9-xive.json"))
    found = differences(observe_run(run), observe_model(CASES["7.2-power9-xive"], "7.2"))
    assert any(line.startswith(expected) for line in found), found


def test_a_refusal_is_compared_by_status_and_text():
    run = recorded(DATA / "refuse-htm.json")
    assert (run.status, run.errors) == (1, ["No Transactional Memory support in TCG",
                                            "Try appending -machine cap-htm=off"])
    model = observe_model(CASES["refuse-htm"], "7.2")
    assert (model.status, model.error) == (1, "\n".join(run.errors))
    other = observe_model(Case("x", ("-M", "pseries-2.11,cap-htm=off", "-cpu", "POWER8")), "7.2")
    assert differences(observe_run(run), other)[0] == "exit status: QEMU 1, model 0"


def test_stderr_keeps_errors_and_warnings_and_drops_only_the_tcg_capability_warnings():
    text = ("qemu-system-ppc64: warning: TCG doesn't support requested feature, cap-cfpc=workaround\n"
            "qemu-system-ppc64: warning: kernel_irqchip allowed but unavailable\n"
            "qemu-system-ppc64: No Transactional Memory support in TCG\n"
            "Try appending -machine cap-htm=off\n")
    assert _stderr_lines(text) == (["No Transactional Memory support in TCG",
                                    "Try appending -machine cap-htm=off"],
                                   ["kernel_irqchip allowed but unavailable"])


def test_the_guest_report_names_mode_node_and_chips():
    report = parse_report(recorded(DATA / "7.2-power9-dual-xiveoff.json").console[0])
    assert report["mode"] == "xics" and report["dt_nodes"] == ["interrupt-controller"]
    assert report["dt_compatible"] == ["IBM,ppc-xicp"]
    assert parse_report("no marker") is None


def test_the_initramfs_is_a_newc_archive_with_busybox_and_init(tmp_path):
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF-not-really")
    build_initramfs(busybox, tmp_path / "initrd.gz")
    data = gzip.decompress((tmp_path / "initrd.gz").read_bytes())
    assert data.startswith(b"070701") and b"TRAILER!!!" in data
    assert b"bin/busybox\0" in data and INIT.encode() in data
    assert BEGIN in INIT and END in INIT


def test_the_default_case_set_covers_what_the_issue_names():
    cases = default_cases()
    assert len(cases) >= 40 and len(CASES) == len(cases)
    names = " ".join(CASES)
    for needed in ("xics", "xive", "dual", "xiveoff", "refuse", "reset", "legacy"):
        assert needed in names
    assert len({case.options[1].split(",")[0] for case in cases}) >= 8  # machine types


@given(st.text(max_size=200))
def test_a_malformed_case_file_is_refused_clearly(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cases") / "cases.toml"
    path.write_text(text)
    try:
        cases = load_cases(path)
    except InputError as exc:
        assert str(path) in exc.text
    else:
        assert cases and all(isinstance(case, Case) for case in cases)


def test_a_case_file_is_read(tmp_path):
    path = tmp_path / "cases.toml"
    path.write_text('[[case]]\nname = "x"\noptions = "-M pseries,ic-mode=xive -cpu POWER9"\n'
                    'append = "xive=off"\nreset = true\n')
    assert load_cases(path) == [Case("x", ("-M", "pseries,ic-mode=xive", "-cpu", "POWER9"),
                                     "xive=off", True)]
    path.write_text('[[case]]\nname = "x"\noptions = "-M pseries"\nbogus = 1\n')
    with pytest.raises(InputError, match="unknown key bogus"):
        load_cases(path)


# --- real boots ---------------------------------------------------------------------------------------

GUEST = Path(__file__).resolve().parent.parent / ".conform"
BINARY = shutil.which("qemu-system-ppc64")
INSTALLED = BINARY is not None and (GUEST / "vmlinux").is_file() and (GUEST / "initrd.gz").is_file()
REAL = ["7.2-power9-xics", "7.2-power9-xive", "7.2-power9-dual", "7.2-power9-dual-xiveoff",
        "refuse-legacy-ic-mode", "dual-reset", "migrate-dual-to-xics", "migrate-xics-to-dual"]


def test_ci_has_the_real_qemu_and_guest():
    """CI installs them (make conform-setup in .ci/run): the real boots below must not be skipped."""
    if os.environ.get("CI") == "true":
        assert INSTALLED, "make conform-setup did not install QEMU and the guest"


@pytest.mark.skipif(not INSTALLED, reason="needs make conform-setup (QEMU and the guest)")
@pytest.mark.skipif(os.environ.get("SPAPR_IRQ_SKIP_REAL_BOOTS") == "1",
                    reason="tools/mutants.py: edits of the model, not of QEMU")
def test_real_qemu_agrees_with_the_model_on_boots_a_reset_a_refusal_and_migrations():
    from spapr_irq.conform.session import qemu_release, run_cases

    version, release = qemu_release(BINARY)
    results = asyncio.run(run_cases(BINARY, release, [CASES[name] for name in REAL],
                                    GUEST / "vmlinux", GUEST / "initrd.gz", jobs=2))
    assert {r.case.name: r.diffs for r in results} == {name: [] for name in REAL}
    # 4 single boots, the reset case twice, each migration's source once; 1 refusal
    assert sum(r.booted for r in results) == 8


def test_kvm_conformance_needs_a_power_host(monkeypatch):
    from spapr_irq.conform import session

    assert session.host_for("tcg") == "tcg"
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    with pytest.raises(InputError, match="needs a POWER host running KVM; this machine is x86_64"):
        session.host_for("kvm")


def test_kvm_capabilities_are_none_without_a_kvm_device(tmp_path):
    from spapr_irq.conform.session import kvm_capabilities

    assert kvm_capabilities(str(tmp_path / "no-kvm")) == {92: None, 169: None}


def test_a_binary_that_is_not_qemu_is_bad_input(tmp_path):
    from spapr_irq.conform.session import qemu_release

    fake = tmp_path / "qemu"
    fake.write_text("#!/bin/sh\necho 'QEMU emulator version 6.1.0'\n")
    fake.chmod(0o755)
    with pytest.raises(InputError, match=r"is QEMU 6.1.0: this model reproduces QEMU 4.0, 4.1, 4.2, "
                       r"5.0, 5.2, 7.2, 10.1, 6.2-rhel8$"):
        qemu_release(str(fake))
    fake.write_text("#!/bin/sh\necho hello\n")
    with pytest.raises(InputError, match="not a QEMU binary"):
        qemu_release(str(fake))


def test_rhel_8s_qemu_kvm_binary_is_the_rhel_build_and_an_upstream_6_2_is_not_modeled(tmp_path):
    from spapr_irq.conform.session import qemu_release

    fake = tmp_path / "qemu-kvm"
    fake.write_text("#!/bin/sh\necho 'QEMU emulator version 6.2.0 "
                    "(qemu-kvm-6.2.0-40.module+el8.10.0+21455+74a0f8a8)'\n")
    fake.chmod(0o755)
    assert qemu_release(str(fake)) == ("6.2.0", "6.2-rhel8")
    fake.write_text("#!/bin/sh\necho 'QEMU emulator version 6.2.0 (Debian 1:6.2+dfsg-2ubuntu6)'\n")
    with pytest.raises(InputError, match="is QEMU 6.2.0"):
        qemu_release(str(fake))


def test_the_model_reads_the_whole_command_line_the_runner_gives_qemu():
    """-nodefaults drops the default serial port, but the runner's -serial file: is a port: QEMU
    has a vty and the NVRAM (0x1100, 0x1101) and no NIC or CD-ROM; so does the prediction."""
    model = observe_model(Case("x", ("-M", "pseries,ic-mode=xics", "-cpu", "POWER9", "-nodefaults")),
                          "7.2")
    lines = model.pic_pre.splitlines()
    assert [line.split()[0] for line in lines if line.startswith("  1")] == \
        ["1000", "1001", "1100", "1101", "1200", "1201", "1202", "1203"]


def test_recorded_migrations_carry_the_destinations_answer():
    refused = recorded(DATA / "migrate-dual-to-xics.json")
    assert refused.dst_status == 1 and refused.dst_errors[0].startswith(
        "Unknown savevm section or instance 'xive-source' 0.")
    loaded = recorded(DATA / "migrate-dual-to-dual.json")
    assert loaded.dst_status is None and loaded.dst_pic.startswith("CPU[0000]:")
    changed = replace(loaded, dst_pic=loaded.dst_pic.replace("80000401", "80000402"))
    found = differences(observe_run(changed), observe_model(CASES["migrate-dual-to-dual"], "7.2"))
    assert found and found[0].startswith("info pic after the migration differs")
