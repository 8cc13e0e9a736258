"""The checker's event alphabet, and the run it drives: one machine (after a migration, its
successor on the destination host) with one guest, taking events as QMP and the guest give them.

An event is written ``name[:argument][!call=ERRNO[#n]]``: ``boot``, ``kexec``, ``cas-invalid``,
``reset``, ``stop``, ``cont``, ``hotplug``, ``unplug``, ``migrate:HOST``, and ``start`` (machine
init and the first reset, always first). ``!create_device=ENOMEM#2`` makes the second KVM
``create_device`` call of that step that can run out of memory fail (host.faults says which
errnos each call can return on its own). Every sequence is replayed from a fresh machine, so a run
is a pure function of its configuration, host, guest and events.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass

from .. import papr
from ..config import MachineConfig
from ..errors import InputError, MachineError, StateError
from ..guest.profiles import GuestProfile
from ..host.faults import INJECTABLE, FaultPlan
from ..host.host import Host, parse_host
from ..machine.machine import Machine
from .fingerprint import state

#: Events that take no argument, in the order the checker tries them.
SIMPLE_EVENTS = ("boot", "kexec", "cas-invalid", "reset", "stop", "cont", "hotplug", "unplug")
#: What each event is, for `--help` texts and scenario comments.
EVENT_TEXTS = {
    "start": "machine init and the first reset (QEMU starting)",
    "boot": "the guest boots from firmware: CAS with its answer, then its interrupt driver",
    "kexec": "the running kernel tears its driver down and kexecs a new one (no CAS)",
    "cas-invalid": "firmware calls CAS asking for both interrupt modes (byte 23 = 0x80)",
    "reset": "system_reset (QMP): devices, CAS state, the boot-time controller",
    "stop": "QMP stop", "cont": "QMP cont",
    "hotplug": "device_add of the next free CPU core; a booted guest brings it online",
    "unplug": "a booted guest offlines the last hot-plugged core, then device_del",
    "migrate": "migrate:HOST: save, start the same options on HOST with -incoming, load, resume",
}
ERRNOS = {name: getattr(E, name) for name in ("ENOMEM", "ENXIO", "EIO", "ENOSPC")}


@dataclass(frozen=True)
class Fault:
    """KVM call `call` fails with `errno` the `nth` time it can, within one step."""

    call: str
    errno: int
    nth: int = 1

    def __str__(self) -> str:
        return f"{self.call}={E.errorcode[self.errno]}" + (f"#{self.nth}" if self.nth != 1 else "")


@dataclass(frozen=True)
class Event:
    name: str
    arg: str | None = None
    fault: Fault | None = None

    def __str__(self) -> str:
        text = self.name + (f":{self.arg}" if self.arg else "")
        return text + (f"!{self.fault}" if self.fault else "")

    @property
    def base(self) -> "Event":
        return Event(self.name, self.arg)

    @classmethod
    def parse(cls, text: str) -> "Event":
        """An event as written in a scenario; bad text is an InputError naming what is wrong."""
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"an event must be a non-empty string, not {text!r}")
        body, _, fault_text = text.strip().partition("!")
        name, _, arg = body.partition(":")
        if name == "migrate":
            if not arg:
                raise InputError(f"event '{text}': migrate needs a host (migrate:HOST)")
            parse_host(arg)
        elif name not in SIMPLE_EVENTS and name != "start":
            raise InputError(f"unknown event '{name}' in '{text}': use start, "
                             f"{', '.join(SIMPLE_EVENTS)} or migrate:HOST")
        elif arg:
            raise InputError(f"event '{text}': {name} takes no argument")
        fault = None
        if fault_text:
            call, _, rest = fault_text.partition("=")
            code, _, nth = rest.partition("#")
            if call not in INJECTABLE:
                raise InputError(f"event '{text}': unknown KVM call '{call}' (one of "
                                 f"{', '.join(INJECTABLE)})")
            if code not in ERRNOS or ERRNOS[code] not in INJECTABLE[call]:
                can = ", ".join(E.errorcode[c] for c in INJECTABLE[call])
                raise InputError(f"event '{text}': {call} cannot fail with '{code}' on its own "
                                 f"(it can fail with: {can})")
            if nth and not (nth.isdigit() and int(nth) >= 1):
                raise InputError(f"event '{text}': '#{nth}' is not a count from 1")
            fault = Fault(call, ERRNOS[code], int(nth) if nth else 1)
        return cls(name, arg or None, fault)


START = Event("start")
_NEVER = 1 << 40  # a probe fault's count: it counts the points and never fires


@dataclass
class Step:
    """What one event did: ``ok``, ``refused`` (a command failed, the machine runs on),
    ``exit`` (QEMU exited), ``panic`` (the guest kernel died) or ``crash`` (the model raised
    something it never should); the text QEMU (or the guest) printed, and the warnings."""

    event: str
    outcome: str
    text: str = ""
    warnings: tuple[str, ...] = ()
    #: (call, errno) -> how many times the step reached a point where it could fail that way.
    points: dict = None

    @property
    def summary(self) -> str:
        return self.outcome + (f": {self.text}" if self.text else "")


class Run:
    """A machine with a guest, driven by events. `plan` is shared by every KVM the run uses."""

    def __init__(self, config: MachineConfig, host: Host, guest: GuestProfile) -> None:
        self.config, self.host, self.guest = config, host, guest
        self.plan = FaultPlan()
        self.machine = Machine(config, host, self.plan)
        self.booted = False  # a kernel runs (its driver is machine.driver)
        self.panicked = False  # the kernel died; only a reset brings the machine back
        self.cores: list[int] = []  # hot-plugged cores, in plug order
        self.steps: list[Step] = []
        self.extra: dict = {}  # what an event leaves for the invariants (migration results)
        self.parked: list[int] = []  # unplugged cores: their KVM vCPUs stay, parked
        self.faulted = False  # an event of this run had a KVM fault injected

    # -- what can happen now ---------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.machine.runstate not in ("init", "shutdown")

    @property
    def firmware(self) -> bool:
        """Firmware runs: the tree still offers the modes (no CAS yet since the last reset)."""
        return bool(self.machine.fdt.get("/chosen", {}).get("ibm,arch-vec-5-platform-support"))

    def state(self) -> tuple:
        """The canonical state (fingerprint.state), and whether a fault was injected on the way
        (the checker injects at most one per sequence)."""
        return state(self.machine, self.booted, self.panicked, tuple(self.cores)) + (self.faulted,)

    def free_core(self) -> int | None:
        config = self.config
        if config.version < (2, 7):
            return None
        present = {v // config.vsmt * config.threads for v in self.machine.vcpus}
        for core in range(0, config.max_cpus, config.threads):
            if core not in present:
                return core
        return None

    def applicable(self, hosts: tuple[str, ...]) -> list[Event]:
        """The events that can happen in this state, in the checker's order."""
        if not self.alive:
            return []
        state = self.machine.runstate
        if state == "internal-error":
            return [Event("reset")]
        out = []
        running = state == "running"
        live_kernel = running and self.booted and not self.panicked
        if running and self.firmware and not self.panicked:
            out += [Event("boot"), Event("cas-invalid")]
        if live_kernel:
            out.append(Event("kexec"))
        if running:
            out.append(Event("reset"))
            out.append(Event("stop"))
        if state == "paused":
            out.append(Event("cont"))
        if running and self.free_core() is not None:
            out.append(Event("hotplug"))
        if running and self.cores:
            out.append(Event("unplug"))
        if running and not self.panicked:
            out += [Event("migrate", host) for host in hosts]
        return out

    # -- doing it ----------------------------------------------------------------------------------
    def apply(self, event: Event, probe: bool = False) -> Step:
        """Run one event (with its fault, if any) and record what it did. With `probe`, count
        the points of the step where each KVM call could fail on its own (Step.points)."""
        plan = self.plan
        plan.clear()
        if event.fault is not None:
            plan.fail(event.fault.errno, call=event.fault.call, nth=event.fault.nth)
            self.faulted = True
        elif probe:
            for call, codes in INJECTABLE.items():
                for code in codes:
                    plan.fail(code, call=call, nth=_NEVER)
        machine = self.machine
        before = len(machine.warnings)
        self.extra.clear()
        try:
            text = self._do(event) or ""
            outcome = "ok"
        except MachineError as exc:
            text = exc.text
            outcome = "exit" if self.machine.runstate == "shutdown" else "refused"
        except _Panic as exc:
            text, outcome = str(exc), "panic"
        except Exception as exc:  # noqa: BLE001 - a crash of the model is a finding
            text, outcome = f"{type(exc).__name__}: {exc}", "crash"
        points = {(f.call, f.errno): f.seen for f in plan.faults if f.seen} if probe else {}
        plan.clear()
        step = Step(str(event), outcome, text, tuple(self.machine.warnings[before:])
                    if self.machine is machine else tuple(self.machine.warnings), points)
        self.steps.append(step)
        return step

    def _do(self, event: Event) -> str | None:
        m = self.machine
        name = event.name
        if name == "start":
            m.start()
        elif name == "boot":
            self._boot()
        elif name == "kexec":
            self._boot()
        elif name == "cas-invalid":
            ov5 = bytearray(26)
            ov5[papr.OV5_INTC_BYTE - 1] = papr.OV5_XIVE_BOTH
            m.cas(m.vcpus[0], bytes(ov5))
            self.booted = False
        elif name == "reset":
            m.reset()
            m.driver, m.guest = None, None  # the kernel is gone with the reset
            self.booted = self.panicked = False
        elif name == "stop":
            m.stop()
        elif name == "cont":
            m.cont()
        elif name == "hotplug":
            core = self.free_core()
            ids = m.hotplug_cpu(core)
            self.cores.append(core)
            if self.booted and not self.panicked:
                m.driver.drain()  # the hot-plug event
                for vcpu in ids:
                    m.driver.online_cpu(vcpu)
        elif name == "unplug":
            core = self.cores[-1]
            if self.booted and not self.panicked:
                for vcpu in m._core_vcpus(core):
                    m.driver.offline_cpu(vcpu)
            m.unplug_cpu(core)
            self.cores.pop()
            if core not in self.parked:
                self.parked.append(core)
            if self.booted and not self.panicked:
                m.driver.drain()
        elif name == "migrate":
            return self._migrate(parse_host(event.arg))
        else:  # Event.parse refuses anything else
            raise ValueError(f"unknown event {event}")
        return None

    def _boot(self) -> None:
        try:
            self.machine.boot(self.guest)
        except StateError as exc:  # the kernel found no controller it can drive
            self.machine.driver = None
            self.booted, self.panicked = False, True
            raise _Panic(str(exc)) from None
        self.booted = True
        self.machine.driver.drain()

    def _migrate(self, host: Host) -> str | None:
        """The source keeps running until the destination has loaded; a destination that cannot
        start or load leaves the source as it was (QEMU's migration fails, the guest runs on)."""
        source = self.machine
        target = Machine(self.config, host, self.plan)
        try:  # the destination is started first, with -incoming, and the cores plugged
            target.start_incoming(cores=self.cores)
            self.extra["families"] = (source.cpu_family, target.cpu_family)
            stream = source.save()  # the source stops; it stays paused if the load fails
            target.load(stream)
        except MachineError as exc:
            if target.runstate != "shutdown":
                target._shutdown()
            if source.runstate == "paused":  # libvirt resumes the source of a failed migration
                source.cont()
            self.extra["migration_failed"] = (exc.stage, exc.text)
            raise MachineError(f"migration to {host.name} failed: {exc.text}", stage="migrate") \
                from None
        if self.booted and source.driver is not None:
            target.resume_guest(source.driver, source.guest)
        source._shutdown()  # the source QEMU quits once the destination runs
        self.machine, self.host = target, host
        self.parked = []  # the destination made vCPUs for the present cores only
        return None


class _Panic(Exception):
    """The guest kernel died (it found no interrupt controller it can drive)."""


def replay(config: MachineConfig, host: Host, guest: GuestProfile, events) -> Run:
    """A fresh run with `events` applied (the first being start)."""
    run = Run(config, host, guest)
    for event in events:
        run.apply(event)
    return run
