"""The pseries machine: init, reset, run state, and the guest's entry points.

The machine follows QEMU's ``spapr_machine_init`` / ``spapr_irq_init`` / ``spapr_machine_reset`` /
``do_client_architecture_support`` order (spec/qemu.md 2-4) and records every decision in
:attr:`Machine.trace` with the rule of :mod:`policy` it applied, so that ``explain`` prints the path
really taken. A fatal error raises :class:`MachineError` after the machine has shut down cleanly (all
KVM devices closed, kernel RTAS tokens undefined): the model of QEMU exiting.

:class:`Machine` is put together from parts along QEMU's own files: the controllers and which is
active (:mod:`.controllers`, spapr_irq.c), CAS and the device tree (:mod:`.cas`, spapr_hcall.c),
IRQ numbers (:mod:`.irq`), the hcall and RTAS tables (:mod:`.dispatch`), migration
(:mod:`.migration`), CPU hot-plug (:mod:`.hotplug`) and the leak census (:mod:`.leaks`).
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass

from ..config import (COMPAT_PVRS, CPU_FAMILIES, CPU_MODELS, MachineConfig, compat_rank,
                      parse_options, power9_capable)
from ..errors import ConfigError, KvmError, MachineError, StateError, strerror
from ..host.host import DEFAULT_HOST, Host, parse_host
from ..host.kvm import FaultPlan, Kvm
from ..host.uapi import KVM_CAP_PPC_SMT
from ..intc.base import ClaimError, ConnectError, InterruptController
from ..intc.xics import XicsController
from ..intc.xive import XiveController
from ..memory import GuestMemory
from ..monitor import normalize_info_pic
from ..policy import RULES
from .cas import ClientArchitecture
from .controllers import ControllerSelection
from .dispatch import DispatchTable, GuestInterface
from .hotplug import CpuHotplug
from .irq import IrqNumbers, MsiAllocator
from .leaks import LeakCensus
from .migration import Migration

RAM_SIZE = 512 << 20


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


class Machine(ControllerSelection, ClientArchitecture, IrqNumbers, GuestInterface, Migration,
              CpuHotplug, LeakCensus):
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

