"""Scenario files: a finding of ``spapr-irq check`` written so ``spapr-irq simulate`` can replay it
and say whether it still happens; copied into ``tests/scenarios/`` it becomes a regression test.

A scenario is TOML: the release, the QEMU options, the host (and, for G1, the other host), the
guest, one step per line with the outcome it had (``ok``, ``refused: TEXT``, ``exit: TEXT``,
``panic: TEXT``), and what is expected at the end: the guarantee broken and its detail, or
``guarantee = "none"`` for a sequence that must keep every guarantee.
"""

from __future__ import annotations

import json
import pickle
import tomllib
from dataclasses import dataclass, field

from ..config import parse_options
from ..errors import InputError
from ..guest.profiles import get_guest
from ..host.host import parse_host
from ..releases import get_release
from .engine import Finding, Judge
from .events import Event, Run

GUARANTEES = ("G1", "G2", "G3", "G4", "G5", "crash", "none")
_KEYS = {"qemu", "options", "host", "other_host", "guest", "steps", "expect", "title"}


@dataclass
class Scenario:
    qemu: str
    options: str
    host: str
    guest: str
    steps: list[tuple[str, str]]  # (event, outcome)
    guarantee: str
    detail: str = ""
    other_host: str | None = None
    title: str = ""


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def dumps(finding: Finding, outcomes: list[str] | None = None) -> str:
    """The scenario text of a finding (its steps' outcomes as the checker saw them)."""
    outcomes = outcomes if outcomes is not None else \
        [s.split("\n")[0].split(": ", 1)[1] for s in finding.steps]
    warnings = [[w[len("  warning: "):] for w in s.split("\n")[1:]] for s in finding.steps]
    lines = [f"# spapr-irq check finding: {finding.guarantee}. Replay: spapr-irq simulate FILE",
             f"title = {_toml_str(finding.detail.splitlines()[0])}",
             f"qemu = {_toml_str(finding.qemu)}",
             f"options = {_toml_str(finding.options)}",
             f"host = {_toml_str(finding.host)}"]
    if finding.other_host:
        lines.append(f"other_host = {_toml_str(finding.other_host)}")
    lines.append(f"guest = {_toml_str(finding.guest)}")
    lines.append("steps = [")
    for event, outcome, said in zip(finding.sequence, outcomes, warnings):
        lines.append(f"  {{ event = {_toml_str(event)}, outcome = {_toml_str(outcome)} }},"
                     + "".join(f"  # warning: {w}" for w in said))
    lines.append("]")
    lines.append("")
    lines.append("[expect]")
    lines.append(f"guarantee = {_toml_str(finding.guarantee)}")
    lines.append(f"detail = {_toml_str(finding.detail)}")
    return "\n".join(lines) + "\n"


def loads(text: str) -> Scenario:
    """Parse a scenario; anything malformed is an InputError naming the problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not a scenario: {exc}") from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InputError(f"unknown key '{unknown[0]}' in the scenario")
    for key in ("qemu", "options", "host", "guest"):
        if not isinstance(data.get(key), str):
            raise InputError(f"the scenario needs '{key}' as a string")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise InputError("the scenario needs 'steps', a list of {event, outcome}")
    parsed = []
    for index, step in enumerate(steps, 1):
        if not isinstance(step, dict) or set(step) != {"event", "outcome"} or \
                not all(isinstance(v, str) for v in step.values()):
            raise InputError(f"step {index}: write it as {{ event = \"...\", outcome = \"...\" }}")
        Event.parse(step["event"])  # refuses a malformed event
        parsed.append((step["event"], step["outcome"]))
    if not parsed[0][0].startswith("start"):
        raise InputError("the first step must be start")
    expect = data.get("expect")
    if not isinstance(expect, dict) or expect.get("guarantee") not in GUARANTEES:
        raise InputError(f"[expect] needs guarantee, one of {', '.join(GUARANTEES)}")
    if set(expect) - {"guarantee", "detail"} or not isinstance(expect.get("detail", ""), str):
        raise InputError("[expect] takes guarantee and detail (a string) only")
    other = data.get("other_host")
    if other is not None and not isinstance(other, str):
        raise InputError("'other_host' must be a string")
    if (expect["guarantee"] == "G1") != (other is not None):
        raise InputError("a G1 scenario names other_host, and only a G1 scenario does")
    get_release(data["qemu"])
    parse_host(data["host"])
    if other:
        parse_host(other)
    get_guest(data["guest"])
    parse_options(data["options"], qemu=data["qemu"])
    return Scenario(data["qemu"], data["options"], data["host"], data["guest"], parsed,
                    expect["guarantee"], expect.get("detail", ""), other, data.get("title", ""))


@dataclass
class Replay:
    """What a replay saw: each step's outcome against the scenario's, and the problems found."""

    steps: list[dict] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    reproduced: bool = False

    def as_dict(self) -> dict:
        return {"reproduced": self.reproduced, "steps": self.steps,
                "problems": [{"guarantee": g, "detail": d} for g, d in self.problems]}


def _outcome(step) -> str:
    return step.summary


def simulate(scenario: Scenario) -> Replay:
    """Replay the steps, judge every transition and state as the checker does, and say whether
    the scenario's expectation holds: every step as recorded, and the expected problem found
    (or, for "none", no problem at all)."""
    config = parse_options(scenario.options, qemu=scenario.qemu)
    hosts = {scenario.host: parse_host(scenario.host)}
    guest = get_guest(scenario.guest)
    for event, _ in scenario.steps:
        parsed = Event.parse(event)
        if parsed.name == "migrate":
            hosts.setdefault(parsed.arg, parse_host(parsed.arg))
    judge = Judge(config, guest, hosts)
    out = Replay()
    if scenario.guarantee == "G1":
        return _simulate_g1(scenario, config, guest, out)
    run = Run(config, hosts[scenario.host], guest)
    matched = True
    for event_text, expected in scenario.steps:
        event = Event.parse(event_text)
        before = pickle.dumps(run)
        parent_fp = run.state() if run.machine.runstate != "init" else None
        step = run.apply(event)
        got = _outcome(step)
        out.steps.append({"event": event_text, "expected": expected, "got": got})
        matched &= got == expected
        problems, fp = judge.transition(lambda: pickle.loads(before), parent_fp, event, run, step)
        out.problems += problems
        if fp is None:
            break
        spent = pickle.loads(pickle.dumps(run))
        state_problems, _view = judge.state(spent)
        out.problems += state_problems
    wanted = scenario.guarantee
    if wanted == "none":
        out.reproduced = matched and not out.problems
    else:
        out.reproduced = matched and any(g == wanted and (not scenario.detail or d == scenario.detail)
                                         for g, d in out.problems)
    return out


def _simulate_g1(scenario: Scenario, config, guest, out: Replay) -> Replay:
    views = []
    matched = True
    for host in (scenario.host, scenario.other_host):
        run = Run(config, parse_host(host), guest)
        for event_text, expected in scenario.steps:
            step = run.apply(Event.parse(event_text))
            if host == scenario.host:
                out.steps.append({"event": event_text, "expected": expected, "got": _outcome(step)})
                matched &= _outcome(step) == expected
        views.append(Judge.state(run)[1])
    if views[0] != views[1] and None not in views:
        diff = "; ".join(f"{x[0]}: {', '.join(map(str, x[1:]))} on {scenario.host}, "
                         f"{', '.join(map(str, y[1:]))} on {scenario.other_host}"
                         for x, y in zip(*views) if x != y)
        out.problems.append(("G1", f"the guest sees a difference: {diff}"))
    out.reproduced = matched and bool(out.problems) and \
        (not scenario.detail or out.problems[0][1] == scenario.detail)
    return out

