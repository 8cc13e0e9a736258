"""The selection rules, as data: which mode a machine gets and whether its controller is in-kernel.

Each :class:`Rule` names the guarantee of DESIGN.md it serves, so that ``explain`` can say why a step
was taken. :data:`INIT_CHECKS` is ``spapr_irq_init``/``spapr_irq_check`` of today's QEMU (5.2 and
later), in order; the machine runs it and records every rule it evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


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
        return Outcome(fatal=(BROKEN_DISCONNECT_MESSAGE, BROKEN_DISCONNECT_HINTS))
    return Outcome(detail="the KVM XICS device can be destroyed and re-created")


#: spapr_irq_init + spapr_irq_check, in QEMU's order. The mode a check returns feeds the next ones.
INIT_CHECKS: tuple[tuple[str, Callable[[InitContext], Outcome]], ...] = (
    ("split", _split),
    ("dual-becomes-xics", _dual_becomes_xics),
    ("xive-needs-power9", _xive_needs_power9),
    ("broken-disconnect", _broken_disconnect),
)


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
