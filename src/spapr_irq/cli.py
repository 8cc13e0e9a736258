"""The ``spapr-irq`` command.

    spapr-irq resolve [QEMU options] --host PRESET --guest PROFILE [--fault CALL:ERRNO[:N]] [--json]
    spapr-irq explain [QEMU options] --host PRESET --guest PROFILE [--fault CALL:ERRNO[:N]]
    spapr-irq matrix  [QEMU options] [--host H ...] [--guest G ...] [--format text|markdown|json]
    spapr-irq pic     [QEMU options] [--host H] [--guest G] [--before-cas] [--normalize]
    spapr-irq pic     --normalize --file FILE|-
    spapr-irq migrate [QEMU options] --from HOST --to HOST [--to-options "QEMU options"]
                      [--guest G] [--json]
    spapr-irq advise  [QEMU options] --host H --host H ... [--guest G ...]
                      [--format text|markdown|json]
    spapr-irq report  [QEMU options] --out DIR [--host H ...] [--guest G ...]
    spapr-irq conform [--qemu PATH] [--kernel VMLINUX --initrd INITRD] [--cases FILE]
                      [--jobs N] [--accel tcg|kvm] [--json]
    spapr-irq check   [--qemu VERSION] [--host H ...] [--guest G ...] [--depth N] [--jobs N]
                      [--space default|full] [--faults none|last|any] [--json] [--out DIR]
    spapr-irq simulate FILE [--json]
    spapr-irq compare A B [--depth N] [--host H ...] [--guest G ...] [--json]
    resolve, explain, matrix, pic and migrate take --qemu VERSION (spapr-irq releases lists
    them): the QEMU release modeled. check, simulate, compare and conform take --help.
    spapr-irq hosts | guests | releases

QEMU options (``-M``, ``-machine``, ``-cpu``, ``-smp``, ``-accel``, ``-enable-kvm``) pass through as
QEMU spells them. ``--fault create_device:ENOMEM[:2]`` fails the (second) KVM call of that name
that can meet that errno on its own (CALL "any" for any call). Exit status: 0 ok, 1 QEMU would
refuse this configuration (its own text, as QEMU exits with 1), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field

from .config import release_for
from .errors import ConfigError, InputError
from .explore import matrix, resolve
from .cli_help import HELP
from .guest.profiles import DEFAULT_GUEST, GUESTS
from .host.host import DEFAULT_HOST, PRESETS
from .report import explain_text, matrix_json, matrix_markdown, matrix_text

USAGE = __doc__.split("\n\n")[1].rstrip()
COMMANDS = ("resolve", "explain", "matrix", "pic", "migrate", "advise", "report", "conform",
            "check", "simulate", "compare", "hosts", "guests", "releases")


class UsageError(Exception):
    pass


class HelpRequest(Exception):
    """`spapr-irq COMMAND --help`: print that command's help and exit 0."""


@dataclass
class Args:
    command: str
    qemu: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    guests: list[str] = field(default_factory=list)
    json: bool = False
    format: str = "text"
    faults: list[tuple[str | None, int, int]] = field(default_factory=list)
    qemu_release: str | None = None
    normalize: bool = False
    before_cas: bool = False
    file: str | None = None
    from_file: str | None = None
    domain: str | None = None
    out: str | None = None
    src: str | None = None
    dst: str | None = None
    to_options: str | None = None


_VALUED = {"--host": "hosts", "--guest": "guests", "--format": "format", "--fault": "faults",
           "--qemu": "qemu_release", "--file": "file", "--from": "src", "--to": "dst",
           "--to-options": "to_options", "--from-file": "from_file", "--domain": "domain",
           "--out": "out"}


def parse_fault(text: str) -> tuple[str | None, int, int]:
    """CALL:ERRNO[:NTH] -> (call or None for "any", errno, nth), checked against host.faults."""
    import errno as E

    from .host.faults import FaultPlan

    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"--fault takes CALL:ERRNO[:NTH], not '{text}'")
    call, name = parts[0], parts[1]
    code = getattr(E, name, None) if name.isupper() and name.startswith("E") else None
    if not isinstance(code, int):
        raise UsageError(f"--fault: '{name}' is not an errno name (ENOMEM, EIO, ...)")
    nth = 1
    if len(parts) == 3:
        if not parts[2].isdigit() or int(parts[2]) < 1:
            raise UsageError(f"--fault: the call count must be 1 or more, not '{parts[2]}'")
        nth = int(parts[2])
    target = None if call == "any" else call
    try:
        FaultPlan().fail(code, call=target, nth=nth)
    except ValueError as exc:
        raise UsageError(f"--fault {text}: {exc}") from None
    return target, code, nth


def _qemu_knows(word: str) -> bool:
    """A double-dash word QEMU reads as its single-dash option (--no-reboot is -no-reboot)."""
    from .config import QEMU_OPTIONS

    return word[1:] in QEMU_OPTIONS


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as our one-line usage error."""

    def error(self, message: str):
        flag = re.search(r"argument (--?[\w-]+)", message)
        if "expected one argument" in message and flag:
            raise UsageError(f"{flag.group(1).split('/')[0]} needs a value")
        raise UsageError(message)


def _flags() -> argparse.ArgumentParser:
    """The spapr-irq flags of the machine commands; every other word is QEMU's (argparse's
    unknown words, in order)."""
    p = _ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("-h", "--help", action="store_true")
    for flag, dest in _VALUED.items():
        repeat = dest in ("hosts", "guests", "faults")
        p.add_argument(flag, dest=dest, action="append" if repeat else "store",
                       default=[] if repeat else None)
    for flag in ("--json", "--normalize", "--before-cas"):
        p.add_argument(flag, action="store_true")
    return p


def parse_args(argv: list[str]) -> Args:
    """Our flags are taken out; every other word is a QEMU option, kept in order. A pasted
    line's program name is dropped; after ``--`` every word is QEMU's."""
    from .cmdline import _PROGRAM

    if not argv or argv[0] in ("-h", "--help", "help"):
        raise UsageError("")
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise UsageError(f"unknown command '{command}' (commands: {', '.join(COMMANDS)})")
    args = Args(command)
    if "--" in rest:  # the rest is a QEMU command line, perhaps with its program name
        cut = rest.index("--")
        rest, tail = rest[:cut], rest[cut + 1:]
    else:
        tail = []
    ns, words = _flags().parse_known_args(rest)
    if ns.help:
        raise HelpRequest(command)
    for word in words:
        if word.startswith("--") and "=" in word and word.split("=", 1)[0] in _VALUED:
            raise UsageError(f"{word.split('=', 1)[0]} needs a value")
        if word.startswith("--") and not _qemu_knows(word):
            raise UsageError(f"unknown flag {word}")
    if words and _PROGRAM.search(words[0]):  # a pasted line's program name
        words = words[1:]
    if tail and _PROGRAM.search(tail[0]):
        tail = tail[1:]
    args.qemu = words + tail
    args.hosts, args.guests = ns.hosts, ns.guests
    args.json, args.normalize, args.before_cas = ns.json, ns.normalize, ns.before_cas
    for name in ("file", "src", "dst", "to_options", "from_file", "domain", "out"):
        setattr(args, name, getattr(ns, name))
    if ns.format is not None:
        if ns.format not in ("text", "markdown", "json"):
            raise UsageError(f"--format must be text, markdown or json, not '{ns.format}'")
        args.format = ns.format
    args.faults = [parse_fault(value) for value in ns.faults]
    if ns.qemu_release is not None:
        from .releases import RELEASES

        if ns.qemu_release not in RELEASES:
            raise UsageError(f"--qemu: unknown QEMU release '{ns.qemu_release}' (known: "
                             f"{', '.join(RELEASES)})")
        args.qemu_release = ns.qemu_release
    if command in ("resolve", "explain"):
        for kind, values in (("--host", args.hosts), ("--guest", args.guests)):
            if len(values) > 1:
                raise UsageError(f"{command} takes one {kind}")
        if args.format != "text":
            raise UsageError(f"--format is for matrix; use --json with {command}")
    if command != "migrate" and (args.src or args.dst or args.to_options is not None):
        raise UsageError(f"--from, --to and --to-options are for migrate, not {command}")
    if command == "migrate":
        if not args.src or not args.dst:
            raise UsageError("migrate needs --from HOST and --to HOST")
        if args.hosts or len(args.guests) > 1:
            raise UsageError("migrate takes --from and --to, not --host, and one --guest")
    if (command == "report") != (args.out is not None):
        raise UsageError("report writes --out DIR; --out is for report only")
    if command == "advise" and not args.hosts:
        raise UsageError("advise needs the fleet: --host H for each host")
    if command not in ("resolve", "migrate") and args.json:
        if command in ("matrix", "advise"):
            args.format = "json"
        else:
            raise UsageError(f"--json is not an option of {command}")
    if command in ("hosts", "guests", "releases") and (args.qemu or args.hosts or args.guests):
        raise UsageError(f"{command} takes no arguments")
    if command != "pic" and (args.normalize or args.before_cas or args.file):
        raise UsageError(f"--normalize, --before-cas and --file are for pic, not {command}")
    if command == "pic" and args.file and (args.qemu or args.hosts or args.guests or args.before_cas):
        raise UsageError("pic --file normalises a saved `info pic`; it takes no machine")
    if command == "pic" and (len(args.hosts) > 1 or len(args.guests) > 1):
        raise UsageError("pic takes one --host and one --guest")
    if args.faults and command not in ("resolve", "explain"):
        raise UsageError(f"--fault is for resolve and explain, not {command}")
    if args.from_file is not None:
        if command not in ("resolve", "explain", "matrix", "pic", "migrate", "advise"):
            raise UsageError(f"--from-file is for resolve, explain, matrix, pic, migrate and "
                             f"advise, not {command}")
        from .cmdline import read_file_line, words_of

        try:
            text = (sys.stdin.read() if args.from_file == "-" else
                    open(args.from_file, encoding="utf-8", errors="replace").read())
        except OSError as exc:
            raise UsageError(f"--from-file {args.from_file}: {exc.strerror}") from None
        args.qemu = words_of(read_file_line(text)) + args.qemu
    if args.domain is not None:
        if command not in ("resolve", "explain", "matrix", "pic", "migrate", "advise"):
            raise UsageError(f"--domain is for resolve, explain, matrix, pic, migrate and advise, "
                             f"not {command}")
        from .domain import domain_words

        try:
            text = open(args.domain, encoding="utf-8").read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--domain {args.domain}: {getattr(exc, 'strerror', None) or exc}") \
                from None
        words, notes = domain_words(text)
        args.qemu = words + args.qemu
        for element, why in notes:
            print(f"spapr-irq: note: {element} in the domain: {why}", file=sys.stderr)
    return args


def _line(text: str) -> str:
    """The first line of a message, with control characters shown escaped."""
    first = text.splitlines()[0] if text else ""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in first)


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version("spapr-irq")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """The command. Output that the terminal cannot encode is escaped; a closed pipe ends it
    quietly; a full disk is one line and status 1."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:
        if exc.errno is None:
            raise
        _silence_stdout()
        print(f"spapr-irq: cannot write the output: {exc.strerror}", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """After a write failed, the interpreter's final flush must not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _main(argv: list[str]) -> int:
    if argv and argv[0] in ("--version", "-V"):
        print(f"spapr-irq {version()}")
        return 0
    if argv and argv[0] in ("conform", "check", "simulate", "compare"):
        try:
            if argv[0] == "conform":
                from .conform.command import main as conform_main

                return conform_main(argv[1:])
            from .check.command import main as check_main

            return check_main(argv[0], argv[1:])
        except InputError as exc:
            print(f"spapr-irq: {_line(exc.text)}", file=sys.stderr)
            return 2
    try:
        args = parse_args(argv)
        return _run(args)
    except HelpRequest as request:
        print(HELP[str(request)])
        return 0
    except UsageError as exc:
        if str(exc):
            print(f"spapr-irq: {_line(str(exc))}", file=sys.stderr)
        else:
            print(USAGE)
            return 0 if argv and argv[0] in ("-h", "--help", "help") else 2
        return 2
    except ConfigError as exc:  # QEMU itself refuses this command line: its status is 1
        print(f"spapr-irq: {_line(exc.text)}", file=sys.stderr)
        if exc.note:
            print(f"spapr-irq: note: {_line(exc.note)}", file=sys.stderr)
        return 1
    except InputError as exc:
        print(f"spapr-irq: {_line(exc.text)}", file=sys.stderr)
        return 2
    except NotImplementedError as exc:
        print(f"spapr-irq: not modeled yet: {_line(str(exc))}", file=sys.stderr)
        return 2


def _run(args: Args) -> int:
    if args.command == "hosts":
        for name, host in PRESETS.items():
            print(f"{name:26} {host.describe()}")
        return 0
    if args.command == "releases":
        from .releases import DEFAULT_RELEASE, RELEASES

        for version, release in RELEASES.items():
            print(f"QEMU {version}{' (default)' if version == DEFAULT_RELEASE else ''}")
            for change in release.changes:
                print(f"  - {change}")
        return 0
    if args.command == "guests":
        for name, guest in GUESTS.items():
            print(f"{name:16} {guest.description}")
        return 0
    if args.command == "pic":
        return _pic(args)
    if args.command == "migrate":
        return _migrate(args)
    if args.command == "report":
        return _report(args)
    if args.command == "advise":
        from .advise import advise
        from .report import advise_text

        settings = advise(args.qemu, args.hosts, args.guests or None, qemu=args.qemu_release)
        release = release_for(args.qemu, args.qemu_release).version
        if args.format == "json":
            print(json.dumps({"qemu": release, "hosts": args.hosts,
                              "guests": args.guests or [DEFAULT_GUEST],
                              "settings": [s.as_dict() for s in settings],
                              "recommended": settings[0].name}, indent=1))
        else:
            sys.stdout.write(advise_text(settings, args.hosts, markdown=args.format == "markdown"))
            print(f"\nmodeled: QEMU {release}")
        return 0
    if args.command == "matrix":
        with _progress("matrix") as progress:
            cells = matrix(args.qemu, args.hosts or None, args.guests or None,
                           qemu=args.qemu_release, progress=progress)
        render = {"text": matrix_text, "markdown": matrix_markdown, "json": matrix_json}[args.format]
        sys.stdout.write(render(cells))
        return 0
    host = args.hosts[0] if args.hosts else DEFAULT_HOST
    guest = args.guests[0] if args.guests else _guest_of(args.qemu)
    outcome = resolve(args.qemu, host, guest, faults=args.faults, qemu=args.qemu_release)
    if args.command == "explain":
        sys.stdout.write(explain_text(" ".join(args.qemu), host, guest, outcome))
    elif args.json:
        print(json.dumps(outcome.as_dict(), indent=1))
    else:
        defaulted = [f"{kind} {name} (default)" for kind, name, given in
                     (("host", host, args.hosts), ("guest", guest, args.guests)) if not given]
        if outcome.result == "ok":
            backend = "in-kernel (KVM)" if outcome.backend == "kvm" else "emulated"
            print(f"{outcome.interrupt_mode.upper()} {backend}; offered: {outcome.advertised}; "
                  f"modeled: QEMU {outcome.qemu}" + "".join(f"; {d}" for d in defaulted))
        for warning in outcome.warnings:
            print("warning: " + warning.replace("\n", "\n         "), file=sys.stderr)
        if outcome.result == "error":
            print(f"error at {outcome.stage} (modeled: QEMU {outcome.qemu}): {outcome.error}",
                  file=sys.stderr)
        if outcome.note:
            print(f"note: {outcome.note}", file=sys.stderr)
    return 0 if outcome.result == "ok" else 1


class _progress:
    """A rich progress bar on a terminal's stderr once a job has run for a second; nothing when
    stderr is not a terminal."""

    def __init__(self, what: str) -> None:
        self.what, self.bar, self.task = what, None, None

    def __enter__(self):
        import time

        self.start = time.monotonic()
        return self if sys.stderr.isatty() else None

    def __call__(self, done: int, total: int) -> None:
        import time

        if self.bar is None and time.monotonic() - self.start > 1.0:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(file=sys.stderr), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=total)
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _report(args: Args) -> int:
    """One self-contained HTML page: the matrix for the chosen hosts and guests, each cell
    linking to its explain, and (for two or more hosts) the settings for the fleet."""
    from pathlib import Path

    from .advise import advise
    from .report import report_html

    hosts = args.hosts or list(PRESETS)
    with _progress("report") as progress:
        cells = matrix(args.qemu, hosts, args.guests or None, qemu=args.qemu_release,
                       progress=progress)
    settings = advise(args.qemu, hosts, args.guests or None, qemu=args.qemu_release) \
        if len(hosts) > 1 else []
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "index.html").write_text(report_html(cells, settings, hosts), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {args.out}: {exc.strerror}") from None
    print(f"{out / 'index.html'}: {len(cells)} cells" + (f", {len(settings)} settings for "
                                                          f"{len(hosts)} hosts" if settings else ""))
    return 0


def _guest_of(words: list[str]) -> str:
    """The guest when none is named: a kernel booted with xive=off (-append) is linux-xive-off."""
    for option, value in zip(words, words[1:]):
        if option.lstrip("-") == "append" and "xive=off" in value.split():
            return "linux-xive-off"
    return DEFAULT_GUEST


def _migrate(args: Args) -> int:
    """Boot, leave interrupts pending, migrate, run on: what the guest saw."""
    import shlex

    from .explore import migrate

    to_options = None
    if args.to_options is not None:
        try:
            to_options = shlex.split(args.to_options)
        except ValueError as exc:
            raise UsageError(f"--to-options: {exc}") from None
    result = migrate(args.qemu, args.src, args.dst, args.guests[0] if args.guests else DEFAULT_GUEST,
                     to_options, qemu=args.qemu_release)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k not in ("handled", "expected")},
                         indent=1))
    else:
        for warning in result["warnings"]:
            print("warning: " + warning.replace("\n", "\n         "), file=sys.stderr)
        if result["result"] == "ok":
            src, dst = result["source"], result["destination"]
            print(f"{src['interrupt_mode'].upper()} {src['backend']} on {args.src} -> "
                  f"{dst['interrupt_mode'].upper()} {dst['backend']} on {args.dst}; "
                  f"{len(result['sections'])} sections; pending interrupts "
                  + ("delivered once each" if result["delivered"] else
                     f"NOT delivered as without the move: got {result['handled']}, "
                     f"expected {result['expected']}"))
        else:
            print(f"error at {result['stage']}: {result['error']}", file=sys.stderr)
    return 0 if result["result"] == "ok" else 1


def _pic(args: Args) -> int:
    """The model's `info pic` after the guest booted (or before CAS); or a saved one normalised."""
    from .monitor import normalize_info_pic

    if args.file:
        try:
            text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
        except OSError as exc:
            raise UsageError(f"--file {args.file}: {exc.strerror}") from None
        sys.stdout.write(normalize_info_pic(text))
        return 0
    from .config import parse_options
    from .errors import MachineError
    from .host.host import parse_host
    from .machine.machine import Machine

    config = parse_options(args.qemu, qemu=args.qemu_release)
    machine = Machine(config, parse_host(args.hosts[0] if args.hosts else DEFAULT_HOST))
    try:
        machine.start()
        if not args.before_cas:
            machine.boot(args.guests[0] if args.guests else DEFAULT_GUEST)
    except MachineError as exc:
        print(f"error at {exc.stage} (modeled: QEMU {config.qemu}): {exc.text}", file=sys.stderr)
        return 1
    sys.stdout.write(machine.info_pic(normalize=args.normalize))
    return 0


if __name__ == "__main__":
    sys.exit(main())
