"""``spapr-irq check``, ``simulate`` and ``compare``: options, progress bar, summaries, exit status.

Exit status: 0 no finding (simulate: the scenario replays as written), 1 findings (simulate: it
does not), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import InputError

EPILOG = "Exit status: 0 no finding, 1 findings, 2 bad input."


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", dest="hosts", action="append", metavar="PRESET",
                   help="a host preset (repeat; default: every preset)")
    p.add_argument("--guest", dest="guests", action="append", metavar="PROFILE",
                   help="a guest profile (repeat; default: the space's guests)")
    p.add_argument("--config", dest="configs", action="append", metavar="\"QEMU OPTIONS\"",
                   help="a configuration as QEMU options (repeat; default: the space's)")
    p.add_argument("--space", choices=("default", "full"), default="default",
                   help="default: pseries x ic-mode x kernel-irqchip, guests linux-xive and "
                        "linux-legacy; full: also max-cpu-compat=power8, pseries-3.0 and "
                        "linux-xive-off")
    p.add_argument("--depth", type=int, default=None, metavar="N",
                   help="events after start in each sequence")
    p.add_argument("--faults", choices=("none", "last", "any"), default="last",
                   help="KVM faults: none; one per sequence at its last step (default); one "
                        "anywhere, explored on")
    p.add_argument("--migrations", type=int, default=1, metavar="N",
                   help="moves in one sequence at most (default 1)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="worker processes (default: the CPUs here, %(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def check_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spapr-irq check",
        description="Explore every configuration x host x guest x event sequence to a depth "
                    "(boot, kexec, CAS asking for both modes, reset, stop, cont, CPU hot-plug "
                    "and unplug, migration to each host, KVM faults) and hold each state to "
                    "G1-G5. Each broken guarantee is reported with its shortest sequence.",
        epilog=EPILOG)
    p.add_argument("--qemu", metavar="VERSION", help="the QEMU release modeled (default: newest)")
    _common(p)
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write each finding as a scenario DIR/NNN-GUARANTEE.toml")
    return p


def simulate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spapr-irq simulate",
        description="Replay a scenario file (a finding of check) and say whether it still "
                    "happens as written.",
        epilog="Exit status: 0 the scenario replays as written, 1 it does not, 2 bad input.")
    p.add_argument("file", type=Path, help="the scenario (TOML)")
    p.add_argument("--json", action="store_true", help="print the replay as JSON")
    return p


def compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spapr-irq compare",
        description="Check the same space under two QEMU releases (or a variant such as "
                    "4.1+kurz-2019) and list each configuration x host x guest where the boot or "
                    "the guarantees broken differ.",
        epilog="Exit status: 0 no difference, 1 differences, 2 bad input.")
    p.add_argument("a", metavar="A", help="a QEMU release (spapr-irq releases lists them)")
    p.add_argument("b", metavar="B", help="another one")
    _common(p)
    return p


class _Progress:
    """A rich progress bar on a terminal (units, states, states per second, findings so far);
    nothing otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.states = self.findings = 0
        self.bar = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)

            self.bar = Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                console=_console(sys.stderr), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("check", total=self.total, info="")
        return self

    def __call__(self, result) -> None:
        self.states += result.states
        self.findings += len(result.findings)
        if self.bar is not None:
            elapsed = self.bar.tasks[0].elapsed or 1e-9
            self.bar.update(self.task, advance=1, info=f"{self.states} states, "
                            f"{self.states / elapsed:.0f}/s, {self.findings} findings")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _console(stream):
    from rich.console import Console

    return Console(file=stream)


def _validate(args) -> None:
    from ..config import parse_options
    from ..guest.profiles import get_guest
    from ..host.host import PRESETS
    from ..releases import get_release

    if args.depth is not None and not 0 <= args.depth <= 12:
        raise InputError(f"--depth takes 0 to 12, not {args.depth}")
    if args.jobs < 1:
        raise InputError("--jobs takes 1 or more")
    if args.migrations < 0:
        raise InputError("--migrations takes 0 or more")
    for host in args.hosts or ():
        if host not in PRESETS:
            raise InputError(f"unknown host preset '{host}': use one of {', '.join(PRESETS)}")
    for guest in args.guests or ():
        get_guest(guest)
    for release in [getattr(args, name, None) for name in ("qemu", "a", "b")]:
        if release is not None:
            get_release(release)
    for options in args.configs or ():
        for release in [getattr(args, name, None) for name in ("qemu", "a", "b")
                        if hasattr(args, name)]:
            parse_options(options, qemu=release)


def run_check(argv: list[str]) -> int:
    from .engine import check, units
    from .scenario import dumps

    args = check_parser().parse_args(argv)
    _validate(args)
    depth = 4 if args.depth is None else args.depth
    total = len(units(args.qemu, args.configs, args.hosts, args.guests, args.space))
    with _Progress(total, sys.stderr.isatty() and not args.json) as progress:
        result = check(qemu=args.qemu, depth=depth, hosts=args.hosts, guests=args.guests,
                       configs=args.configs, jobs=args.jobs, faults=args.faults,
                       migrations=args.migrations, space=args.space, progress=progress)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for n, finding in enumerate(result.findings, 1):
            (args.out / f"{n:03d}-{finding.guarantee}.toml").write_text(dumps(finding),
                                                                         encoding="utf-8")
    if args.json:
        print(json.dumps(result.as_dict(), indent=1, ensure_ascii=False))
    else:
        _summary(result)
    return 1 if result.findings else 0


def _summary(result) -> None:
    from ..check.invariants import GUARANTEES

    rate = result.states / result.seconds if result.seconds else 0
    print(f"QEMU {result.qemu}: {result.units} units, depth {result.depth}: {result.states} "
          f"states, {result.transitions} transitions in {result.seconds:.1f} s "
          f"({rate:.0f} states/s)")
    if not result.findings:
        print("no finding: every guarantee held")
        return
    counts = result.by_guarantee()
    print(f"{len(result.findings)} finding(s): "
          + ", ".join(f"{g} {counts[g]}" for g in sorted(counts)))
    for finding in result.findings:
        where = finding.host + (f" vs {finding.other_host}" if finding.other_host else "")
        print(f"\n[{finding.guarantee}] {GUARANTEES[finding.guarantee]}")
        print(f"  {finding.detail}")
        print(f"  config: {finding.options}; host: {where}; guest: {finding.guest}"
              + (f" (and {len(finding.also)} more)" if finding.also else ""))
        print(f"  sequence: {' -> '.join(finding.sequence)}")
        for line in finding.steps:
            if line != line.split(": ")[0] + ": ok":
                print("    " + line.replace("\n", "\n    "))


def run_simulate(argv: list[str]) -> int:
    from .scenario import loads, simulate

    args = simulate_parser().parse_args(argv)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{args.file}: {getattr(exc, 'strerror', None) or exc}") from None
    scenario = loads(text)
    replay = simulate(scenario)
    if args.json:
        print(json.dumps(replay.as_dict(), indent=1, ensure_ascii=False))
    else:
        for step in replay.steps:
            mark = "  " if step["got"] == step["expected"] else "!="
            print(f"{mark} {step['event']}: {step['got']}"
                  + ("" if mark == "  " else f"   (scenario: {step['expected']})"))
        for guarantee, detail in replay.problems:
            print(f"[{guarantee}] {detail}")
        wanted = scenario.guarantee
        print(("reproduced" if replay.reproduced else "NOT reproduced") +
              (f": {wanted}" + (f" ({scenario.detail})" if scenario.detail else "")
               if wanted != "none" else ": every guarantee held" if replay.reproduced
               else ": expected every guarantee to hold"))
    return 0 if replay.reproduced else 1


def run_compare(argv: list[str]) -> int:
    from .compare import compare

    args = compare_parser().parse_args(argv)
    _validate(args)
    depth = 2 if args.depth is None else args.depth
    differences, ra, rb = compare(args.a, args.b, depth=depth, hosts=args.hosts,
                                  guests=args.guests, configs=args.configs, jobs=args.jobs,
                                  space=args.space)
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, "depth": depth,
                          "differences": [d.as_dict(args.a, args.b) for d in differences]},
                         indent=1, ensure_ascii=False))
    else:
        print(f"QEMU {args.a} vs {args.b}, depth {depth}: {len(differences)} difference(s)")
        for d in differences:
            print(f"\n{d.options}; host {d.host}; guest {d.guest}")
            for name, boot, broken in ((args.a, d.boot[0], d.broken[0]),
                                       (args.b, d.boot[1], d.broken[1])):
                print(f"  {name:>14}: {boot}; breaks: {', '.join(broken) or 'nothing'}")
    return 1 if differences else 0


COMMANDS = {"check": run_check, "simulate": run_simulate, "compare": run_compare}


def main(command: str, argv: list[str]) -> int:
    return COMMANDS[command](argv)
