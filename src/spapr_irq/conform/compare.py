"""The model's answer to a case, and its comparison with what the real QEMU did.

Both sides are reduced to the same :class:`Observation`: QEMU's exit status and error text, the
``ic-mode`` property, ``info pic`` normalised before CAS and after each boot, and what the guest
saw (its interrupt mode, the interrupt-controller node and its compatible string). Warnings are
compared too, but for the spectre capability warnings TCG always prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import parse_options
from ..errors import ConfigError, MachineError
from ..host.host import Host, parse_host
from ..machine.machine import Machine
from ..monitor import normalize_info_pic
from .cases import Case
from .guest import parse_report
from .qemu import Run, command_line


@dataclass
class Observation:
    status: int  # 0 ran, 1 QEMU refused
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    ic_mode: str | None = None
    pic_pre: str | None = None
    boots: list[dict] = field(default_factory=list)  # per boot: mode, dt node, compatible, pic
    #: A migration case's destination: {"status": 0 or 1, "error": text, "pic": normalised}.
    migration: dict | None = None


def observe_run(run: Run) -> Observation:
    """What the real QEMU showed, in comparable form."""
    if run.status is not None:
        return Observation(run.status or 0, "\n".join(run.errors) or None, list(run.warnings))
    boots = []
    for console, pic in zip(run.console, run.pic_post):
        report = parse_report(console) or {}
        boots.append({"mode": report.get("mode"), "dt_nodes": report.get("dt_nodes"),
                      "dt_compatible": report.get("dt_compatible"),
                      "pic": normalize_info_pic(pic)})
    migration = None
    if run.dst_pic is not None or run.dst_status is not None:
        migration = {"status": 0 if run.dst_pic is not None else run.dst_status,
                     "error": "\n".join(run.dst_errors) or None,
                     "pic": normalize_info_pic(run.dst_pic) if run.dst_pic is not None else None}
    return Observation(0, None, list(run.warnings), run.ic_mode, normalize_info_pic(run.pic_pre or ""),
                       boots, migration)


def _guest_view(machine: Machine) -> dict:
    path, node = machine.intc_node()
    return {"mode": machine.interrupt_mode, "dt_nodes": [path.lstrip("/").split("@")[0]],
            "dt_compatible": [node["compatible"]],
            "pic": machine.info_pic(normalize=True)}


def _runner_options(case: Case, accel: str) -> list[str]:
    """The options the runner gives QEMU for `case` (its -serial, -kernel, -append, ...), which
    the model reads as QEMU does; the paths do not matter to it."""
    return command_line("qemu-system-ppc64", case, Path("vmlinux"), Path("initrd"), accel,
                        Path("console.log"), Path("qmp.sock"))[1:]


def observe_model(case: Case, qemu: str, host: Host | str = "tcg", accel: str = "tcg") -> Observation:
    """The model's prediction for `case` under QEMU release `qemu` on `host`, given the whole
    command line the runner gives QEMU (its -serial, -kernel, -append, ... included)."""
    host = host if isinstance(host, Host) else parse_host(host)
    try:
        config = parse_options(_runner_options(case, accel), qemu=qemu)
    except ConfigError as exc:
        return Observation(1, exc.text)
    machine = Machine(config, host)
    try:
        machine.start()
        observed = Observation(0, None, [], machine.mode, machine.info_pic(normalize=True))
        for boot in range(2 if case.reset else 1):
            if boot:
                machine.reset()
            machine.boot(case.guest)
            observed.boots.append(_guest_view(machine))
    except MachineError as exc:
        return Observation(1, exc.text, list(machine.warnings))
    observed.warnings = list(machine.warnings)
    if case.migrate_to is not None:
        observed.migration = _migrate_model(case, machine, qemu, host, accel)
    return observed


def _migrate_model(case: Case, source: Machine, qemu: str, host: Host, accel: str) -> dict:
    """Save the booted source and load it into a destination started with migrate_to."""
    stream = source.save()
    target_case = Case(case.name, case.migrate_to, case.append)
    target = Machine(parse_options(_runner_options(target_case, accel), qemu=qemu), host)
    try:
        target.start(incoming=True)
        target.load(stream)
    except MachineError as exc:
        return {"status": 1, "error": exc.text, "pic": None}
    return {"status": 0, "error": None, "pic": target.info_pic(normalize=True)}


def differences(real: Observation, model: Observation) -> list[str]:
    """Each way the model's observation differs from the real one, as a line of text."""
    out = []
    if real.status != model.status:
        out.append(f"exit status: QEMU {real.status}, model {model.status}")
    if (real.error or "") != (model.error or ""):
        out.append(f"error: QEMU {real.error!r}, model {model.error!r}")
    if real.warnings != model.warnings:
        out.append(f"warnings: QEMU {real.warnings}, model {model.warnings}")
    if real.status or model.status:
        return out
    if real.ic_mode != model.ic_mode:
        out.append(f"ic-mode property: QEMU {real.ic_mode!r}, model {model.ic_mode!r}")
    if real.pic_pre != model.pic_pre:
        out.append("info pic before CAS differs:\n" + _diff(real.pic_pre, model.pic_pre))
    if len(real.boots) != len(model.boots):
        out.append(f"boots: QEMU {len(real.boots)}, model {len(model.boots)}")
    for n, (a, b) in enumerate(zip(real.boots, model.boots), 1):
        for key in ("mode", "dt_nodes", "dt_compatible"):
            if a[key] != b[key]:
                out.append(f"boot {n} {key}: QEMU {a[key]!r}, model {b[key]!r}")
        if a["pic"] != b["pic"]:
            out.append(f"boot {n} info pic differs:\n" + _diff(a["pic"], b["pic"]))
    if real.migration != model.migration:
        a, b = real.migration or {}, model.migration or {}
        if a.get("status") != b.get("status") or a.get("error") != b.get("error"):
            out.append(f"migration: QEMU {a.get('status')} {a.get('error')!r}, "
                       f"model {b.get('status')} {b.get('error')!r}")
        elif a.get("pic") != b.get("pic"):
            out.append("info pic after the migration differs:\n" + _diff(a.get("pic"), b.get("pic")))
    return out


def _diff(real: str | None, model: str | None) -> str:
    import difflib

    lines = difflib.unified_diff((real or "").splitlines(), (model or "").splitlines(), "qemu",
                                 "model", lineterm="", n=1)
    return "\n".join("    " + line for line in lines)
