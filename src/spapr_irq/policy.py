"""The selection rules, as data: which mode a machine gets and whether its controller is in-kernel.

Each :class:`Rule` names the guarantee of DESIGN.md it serves, so that ``explain`` can say why a step
was taken. :data:`CHECKS` are the checks of ``spapr_irq_init``/``spapr_irq_check`` of every release
modeled; a release names the ones it runs, in its order (``releases.IrqPolicy.init_checks``;
:data:`INIT_CHECKS` is today's list). The machine runs them and records every rule it evaluates.
Rules marked with a release apply only where that release's policy says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .releases import TODAY


@dataclass(frozen=True)
class Rule:
    id: str
    guarantee: str  # "G1".."G5" of DESIGN.md
    text: str


RULES: dict[str, Rule] = {rule.id: rule for rule in (
    Rule("tcg", "G2",
         "Under TCG there is no KVM: every controller is emulated, and kernel-irqchip given with -M "
         "is accepted and has no effect."),
    Rule("split", "G2",
         "kernel-irqchip=split under KVM is refused: pseries has no split irqchip."),
    Rule("power9-capable", "G1",
         "A machine may offer XIVE only when its CPU supports ISA 3.00 and max-cpu-compat does not "
         "cap it below power9; this depends on the configuration alone."),
    Rule("dual-becomes-xics", "G1",
         "ic-mode=dual on a machine that is not POWER9-capable is silently reduced to xics: a guest "
         "in a POWER8 mode is not supposed to know about XIVE."),
    Rule("xive-needs-power9", "G1",
         "ic-mode=xive on a machine that is not POWER9-capable is refused: there would be no "
         "interrupt mode the guest could use."),
    Rule("broken-disconnect", "G2",
         "ic-mode=dual,kernel-irqchip=on needs a KVM XICS device that can be destroyed and "
         "re-created (probed by create, close, create); otherwise refuse now rather than fail at "
         "the first switch."),
    Rule("create-controllers", "G3",
         "The controllers the mode needs are created once at init: ICS for xics and dual, sPAPR "
         "XIVE (with one IPI per vCPU) for xive and dual; their hcalls and RTAS calls are "
         "registered exactly once."),
    Rule("initial-active", "G3",
         "Before CAS the active controller is XIVE on a xive-only machine, else XICS."),
    Rule("kernel-irqchip-off", "G2",
         "kernel-irqchip=off: the controller is emulated, KVM is never asked."),
    Rule("kernel-irqchip-on", "G2",
         "kernel-irqchip=on: the controller is in-kernel, or the machine stops with "
         "'kernel_irqchip requested but unavailable'."),
    Rule("kernel-irqchip-allowed", "G2",
         "kernel-irqchip unset (allowed): in-kernel when the host can, else emulated with the "
         "warning 'kernel_irqchip allowed but unavailable' and the hint to fall back."),
    Rule("rollback", "G3",
         "A KVM connect that fails half-way undoes what it did (RTAS kernel tokens, mappings, vCPU "
         "presenters, device fd) before the fallback or the error; QEMU keeps a new XICS fd only "
         "after setting NR_SERVERS, so a failure there leaves the device open (a leak)."),
    Rule("advertise", "G1",
         "ibm,arch-vec-5-platform-support byte 23 comes from ic-mode alone (0x80 dual, 0x40 xive, "
         "0x00 xics), forced to 0x00 when the CPU is not in a POWER9 mode; never from the host."),
    Rule("cas-invalid", "G1",
         "A guest may ask for XICS (0x00) or XIVE (0x40) at CAS, never both (0x80)."),
    Rule("cas-unavailable", "G1",
         "A guest that asks at CAS for a mode the machine does not have stops the machine with a "
         "hint naming the ic-mode that would work."),
    Rule("cas-switch", "G3",
         "The mode the guest chose becomes active inside CAS (QEMU 5.0 and later): the old "
         "controller is deactivated, its KVM device closed, then the new one is activated."),
    Rule("post-load", "G5",
         "After an incoming migration the active controller is the one the migrated CAS result "
         "asks for (spapr_irq_post_load), connected to the destination's KVM as its "
         "kernel-irqchip allows, and the state is pushed into it."),
    Rule("split-any-accel", "G2",
         "QEMU 4.2 and older: kernel-irqchip=split is refused under any accelerator (the property "
         "belongs to the machine)."),
    Rule("tcg-irqchip-required", "G2",
         "QEMU 4.2 and older: kernel-irqchip=on under TCG is refused: 'kernel_irqchip requested "
         "but only available with KVM'."),
    Rule("dual-no-kvm", "G2",
         "QEMU 4.0: the dual backend has no KVM support; under KVM it needs kernel-irqchip=off."),
    Rule("xive-no-kvm", "G2",
         "QEMU 4.0: XIVE is emulated only; kernel-irqchip=on with ic-mode=xive under KVM is "
         "refused, otherwise XIVE is emulated without a word."),
    Rule("dual-xics-without-kvm-xive", "G1",
         "Greg Kurz's rejected patch (2019-06-06): under KVM without KVM_CAP_PPC_IRQ_XIVE, "
         "ic-mode=dual silently becomes xics, to keep the in-kernel XICS."),
    Rule("cas-reboot", "G3",
         "QEMU 4.0-4.2: XIVE newly negotiated on a machine with both modes requests a reset that "
         "keeps the CAS result; the guest goes through firmware and CAS again, now in XIVE."),
    Rule("dual-reset-recreate", "G3",
         "QEMU 4.1: every reset of a dual machine destroys both KVM devices and creates the "
         "current mode's device again (spapr_irq_reset_dual)."),
    Rule("reset-boot-mode", "G3",
         "A machine reset forgets the CAS result, so a dual machine is back in XICS until the "
         "next CAS; the KVM device is re-created only when the active controller changes."),
)}


@dataclass(frozen=True)
class InitContext:
    """What the init checks may look at."""

    ic_mode: str
    kvm: bool
    kernel_irqchip: str  # allowed | on | off | split
    power9_capable: bool
    probe_broken_disconnect: Callable[[], bool]
    #: kvmppc_has_cap_xive(): the VM's KVM_CAP_PPC_IRQ_XIVE, as cached by kvm_arch_init.
    kvm_has_xive: bool = False
    #: Which wording of the broken-disconnect refusal the release has.
    broken_disconnect_text: str = "incompatible"


@dataclass(frozen=True)
class Outcome:
    """What a check decided: ``fatal`` (message, hints), a new ``mode``, or nothing (pass)."""

    fatal: tuple[str, tuple[str, ...]] | None = None
    mode: str | None = None
    detail: str = ""


BROKEN_DISCONNECT_MESSAGE = "KVM is incompatible with ic-mode=dual,kernel-irqchip=on"
BROKEN_DISCONNECT_HINTS = (
    "This can happen with an old KVM or in a KVM nested guest.",
    "Try without kernel-irqchip or with kernel-irqchip=off.",
)
#: QEMU 4.1-5.1's wording, without hints.
BROKEN_DISCONNECT_MESSAGE_4_1 = "KVM is too old to support ic-mode=dual,kernel-irqchip=on"


def _split(ctx: InitContext) -> Outcome:
    if ctx.kvm and ctx.kernel_irqchip == "split":
        return Outcome(fatal=("kernel_irqchip split mode not supported on pseries", ()))
    return Outcome(detail="not split" if ctx.kvm else "TCG: kernel-irqchip is not consulted")


def _dual_becomes_xics(ctx: InitContext) -> Outcome:
    if not ctx.power9_capable and ctx.ic_mode == "dual":
        return Outcome(mode="xics", detail="not POWER9-capable: dual is reduced to xics")
    return Outcome(detail="POWER9-capable" if ctx.power9_capable else f"ic-mode={ctx.ic_mode}")


def _xive_needs_power9(ctx: InitContext) -> Outcome:
    if not ctx.power9_capable and ctx.ic_mode == "xive":
        return Outcome(fatal=("XIVE-only machines require a POWER9 CPU", ()))
    if ctx.ic_mode == "xive":
        return Outcome(detail="ic-mode=xive on a POWER9-capable CPU")
    return Outcome(detail=f"ic-mode={ctx.ic_mode} does not need XIVE alone")


def _broken_disconnect(ctx: InitContext) -> Outcome:
    if not (ctx.kvm and ctx.ic_mode == "dual" and ctx.kernel_irqchip == "on"):
        return Outcome(detail="probe not needed (only for KVM with ic-mode=dual,kernel-irqchip=on)")
    if ctx.probe_broken_disconnect():
        if ctx.broken_disconnect_text == "too-old":
            return Outcome(fatal=(BROKEN_DISCONNECT_MESSAGE_4_1, ()))
        return Outcome(fatal=(BROKEN_DISCONNECT_MESSAGE, BROKEN_DISCONNECT_HINTS))
    return Outcome(detail="the KVM XICS device can be destroyed and re-created")


def _split_any_accel(ctx: InitContext) -> Outcome:
    if ctx.kernel_irqchip == "split":
        return Outcome(fatal=("kernel_irqchip split mode not supported on pseries", ()))
    return Outcome(detail="not split")


def _tcg_irqchip_required(ctx: InitContext) -> Outcome:
    if not ctx.kvm and ctx.kernel_irqchip == "on":
        return Outcome(fatal=("kernel_irqchip requested but only available with KVM", ()))
    return Outcome(detail="KVM, or kernel-irqchip not required")


def _dual_no_kvm(ctx: InitContext) -> Outcome:
    if ctx.kvm and ctx.ic_mode == "dual" and ctx.kernel_irqchip != "off":
        return Outcome(fatal=("No KVM support for the 'dual' machine", ()))
    return Outcome(detail="not dual under KVM with the in-kernel irqchip allowed")


def _xive_no_kvm(ctx: InitContext) -> Outcome:
    if ctx.kvm and ctx.ic_mode == "xive" and ctx.kernel_irqchip == "on":
        return Outcome(fatal=("kernel_irqchip requested. no KVM XIVE support", ()))
    return Outcome(detail="XIVE, if any, will be emulated")


def _dual_xics_without_kvm_xive(ctx: InitContext) -> Outcome:
    if ctx.kvm and ctx.ic_mode == "dual" and not ctx.kvm_has_xive:
        return Outcome(mode="xics", detail="KVM lacks KVM_CAP_PPC_IRQ_XIVE: dual becomes xics")
    return Outcome(detail="not dual under a KVM without XIVE")


#: Every check of spapr_irq_init / spapr_irq_check any modeled release runs, by name. The mode a
#: check returns feeds the next ones.
CHECKS: dict[str, Callable[[InitContext], Outcome]] = {
    "split": _split,
    "split-any-accel": _split_any_accel,
    "tcg-irqchip-required": _tcg_irqchip_required,
    "dual-becomes-xics": _dual_becomes_xics,
    "xive-needs-power9": _xive_needs_power9,
    "broken-disconnect": _broken_disconnect,
    "dual-no-kvm": _dual_no_kvm,
    "xive-no-kvm": _xive_no_kvm,
    "dual-xics-without-kvm-xive": _dual_xics_without_kvm_xive,
}


def init_checks(names: tuple[str, ...]) -> tuple[tuple[str, Callable[[InitContext], Outcome]], ...]:
    """The checks a release names, in its order."""
    return tuple((name, CHECKS[name]) for name in names)


#: Today's spapr_irq_init + spapr_irq_check (5.2 and later), in QEMU's order.
INIT_CHECKS = init_checks(TODAY.init_checks)


def mode_has_xics(mode: str) -> bool:
    return mode in ("xics", "dual", "legacy")


def mode_has_xive(mode: str) -> bool:
    return mode in ("xive", "dual")


def advertised_byte23(mode: str, power9_mode: bool) -> int:
    """Byte 23 of /chosen/ibm,arch-vec-5-platform-support for a mode (after the init checks)."""
    from . import papr

    if not power9_mode:
        return papr.OV5_XIVE_LEGACY
    if mode == "dual":
        return papr.OV5_XIVE_BOTH
    if mode == "xive":
        return papr.OV5_XIVE_EXPLOIT
    return papr.OV5_XIVE_LEGACY


def irqchip_rule(kvm: bool, kernel_irqchip: str) -> str:
    """Which backend rule applies to an activation."""
    if not kvm:
        return "tcg"
    if kernel_irqchip == "off":
        return "kernel-irqchip-off"
    if kernel_irqchip == "on":
        return "kernel-irqchip-on"
    return "kernel-irqchip-allowed"
