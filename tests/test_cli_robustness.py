"""The command as people use it: pasted command lines and files, its version, and output that
never ends in a traceback (a closed pipe, a full disk, characters the terminal cannot show)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from spapr_irq import Event, Machine, Workload
from spapr_irq.cli import main
from spapr_irq.errors import ConfigError, HostError, InputError

from test_cmdline import LIBVIRT_LOG

CLI = [sys.executable, "-m", "spapr_irq"]


def run(*argv, **kw):
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, **kw)


def test_version_and_python_dash_m():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("spapr-irq ")


def test_a_full_disk_is_one_line_and_status_1():
    with open("/dev/full", "w") as full:
        result = subprocess.run([*CLI, "matrix"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 1
    assert result.stderr == "spapr-irq: cannot write the output: No space left on device\n"


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([*CLI, "matrix"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err


def test_text_the_terminal_cannot_encode_is_escaped_not_a_traceback():
    env = dict(os.environ, PYTHONIOENCODING="ascii", LC_ALL="C")
    result = run("resolve", "--host", "pow\u00e9r9", env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("spapr-irq: unknown host 'pow\\xe9r9'")
    assert result.stderr.count("\n") == 1


def test_control_characters_in_an_error_are_shown_escaped_on_one_line(capsys):
    assert main(["resolve", "--host", "evil\x1b[31m\nline"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[31m" in err and err.count("\n") == 1


def test_matrix_double_dash_cpu_is_the_same_as_cpu(capsys):
    main(["matrix", "--cpu", "power8", "--host", "power9-linux-5.10", "--guest", "linux-xive"])
    double = capsys.readouterr().out
    main(["matrix", "-cpu", "power8", "--host", "power9-linux-5.10", "--guest", "linux-xive"])
    assert capsys.readouterr().out.replace("-cpu", "--cpu") == double


def test_resolve_names_the_host_and_guest_it_defaulted(capsys):
    assert main(["resolve", "-M", "pseries"]) == 0
    assert capsys.readouterr().out.endswith(
        "; host power9-linux-5.10 (default); guest linux-xive (default)\n")


def test_a_pasted_line_with_its_program_and_qemus_double_dash_options(capsys):
    assert main(["resolve", "qemu-system-ppc64", "-M", "pseries", "--no-reboot", "-m", "2G",
                 "--host", "power9-linux-5.10", "--guest", "linux-xive", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["interrupt_mode"] == "xive"
    assert {"option": "-m 2G", "why": "guest RAM size"} in answer["ignored_options"]


def test_after_a_double_dash_every_word_is_qemus(capsys):
    assert main(["resolve", "--host", "tcg", "--", "-M", "pseries", "--frobnicate"]) == 1
    assert "--frobnicate: invalid option" in capsys.readouterr().err


def test_append_xive_off_makes_the_default_guest_the_xive_off_one(capsys):
    assert main(["resolve", "-M", "pseries", "-append", "console=hvc0 xive=off", "--host",
                 "power9-linux-5.10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("XICS in-kernel (KVM)") and "guest linux-xive-off (default)" in out


def test_from_file_reads_a_libvirt_log_and_explain_lists_what_it_ignores(tmp_path, capsys):
    log = tmp_path / "fedora.log"
    log.write_text(LIBVIRT_LOG)
    assert main(["explain", "--from-file", str(log), "--host", "power9-linux-5.10"]) == 0
    out = capsys.readouterr().out
    assert "result: the guest runs XIVE, in-kernel (KVM)" in out
    assert "options accepted that change nothing modeled here:" in out
    assert "  -machine usb=off: the USB controller" in out


def test_from_file_without_a_qemu_line_is_bad_input(tmp_path, capsys):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho nothing\n")
    assert main(["resolve", "--from-file", str(script)]) == 2
    assert "no QEMU command line in the file" in capsys.readouterr().err


# --- the Python API refuses wrong types with typed errors ------------------------------------------

def test_wrong_argument_types_are_typed_errors():
    with pytest.raises(ConfigError):
        Machine.create(None)
    with pytest.raises(HostError):
        Machine.create("", host=None)
    machine = Machine.create("-M pseries,ic-mode=xics", host="tcg")
    with pytest.raises(InputError):
        machine.msi_free("x")


def test_rtas_answers_with_the_calls_own_return_words():
    machine = Machine.create("-M pseries,ic-mode=xics", host="tcg")
    assert machine.rtas(0, "ibm,get-xive", 0x1000) == (0, 0, 0xFF)
    assert machine.rtas(0, "ibm,get-xive", 0x1000, nret=1) == (-3,)


@pytest.mark.parametrize("mode", ["xics", "xive"])
@pytest.mark.parametrize("event", [Event("msi", 99), Event("ipi", 99), Event("ipi", 0, source=99)])
def test_a_workload_refuses_a_vcpu_the_machine_lacks_the_same_way_on_both_controllers(mode, event):
    machine = Machine.create(f"-M pseries,ic-mode={mode}", host="tcg")
    machine.boot("linux-xive")
    with pytest.raises(InputError, match="no vCPU 99"):
        Workload(machine).run([event])


@pytest.mark.parametrize("command", ["resolve", "explain", "matrix", "pic", "migrate", "advise",
                                     "hosts", "guests", "releases"])
def test_each_command_has_its_own_help_with_its_options_and_exit_status(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: spapr-irq {command}")
    if command not in ("hosts", "guests", "releases"):
        assert "exit status" in out and "--from-file" in out and "--qemu VERSION" in out


def test_the_matrix_progress_bar_appears_only_after_a_second(monkeypatch):
    import io

    from spapr_irq import cli

    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    bar = cli._progress("matrix")
    bar.start = -10.0  # started long ago
    bar(1, 10)
    assert bar.bar is not None
    bar(10, 10)
    bar.__exit__(None, None, None)
    quick = cli._progress("matrix")
    quick.start = float("inf")
    quick(1, 10)
    assert quick.bar is None


def test_flags_parse_as_argparse_does_with_qemus_words_kept_in_order(capsys):
    from spapr_irq.cli import parse_args

    args = parse_args(["resolve", "-M", "pseries", "--host=tcg", "-cpu", "power9", "--json",
                       "--guest", "linux-legacy", "-smp", "2"])
    assert (args.hosts, args.guests, args.json) == (["tcg"], ["linux-legacy"], True)
    assert args.qemu == ["-M", "pseries", "-cpu", "power9", "-smp", "2"]
    assert main(["resolve", "--host"]) == 2
    assert capsys.readouterr().err == "spapr-irq: --host needs a value\n"
