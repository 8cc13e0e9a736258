"""Breadth-first exploration of every event sequence, per configuration x guest on every host,
held to G1-G5; the shortest sequence that breaks a guarantee is the finding.

A unit is one configuration with one guest. It is explored from a start on each host to a depth
bound over the event alphabet (:mod:`spapr_irq.check.events`); while a sequence has no KVM fault
yet, each fault point of each step is a transition too (the first and the last point of each call
and errno): one fault per sequence. States are de-duplicated by their canonical fingerprint
(:mod:`spapr_irq.check.fingerprint`), which names the host a machine runs on, so a guest migrated
to a host meets the states that host reached on its own; the space is exhausted to the bound, not
sampled, and each state is reached by a shortest sequence. Units are independent and run in
process or in N worker processes. G1 is checked inside a unit: the hosts' automata are walked in
lockstep on the same events.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

from ..config import parse_options
from ..errors import MachineError
from ..guest.profiles import GUESTS, get_guest
from ..host.host import PRESETS, parse_host
from ..releases import get_release
from . import invariants as inv
from .events import START, Event, Fault, Run, replay
from .fingerprint import differences, guest_view


@dataclass(frozen=True)
class Unit:
    """One configuration (QEMU options) with one guest, under one QEMU release, on each of
    `hosts` (and migrating between them)."""

    options: str
    guest: str
    qemu: str
    hosts: tuple[str, ...]


@dataclass
class Finding:
    guarantee: str
    options: str
    host: str  # where the sequence starts
    guest: str
    qemu: str
    sequence: list[str]
    detail: str
    #: What each event did on the way (outcome and QEMU's text), in order.
    steps: list[str] = field(default_factory=list)
    #: For G1: the other host, which shows its guest something else after the same sequence.
    other_host: str | None = None
    #: Other (configuration, host, guest) where the same problem was found.
    also: list[tuple[str, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"guarantee": self.guarantee, "config": self.options, "host": self.host,
               "guest": self.guest, "qemu": self.qemu, "sequence": list(self.sequence),
               "detail": self.detail, "steps": list(self.steps)}
        if self.other_host:
            out["other_host"] = self.other_host
        out["also"] = [{"config": c, "host": h, "guest": g} for c, h, g in self.also]
        return out


@dataclass
class UnitResult:
    unit: Unit
    states: int = 0
    transitions: int = 0
    findings: list[Finding] = field(default_factory=list)


class Judge:
    """The guarantees applied to one run of a unit: to each transition (what the step did and
    what it left) and to each new state. Shared by the explorer and `simulate`."""

    def __init__(self, config, guest, hosts: dict) -> None:
        self.config, self.guest, self.hosts = config, guest, hosts
        self.reset_refs: dict[tuple, tuple] = {}
        self.moves: set[tuple] = set()  # G5 moves tried (see first_move)

    def transition(self, parent, parent_fp, event: Event, run: Run, step) -> tuple[list, tuple]:
        """Problems of one step, as (guarantee, detail), and the state it left (None if QEMU
        exited). `parent()` gives a fresh copy of the run before the step."""
        problems = []
        if step.outcome == "crash":
            problems.append(("crash", f"{step.event}: {step.text}"))
        problems += [("G2", p) for p in inv.g2_exit(run, step)]
        problems += [("G5", p) for p in inv.g5_failed(run, step)]
        if step.outcome in ("exit", "crash"):
            return problems + [("G3", p) for p in inv.g3_state(run)], None
        fp = run.state()
        if step.outcome == "refused" and parent_fp is not None and \
                _settled(fp) != _settled(parent_fp):
            problems.append(("G3", f"{step.event} failed ({step.text.splitlines()[0]}) and "
                             "changed the machine"))
        if event.name == "reset" and step.outcome == "ok" and not run.faulted and \
                not run.parked:
            reference = self.reset_reference(run)
            if fp != reference:
                problems.append(("G3", "the reset did not return to the boot-time state ("
                                 + ", ".join(differences(reference, fp)) + " differ; "
                                 f"{inv.backend(run.machine)} after it)"))
        if event.name == "migrate" and event.fault is None and step.outcome == "ok" and \
                self.first_move(parent_fp, event.arg):
            problems += [("G5", p) for p in inv.g5_pending(parent(), parent,
                                                           self.hosts[event.arg])]
        return problems, fp

    @staticmethod
    def state(run: Run) -> tuple[list, tuple | None]:
        """Problems of a state the run is in, and what its guest sees (G1). Runs the G4
        workload on it: the run is spent afterwards."""
        problems = [("G2", p) for p in inv.g2_state(run)]
        problems += [("G3", p) for p in inv.g3_state(run)]
        view = guest_view(run.machine, run.booted)
        found, seen = inv.g4_workload(run)
        problems += [("G4", p) for p in found]
        return problems, None if view is None else view + (("handled", seen),)

    def reset_reference(self, run: Run) -> tuple:
        """Where an unfaulted reset must come back to: a machine started without faults on the
        run's host, with the run's cores plugged, then reset. (After an unplug the parked KVM
        vCPUs keep whatever device they were attached to, which no reset undoes; the checker
        then does not compare.)"""
        key = (run.host.name, tuple(run.cores))
        if key not in self.reset_refs:
            fresh = Run(self.config, run.host, self.guest)
            fresh.machine.start()
            for core in run.cores:
                fresh.machine.hotplug_cpu(core)
                fresh.cores.append(core)
            if run.cores:
                fresh.machine.reset()
            self.reset_refs[key] = fresh.state()
        return self.reset_refs[key]

    def first_move(self, source_fp: tuple, move: str) -> bool:
        """Whether this move (G5, or a faulted migration) still has to be tried for this kind of
        source: what happens to pending interrupts depends on the two controllers' backends and
        the vCPUs, so one move per (source host, mode, backend, vCPUs, booted driver) and
        destination stands for the others; a faulted move fails at the destination, so one per
        (mode, backend, booted driver) and fault."""
        if "!" in move:  # a faulted move fails on the destination's side: its source matters less
            key = (source_fp[5], source_fp[6], source_fp[12], move)
        else:
            key = (source_fp[0], source_fp[5], source_fp[6], source_fp[9], source_fp[12], move)
        if key in self.moves:
            return False
        self.moves.add(key)
        return True


class _Explorer:
    """Breadth-first over the canonical states of one unit, from a start on each host."""

    def __init__(self, unit: Unit, depth: int, faults: str, migrations: int = 1) -> None:
        if faults not in FAULT_MODES:
            raise ValueError(f"faults must be one of {', '.join(FAULT_MODES)}")
        self.unit, self.depth, self.faults, self.migrations = unit, depth, faults, migrations
        self.config = parse_options(unit.options, qemu=unit.qemu)
        self.guest = get_guest(unit.guest)
        self.hosts = {name: parse_host(name) for name in unit.hosts}
        self.result = UnitResult(unit)
        self.ids: dict[tuple, int] = {}
        self.paths: list[tuple[str, tuple[Event, ...]]] = []  # sid -> (start host, events)
        self.applicable: list[list[Event]] = []
        self.views: list = []
        self.edges: dict[tuple[int | str, str], int] = {}  # (sid or start host, event) -> sid
        self.families: dict[str, str] = {}  # start host -> the guest's CPU family there
        self.reported: set[tuple[str, str]] = set()
        self.judge = Judge(self.config, self.guest, self.hosts)
        #: A pickled run per state still to expand: loading one costs less than replaying its
        #: sequence (a migration alone is a save, a start and a load).
        self.snapshots: dict[int, bytes] = {}
        self.guest_cpus: dict[str, str] = {}  # host -> the CPU the guest sees there

    # -- running ------------------------------------------------------------------------------------
    def _replay(self, host: str, events) -> Run:
        return replay(self.config, self.hosts[host], self.guest, events)

    def _run_at(self, sid: int | None, host: str) -> Run:
        """A run in state `sid` (a fresh, unstarted one for None)."""
        if sid is None:
            return Run(self.config, self.hosts[host], self.guest)
        return pickle.loads(self.snapshots[sid])

    def _find(self, guarantee: str, host: str, sequence, detail: str, run: Run) -> None:
        key = (guarantee, detail)
        if key in self.reported:
            return
        self.reported.add(key)
        self.result.findings.append(Finding(
            guarantee, self.unit.options, host, self.unit.guest, self.unit.qemu,
            [str(e) for e in sequence], detail, step_lines(run)))

    # -- exploring ---------------------------------------------------------------------------------
    def explore(self) -> UnitResult:
        for host in self.hosts:
            self.guest_cpus[host] = self._guest_cpu(host)
        frontier = []
        for host in self.hosts:
            frontier += self._expand(None, host, (), [START])
        for level in range(self.depth):
            nxt = []
            for sid in frontier:
                host, sequence = self.paths[sid]
                if sid in self.snapshots:
                    nxt += self._expand(sid, host, sequence, self.applicable[sid])
                self.snapshots.pop(sid, None)
            frontier = nxt
        self.snapshots.clear()
        self.result.states = len(self.ids)
        return self.result

    def _guest_cpu(self, host: str) -> str | None:
        """The CPU the guest sees on `host` (its compat mode when max-cpu-compat caps it), or
        None where the configuration does not start: a migration keeps a guest on hosts that
        give it the same CPU, the guest-visible configuration G5 speaks of."""
        run = Run(self.config, self.hosts[host], self.guest)
        try:
            run.machine.start()
        except MachineError:
            return None
        return run.machine.guest_cpu

    def _migration_targets(self, run: Run, path) -> tuple[str, ...]:
        """Hosts the guest may move to now: those giving it the same CPU, while the sequence has
        fewer than `migrations` moves."""
        if sum(e.name == "migrate" for e in path) >= self.migrations:
            return ()
        here = run.machine.guest_cpu
        return tuple(h for h, cpu in self.guest_cpus.items() if cpu == here)

    def _expand(self, parent: int | None, host: str, sequence, events) -> list[int]:
        """Every event (and, while the sequence has no fault yet, each fault point of it) from
        one state; returns the new states."""
        new = []
        parent_fp = None
        for event in events:
            run = self._run_at(parent, host)
            if parent is not None and parent_fp is None:
                parent_fp = run.state()
            probe = self.faults != "none" and not run.faulted
            step = run.apply(event, probe=probe)
            variants = [(event, run, step)]
            for (call, code), count in sorted((step.points or {}).items()):
                for nth in sorted({1, count} if self.faults == "any" else {count}):
                    faulted = Event(event.name, event.arg, Fault(call, code, nth))
                    if event.name == "migrate" and \
                            not self.judge.first_move(parent_fp, str(faulted)):
                        continue
                    frun = self._run_at(parent, host)
                    variants.append((faulted, frun, frun.apply(faulted)))
            for ev, r, st in variants:
                sid = self._child(parent, parent_fp, host, sequence, ev, r, st)
                if sid is not None:
                    new.append(sid)
        return new

    def _child(self, parent, parent_fp, host: str, sequence, event: Event, run: Run,
               step) -> int | None:
        """Check one transition; record its target; return the id if the state is new."""
        self.result.transitions += 1
        path = sequence + (event,)
        key = (host if parent is None else parent, str(event))
        problems, fp = self.judge.transition(lambda: self._run_at(parent, host), parent_fp,
                                             event, run, step)
        for guarantee, detail in problems:
            self._find(guarantee, host, path, detail, run)
        if fp is None:
            self.edges[key] = -1
            return None
        sid = self.ids.get(fp)
        if sid is not None:
            self.edges[key] = sid
            return None
        sid = len(self.ids)
        self.ids[fp] = sid
        self.edges[key] = sid
        if parent is None and event.fault is None:
            self.families[host] = run.machine.guest_cpu
        self.paths.append((host, path))
        self.applicable.append(run.applicable(self._migration_targets(run, path)))
        if len(path) <= self.depth and not (self.faults == "last" and run.faulted):
            # it will be expanded: keep it to start from
            run.machine.trace.clear()
            self.snapshots[sid] = pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL)
        problems, view = self.judge.state(run)
        for guarantee, detail in problems:
            self._find(guarantee, host, path, detail, run)
        self.views.append(view)
        return sid

    # -- G1: the hosts walked in lockstep -------------------------------------------------------------
    def g1(self) -> None:
        """For each CPU family, walk the hosts' automata on the same events (no faults: a fault
        is one host's doing) and report the shortest sequence after which two running machines
        show their guest different things."""
        by_family: dict[str, list[str]] = {}
        for host, family in self.families.items():
            by_family.setdefault(family, []).append(host)
        for family, hosts in sorted(by_family.items()):
            if len(hosts) < 2:
                continue
            hosts.sort()
            start = tuple(self.edges.get((h, "start")) for h in hosts)
            found = self._lockstep(start)
            if found:
                labels, a, b = found
                sa, sb = _follow(self.edges, start, labels)[a], _follow(self.edges, start,
                                                                         labels)[b]
                va, vb = self.views[sa], self.views[sb]
                diff = "; ".join(f"{x[0]}: {_show(x[1:])} on {hosts[a]}, {_show(y[1:])} on "
                                 f"{hosts[b]}" for x, y in zip(va, vb) if x != y)
                run = self._replay(hosts[a], (START, *(Event.parse(lb) for lb in labels)))
                self.result.findings.append(Finding(
                    "G1", self.unit.options, hosts[a], self.unit.guest, self.unit.qemu,
                    ["start", *labels], f"the guest sees a difference: {diff}",
                    step_lines(run), other_host=hosts[b]))

    def _lockstep(self, start: tuple):
        out: dict[int, list[str]] = {}
        for (src, label), dst in self.edges.items():
            if isinstance(src, int) and "!" not in label:
                out.setdefault(src, []).append(label)
        seen = {start}
        frontier = [(start, ())]
        for level in range(self.depth + 1):
            nxt = []
            for sids, labels in frontier:
                views = [(i, self.views[sid]) for i, sid in enumerate(sids)
                         if sid is not None and sid >= 0 and self.views[sid] is not None]
                for (i, view_i), (j, view_j) in zip(views, views[1:]):
                    if view_i != view_j:
                        return labels, i, j
                if level == self.depth:
                    continue
                for label in sorted({lb for sid in sids if sid is not None and sid >= 0
                                     for lb in out.get(sid, ())}):
                    step = tuple(None if sid is None or sid < 0 else self.edges.get((sid, label))
                                 for sid in sids)
                    if sum(s is not None and s >= 0 for s in step) < 2 or step in seen:
                        continue
                    seen.add(step)
                    nxt.append((step, labels + (label,)))
            frontier = nxt
        return None


def step_lines(run: Run) -> list[str]:
    """Each step of a run as "event: outcome[: text]", with QEMU's warnings on the way."""
    return [f"{s.event}: {s.summary}" + "".join(f"\n  warning: {w.splitlines()[0]}"
                                                 for w in s.warnings) for s in run.steps]


def _follow(edges, start: tuple, labels) -> tuple:
    sids = start
    for label in labels:
        sids = tuple(None if s is None or s < 0 else edges.get((s, label)) for s in sids)
    return sids


def _show(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _settled(fp: tuple) -> tuple:
    """A state as a failed step must leave it: a failed device_add leaves its KVM vCPUs parked
    for a later one (KVM cannot destroy a vCPU), which changes nothing the guest or QEMU uses;
    whether a fault was injected on the way is the checker's own mark."""
    return _without_parked(fp[:-1])


def _without_parked(fp: tuple) -> tuple:
    """A state without the KVM vCPUs QEMU parked at an unplug or a failed plug."""
    kvm = fp[19]
    if kvm is None:
        return fp
    vcpus = set(fp[9])
    kvm = kvm[:5] + (tuple(v for v in kvm[5] if v[0] in vcpus),) + kvm[6:]
    return fp[:19] + (kvm,) + fp[20:]


#: How KVM faults enter the sequences: not at all; in one step, whose result is checked but not
#: explored further, at the last point of the step where each call can fail each way ("last",
#: the default: the most to roll back); or in one step anywhere, at its first and last points,
#: explored on ("any").
FAULT_MODES = ("none", "last", "any")


def explore_unit(unit: Unit, depth: int, faults: str = "last", migrations: int = 1) -> UnitResult:
    """Explore one unit to `depth` events after start (at most `migrations` moves in a
    sequence), then hold its hosts to G1."""
    explorer = _Explorer(unit, depth, faults, migrations)
    result = explorer.explore()
    explorer.g1()
    return result


def _unit_job(args) -> UnitResult:
    return explore_unit(*args)


# --- the space ------------------------------------------------------------------------------------

#: The default space: the release's newest machine (``pseries``) with each ic-mode and each
#: kernel-irqchip (on, off, unset), two vCPUs and room for one more core, on every host preset,
#: with a guest that takes XIVE when offered and one without XIVE. ``full`` adds the newest
#: legacy machine (pseries-3.0, or the release's type like it: pseries-rhel7.6.0 in RHEL's
#: qemu-kvm), max-cpu-compat=power8 and the xive=off guest.
DEFAULT_SMP = "-smp 2,maxcpus=3"
SPACES = ("default", "full")


def space_configs(space: str = "default", qemu: str | None = None) -> list[str]:
    """The QEMU options of each configuration in `space` under release `qemu` (``pseries`` is
    each release's newest machine)."""
    if space not in SPACES:
        raise ValueError(f"unknown space '{space}' (one of {', '.join(SPACES)})")
    compats = (None,) if space == "default" else (None, "power8")
    machines = [("pseries", ("dual", "xics", "xive"))]
    if space == "full":
        machines.append((get_release(qemu).name_of((3, 0)), (None,)))
    configs = []
    for machine, modes in machines:
        for mode in modes:
            for irqchip in (None, "on", "off"):
                for compat in compats:
                    props = [machine]
                    if mode:
                        props.append(f"ic-mode={mode}")
                    if irqchip:
                        props.append(f"kernel-irqchip={irqchip}")
                    if compat:
                        props.append(f"max-cpu-compat={compat}")
                    configs.append(f"-M {','.join(props)} {DEFAULT_SMP}")
    return configs


def space_guests(space: str = "default") -> list[str]:
    return ["linux-xive", "linux-legacy"] if space == "default" else list(GUESTS)


def units(qemu: str | None, configs=None, hosts=None, guests=None,
          space: str = "default") -> list[Unit]:
    release = get_release(qemu).version
    hosts = tuple(hosts or PRESETS)
    return [Unit(options, guest, release, hosts)
            for options in (configs or space_configs(space, release))
            for guest in (guests or space_guests(space))]


@dataclass
class CheckResult:
    qemu: str
    depth: int
    units: int = 0
    states: int = 0
    transitions: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"qemu": self.qemu, "depth": self.depth, "units": self.units,
                "states": self.states, "transitions": self.transitions,
                "seconds": round(self.seconds, 3),
                "findings": [f.as_dict() for f in self.findings]}

    def by_guarantee(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for finding in self.findings:
            out[finding.guarantee] = out.get(finding.guarantee, 0) + 1
        return out


def check(qemu: str | None = None, depth: int = 4, hosts=None, guests=None, configs=None,
          jobs: int = 1, faults: str = "last", migrations: int = 1, space: str = "default",
          progress=None) -> CheckResult:
    """Explore every unit and return the findings. `progress(result)` is called as each unit
    completes (for a progress bar)."""
    import time

    start = time.perf_counter()
    work = units(qemu, configs, hosts, guests, space)
    out = CheckResult(get_release(qemu).version, depth, len(work))
    args = [(u, depth, faults, migrations) for u in work]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = pool.map(_unit_job, args)
            for result in results:
                _add(out, result, progress)
    else:
        for a in args:
            _add(out, _unit_job(a), progress)
    out.findings = merge(out.findings)
    out.seconds = time.perf_counter() - start
    return out


def merge(findings: list[Finding]) -> list[Finding]:
    """One finding per guarantee and detail: the shortest sequence (then the first
    configuration, host and guest), with where else it was found."""
    findings = sorted(findings, key=lambda f: (f.guarantee, len(f.sequence), f.options, f.host,
                                               f.guest))
    kept: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        first = kept.setdefault((finding.guarantee, finding.detail), finding)
        if first is not finding:
            first.also.append((finding.options, finding.host, finding.guest))
    return list(kept.values())


def _add(out: CheckResult, result: UnitResult, progress) -> None:
    out.states += result.states
    out.transitions += result.transitions
    out.findings += result.findings
    if progress:
        progress(result)
