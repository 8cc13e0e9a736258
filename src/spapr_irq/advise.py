"""``spapr-irq advise``: for a fleet of hosts, which ic-mode x kernel-irqchip setting gives which
mode and backend on each host, which keep a guest migratable between every pair of them, and
which to prefer, with the reasons.

A setting is ranked by, in order: no host refuses it; the guest can move between every pair of
hosts (a destination with the same guest CPU loads the stream, as `migrate` checks it); in-kernel
on every host, then the fewest hosts emulated; no warning; interrupts pending at a move handled
exactly once; then the fewest options the user must add. Every answer comes from running the
model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import parse_options
from .errors import MachineError
from .explore import matrix_options, migrate, resolve
from .guest.profiles import DEFAULT_GUEST, get_guest
from .host.host import parse_host
from .machine.machine import Machine

SETTINGS = [(mode, irqchip) for mode in ("dual", "xics", "xive") for irqchip in (None, "on", "off")]


@dataclass
class HostAnswer:
    host: str
    guest: str
    cell: str  # "XIVE KVM", "XICS emul.", "error at init", ...
    warned: bool
    error: str | None


@dataclass
class Setting:
    ic_mode: str
    kernel_irqchip: str  # on | off | allowed
    options: list[str]
    answers: list[HostAnswer] = field(default_factory=list)
    #: (source, destination, guest, why) of each move that fails: refused, or another CPU.
    blocked: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: (source, destination, guest, why) of each move that loads but does not deliver what was
    #: pending exactly once.
    caveats: list[tuple[str, str, str, str]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    score: tuple = ()

    @property
    def name(self) -> str:
        return f"ic-mode={self.ic_mode}" + ("" if self.kernel_irqchip == "allowed" else
                                            f",kernel-irqchip={self.kernel_irqchip}")

    def as_dict(self) -> dict:
        return {"setting": self.name, "ic_mode": self.ic_mode,
                "kernel_irqchip": self.kernel_irqchip, "options": " ".join(self.options),
                "hosts": [{"host": a.host, "guest": a.guest, "result": a.cell,
                           "warned": a.warned, "error": a.error} for a in self.answers],
                "not_migratable": [{"from": s, "to": d, "guest": g, "why": w}
                                   for s, d, g, w in self.blocked],
                "pending_not_exactly_once": [{"from": s, "to": d, "guest": g, "why": w}
                                             for s, d, g, w in self.caveats],
                "reasons": list(self.reasons)}


def _guest_cpu(options: list[str], host: str, qemu: str | None) -> str | None:
    machine = Machine(parse_options(options, qemu=qemu), parse_host(host))
    try:
        machine.start()
    except MachineError:
        return None
    return machine.guest_cpu


def advise(base: list[str], hosts: list[str], guests: list[str] | None = None,
           qemu: str | None = None) -> list[Setting]:
    """Every setting for the fleet, best first."""
    if len(hosts) < 1:
        raise ValueError("advise needs at least one host")
    guests = guests or [DEFAULT_GUEST]
    for guest in guests:
        get_guest(guest)
    for host in hosts:
        parse_host(host)
    out = []
    for mode, irqchip in SETTINGS:
        setting = Setting(mode, irqchip or "allowed", [])
        per_host = {}
        for host in hosts:
            words = matrix_options(base, mode, irqchip, parse_host(host))
            per_host[host] = words
            for guest in guests:
                outcome = resolve(parse_options(words, qemu=qemu), host, guest)
                setting.answers.append(HostAnswer(host, guest, outcome.cell, bool(outcome.warnings),
                                                  outcome.error))
        setting.options = per_host[hosts[0]]
        _migrations(setting, per_host, hosts, guests, qemu)
        _rank(setting)
        out.append(setting)
    out.sort(key=lambda s: s.score)
    return out


def _migrations(setting: Setting, per_host: dict, hosts: list[str], guests: list[str],
                qemu: str | None) -> None:
    runs = {(a.host, a.guest): a for a in setting.answers}
    cpus = {host: _guest_cpu(per_host[host], host, qemu) for host in hosts}
    for src in hosts:
        for dst in hosts:
            if src == dst:
                continue
            for guest in guests:
                if runs[(src, guest)].error or runs[(dst, guest)].error:
                    continue  # a host that refuses the setting is reported as such
                if cpus[src] != cpus[dst]:
                    setting.blocked.append((src, dst, guest, f"the guest's CPU differs "
                                            f"({cpus[src]} vs {cpus[dst]}): add -M "
                                            "max-cpu-compat=<the older>"))
                    continue
                result = migrate(per_host[src], src, dst, guest, to_options=per_host[dst],
                                 qemu=qemu)
                if result["result"] != "ok":
                    setting.blocked.append((src, dst, guest, f"refused at {result['stage']}: "
                                            f"{result['error'].splitlines()[0]}"))
                elif not result["delivered"]:
                    setting.caveats.append((src, dst, guest, "interrupts pending at the move "
                                            "are lost or handled twice"))


def _rank(setting: Setting) -> None:
    answers = setting.answers
    refused = sorted({a.host for a in answers if a.error})
    emulated = sorted({a.host for a in answers if not a.error and "KVM" not in a.cell})
    warned = sorted({a.host for a in answers if a.warned})
    reasons = []
    if refused:
        reasons.append(f"refused on {', '.join(refused)}: "
                       f"{next(a.error for a in answers if a.error).splitlines()[0]}")
    if setting.blocked:
        reasons.append(f"{len(setting.blocked)} move(s) between hosts fail: "
                       + "; ".join(f"{s} -> {d} ({g}): {w}" for s, d, g, w in setting.blocked[:3])
                       + (" ..." if len(setting.blocked) > 3 else ""))
    if not refused:
        reasons.append("in-kernel on every host" if not emulated else
                       f"emulated on {', '.join(emulated)}")
    if warned:
        reasons.append(f"QEMU warns on {', '.join(warned)}")
    if setting.caveats:
        pairs = sorted({f"{s} -> {d}" for s, d, _g, _w in setting.caveats})
        reasons.append("interrupts pending at a move are lost or handled twice on "
                       + ", ".join(pairs[:3]) + (" ..." if len(pairs) > 3 else ""))
    extra = 0 if setting.ic_mode == "dual" and setting.kernel_irqchip == "allowed" else 1
    setting.reasons = reasons
    setting.score = (len(refused), len(setting.blocked) > 0, len(emulated), len(warned),
                     len(setting.caveats) > 0, extra, len(setting.blocked))
