"""Scenario files: findings written by `check --out`, replayed by `simulate`; every file in
tests/scenarios/ is a regression test that replays as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from spapr_irq.check.engine import Unit, explore_unit
from spapr_irq.check.scenario import dumps, loads, simulate
from spapr_irq.cli import main
from spapr_irq.errors import InputError

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.toml"))
DUAL = "-M pseries,ic-mode=dual -smp 2,maxcpus=3"


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_recorded_scenario_replays_as_written(path):
    replay = simulate(loads(path.read_text(encoding="utf-8")))
    assert replay.reproduced, replay.as_dict()
    assert all(step["got"] == step["expected"] for step in replay.steps)


def test_the_recorded_scenarios_cover_each_kind_of_finding():
    kinds = {loads(p.read_text()).guarantee for p in SCENARIOS}
    assert {"G1", "G2", "G3", "G5", "none"} <= kinds


def finding():
    unit = Unit(DUAL, "linux-xive", "4.1", ("power9-linux-4.19",))
    return next(f for f in explore_unit(unit, 1, "none").findings if f.guarantee == "G3")


def test_a_finding_written_and_read_back_is_the_same_scenario():
    f = finding()
    scenario = loads(dumps(f))
    assert (scenario.qemu, scenario.options, scenario.host, scenario.guest) == \
        (f.qemu, f.options, f.host, f.guest)
    assert [event for event, _ in scenario.steps] == f.sequence
    assert (scenario.guarantee, scenario.detail) == ("G3", f.detail)
    assert simulate(scenario).reproduced


def test_a_scenario_whose_step_no_longer_happens_so_is_not_reproduced():
    text = dumps(finding()).replace('event = "reset", outcome = "ok"',
                                    'event = "reset", outcome = "exit: gone"')
    replay = simulate(loads(text))
    assert not replay.reproduced
    assert replay.steps[-1] == {"event": "reset", "expected": "exit: gone", "got": "ok"}


def test_a_scenario_expecting_no_finding_is_not_reproduced_when_one_appears():
    text = dumps(finding()).replace('guarantee = "G3"', 'guarantee = "none"')
    assert not simulate(loads(text)).reproduced


@pytest.mark.parametrize("text, message", [
    ("qemu = ", "not a scenario"),
    ('qemu = "10.1"', "needs 'options'"),
    ('qemu = "10.1"\noptions = "-M pseries"\nhost = "tcg"\nguest = "linux-xive"\nsteps = []',
     "needs 'steps'"),
    ('qemu = "10.1"\noptions = "-M pseries"\nhost = "tcg"\nguest = "linux-xive"\n'
     'steps = [{event = "boot", outcome = "ok"}]\n[expect]\nguarantee = "G3"',
     "the first step must be start"),
    ('qemu = "10.1"\noptions = "-M pseries"\nhost = "tcg"\nguest = "linux-xive"\n'
     'steps = [{event = "start", outcome = "ok"}]\n[expect]\nguarantee = "G9"', "[expect] needs"),
    ('qemu = "10.1"\noptions = "-M pseries"\nhost = "tcg"\nguest = "linux-xive"\n'
     'steps = [{event = "start", outcome = "ok"}]\n[expect]\nguarantee = "G1"', "other_host"),
    ('qemu = "3.0"\noptions = "-M pseries"\nhost = "tcg"\nguest = "linux-xive"\n'
     'steps = [{event = "start", outcome = "ok"}]\n[expect]\nguarantee = "none"',
     "unknown QEMU release"),
    ('qemu = "10.1"\noptions = "-M pseries"\nhost = "mars"\nguest = "linux-xive"\n'
     'steps = [{event = "start", outcome = "ok"}]\n[expect]\nguarantee = "none"', "unknown host"),
    ('qemu = "10.1"\noptions = "-M pseries"\nhost = "tcg"\nguest = "linux-xive"\n'
     'steps = [{event = "start", outcome = "ok"}, {event = "fly", outcome = "ok"}]\n'
     '[expect]\nguarantee = "none"', "unknown event 'fly'"),
    ('qemu = "10.1"\noptions = "-M pseries"\nhost = "tcg"\nguest = "linux-xive"\ncolour = "red"\n'
     'steps = [{event = "start", outcome = "ok"}]\n[expect]\nguarantee = "none"',
     "unknown key 'colour'"),
])
def test_a_malformed_scenario_is_refused_with_what_is_wrong(text, message):
    with pytest.raises(InputError) as info:
        loads(text)
    assert message in info.value.text


@given(st.text(max_size=200))
def test_any_text_is_a_scenario_or_a_clear_refusal(text):
    try:
        loads(text)
    except InputError as exc:
        assert exc.text and "\n" not in exc.text.strip()


# --- the commands ---------------------------------------------------------------------------------

def test_check_writes_each_finding_as_a_scenario_that_simulate_reproduces(tmp_path, capsys):
    code = main(["check", "--qemu", "4.1", "--depth", "1", "--host", "power9-linux-4.19",
                 "--guest", "linux-legacy", "--config", DUAL, "--jobs", "1", "--out",
                 str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1 and "[G3]" in out and "sequence: start -> reset" in out
    files = sorted(tmp_path.glob("*.toml"))
    assert files and files[0].name == "001-G3.toml"
    assert main(["simulate", str(files[0])]) == 0
    assert "reproduced: G3" in capsys.readouterr().out


def test_check_json_has_the_fields_a_program_reads(capsys):
    assert main(["check", "--qemu", "4.1+kurz-2019", "--depth", "0", "--host", "power9-linux-4.19",
                 "--host", "power9-linux-5.10", "--guest", "linux-xive", "--config", DUAL,
                 "--jobs", "1", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {"qemu", "depth", "states", "transitions", "seconds", "findings"} <= set(data)
    first = data["findings"][0]
    assert {"guarantee", "config", "host", "guest", "sequence", "detail"} <= set(first)
    assert (data["qemu"], first["guarantee"], first["sequence"]) == ("4.1+kurz-2019", "G1", ["start"])


def test_check_exits_0_when_every_guarantee_holds(capsys):
    assert main(["check", "--depth", "1", "--host", "tcg", "--guest", "linux-xive", "--config",
                 DUAL, "--jobs", "1"]) == 0
    assert "no finding: every guarantee held" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["check", "--host", "mars"], "unknown host preset 'mars'"),
    (["check", "--qemu", "3.0"], "unknown QEMU release '3.0'"),
    (["check", "--depth", "-1"], "--depth takes 0 to 12"),
    (["check", "--jobs", "0"], "--jobs takes 1 or more"),
    (["check", "--guest", "windows"], "unknown guest 'windows'"),
    (["check", "--config", "-M pseries,ic-mode=both"], 'Bad value for "ic-mode" property'),
    (["compare", "4.1", "9.9"], "unknown QEMU release '9.9'"),
    (["simulate", "/nonexistent.toml"], "No such file or directory"),
])
def test_bad_input_to_the_checker_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["check", "simulate", "compare"])
def test_each_checker_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "Exit status" in capsys.readouterr().out


def test_compare_lists_where_two_releases_part_ways(capsys):
    assert main(["compare", "4.1", "4.1+kurz-2019", "--depth", "0", "--host", "power9-linux-4.19",
                 "--guest", "linux-xive", "--config", DUAL, "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "QEMU 4.1 vs 4.1+kurz-2019, depth 0: 1 difference(s)" in out
    assert "XIVE emulated (warned)" in out and "XICS KVM" in out


def test_the_progress_bar_counts_states_and_findings_as_units_complete(monkeypatch):
    import io

    from spapr_irq.check.command import _Progress
    from spapr_irq.check.engine import UnitResult

    monkeypatch.setattr("sys.stderr", io.StringIO())
    unit = Unit(DUAL, "linux-xive", "10.1", ("tcg",))
    with _Progress(2, enabled=True) as progress:
        progress(UnitResult(unit, states=5, transitions=9, findings=[]))
        progress(UnitResult(unit, states=7, transitions=3, findings=[finding()]))
        assert progress.bar.tasks[0].completed == 2
    assert (progress.states, progress.findings) == (12, 1)
