"""The pseries machine: init, CAS, reset, and the dispatch tables the guest reaches.

The machine follows QEMU's ``spapr_machine_init`` / ``spapr_irq_init`` / ``spapr_machine_reset`` /
``do_client_architecture_support`` order (spec/qemu.md 2-4) and records every decision in
:attr:`Machine.trace` with the rule of :mod:`policy` it applied, so that ``explain`` prints the path
really taken. A fatal error raises :class:`MachineError` after the machine has shut down cleanly (all
KVM devices closed, kernel RTAS tokens undefined): the model of QEMU exiting.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass
from typing import NamedTuple

from .. import papr
from ..config import (COMPAT_PVRS, CPU_FAMILIES, CPU_MODELS, MachineConfig, compat_rank,
                      parse_options, power9_capable)
from ..errors import ConfigError, KvmError, MachineError, StateError, strerror
from ..host.host import DEFAULT_HOST, Host, parse_host
from ..host.kvm import FaultPlan, Kvm
from ..host.uapi import KVM_CAP_PPC_SMT, KVM_DEV_TYPE_XICS
from ..intc.base import ClaimError, ConnectError, InterruptController
from ..intc.xics import XicsController
from ..intc.xive import XiveController
from ..memory import GuestMemory
from ..monitor import normalize_info_pic
from ..policy import (RULES, InitContext, advertised_byte23, init_checks, irqchip_rule,
                      mode_has_xics, mode_has_xive)
from .dispatch import DispatchTable, GuestInterface
from .hotplug import CpuHotplug
from .irq import IrqNumbers, MsiAllocator
from .migration import Migration

RAM_SIZE = 512 << 20
FALLBACK_HINT = "Falling back to kernel-irqchip=off"


@dataclass
class Step:
    """One step the machine took: what, the detail, and the policy rule it applied (if any)."""

    step: str
    detail: str
    rule: str | None = None

    def as_dict(self) -> dict:
        out = {"step": self.step, "detail": self.detail}
        if self.rule:
            out["rule"] = self.rule
            out["guarantee"] = RULES[self.rule].guarantee
        return out


class Leak(NamedTuple):
    """Something a transition left behind: its kind and what it is."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def _mode_name(byte23: int) -> str:
    return {papr.OV5_XIVE_BOTH: "dual", papr.OV5_XIVE_EXPLOIT: "xive"}.get(byte23, "xics")


class Machine(IrqNumbers, GuestInterface, Migration, CpuHotplug):
    """A pseries machine on a modeled host. Build one with :meth:`create`."""

    def __init__(self, config: MachineConfig, host: Host, faults: FaultPlan | None = None) -> None:
        self.config = config
        self.host = host
        self.trace: list[Step] = []
        self.warnings: list[str] = []
        self.reports: list[str] = []  # non-fatal error_report lines
        self.runstate = "init"
        self.accel = "tcg"
        self.kvm: Kvm | None = None
        self._faults = faults
        self.mode = config.ic_mode
        self.cpu_family = ""
        self.cpu_model = config.cpu
        self.xics: XicsController | None = None
        self.xive: XiveController | None = None
        self.active: InterruptController | None = None
        self.hcalls = DispatchTable("hcall")
        self.rtas_calls = DispatchTable("RTAS call")
        self.msi = MsiAllocator()
        self.msi_blocks: dict[int, int] = {}  # first irq -> count, owned by the default PHB
        self.irq_owners: dict[int, str] = {}  # claimed external IRQ -> the device that owns it
        self.devices: list = []  # the machine's own devices with an interrupt (irq.Device)
        self.vcpus: list[int] = []
        self._vcpu_set: set[int] = set()
        self.hotplug_order: list[int] = []  # vCPUs of hot-plugged cores, in plug order
        self._handlers: dict[int, object] = {}  # hcall number -> handler, filled on first use
        self.ov5 = b""  # the machine's own OV5 (what it supports)
        self.ov5_cas = b""  # the CAS result, empty before CAS
        self.fdt: dict[str, dict] = {}
        self.memory = GuestMemory(RAM_SIZE)
        self.guest = None  # the guest profile booted last, if any
        self.driver = None  # the booted guest's interrupt driver (guest.XicsDriver), if any
        self._clock = 0  # time base ticks seen by the guest (one per guest-facing call)

    # ====================================================================================================
    # Creation
    # ====================================================================================================
    @classmethod
    def create(cls, options: str | MachineConfig = "", host: str | Host = DEFAULT_HOST,
               faults: FaultPlan | None = None, incoming: bool = False,
               qemu: str | None = None) -> "Machine":
        """Parse options as QEMU release `qemu` would (default: the newest modeled), pick the
        accelerator, run machine init and the first reset; with `incoming`, then wait for a
        migration stream (:meth:`load`).

        Raises ConfigError/HostError for bad input and MachineError when QEMU would exit.
        """
        if isinstance(options, MachineConfig):
            if qemu is not None and qemu != options.qemu:
                raise ConfigError(f"the options were parsed for QEMU {options.qemu}, not {qemu}")
            config = options
        else:
            config = parse_options(options, qemu=qemu)
        host = host if isinstance(host, Host) else parse_host(host)
        machine = cls(config, host, faults)
        machine.start(incoming)
        return machine

    def start(self, incoming: bool = False) -> None:
        """Machine init then the first system reset, as QEMU does before the guest runs. With
        `incoming` (QEMU's -incoming) the machine then waits for a migration stream (load)."""
        if self.runstate != "init":
            raise StateError(f"cannot start: the machine is {self.runstate}")
        self._guarded("init", self._init)
        self._guarded("init", self._reset)
        self.runstate = "inmigrate" if incoming else "running"

    def _step(self, step: str, detail: str, rule: str | None = None) -> None:
        self.trace.append(Step(step, detail, rule))

    def _warn(self, message: str, hints: tuple[str, ...] = ()) -> None:
        self.warnings.append("\n".join((message, *hints)))
        self._step("warning", "\n".join((message, *hints)))

    def _guarded(self, stage: str, fn, *args):
        """Run a machine step; on a fatal error shut down cleanly and re-raise with the stage."""
        try:
            return fn(*args)
        except MachineError as exc:
            exc.stage = stage
            self._fatal(exc)
            raise
        except (ConnectError, ClaimError) as exc:
            error = MachineError(exc.message, exc.hints, stage)
            self._fatal(error)
            raise error from None

    def _reported(self, fn, *args) -> None:
        """Device-reset KVM pushes: QEMU reports a failure (error_report_err) and carries on."""
        try:
            fn(*args)
        except ConnectError as exc:
            self.reports.append(exc.text)
            self._step("error-report", exc.text)

    def _fatal(self, exc: MachineError) -> None:
        self._step("error", exc.text)
        self._shutdown()

    def _shutdown(self) -> None:
        """QEMU exits: every controller's KVM side is released, nothing stays registered in KVM."""
        for intc in (self.xics, self.xive):
            if intc is not None and intc.in_kernel:
                intc.disconnect_kvm()
        if self.xive is not None:
            self.xive.mmio_enabled = False
        self.active = None
        self.runstate = "shutdown"

    def _require_running(self, what: str) -> None:
        if self.runstate != "running":
            raise StateError(f"cannot {what}: the machine is {self.runstate}")

    # ====================================================================================================
    # Run state (QMP stop / cont)
    # ====================================================================================================
    def stop(self) -> None:
        """Pause the vCPUs (QMP `stop`). An in-kernel XIVE masks its sources and syncs its queues
        so the state can be saved; devices may still raise lines while paused."""
        self._require_running("stop")
        self._guarded("stop", self._run_state_changed, False)
        self.runstate = "paused"
        self._step("runstate", "paused")

    def cont(self) -> None:
        """Resume the vCPUs (QMP `cont`): sources get their saved PQ back, events that arrived
        while paused are re-triggered."""
        if self.runstate != "paused":
            raise StateError(f"cannot continue: the machine is {self.runstate}")
        self._guarded("cont", self._run_state_changed, True)
        self.runstate = "running"
        self._step("runstate", "running")

    def _run_state_changed(self, running: bool) -> None:
        """The VM change-state handlers: only a controller connected to KVM registers one."""
        for intc in self._controllers():
            if intc.in_kernel:
                intc.vm_state_change(running)

    # ---------------------------------------------------------------------------------------------------
    def _init(self) -> None:
        config, host = self.config, self.host
        self._step("config", f"{config.machine_type}, ic-mode={config.ic_mode}"
                   f"{'' if config.ic_mode_explicit else ' (machine default)'}, "
                   f"kernel-irqchip={config.kernel_irqchip}, -cpu {config.cpu}"
                   f"{'' if config.cpu_explicit else ' (machine default)'}"
                   f"{', max-cpu-compat=' + config.max_cpu_compat if config.max_cpu_compat else ''}"
                   f", {config.smp_cpus} vCPU(s), maxcpus {config.max_cpus}; QEMU {config.qemu}")
        for warning in config.warnings:
            self._warn(warning)
        self._init_accel()
        if self.accel == "kvm":
            self.kvm = Kvm(host)
            if self._faults is not None:
                self.kvm.faults = self._faults
            self.kvm.arch_init()
            self.kvm.set_user_memory(self.memory)
        self._init_cpu()
        self._set_vsmt_mode()
        self._irq_init()
        self._init_ov5()
        self._create_vcpus()
        self._apply_caps()
        self._claim_default_irqs()

    def _init_accel(self) -> None:
        requested = self.config.accel or ((self.host.accel,))
        for accel in requested:
            if accel == "kvm" and not self.host.has_kvm:
                if len(requested) > 1:
                    self._warn("Could not access KVM kernel module: No such file or directory",
                               ("-accel kvm: failed to initialize kvm: No such file or directory",))
                    continue
                raise MachineError(
                    "-accel kvm: failed to initialize kvm: No such file or directory",
                    ("Could not access KVM kernel module: No such file or directory",),
                )
            self.accel = accel
            break
        bad = self.config.kernel_irqchip_unparsed
        if self.accel == "kvm" and bad is not None:
            raise MachineError(f"Parameter 'kernel-irqchip' does not accept value '{bad}'")
        self._step("accelerator", f"{self.accel} on host {self.host.name} ({self.host.describe()})",
                   "tcg" if self.accel == "tcg" else None)
        if self.accel == "tcg" and self.config.kernel_irqchip != "allowed":
            self._step("kernel-irqchip", f"kernel-irqchip={self.config.kernel_irqchip} from -M has no "
                       "effect under TCG", "tcg")

    def _init_cpu(self) -> None:
        """The CPU type. Under KVM "host" is the pseries default and the alias of the host's own
        family (-cpu POWER9 on a POWER9) names it too (kvm_ppc_register_host_cpu_type); KVM-HV
        runs vCPUs with the host's PVR only, so any other model fails at vCPU init."""
        config, host = self.config, self.host
        if self.accel == "kvm" and (not config.cpu_explicit or config.cpu_alias == host.cpu):
            self.cpu_model = "host"
        else:
            self.cpu_model = config.cpu
        if self.cpu_model == "host" and self.accel != "kvm":
            # The host CPU class is registered by KVM's init only (kvm_ppc_register_host_cpu_type)
            raise MachineError(f"unable to find CPU model '{config.cpu_given or 'host'}'")
        self.cpu_family = host.cpu if self.cpu_model == "host" else CPU_MODELS[self.cpu_model]
        if not config.cpu_explicit:
            self._step("cpu", f"no -cpu: {self.cpu_model}"
                       + (" (the pseries default under KVM)" if self.cpu_model == "host" else
                          f" (the {config.machine_type} default)") + f", a {self.cpu_family.upper()}")
        elif config.cpu_alias == host.cpu and self.accel == "kvm":
            self._step("cpu", f"-cpu {config.cpu_alias}: under KVM the host's family alias names "
                       f"the host CPU ({host.cpu_model})")

    def _apply_caps(self) -> None:
        """spapr_caps_apply, for the one capability whose default differs by machine version:
        cap-htm is on up to pseries-2.11 when the CPU (capped by max-cpu-compat) runs ISA 2.07,
        and TCG has no transactional memory."""
        config = self.config
        htm = config.cap_htm
        if htm is None:
            capped = config.max_cpu_compat is not None and compat_rank(config.max_cpu_compat) < 1
            htm = (config.version <= (2, 11) and not capped
                   and CPU_FAMILIES.index(self.cpu_family) >= CPU_FAMILIES.index("power8"))
        if htm and self.kvm is None:
            raise MachineError("No Transactional Memory support in TCG",
                               ("Try appending -machine cap-htm=off",))

    def _init_compat(self) -> None:
        """ppc_init_compat_all(max-cpu-compat) at every reset: a level the CPU cannot run is
        fatal."""
        level = self.config.max_cpu_compat
        if level and compat_rank(level) > CPU_FAMILIES.index(self.cpu_family):
            raise MachineError(f"Compatibility PVR {COMPAT_PVRS[level]:#010x} not valid for CPU")

    def _check_kvm_pvr(self, vcpu_id: int) -> None:
        """kvm_arch_init_vcpu: KVM_SET_SREGS with the model's PVR, which KVM-HV refuses unless it
        is the host's own."""
        if self.accel != "kvm" or self.cpu_model in ("host", self.host.cpu_model):
            return
        sync = 'Register sync failed... If you\'re using kvm-hv.ko, only "-cpu host" is possible'
        self.reports.append(sync)
        self._step("error-report", sync)
        raise MachineError(f"kvm_init_vcpu: kvm_arch_init_vcpu failed ({vcpu_id}): "
                           f"{strerror(E.EINVAL)}")

    def _set_vsmt_mode(self) -> None:
        """spapr_set_vsmt_mode, before the interrupt controller: TCG runs SMT only on POWER8 and
        later (QEMU 8.1+), threads/core must be a power of two, and under KVM the VSMT mode (vCPU
        ids are spaced by it) is asked for when it is not KVM's; a refusal is only a warning when
        KVM's mode divides it."""
        config = self.config
        vsmt, threads = config.vsmt, config.threads
        if self.kvm is None and threads > 1 and config.release.tcg_smt == "refused":
            raise MachineError("TCG cannot support more than 1 thread/core on a pseries machine")
        if self.kvm is None and threads > 1:
            compat = config.max_cpu_compat
            if (CPU_FAMILIES.index(self.cpu_family) < CPU_FAMILIES.index("power8")
                    or (compat and compat_rank(compat) < CPU_FAMILIES.index("power8"))):
                raise MachineError("TCG only supports SMT on POWER8 or newer CPUs")
            if threads > 8:
                raise MachineError("TCG cannot support more than 8 threads/core on a pseries machine")
        if threads & (threads - 1):
            raise MachineError(f"Cannot support {threads} threads/core on a pseries machine because "
                               "it must be a power of 2")
        if config.vsmt_user and config.vsmt_user < threads:
            raise MachineError(f"Cannot support VSMT mode {vsmt} because it must be >= "
                               f"threads/core ({threads})")
        if self.kvm is None:
            return
        kvm_smt = self.kvm.cap_ppc_smt  # kvmppc_smt_threads(): KVM-HV always reports one
        if vsmt == kvm_smt:
            return
        try:
            self.kvm.enable_vm_cap(KVM_CAP_PPC_SMT, vsmt)
        except KvmError as exc:
            message = f"Failed to set KVM's VSMT mode to {vsmt} (errno {-exc.errno})"
            if kvm_smt >= threads and vsmt % kvm_smt == 0:
                self._warn(message)  # some vCPU ids are wasted, behaviour is correct
                return
            hints = [] if config.vsmt_user else [
                f"On PPC, a VM with {threads} threads/core on a host with {kvm_smt} threads/core "
                f"requires the use of VSMT mode {vsmt}."]
            possible = self.kvm.cap_ppc_smt_possible
            modes = [1 << bit for bit in range(63, -1, -1) if possible >> bit & 1]
            hints.append(f"Available VSMT modes: {' '.join(map(str, modes))}." if modes else
                         "This KVM seems to be too old to support VSMT.")
            raise MachineError(message, tuple(hints)) from None
        self._step("vsmt", f"KVM's VSMT mode set to {vsmt} (vCPU ids spaced by {vsmt})")

    @property
    def guest_cpu(self) -> str:
        """The CPU the guest sees: the host's or the model's family, capped by max-cpu-compat
        (what a migration destination must give it too)."""
        compat = self.config.max_cpu_compat
        if compat and compat_rank(compat) < CPU_FAMILIES.index(self.cpu_family):
            return compat
        return self.cpu_family

    @property
    def power9_capable(self) -> bool:
        return power9_capable(self.cpu_family, self.config.max_cpu_compat)

    # ---------------------------------------------------------------------------------------------------
    def _irq_init(self) -> None:
        """spapr_irq_init: checks, controllers, registrations, the first activation."""
        config = self.config
        mode = "legacy" if config.legacy else config.ic_mode
        if config.legacy:
            self._step("mode", f"{config.machine_type} uses the legacy XICS backend "
                       f"({papr.ICS_NR_IRQS_LEGACY:#x} sources, IRQ numbers allocated first-fit)")
        compat = f", max-cpu-compat={config.max_cpu_compat}" if config.max_cpu_compat else ""
        self._step("cpu", f"{self.cpu_family.upper()}{compat}: "
                   f"{'' if self.power9_capable else 'not '}POWER9-capable", "power9-capable")
        policy = config.release.irq
        for rule, check in init_checks(policy.init_checks):
            ctx = InitContext(
                ic_mode=mode,
                kvm=self.accel == "kvm",
                kernel_irqchip=self.config.kernel_irqchip,
                power9_capable=self.power9_capable,
                probe_broken_disconnect=self._probe_broken_disconnect,
                kvm_has_xive=bool(self.kvm is not None and self.kvm.cap_xive),
                broken_disconnect_text=policy.broken_disconnect_text,
            )
            outcome = check(ctx)
            if outcome.fatal:
                message, hints = outcome.fatal
                self._step("check", f"{rule}: refused", rule)
                raise MachineError(message, hints)
            if outcome.mode:
                mode = outcome.mode
            self._step("check", f"{rule}: {outcome.detail}", rule)
        self.mode = mode
        self._create_controllers()
        # spapr_irq_update_active_intc() with no CAS yet: XIVE for xive-only, else XICS.
        first = self.xics if self.xics is not None else self.xive
        self._step("active", f"{first.label} is active until CAS", "initial-active")
        if policy.connect_at == "reset":  # QEMU 4.0-4.1: the backend's reset hook connects KVM
            self._step("backend", f"{first.label}: the KVM device, if any, is created at the "
                       f"first reset (QEMU {config.qemu})", "initial-active")
            first.activate()
            self.active = first
            return
        self._set_active(first)

    def _probe_broken_disconnect(self) -> bool:
        """xics_kvm_has_broken_disconnect(): create, close, create the KVM XICS device."""
        kvm = self.kvm
        try:
            fd = kvm.create_device(KVM_DEV_TYPE_XICS)
        except KvmError:
            self._step("probe", "first KVM XICS create failed: not reported here, the connect "
                       "will report it", "broken-disconnect")
            return False
        kvm.close(fd)
        try:
            fd = kvm.create_device(KVM_DEV_TYPE_XICS)
        except KvmError as exc:
            broken = exc.errno == E.EEXIST
            self._step("probe", f"second KVM XICS create after close: {exc} -> "
                       f"{'broken disconnect' if broken else 'not a disconnect problem'}",
                       "broken-disconnect")
            return broken
        kvm.close(fd)
        self._step("probe", "KVM XICS device created, closed and created again", "broken-disconnect")
        return False

    def _create_controllers(self) -> None:
        config = self.config
        made = []
        if mode_has_xics(self.mode):
            nr_irqs = papr.ICS_NR_IRQS_LEGACY if self.mode == "legacy" else papr.ICS_NR_IRQS
            self.xics = XicsController(nr_irqs, config.max_cpus)
            made.append(f"ICS ({nr_irqs:#x} sources from {papr.XICS_IRQ_BASE:#x})")
        if mode_has_xive(self.mode):
            nr_servers = config.nr_servers
            self.xive = XiveController(papr.XIVE_NR_IRQS, nr_servers << 3, config.max_cpus,
                                        self.memory)
            for i in range(nr_servers):
                self.xive.claim(papr.SPAPR_IRQ_IPI + i, lsi=False)
            made.append(f"sPAPR XIVE ({papr.XIVE_NR_IRQS:#x} sources, {nr_servers << 3} ENDs, "
                        f"{nr_servers} IPIs claimed)")
        self._step("create", " and ".join(made), "create-controllers")
        for intc in (self.xics, self.xive):
            if intc is None:
                continue
            for name in intc.hcalls:
                self.hcalls.register(name, papr.HCALLS[name], intc)
            for name in intc.rtas_calls:
                self.rtas_calls.register(name, papr.RTAS_TOKENS[name], intc)
            self._step("register", f"{intc.label}: {len(intc.hcalls)} hcalls"
                       + (f", {len(intc.rtas_calls)} RTAS calls" if intc.rtas_calls else ""))

    def _init_ov5(self) -> None:
        """The machine's OV5: XIVE exploitation when the mode has XIVE, and from pseries-2.8 (the
        hot-plug event source) OV5_HP_EVT."""
        ov5 = bytearray(papr.ov5_with(papr.OV5_INTC_BYTE,
                                      papr.OV5_XIVE_EXPLOIT if mode_has_xive(self.mode) else 0))
        if self.config.version >= (2, 8):
            ov5[papr.OV5_HP_EVT_BYTE - 1] |= papr.OV5_HP_EVT
        self.ov5 = bytes(ov5)

    def _create_vcpus(self) -> None:
        """spapr_init_cpus: whole cores only on machines with CPU hot-plug (pseries-2.7 and
        later; maxcpus is a whole number of cores already), no hot-plug room on older ones."""
        config = self.config
        if config.version >= (2, 7):
            if config.smp_cpus % config.threads:
                raise MachineError(f"smp_cpus ({config.smp_cpus}) must be multiple of threads "
                                   f"({config.threads})")
        elif config.max_cpus != config.smp_cpus:
            raise MachineError("This machine version does not support CPU hotplug")
        for cpu_index in range(self.config.smp_cpus):
            self._plug_vcpu(self.config.vcpu_id(cpu_index))
        self._step("vcpus", f"{len(self.vcpus)} vCPU(s), ids {self.vcpus[:8]}"
                   + (" ..." if len(self.vcpus) > 8 else ""))

    def _plug_vcpu(self, vcpu_id: int) -> None:
        """spapr_realize_vcpu: the vCPU thread's kvm_init_vcpu (a failure there ends QEMU), then a
        presenter on every controller."""
        if self.kvm is not None:
            try:
                self.kvm.create_vcpu(vcpu_id)
            except KvmError as exc:
                raise MachineError(f"kvm_init_vcpu: kvm_get_vcpu failed ({vcpu_id}): "
                                   f"{strerror(exc.errno)}") from None
            self._check_kvm_pvr(vcpu_id)
        made = []
        try:
            for intc in self._controllers():
                intc.cpu_intc_create(vcpu_id)
                made.append(intc)
        except ConnectError:
            for intc in made:
                intc.cpu_intc_destroy(vcpu_id)
            raise
        self.vcpus.append(vcpu_id)
        self._vcpu_set.add(vcpu_id)

    def _controllers(self) -> list[InterruptController]:
        return [intc for intc in (self.xics, self.xive) if intc is not None]

    # ====================================================================================================
    # Activation (spapr_irq_update_active_intc / set_active_intc / spapr_irq_init_kvm)
    # ====================================================================================================
    def _wanted_intc(self) -> InterruptController:
        if self.xics is None:
            return self.xive
        if papr.ov5_byte(self.ov5_cas, papr.OV5_INTC_BYTE) & papr.OV5_XIVE_EXPLOIT and self.xive:
            return self.xive
        return self.xics

    def _update_active(self, why_rule: str) -> None:
        wanted = self._wanted_intc()
        if wanted is self.active:
            self._step("active", f"{wanted.label} stays active ({wanted.backend})", why_rule)
            return
        old = self.active
        closed = old.in_kernel
        old.deactivate()
        self.active = None
        self._step("deactivate", f"{old.label}{' (its KVM device closed)' if closed else ''}",
                   why_rule)
        self._set_active(wanted)
        self._step("switch", f"{old.label} -> {wanted.label}: {wanted.label} active "
                   f"({wanted.backend})", why_rule)

    def _set_active(self, intc: InterruptController) -> None:
        """Activate `intc`: try KVM per kernel-irqchip, fall back or stop, then enable it."""
        rule = irqchip_rule(self.accel == "kvm", self.config.kernel_irqchip)
        policy = self.config.release.irq
        if intc is self.xive and not policy.kvm_xive and rule != "tcg":
            self._step("backend", f"{intc.label} emulated: QEMU {self.config.qemu} has no KVM "
                       "XIVE", "xive-no-kvm")
        elif rule in ("kernel-irqchip-on", "kernel-irqchip-allowed"):
            try:
                intc.connect_kvm(self.kvm, self.config.nr_servers if policy.nr_servers else 0,
                                 self.config.max_cpus)
            except ConnectError as exc:
                self._step("connect", f"KVM {intc.label} failed and was rolled back: {exc.message}",
                           "rollback")
                if rule == "kernel-irqchip-on":
                    self._step("backend", f"{intc.label}: kernel-irqchip=on and KVM failed", rule)
                    raise MachineError("kernel_irqchip requested but unavailable: " + exc.message,
                                       exc.hints) from None
                if policy.fallback_warning:
                    self._warn("kernel_irqchip allowed but unavailable: " + exc.message,
                               (*exc.hints, FALLBACK_HINT))
                self._step("backend", f"{intc.label} emulated (fallback)", rule)
            else:
                self._step("backend", f"{intc.label} in-kernel (KVM {self.kvm.fds[intc.fd].kind} "
                           f"device, fd {intc.fd})", rule)
        else:
            self._step("backend", f"{intc.label} emulated", rule)
        intc.activate()
        self.active = intc

    # ====================================================================================================
    # Reset
    # ====================================================================================================
    def reset(self) -> None:
        """A machine reset (system_reset): devices, then CAS state, then the boot-time controller.
        A machine stopped by an internal error needs one, and is left paused (prelaunch) by it."""
        if self.runstate == "internal-error":
            self._guarded("reset", self._reset)
            self.runstate = "paused"
            self._step("runstate", "paused (prelaunch): continue to run it")
            return
        self._require_running("reset")
        self._guarded("reset", self._reset)

    def _reset_dual_recreate(self) -> None:
        """QEMU 4.1's spapr_irq_reset_dual: XIVE MMIO off; with the in-kernel irqchip, both KVM
        devices closed; then the current mode's reset, which creates its device again."""
        if self.xive is not None:
            self.xive.mmio_enabled = False
        closed = [intc.label for intc in self._controllers() if intc.in_kernel]
        if self.kvm is not None and self.kvm.irqchip_in_kernel:
            for intc in self._controllers():
                intc.disconnect_kvm()
        self.active = None
        wanted = self._wanted_intc()
        self._step("deactivate", f"dual reset: {' and '.join(closed) or 'no'} KVM device closed; "
                   f"{wanted.label} is set up again", "dual-reset-recreate")
        self._set_active(wanted)

    def _internal_error(self, text: str, stage: str) -> MachineError:
        """KVM_RUN failed: QEMU prints it, stops the VM (RUN_STATE_INTERNAL_ERROR, running the
        change-state handlers) and waits for a reset; nothing is torn down."""
        self.reports.append(text)
        self._step("error", text)
        self._guarded(stage, self._run_state_changed, False)
        self.runstate = "internal-error"
        self._step("runstate", "internal-error: a system_reset is required")
        return MachineError(text, ("Resetting the Virtual Machine is required",), stage)

    def _reset(self, cas_reboot: bool = False) -> None:
        self._step("reset", "devices reset, CAS state kept (a CAS reboot)" if cas_reboot else
                   "devices reset, CAS state cleared")
        for irq, num in list(self.msi_blocks.items()):  # the PHB frees its MSIs at device reset
            self._free_msi_block(irq, num)
        for intc in self._controllers():
            self._reported(intc.reset)
            for vcpu_id in self.vcpus:
                self._reported(intc.cpu_intc_reset, vcpu_id)
        if not cas_reboot:
            self.ov5_cas = b""
        self._init_compat()
        assert self.msi.empty(), "MSI bitmap must be empty at IRQ reset"
        policy = self.config.release.irq
        if policy.dual_reset == "recreate" and self.mode == "dual":
            self._reset_dual_recreate()
            return self._advertise()
        before = self.active
        self._update_active("reset-boot-mode")
        if policy.connect_at == "reset" and self.active is before and not before.in_kernel:
            # QEMU 4.0-4.1: the backend's reset hook calls spapr_irq_init_kvm every time
            self._step("active", f"{self.active.label}: the backend's reset connects KVM if it "
                       "can (spapr_irq_init_kvm)", "reset-boot-mode")
            self._set_active(self.active)
        self._advertise()

    def _advertise(self) -> None:
        self.fdt = self._build_fdt(boot=True)
        byte23 = self.advertised_byte23
        self._step("advertise", f"ibm,arch-vec-5-platform-support byte 23 = {byte23:#04x} "
                   f"({_mode_name(byte23)})", "advertise")

    # ====================================================================================================
    # CAS
    # ====================================================================================================
    def cas(self, vcpu: int, ov5: bytes) -> int:
        """ibm,client-architecture-support with the guest's option vector 5 (ov5[0] is byte 1)."""
        self._require_running("run CAS")
        if not isinstance(ov5, (bytes, bytearray)):
            raise TypeError("ov5 must be bytes")
        self._check_vcpu(vcpu)
        return self._guarded("cas", self._cas, bytes(ov5))

    def _cas(self, ov5: bytes) -> int:
        if papr.ov5_byte(ov5, papr.OV5_MMU_BYTE) & papr.OV5_MMU_BOTH:
            raise MachineError("guest requested hash and radix MMU, which is invalid.")
        byte23 = papr.ov5_byte(ov5, papr.OV5_INTC_BYTE)
        policy = self.config.release.irq
        if byte23 & papr.OV5_XIVE_BOTH and policy.cas_checks:
            self._step("cas", f"guest byte 23 = {byte23:#04x}", "cas-invalid")
            raise MachineError("guest requested an invalid interrupt mode")
        guest_xive = bool(byte23 & papr.OV5_XIVE_EXPLOIT)
        had_xive = bool(papr.ov5_byte(self.ov5_cas, papr.OV5_INTC_BYTE) & papr.OV5_XIVE_EXPLOIT)
        self._step("cas", f"guest asks for {'XIVE' if guest_xive else 'XICS'} "
                   f"(byte 23 = {byte23:#04x})", "cas-invalid")
        self.ov5_cas = bytes(a & b for a, b in zip(self.ov5.ljust(len(ov5), b"\0"),
                                                    ov5.ljust(len(self.ov5), b"\0")))
        if not policy.cas_checks:
            self._step("cas", f"QEMU {self.config.qemu} does not check the interrupt mode at CAS")
        elif guest_xive and not mode_has_xive(self.mode):
            self._step("cas", f"ic-mode={self.mode} has no XIVE", "cas-unavailable")
            raise MachineError(
                "Guest requested unavailable interrupt mode (XIVE), try the ic-mode=xive or "
                "ic-mode=dual machine property")
        elif not guest_xive and not mode_has_xics(self.mode):
            self._step("cas", f"ic-mode={self.mode} has no XICS", "cas-unavailable")
            raise MachineError(
                "Guest requested unavailable interrupt mode (XICS), either don't set the ic-mode "
                "machine property or try ic-mode=xics or ic-mode=dual")
        else:
            self._step("cas", f"ic-mode={self.mode} has {'XIVE' if guest_xive else 'XICS'}",
                       "cas-unavailable")
        if policy.cas_switch == "reboot":
            now_xive = bool(papr.ov5_byte(self.ov5_cas, papr.OV5_INTC_BYTE) & papr.OV5_XIVE_EXPLOIT)
            if now_xive and not had_xive and self.xics is not None and self.xive is not None:
                self._step("cas", "XIVE newly negotiated on a machine with both modes: reset "
                           "requested, keeping the CAS result (CAS reboot)", "cas-reboot")
                self._reset(cas_reboot=True)
                return papr.H_SUCCESS
        else:
            self._update_active("cas-switch")
        self.fdt = self._build_fdt(boot=False)
        return papr.H_SUCCESS

    # ====================================================================================================
    # Device tree
    # ====================================================================================================
    @property
    def power9_mode(self) -> bool:
        """ppc_check_compat(first_cpu, ISA 3.00, 0, max-cpu-compat)."""
        return self.power9_capable

    @property
    def advertised_byte23(self) -> int:
        return advertised_byte23(self.mode, self.power9_mode)

    @property
    def advertised_mode(self) -> str:
        """What byte 23 offers: "dual" (0x80), "xive" (0x40) or "xics" (0x00)."""
        return _mode_name(self.advertised_byte23)

    def _mmu_byte(self) -> int:
        if not self.power9_mode:
            return 0x00
        if self.accel == "tcg":
            return 0xC0
        return 0x40 if self.host.nested else 0x80

    def _build_fdt(self, boot: bool) -> dict[str, dict]:
        nr_servers = self.config.nr_servers
        name, node = self.active.dt_node(nr_servers)
        chosen = {"ibm,architecture-vec-5": self.ov5_cas}
        if boot:
            chosen["ibm,arch-vec-5-platform-support"] = bytes(
                [23, self.advertised_byte23, 24, self._mmu_byte(), 25, 0x00, 26, 0x40])
        root = {"compatible": "qemu,pseries", "model": "IBM pSeries (emulated by qemu)"}
        root.update(self.active.root_props())
        tree = {"/": root, "/chosen": chosen, "/" + name: node}
        for device in self.devices:
            if not device.lsi:  # event sources and VIO devices: one MSI-like edge interrupt each
                tree[device.node] = {"interrupts": [device.irq, 0], "qemu,device": device.name}
        return tree

    def intc_node(self) -> tuple[str, dict]:
        """The interrupt-controller node of the current device tree."""
        for path, props in self.fdt.items():
            if path.startswith("/interrupt-controller"):
                return path, props
        raise StateError("no interrupt-controller node")

    # ====================================================================================================
    # Guests and introspection
    # ====================================================================================================
    def boot(self, guest) -> str:
        """Boot a guest profile (name or object): CAS, then its choice of driver. Returns the mode."""
        from ..guest.profiles import get_guest

        profile = get_guest(guest) if isinstance(guest, str) else guest
        self._require_running("boot a guest")
        self.guest = profile
        return profile.boot(self)

    @property
    def interrupt_mode(self) -> str | None:
        return self.active.name if self.active else None

    @property
    def backend(self) -> str | None:
        return self.active.backend if self.active else None

    def cpu_indices(self) -> list[tuple[int, int]]:
        """(cpu index, vCPU id) of every vCPU in QEMU's CPU order: a core's threads take the
        indices core_id + thread (spapr_create_vcpu), its ids core * vsmt + thread."""
        threads, vsmt = self.config.threads, self.config.vsmt
        return sorted(((v // vsmt) * threads + v % vsmt, v) for v in self.vcpus)

    def info_pic(self, normalize: bool = False) -> str:
        """The text of QEMU's `info pic`: the active controller's state, then the irqchip line.
        `normalize` replaces pointers and run-time values as the conformance comparison does
        (:func:`spapr_irq.monitor.normalize_info_pic`)."""
        if self.active is None:
            return "irqchip: none (machine shut down)"
        if self.active is self.xics:
            self.xics.synchronize_state()  # QEMU pulls the kernel's state before printing
        else:
            self.xive.synchronize_state(self.runstate == "running")
        lines = self.active.print_info(self.cpu_indices())
        lines.append(f"irqchip: {'in-kernel' if self.active.in_kernel else 'emulated'}")
        text = "\n".join(lines) + "\n"
        if normalize:
            text = normalize_info_pic(text)
        return text

    def leaks(self) -> list[Leak]:
        """What the machine holds that no owner accounts for (G3), by kind: ``kvm-fd`` (a device
        fd of an inactive controller, or one no controller owns), ``mapping`` (ESB/TIMA pages or
        XIVE MMIO of a controller that is not the active in-kernel XIVE), ``rtas-token`` (kernel
        RTAS tokens without the in-kernel XICS), ``registration`` (an hcall or RTAS call not
        registered exactly once, to its controller), ``vcpu`` (a presenter connected where no
        active controller owns it), ``irq`` (a number claimed with no owner, or claimed in one
        controller and not the other), ``irqchip`` (QEMU's kernel-irqchip flag disagreeing)."""
        leaks: list[Leak] = []
        intcs = self._controllers()
        for intc in intcs:
            if intc is not self.active and intc.in_kernel:
                leaks.append(Leak("kvm-fd", f"inactive {intc.label} still has KVM fd {intc.fd}"))
        xive = self.xive
        if xive is not None and xive.mmio_enabled and self.active is not xive:
            leaks.append(Leak("mapping", "inactive XIVE still has its MMIO regions enabled"))
        if self.runstate != "shutdown":  # once QEMU has exited only the kernel's side counts
            self._registration_leaks(leaks)
            self._irq_leaks(leaks)
        if self.kvm is not None:
            self._kvm_leaks(leaks)
        return leaks

    def _registration_leaks(self, leaks: list[Leak]) -> None:
        for table, attribute, numbers in ((self.hcalls, "hcalls", papr.HCALLS),
                                          (self.rtas_calls, "rtas_calls", papr.RTAS_TOKENS)):
            wanted = {numbers[name]: (name, intc) for intc in self._controllers()
                      for name in getattr(intc, attribute)}
            for number, entry in table.entries.items():
                if wanted.get(number, (None, None))[1] is not entry.owner:
                    leaks.append(Leak("registration", f"{table.kind} {entry.name} is registered "
                                      f"to a controller that does not serve it"))
            for number, (name, intc) in wanted.items():
                if number not in table.entries:
                    leaks.append(Leak("registration", f"{table.kind} {name} of {intc.label} "
                                      "is not registered"))

    def _irq_leaks(self, leaks: list[Leak]) -> None:
        intcs = self._controllers()
        last = papr.SPAPR_XIRQ_BASE + (papr.ICS_NR_IRQS_LEGACY if self.mode == "legacy"
                                       else papr.SPAPR_NR_XIRQS)
        claimed: set[int] = set()
        for intc in intcs:
            claimed.update(n for n in intc.claimed_irqs() if n >= papr.SPAPR_XIRQ_BASE)
        for irq in sorted(claimed):
            where = [intc.label for intc in intcs if intc.is_claimed(irq)]
            if irq not in self.irq_owners:
                leaks.append(Leak("irq", f"IRQ {irq:#x} claimed in {' and '.join(where)} with "
                                  "no device owning it"))
            elif len(where) != len(intcs):
                leaks.append(Leak("irq", f"IRQ {irq:#x} claimed in {where[0]} only"))
        for irq, owner in sorted(self.irq_owners.items()):
            if irq < last and irq not in claimed and irq >= papr.SPAPR_XIRQ_BASE:
                leaks.append(Leak("irq", f"IRQ {irq:#x} of {owner} is not claimed"))
        if self.mode != "legacy":
            blocks = {n for first, num in self.msi_blocks.items() for n in range(first, first + num)}
            for index, used in enumerate(self.msi.used):
                if used and papr.SPAPR_IRQ_MSI + index not in blocks:
                    leaks.append(Leak("irq", f"MSI {papr.SPAPR_IRQ_MSI + index:#x} allocated in "
                                      "the bitmap with no device owning it"))

    def _kvm_leaks(self, leaks: list[Leak]) -> None:
        kvm = self.kvm
        owners = {intc.fd: intc for intc in self._controllers() if intc.fd is not None}
        for fd in kvm.fds:
            if fd not in owners:
                leaks.append(Leak("kvm-fd", f"KVM device fd {fd} open with no controller owning it"))
        xive = self.xive
        for fd, pgoff in kvm.mappings:
            if xive is None or fd != xive.fd or pgoff not in xive.mappings:
                leaks.append(Leak("mapping", f"KVM mapping of fd {fd} at page offset {pgoff} "
                                  "with no controller owning it"))
        xics_kernel = self.xics is not None and self.xics.in_kernel
        tokens = kvm.rtas_tokens
        expected = {papr.RTAS_TOKENS[name]: name for name in self.xics.KERNEL_TOKEN_ORDER} \
            if xics_kernel else {}
        if tokens != expected:
            extra = sorted(f"{name} ({token:#x})" for token, name in tokens.items()
                           if expected.get(token) != name)
            if extra or not xics_kernel:
                leaks.append(Leak("rtas-token", "RTAS kernel tokens defined without the in-kernel "
                                  f"XICS serving them: {', '.join(extra)}"))
        for vcpu_id, vcpu in sorted(kvm.vcpus.items()):
            device = vcpu.device
            if device is None or device.fd not in kvm.fds:
                continue  # detached, or attached to a device QEMU closed (the kernel keeps it)
            owner = owners.get(device.fd)
            if owner is None or owner is not self.active:
                leaks.append(Leak("vcpu", f"vCPU {vcpu_id} is connected to KVM device fd "
                                  f"{device.fd}, which the active controller does not own"))
        for intc in self._controllers():
            if not intc.in_kernel and intc.kvm_presenters:
                leaks.append(Leak("vcpu", f"{intc.label} still counts vCPUs "
                                  f"{sorted(intc.kvm_presenters)} as connected to KVM"))
        in_kernel = any(intc.in_kernel for intc in self._controllers())
        if kvm.irqchip_in_kernel != in_kernel:
            leaks.append(Leak("irqchip", "kvm_kernel_irqchip disagrees with the controllers"))
