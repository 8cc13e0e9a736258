"""``spapr-irq conform``: its options, the progress bar, the table and the exit status."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from ..errors import InputError

DEFAULT_GUEST_DIR = Path(".conform")  # where `make conform-setup` puts the kernel and initramfs


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spapr-irq conform",
        description="Boot a real QEMU for each case and compare it with the model's prediction: "
                    "exit status and error, the ic-mode property, `info pic` (normalised) before "
                    "CAS and after boot, the guest's interrupt mode and device-tree node, warnings; "
                    "for a migration case, the destination's refusal or its `info pic` after the "
                    "load.",
        epilog="Exit status: 0 no difference, 1 a difference, 2 bad input or nothing to run.")
    p.add_argument("--qemu", "--qemu-binary", dest="qemu_binary", metavar="PATH",
                   help="the QEMU to run (default: qemu-system-ppc64 on PATH); the release it is "
                        "(from --version) is the release modeled")
    p.add_argument("--kernel", type=Path, metavar="VMLINUX",
                   help=f"ppc64le guest kernel (default: {DEFAULT_GUEST_DIR}/vmlinux)")
    p.add_argument("--initrd", type=Path, metavar="INITRD",
                   help=f"its initramfs (default: {DEFAULT_GUEST_DIR}/initrd.gz)")
    p.add_argument("--cases", type=Path, metavar="FILE", help="a TOML file of [[case]] tables "
                   "(default: the built-in set)")
    p.add_argument("-k", dest="select", metavar="TEXT", help="only cases whose name contains TEXT")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="QEMUs at a time (default 1)")
    p.add_argument("--accel", choices=("tcg", "kvm"), default="tcg",
                   help="tcg (default) or kvm on a POWER host: then in-kernel cells are checked")
    p.add_argument("--json", action="store_true", help="one JSON record per case")
    p.add_argument("--save", type=Path, metavar="DIR", help="write each real run as DIR/CASE.json")
    return p


def main(argv: list[str]) -> int:
    from .cases import default_cases, load_cases
    from .qemu import find_binary
    from .session import qemu_release, summary

    args = parser().parse_args(argv)
    binary = find_binary(args.qemu_binary)
    if binary is None:
        raise InputError("no QEMU to run: install qemu-system-ppc (make conform-setup) or give "
                         "--qemu-binary")
    kernel = args.kernel or DEFAULT_GUEST_DIR / "vmlinux"
    initrd = args.initrd or DEFAULT_GUEST_DIR / "initrd.gz"
    for path in (kernel, initrd):
        if not path.is_file():
            raise InputError(f"{path}: no such file (make conform-setup fetches the guest)")
    if args.jobs < 1:
        raise InputError("--jobs takes 1 or more")
    cases = load_cases(args.cases) if args.cases else default_cases()
    if args.select:
        cases = [case for case in cases if args.select in case.name]
    if not cases:
        raise InputError("no case to run")
    version, release = qemu_release(binary)
    start = time.monotonic()
    results = asyncio.run(_with_progress(binary, release, cases, kernel, initrd, args))
    seconds = time.monotonic() - start
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for result in results:
            (args.save / f"{result.case.name}.json").write_text(
                json.dumps(result.run.as_dict(), indent=1) + "\n")
    if args.json:
        for result in results:
            print(json.dumps({"case": result.case.name, "options": " ".join(result.case.options),
                              "append": result.case.append, "agree": not result.diffs,
                              "differences": result.diffs, "seconds": result.run.seconds}))
    else:
        _table(results, version, release)
        print(summary(results, seconds))
    return 1 if any(result.diffs for result in results) else 0


async def _with_progress(binary, release, cases, kernel, initrd, args):
    from .session import run_cases

    if args.json or not sys.stderr.isatty():
        return await run_cases(binary, release, cases, kernel, initrd, args.jobs, args.accel)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=True) as progress:
        task = progress.add_task("conform", total=len(cases))
        running: list[str] = []

        def started(case):
            running.append(case.name)
            progress.update(task, description=", ".join(running))

        def done(result):
            running.remove(result.case.name)
            progress.update(task, advance=1, description=", ".join(running) or "done")

        return await run_cases(binary, release, cases, kernel, initrd, args.jobs, args.accel,
                               started, done)


def _table(results, version: str, release: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"QEMU {version} against the model of QEMU {release}")
    for column in ("case", "options", "guest", "result", "seconds"):
        table.add_column(column)
    for result in results:
        case = result.case
        verdict = "agree" if not result.diffs else "DIFFERS"
        options = " ".join(case.options) + (" +reset" if case.reset else "")
        if case.migrate_to is not None:
            options += " => " + " ".join(case.migrate_to)
        table.add_row(case.name, options,
                      case.append or "-", verdict, f"{result.run.seconds:.1f}")
    console = Console(highlight=False)
    console.print(table)
    for result in results:
        for diff in result.diffs:
            console.print(f"{result.case.name}: {diff}", markup=False)
