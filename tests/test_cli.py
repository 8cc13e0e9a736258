"""The spapr-irq command: resolve, explain, matrix; exit statuses and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from spapr_irq.cli import main

P9 = ["-M", "pseries", "-cpu", "power9"]


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_resolve_json_has_every_field(capsys):
    status, out, _ = run(capsys, "resolve", *P9, "--host", "power9-linux-5.10", "--guest",
                         "linux-xive", "--json")
    answer = json.loads(out)
    assert status == 0
    assert set(answer) == {"qemu", "advertised", "result", "stage", "interrupt_mode", "backend",
                           "warnings", "error", "trace", "ignored_options", "note"}
    assert answer["qemu"] == "10.1"
    assert (answer["advertised"], answer["result"], answer["interrupt_mode"], answer["backend"]) == \
        ("dual", "ok", "xive", "kvm")
    assert answer["stage"] is None and answer["error"] is None and answer["warnings"] == []
    assert all(set(step) >= {"step", "detail"} for step in answer["trace"])


def test_resolve_json_reports_the_fallback_warning_without_prefix(capsys):
    _, out, _ = run(capsys, "resolve", *P9, "--host", "power9-linux-4.19", "--guest", "linux-xive",
                    "--json")
    answer = json.loads(out)
    assert (answer["interrupt_mode"], answer["backend"]) == ("xive", "emulated")
    assert answer["warnings"] == ["kernel_irqchip allowed but unavailable: IRQ_XIVE capability must "
                                  "be present for KVM\nFalling back to kernel-irqchip=off"]


def test_resolve_refused_configuration_exits_1_with_the_json_object(capsys):
    status, out, _ = run(capsys, "resolve", "-M", "pseries,ic-mode=xive", "-cpu", "power8",
                         "--host", "power9-linux-5.10", "--guest", "linux-xive", "--json")
    answer = json.loads(out)
    assert status == 1
    assert answer["result"] == "error" and answer["stage"] == "init"
    assert answer["advertised"] is None and answer["interrupt_mode"] is None
    assert answer["error"] == "XIVE-only machines require a POWER9 CPU"


def test_resolve_error_at_cas_keeps_what_was_advertised(capsys):
    status, out, _ = run(capsys, "resolve", "-M", "pseries,ic-mode=xive", "-cpu", "power9",
                         "--host", "tcg", "--guest", "linux-legacy", "--json")
    answer = json.loads(out)
    assert status == 1
    assert (answer["advertised"], answer["stage"]) == ("xive", "cas")


def test_resolve_text_prints_mode_and_backend(capsys):
    status, out, _ = run(capsys, "resolve", *P9, "--host", "tcg", "--guest", "linux-legacy")
    assert status == 0
    assert out == "XICS emulated; offered: dual; modeled: QEMU 10.1\n"


@pytest.mark.parametrize("argv, message", [
    (["resolve", "--host", "power11-linux-9.9"], "spapr-irq: unknown host 'power11-linux-9.9'"),
    (["resolve", "--guest", "windows"], "spapr-irq: unknown guest 'windows'"),
    (["resolve", "--frobnicate"], "spapr-irq: unknown flag --frobnicate"),
    (["resolve", "--qemu", "6.0"], "spapr-irq: --qemu: unknown QEMU release '6.0'"),
    (["resolve", "-device", "spapr-pci-host-bridge", "--host", "tcg"],
     "spapr-irq: not modeled yet: -device spapr-pci-host-bridge: a PHB without index="),
    (["nonsense"], "spapr-irq: unknown command 'nonsense'"),
    (["matrix", "--format", "yaml"], "spapr-irq: --format must be text, markdown or json"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.startswith(message)
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    # QEMU 7.2's own texts and locations: machine properties have no option prefix, -accel has.
    (["-M", "pseries-3.0,ic-mode=xics"],
     "This machine only uses the legacy XICS backend, don't pass ic-mode"),
    (["-M", "pseries,ic-mode=bogus"], 'Bad value for "ic-mode" property'),
    (["-M", "pseries,foo_bar=1"], "Property 'pseries-7.2-machine.foo-bar' not found"),
    (["-M", "pseries,max-cpu-compat=power11"], 'Invalid compatibility mode "power11"'),
    (["-accel", "tcg,kernel-irqchip=on"],
     "-accel tcg,kernel-irqchip=on: Property 'tcg-accel.kernel-irqchip' not found"),
    (["-M", "pseries,cap-htm=maybe"], "Parameter 'cap-htm' expects 'on' or 'off'"),
    (["-M", "pseries-3.0", "-cpu", "power9_v2.2"], "unable to find CPU model 'power9_v2.2'"),
])
def test_a_command_line_qemu_refuses_exits_1_with_qemus_text(capsys, argv, message):
    status, out, err = run(capsys, "resolve", *argv, "--host", "tcg", "--qemu", "7.2")
    assert (status, out) == (1, "")
    assert err == f"error at options (modeled: QEMU 7.2): {message}\n"


@pytest.mark.parametrize("argv, message", [
    (["-cpu", "POWER8", "-M", "pseries,max-cpu-compat=power9"],
     "Compatibility PVR 0x0f000005 not valid for CPU"),
    (["-cpu", "POWER8", "-M", "pseries,max-cpu-compat=power9,ic-mode=xive"],
     "XIVE-only machines require a POWER9 CPU"),
    (["-cpu", "host"], "unable to find CPU model 'host'"),
    (["-smp", "2,threads=2"], "TCG cannot support more than 1 thread/core on a pseries machine"),
    (["-M", "pseries,ic_mode=xive", "-cpu", "POWER8"], "XIVE-only machines require a POWER9 CPU"),
    (["-M", "pseries-2.11"], "No Transactional Memory support in TCG\nTry appending -machine cap-htm=off"),
])
def test_qemu_7_2_refuses_these_machines_with_its_text(capsys, argv, message):
    status, out, err = run(capsys, "resolve", *argv, "--host", "tcg", "--qemu", "7.2")
    assert (status, out) == (1, "")
    assert err == f"error at init (modeled: QEMU 7.2): {message}\n"


@pytest.mark.parametrize("argv", [["-M", "pseries,kernel-irqchip=bogus"], ["-M", "pseries,ic_mode=xive"],
                                  ["-M", "pseries-2.11,cap-htm=off"],
                                  ["-M", "pseries-2.11,max-cpu-compat=power7"]])
def test_qemu_7_2_accepts_these_under_tcg(capsys, argv):
    status, out, _ = run(capsys, "resolve", *argv, "--host", "tcg", "--qemu", "7.2")
    assert status == 0 and out.endswith("modeled: QEMU 7.2; guest linux-xive (default)\n")


def test_explain_names_the_guarantee_of_each_rule(capsys):
    status, out, _ = run(capsys, "explain", "-M", "pseries,kernel-irqchip=on", "-cpu", "power9",
                         "--host", "power9-linux-4.19", "--guest", "linux-xive")
    assert status == 1
    assert "rule broken-disconnect (G2)" in out
    assert "result: QEMU stops at init: KVM is incompatible with ic-mode=dual,kernel-irqchip=on" in out
    assert "broken-disconnect [G2]:" in out


def test_explain_follows_the_trace_of_the_run(capsys):
    _, out, _ = run(capsys, "explain", *P9, "--host", "power9-linux-5.10", "--guest", "linux-xive")
    order = [out.index(word) for word in ("accelerator:", "create:", "advertise:", "cas:", "switch:")]
    assert order == sorted(order)


def test_matrix_text_marks_warnings_and_lists_the_messages(capsys):
    status, out, _ = run(capsys, "matrix", "--host", "power9-linux-4.19", "--guest", "linux-xive")
    assert status == 0
    assert "dual     linux-xive  XIVE emul. [w1]" in out
    assert "[w1] warning: kernel_irqchip allowed but unavailable: IRQ_XIVE capability" in out
    assert "error at init [e1]" in out


def test_matrix_json_has_one_record_per_cell(capsys):
    _, out, _ = run(capsys, "matrix", "--host", "tcg", "--host", "power8-linux-4.19", "--format",
                    "json")
    records = json.loads(out)
    assert len(records) == 2 * 3 * 3 * 3
    cell = next(r for r in records if r["host"] == "power8-linux-4.19" and r["ic_mode"] == "xive"
                and r["kernel_irqchip"] == "allowed" and r["guest"] == "linux-xive")
    assert cell["error"] == "XIVE-only machines require a POWER9 CPU"


def test_matrix_markdown_is_a_table(capsys):
    _, out, _ = run(capsys, "matrix", "--host", "tcg", "--guest", "linux-legacy", "--format",
                    "markdown")
    assert "| ic-mode | guest | kernel-irqchip=allowed | kernel-irqchip=off | kernel-irqchip=on |" in out
    assert "| xive | linux-legacy | error at CAS [e1] |" in out


def test_command_runs_as_a_process_and_answers_quickly():
    done = subprocess.run([sys.executable, "-m", "spapr_irq.cli", "resolve", *P9, "--host", "tcg",
                           "--json"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert json.loads(done.stdout)["backend"] == "emulated"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=6))
def test_any_argument_list_exits_0_1_or_2_without_a_traceback(argv):
    try:
        status = main(["resolve", *argv])
    except SystemExit as exc:  # pragma: no cover - would be a bug
        pytest.fail(f"SystemExit {exc}")
    assert status in (0, 1, 2)


# --- --fault: a KVM failure injected into resolve and explain ----------------------------------------------

STALE = "kvm:cpu=power9,kernel=5.4"
FIXED = "kvm:cpu=power9,kernel=5.4.3"


def test_a_xics_create_failing_at_its_vp_block_on_5_4_leaves_the_xive_slot_taken(capsys):
    """The first create (XICS-on-XIVE, at init) fails allocating its VP block; before 5.5
    (5.4.3) it leaves kvm->arch.xive set, so the XIVE device at CAS gets File exists too."""
    status, out, err = run(capsys, "resolve", *P9, "--host", STALE, "--fault",
                           "create_device:ENOMEM")
    assert (status, out) == (0, "XIVE emulated; offered: dual; modeled: QEMU 10.1; guest linux-xive (default)\n")
    assert err == ("warning: kernel_irqchip allowed but unavailable: Error on KVM_CREATE_DEVICE for "
                   "XICS: Cannot allocate memory\n         Falling back to kernel-irqchip=off\n"
                   "warning: kernel_irqchip allowed but unavailable: XIVE: error creating KVM "
                   "device: File exists\n         Falling back to kernel-irqchip=off\n")


def test_the_same_fault_on_5_4_3_leaves_nothing_behind(capsys):
    status, out, err = run(capsys, "resolve", *P9, "--host", FIXED, "--fault", "create_device:ENOMEM")
    assert (status, out) == (0, "XIVE in-kernel (KVM); offered: dual; modeled: QEMU 10.1; guest linux-xive (default)\n")
    assert err.count("warning:") == 1


def test_explain_shows_the_fault_and_what_its_residue_does(capsys):
    status, out, _ = run(capsys, "explain", *P9, "--host", STALE, "--fault", "create_device:ENOMEM")
    assert status == 0
    assert "connect: KVM XICS failed and was rolled back: Error on KVM_CREATE_DEVICE for XICS" in out
    assert "connect: KVM XIVE failed and was rolled back: XIVE: error creating KVM device: File " \
           "exists" in out


@pytest.mark.parametrize("fault, message", [
    ("create_device:EEXIST", "create_device cannot fail with EEXIST on its own"),
    ("enable_cap:EBUSY", "enable_cap cannot fail with EBUSY on its own"),
    ("any:EPERM", "any KVM call cannot fail with EPERM on its own"),
    ("create_devices:ENOMEM", "unknown KVM call 'create_devices'"),
    ("create_device:NOMEM", "'NOMEM' is not an errno name"),
    ("create_device:ENOMEM:0", "the call count must be 1 or more, not '0'"),
    ("create_device:ENOMEM:x", "the call count must be 1 or more, not 'x'"),
    ("create_device", "--fault takes CALL:ERRNO[:NTH], not 'create_device'"),
    ("create_device:ENOMEM:1:2", "--fault takes CALL:ERRNO[:NTH]"),
    (":ENOMEM", "--fault takes CALL:ERRNO[:NTH]"),
])
def test_a_bad_fault_is_refused_with_exit_status_2(capsys, fault, message):
    status, out, err = run(capsys, "resolve", *P9, "--fault", fault)
    assert status == 2 and out == "" and message in err


def test_fault_is_only_for_resolve_and_explain(capsys):
    status, _, err = run(capsys, "matrix", "--fault", "create_device:ENOMEM")
    assert status == 2 and "--fault is for resolve and explain" in err


def test_pic_prints_the_models_info_pic_after_boot_and_before_cas(capsys):
    status, out, _ = run(capsys, "pic", "-M", "pseries,ic-mode=xics", "-cpu", "POWER9", "-smp", "2",
                         "--host", "tcg", "--qemu", "7.2")
    assert status == 0 and out.startswith("CPU 0 XIRR=ff000000 ((nil))")  # CPPR opened by Linux
    assert "  1000 MSI 05 00\n" in out and out.endswith("irqchip: emulated\n")
    status, out, _ = run(capsys, "pic", "-M", "pseries,ic-mode=xics", "--host", "tcg", "--before-cas")
    assert status == 0 and out.startswith("CPU 0 XIRR=00000000 ((nil))")


def test_pic_normalize_of_a_saved_qemu_text_equals_the_models(capsys, tmp_path):
    from pathlib import Path

    saved = Path(__file__).parent / "data" / "qemu-7.2" / "qemu-xive-post.txt"
    status, real, _ = run(capsys, "pic", "--normalize", "--file", str(saved))
    assert status == 0
    status, model, _ = run(capsys, "pic", "-M", "pseries,ic-mode=xive", "-cpu", "POWER9", "-smp", "2",
                           "-vga", "none", "-nographic", "--host", "tcg", "--qemu", "7.2",
                           "--normalize")
    assert status == 0 and model == real


@pytest.mark.parametrize("argv, message", [
    (["pic", "--file", "x", "--host", "tcg"], "pic --file normalises a saved `info pic`"),
    (["pic", "--file", "/nonexistent/x"], "--file /nonexistent/x: No such file or directory"),
    (["resolve", "--normalize"], "--normalize, --before-cas and --file are for pic"),
])
def test_pic_refuses_bad_arguments(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "") and err.startswith(f"spapr-irq: {message}")


def test_migrate_moves_a_guest_and_says_the_pending_interrupts_arrived(capsys):
    status, out, _ = run(capsys, "migrate", "-M", "pseries,ic-mode=dual", "-cpu", "power9", "-smp",
                         "2", "--from", "tcg", "--to", "tcg", "--json")
    answer = json.loads(out)
    assert status == 0
    assert set(answer) == {"result", "stage", "error", "warnings", "source", "destination",
                           "sections", "delivered"}
    assert (answer["result"], answer["stage"], answer["delivered"]) == ("ok", None, True)
    assert answer["source"] == answer["destination"] == {"interrupt_mode": "xive",
                                                         "backend": "emulated"}
    assert answer["sections"][:4] == ["ram", "ics", "xive-source", "spapr-xive"]


@pytest.mark.parametrize("argv, stage, text", [
    (["--to-options", "-M pseries,ic-mode=xics -cpu power9 -smp 2"], "load",
     "Unknown savevm section or instance 'xive-source' 0."),
    (["--to-options", "-M pseries,ic-mode=xive,kernel-irqchip=on -cpu host -smp 2", "--to",
      "power9-linux-4.19"], "destination", "kernel_irqchip requested but unavailable"),
])
def test_migrate_reports_where_a_move_is_refused(capsys, argv, stage, text):
    base = ["migrate", "-M", "pseries,ic-mode=dual", "-cpu", "power9", "-smp", "2", "--from", "tcg"]
    if "--to" not in argv:
        argv = argv + ["--to", "tcg"]
    status, out, _ = run(capsys, *base, *argv, "--json")
    answer = json.loads(out)
    assert status == 1 and (answer["result"], answer["stage"]) == ("error", stage)
    assert answer["error"].startswith(text) and answer["delivered"] is None


@pytest.mark.parametrize("argv, message", [
    (["migrate", "--from", "tcg"], "migrate needs --from HOST and --to HOST"),
    (["migrate", "--from", "tcg", "--to", "tcg", "--host", "tcg"], "migrate takes --from and --to"),
    (["resolve", "--from", "tcg"], "--from, --to and --to-options are for migrate"),
    (["migrate", "--from", "nowhere", "--to", "tcg"], "unknown host 'nowhere'"),
])
def test_migrate_refuses_bad_arguments(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "") and err.startswith(f"spapr-irq: {message}")
