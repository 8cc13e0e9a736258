"""The machine's interrupt controllers (hw/ppc/spapr_irq.c): the init checks and the controllers
made for the mode (spapr_irq_init, spapr_irq_check), and which one is active
(spapr_irq_update_active_intc, set_active_intc, spapr_irq_init_kvm), with QEMU 4.1's dual reset.

:class:`ControllerSelection` is the part of :class:`~spapr_irq.machine.machine.Machine` that
decides which controller serves the guest and on which backend; every decision is a trace step
with the :mod:`~spapr_irq.policy` rule it applied.
"""

from __future__ import annotations

import errno as E

from .. import papr
from ..errors import KvmError, MachineError
from ..host.uapi import KVM_DEV_TYPE_XICS
from ..intc.base import ConnectError, InterruptController
from ..intc.xics import XicsController
from ..intc.xive import XiveController
from ..policy import InitContext, init_checks, irqchip_rule, mode_has_xics, mode_has_xive

FALLBACK_HINT = "Falling back to kernel-irqchip=off"


class ControllerSelection:
    """spapr_irq.c's controller side of the machine: made at init, one active at a time."""

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

    def _controllers(self) -> list[InterruptController]:
        return [intc for intc in (self.xics, self.xive) if intc is not None]

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
