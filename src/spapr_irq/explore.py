"""Running configurations x hosts x guests through the machine model, and collecting outcomes.

:func:`resolve` boots one configuration with one guest on one host and reports what happened: the
mode offered, the mode and backend the guest ends up with, warnings, the error and where it struck,
and the machine's trace. :func:`matrix` does it for every ic-mode x kernel-irqchip cell. Nothing here
decides anything: every answer comes from running :class:`~spapr_irq.machine.Machine`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import MachineConfig, parse_options, release_for
from .errors import ConfigError, MachineError
from .releases import get_release
from .guest.profiles import GUESTS, GuestProfile, get_guest
from .host.host import PRESETS, Host, parse_host
from .host.faults import FaultPlan
from .machine.machine import Machine


@dataclass
class Outcome:
    """The result of one boot, in the shape of ``spapr-irq resolve --json``."""

    advertised: str | None
    result: str  # ok | error
    stage: str | None  # options | init | cas | None
    interrupt_mode: str | None
    backend: str | None
    warnings: list[str]
    error: str | None
    trace: list[dict] = field(default_factory=list)
    qemu: str = ""  # the QEMU release modeled
    #: Options QEMU accepts that change nothing modeled here, each with why.
    ignored_options: list[dict] = field(default_factory=list)
    #: The model's word on the error or on the release chosen (never QEMU's text); or None.
    note: str | None = None

    def as_dict(self, trace: bool = True) -> dict:
        out = {
            "qemu": self.qemu,
            "advertised": self.advertised,
            "result": self.result,
            "stage": self.stage,
            "interrupt_mode": self.interrupt_mode,
            "backend": self.backend,
            "warnings": list(self.warnings),
            "error": self.error,
            "ignored_options": list(self.ignored_options),
            "note": self.note,
        }
        if trace:
            out["trace"] = list(self.trace)
        return out

    @property
    def cell(self) -> str:
        """Short text for a matrix cell."""
        if self.result == "error":
            return f"error at {'CAS' if self.stage == 'cas' else self.stage}"
        backend = "KVM" if self.backend == "kvm" else "emul."
        return f"{self.interrupt_mode.upper()} {backend}"


def resolve(options: str | MachineConfig, host: str | Host, guest: str | GuestProfile,
            faults=(), qemu: str | None = None) -> Outcome:
    """Create the machine, boot the guest, and report. Bad input raises InputError subclasses.
    `faults` are (call or None, errno, nth) KVM failures to inject (host.faults)."""
    host = host if isinstance(host, Host) else parse_host(host)
    profile = guest if isinstance(guest, GuestProfile) else get_guest(guest)
    if isinstance(options, MachineConfig):
        config = options
    else:
        try:
            config = parse_options(options, qemu=qemu)
        except ConfigError as exc:  # QEMU refuses the command line before it builds a machine
            try:
                release = release_for(options, qemu).version
            except ConfigError:  # the words themselves cannot be read
                release = get_release(qemu).version
            return Outcome(None, "error", "options", None, None, [], exc.text,
                           [{"step": "options", "detail": exc.text}], qemu=release,
                           note=exc.note)
    plan = FaultPlan()
    for call, code, nth in faults:
        plan.fail(code, call=call, nth=nth)
    machine = Machine(config, host, plan if faults else None)
    advertised = None
    ignored = [{"option": option, "why": why} for option, why in config.ignored]
    note = (f"QEMU {config.qemu} modeled: the options name {config.qemu_chosen_by}, a machine type "
            "only it defines" if config.qemu_chosen_by else None)
    try:
        machine.start()
        advertised = machine.advertised_mode
        machine.boot(profile)
    except MachineError as exc:
        return Outcome(advertised, "error", exc.stage, None, None, list(machine.warnings),
                       exc.text, [s.as_dict() for s in machine.trace], qemu=config.qemu,
                       ignored_options=ignored, note=note)
    return Outcome(advertised, "ok", None, machine.interrupt_mode, machine.backend,
                   list(machine.warnings), None, [s.as_dict() for s in machine.trace],
                   qemu=config.qemu, ignored_options=ignored, note=note)


#: Rows and columns of the mode matrix: ic-mode, then kernel-irqchip (None = unset, "allowed").
MATRIX_MODES = ("dual", "xics", "xive")
MATRIX_IRQCHIPS = (None, "off", "on")


@dataclass
class MatrixCell:
    host: str
    guest: str
    ic_mode: str
    kernel_irqchip: str
    options: str
    outcome: Outcome


def matrix_options(base: list[str], mode: str, irqchip: str | None, host: Host) -> list[str]:
    """The options of one cell: the user's options with ic-mode and kernel-irqchip appended to -M.

    Without -cpu, KVM hosts use ``-cpu host`` (the CPU a KVM guest gets) and TCG the machine's own.
    """
    words = list(base)
    props = f"ic-mode={mode}" + (f",kernel-irqchip={irqchip}" if irqchip else "")
    given = {w[1:] if w.startswith("--") else w for w in words}  # QEMU reads --cpu as -cpu
    words += ["-M", props if given & {"-M", "-machine"} else "pseries," + props]
    if "-cpu" not in given and host.has_kvm:
        words += ["-cpu", "host"]
    return words


def matrix(base: list[str] | None = None, hosts: list[str] | None = None,
           guests: list[str] | None = None, qemu: str | None = None,
           progress=None) -> list[MatrixCell]:
    """Every host x guest x ic-mode x kernel-irqchip cell, in that order; `progress(done, total)`
    is called after each cell."""
    base = list(base or [])
    cells = []
    for host_name in hosts or list(PRESETS):
        host = parse_host(host_name)
        for guest_name in guests or list(GUESTS):
            guest = get_guest(guest_name)
            for mode in MATRIX_MODES:
                for irqchip in MATRIX_IRQCHIPS:
                    words = matrix_options(base, mode, irqchip, host)
                    outcome = resolve(parse_options(words, qemu=qemu), host, guest)
                    cells.append(MatrixCell(host.name, guest.name, mode, irqchip or "allowed",
                                            " ".join(words), outcome))
                    if progress:
                        progress(len(cells), len(hosts or PRESETS) * len(guests or GUESTS)
                                 * len(MATRIX_MODES) * len(MATRIX_IRQCHIPS))
    return cells


# --- migrate: one guest moved from one host to another ------------------------------------------------------

#: What `migrate` leaves pending before the move: MSIs and an LSI in queues or ICPs, IPIs both ways.
MIGRATE_EVENTS = (("msi", 0, 6, 0), ("lsi", 1, 3, 0), ("ipi", 0, 4, 1), ("msi", 1, 5, 0),
                  ("ipi", 1, 4, 0))


def _play(machine):
    """Fire MIGRATE_EVENTS at a booted guest without letting it run, plus one MSI that fires
    while the guest has it masked; returns the workload and that MSI."""
    from .devices import Event, Workload

    workload = Workload(machine)
    vcpus = machine.vcpus  # MIGRATE_EVENTS name the first and the second vCPU, if there is one
    for kind, vcpu, priority, source in MIGRATE_EVENTS:
        workload.fire(Event(kind, vcpus[min(vcpu, len(vcpus) - 1)], priority,
                            vcpus[min(source, len(vcpus) - 1)]))
    return workload, workload.fire_masked(vcpus[0], 4)


def migrate(options: str | list[str], src_host: str | Host, dst_host: str | Host, guest: str,
            to_options: str | list[str] | None = None, qemu: str | None = None) -> dict:
    """Boot on `src_host`, leave interrupts pending (in queues or ICPs, and one behind a mask),
    save, start the destination (`to_options`, else the same options) on `dst_host`, load, let
    the guest unmask and run, and compare what it handled with the same guest never moved."""
    src_host = src_host if isinstance(src_host, Host) else parse_host(src_host)
    dst_host = dst_host if isinstance(dst_host, Host) else parse_host(dst_host)
    profile = get_guest(guest)
    src_config = parse_options(options, qemu=qemu)
    dst_config = src_config if to_options is None else parse_options(to_options, qemu=qemu)
    out = {"result": "error", "stage": None, "error": None, "warnings": [], "source": None,
           "destination": None, "sections": [], "delivered": None}

    def side(machine) -> dict:
        return {"interrupt_mode": machine.interrupt_mode, "backend": machine.backend}

    source = Machine(src_config, src_host)
    try:
        source.start()
        source.boot(profile)
        workload, behind = _play(source)
        out["source"] = side(source)
        stream = source.save()
    except MachineError as exc:
        out.update(stage="source", error=exc.text, warnings=list(source.warnings))
        return out
    out["warnings"] = list(source.warnings)
    import json

    out["sections"] = [d["name"] for d in json.loads(stream[stream.rindex(b'{"devices"'):])["devices"]]
    target = Machine(dst_config, dst_host)
    try:
        target.start_incoming(lsis=workload.lsis())
    except MachineError as exc:
        out.update(stage="destination", error=exc.text, warnings=out["warnings"] + target.warnings)
        return out
    try:
        target.load(stream)
    except MachineError as exc:
        out.update(stage="load", error=exc.text, warnings=out["warnings"] + target.warnings)
        return out
    out["warnings"] += target.warnings
    out["destination"] = side(target)
    try:
        target.resume_guest(source.driver, profile)
        target.driver.unmask(behind, target.vcpus[0], 4)
        moved = target.driver.drain()
    except MachineError as exc:
        out.update(stage="run", error=exc.text)
        return out
    reference = Machine(src_config, src_host)
    reference.start()
    reference.boot(profile)
    _, ref_behind = _play(reference)
    reference.driver.unmask(ref_behind, reference.vcpus[0], 4)
    expected = reference.driver.drain()
    out["result"] = "ok"
    out["delivered"] = sorted(moved) == sorted(expected)
    out["handled"] = [list(h) for h in moved]
    out["expected"] = [list(h) for h in expected]
    return out
