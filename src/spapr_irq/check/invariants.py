"""DESIGN.md's guarantees as checks on a run: at each new state (G2, G3, G4), on each transition
(G2 exits, G3 failed steps and resets, G5 migrations, crashes), and across hosts (G1, in
:mod:`spapr_irq.check.engine`). Each check returns the problems it found as one-line details."""

from __future__ import annotations

from collections import Counter

from ..devices import Event as Fire
from ..devices import Workload
from ..errors import MachineError, SpaprIrqError
from ..machine.machine import Machine
from .events import Run

#: Refusals that come from the in-kernel irqchip policy: legitimate only with kernel-irqchip=on.
IRQCHIP_REFUSALS = ("kernel_irqchip requested", "No KVM support for the 'dual' machine",
                    "KVM is incompatible with ic-mode=dual", "KVM is too old to support")
FALLBACK = "kernel_irqchip allowed but unavailable"

GUARANTEES = {
    "G1": "predictable guest: what the guest sees depends on the configuration, not the host",
    "G2": "requested or refused: kernel-irqchip on/off/allowed honoured",
    "G3": "clean transitions: one active controller, nothing leaked, failed steps change nothing, "
          "a reset returns to the boot-time state",
    "G4": "live: IPIs and device interrupts to every vCPU arrive exactly once",
    "G5": "migratable: the state loads on a destination with the same configuration, and "
          "nothing pending is lost",
    "crash": "no unexpected exception: the model raised something QEMU never would",
}


def g2_state(run: Run) -> list[str]:
    """kernel-irqchip=on: the active controller is in-kernel; off: nothing in-kernel; allowed:
    emulated only after the fallback warning."""
    m = run.machine
    if m.runstate in ("shutdown", "init") or m.accel != "kvm" or m.active is None:
        return []
    irqchip = run.config.kernel_irqchip
    active = m.active
    if irqchip == "on" and not active.in_kernel:
        return [f"kernel-irqchip=on but {active.label} is emulated"]
    if irqchip == "off" and any(intc.in_kernel for intc in m._controllers()):
        return ["kernel-irqchip=off but a controller is in-kernel"]
    if irqchip == "allowed" and not active.in_kernel and \
            not any(w.startswith(FALLBACK) for w in m.warnings):
        return [f"kernel-irqchip allowed: {active.label} is emulated under KVM without the "
                f"'{FALLBACK}' warning"]
    return []


def g2_exit(run: Run, step) -> list[str]:
    """Only kernel-irqchip=on may stop the machine for want of an in-kernel controller."""
    if step.outcome != "exit" or run.machine.accel != "kvm" or run.config.kernel_irqchip == "on":
        return []
    if step.text.startswith(IRQCHIP_REFUSALS):
        return [f"kernel-irqchip={run.config.kernel_irqchip}, yet QEMU exits: "
                f"{step.text.splitlines()[0]}"]
    return []


def g3_state(run: Run) -> list[str]:
    """Nothing leaked; exactly one active controller while the machine runs."""
    m = run.machine
    problems = [f"leak: {leak}" for leak in m.leaks()]
    if m.runstate in ("running", "paused") and \
            (m.active is None or m.active not in m._controllers()):
        problems.append("no active interrupt controller while the machine runs")
    return problems


def backend(machine) -> str:
    """The active controller and where it runs, naming the kernel device: what decides how
    interrupts travel (host names aside)."""
    active = machine.active
    if active is None:
        return "no controller"
    if not active.in_kernel:
        return f"{active.label} emulated"
    return f"{active.label} in-kernel ({machine.kvm.fds[active.fd].kind})"


def told_of_failure(driver) -> bool:
    """The platform answered one of the guest's calls with an error (H_HARDWARE and the like):
    the guest knows a CPU or source is not usable, so nothing is silently lost (G4)."""
    return any(" returned " in w or w.startswith("Failed to") for w in driver.warnings)


def g4_workload(run: Run) -> tuple[list[str], tuple | None]:
    """Fire an IPI, an MSI and (on the boot CPU) an LSI at every online vCPU and drain: each must
    arrive once. Returns the problems and what the guest handled (part of what it can see).
    Destroys the run's state: call it last."""
    m = run.machine
    if m.runstate != "running" or not run.booted or run.panicked or m.driver is None:
        return [], None
    if told_of_failure(m.driver):
        return [], ("told of a failure",)
    online = [v for v in m.vcpus if v in m.driver.online]
    events = []
    for vcpu in online:
        events.append(Fire("ipi", vcpu, source=online[0] if vcpu != online[0] else online[-1]))
        events.append(Fire("msi", vcpu, 5))
    events.append(Fire("lsi", online[0], 5))
    try:
        handled = Workload(m).run(events, drain_each=True)
    except (SpaprIrqError, ValueError, KeyError, IndexError) as exc:
        return [f"the workload failed: {type(exc).__name__}: {exc}"], ("failed",)
    got = Counter((h.vcpu, h.kind) for h in handled if h.kind != "spurious")
    want = Counter((e.vcpu, e.kind) for e in events)
    seen = tuple(sorted(got.items()))
    if got != want:
        return [f"{_delivery(want, got)} ({backend(m)})"], seen
    return [], seen


def g5_failed(run: Run, step) -> list[str]:
    """A destination with the same options must load the stream, whatever its backend; only
    kernel-irqchip=on may refuse for want of an in-kernel controller."""
    failed = run.extra.get("migration_failed")
    if step.outcome != "refused" or not failed or "!" in step.event:
        return []  # (a KVM fault injected on the way may make any step fail)
    families = run.extra.get("families")
    if families is None or families[0] != families[1]:
        return []  # another CPU is another guest-visible configuration: a refusal is right
    stage, text = failed
    if stage == "load" and not text.startswith("kernel_irqchip requested"):
        return [f"the destination refused the stream: {text.splitlines()[0]}"]
    return []


def _pending(machine, online) -> tuple[Workload, list[tuple[str, int]], int]:
    """Interrupts left pending on a booted guest that does not run: an MSI and an IPI to every
    online vCPU, an LSI to the first, and one MSI fired while the guest has it masked."""
    workload = Workload(machine)
    fired = []
    for vcpu in online:
        workload.fire(Fire("msi", vcpu, 6))
        workload.fire(Fire("ipi", vcpu, source=online[0] if vcpu != online[0] else online[-1]))
        fired += [(vcpu, "msi"), (vcpu, "ipi")]
    workload.fire(Fire("lsi", online[0], 3))
    fired.append((online[0], "lsi"))
    return workload, fired, workload.fire_masked(online[0], 4)


def g5_pending(source: Run, make_source, dst_host) -> list[str]:
    """Move a guest with interrupts pending to `dst_host`: after the move it must handle exactly
    what the same guest handles when it stays. `make_source` replays the run's state afresh."""
    m = source.machine
    if m.runstate != "running" or not source.booted or source.panicked or m.driver is None \
            or told_of_failure(m.driver):
        return []
    online = [v for v in m.vcpus if v in m.driver.online]
    workload, fired, behind = _pending(m, online)
    stream = m.save()
    target = Machine(source.config, dst_host)
    try:
        target.start_incoming(cores=source.cores, lsis=workload.lsis())
        target.load(stream)
    except MachineError:
        return []  # the migration itself is refused: the transition's own checks judge that
    if target.cpu_family != m.cpu_family:
        return []
    target.resume_guest(m.driver, source.guest)
    target.driver.unmask(behind, online[0], 4)
    moved = Counter((h.vcpu, h.kind) for h in target.driver.drain() if h.kind != "spurious")
    stay = make_source()
    ref_workload, _fired, ref_behind = _pending(stay.machine, online)
    stay.machine.driver.unmask(ref_behind, online[0], 4)
    expected = Counter((h.vcpu, h.kind) for h in stay.machine.driver.drain()
                       if h.kind != "spurious")
    if moved == expected:
        return []
    return [f"interrupts pending at a move from {backend(m)} to {backend(target)}: "
            + _delivery(expected, moved)]


def _delivery(expected: Counter, got: Counter) -> str:
    """What went wrong, by kind of interrupt (which vCPUs is in the scenario's replay)."""
    lost, extra = expected - got, got - expected
    text = []
    if lost:
        text.append("lost " + _kinds(lost, expected))
    if extra:
        text.append("handled twice " + _kinds(extra, expected))
    return " and ".join(text)


def _kinds(which: Counter, of: Counter) -> str:
    out = []
    for kind in ("ipi", "msi", "lsi"):
        n = sum(c for (_v, k), c in which.items() if k == kind)
        total = sum(c for (_v, k), c in of.items() if k == kind)
        if n:
            name = kind.upper()
            out.append(f"every {name}" if n == total and total > 1 else
                       f"an {name}" if n == 1 else f"{name}s (not all)")
    return ", ".join(out)
