"""QEMU releases as data: what differs between the releases this model reproduces.

A :class:`Release` holds the facts that change from one QEMU to the next on the paths this model
covers: the machine types and what ``pseries`` means, the CPU models and the default CPU of each
machine version, and the releases' own texts and rules for ``-smp`` and TCG SMT. Code asks the
release; it never compares version numbers of QEMU itself. 7.2 is what Debian bookworm ships and
what the reference runs in the project's conformance data were made with; the newest is the
default. ``6.2-rhel8`` is a vendor build: RHEL 8's qemu-kvm, whose own ``pseries-rhel*`` machine
types replace QEMU's (see :data:`RHEL8_MACHINES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError


def _versions(last: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """pseries-2.1 .. `last`, in QEMU's numbering (two to twelve minors per major)."""
    minors = {2: 12, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2, 9: 2, 10: 1}
    out = []
    for major in range(2, last[0] + 1):
        first = 1 if major == 2 else 0
        top = minors[major] if major < last[0] else last[1]
        out.extend((major, minor) for minor in range(first, top + 1))
    return tuple(out)


@dataclass(frozen=True)
class IrqPolicy:
    """How a release's interrupt-controller code behaves where releases differ (spec/qemu.md
    2.4, 3.3, 4.2-4.3). The defaults are today's QEMU (5.2 and later); each field names the
    release that changed it."""

    #: spapr_irq_init + spapr_irq_check, in order: names of checks in policy.CHECKS.
    init_checks: tuple[str, ...] = ("split", "dual-becomes-xics", "xive-needs-power9",
                                    "broken-disconnect")
    #: The broken-disconnect refusal: "incompatible" (5.2: the text and its two hints) or
    #: "too-old" (4.1-5.1: "KVM is too old to support ...", no hints).
    broken_disconnect_text: str = "incompatible"
    #: 4.0: XIVE is emulated only; there is no KVM XIVE code in QEMU.
    kvm_xive: bool = True
    #: 4.1-rc and older fall back to the emulated controller without a word (error_free); 4.1.0
    #: added "kernel_irqchip allowed but unavailable" and the hint.
    fallback_warning: bool = True
    #: When the KVM device is created: "init" (4.2+: the active controller is connected at
    #: machine init) or "reset" (4.0-4.1: the backend's reset hook calls spapr_irq_init_kvm).
    connect_at: str = "init"
    #: A reset in dual mode: "on-change" (4.2+: only a change of active controller reconnects)
    #: or "recreate" (4.1: both KVM devices destroyed, the current one created again).
    dual_reset: str = "on-change"
    #: The switch to the mode the guest chose: "in-cas" (5.0+) or "reboot" (4.0-4.2: XIVE newly
    #: negotiated on a machine with both modes requests a reset that keeps the CAS result).
    cas_switch: str = "in-cas"
    #: 4.1+: CAS refuses an invalid or unavailable interrupt mode; 4.0 takes any answer.
    cas_checks: bool = True
    #: 5.0+: QEMU sets KVM_DEV_XICS_NR_SERVERS / KVM_DEV_XIVE_NR_SERVERS when KVM has them.
    nr_servers: bool = True
    #: Where kernel-irqchip lives: "accel" (5.0+: the KVM accelerator's property, nothing under
    #: TCG) or "machine" (4.2 and older: a machine property, read under TCG too).
    kernel_irqchip_of: str = "accel"


#: Today's interrupt-controller behaviour (5.2 and later).
TODAY = IrqPolicy()


@dataclass(frozen=True)
class Release:
    """One QEMU release, as far as this model's paths go."""

    version: str
    #: pseries-X.Y machine versions, oldest first; the last is what ``pseries`` names.
    machine_versions: tuple[tuple[int, int], ...]
    #: Extra machine type names and the version whose rules they follow.
    machine_variants: tuple[tuple[str, tuple[int, int]], ...]
    #: -cpu models (lower case) and their generation; aliases name a model.
    cpu_models: tuple[tuple[str, str], ...]
    cpu_aliases: tuple[tuple[str, str], ...]
    #: (newest machine version using it, default CPU), oldest first.
    default_cpus: tuple[tuple[tuple[int, int], str], ...]
    #: TCG and threads > 1: "refused" (before 8.1) or "power8" (8.1+: SMT on POWER8 and later).
    tcg_smt: str
    #: -smp with a zero member: "deprecated" (a warning, the zero is ignored; before 9.0) or
    #: "invalid" (refused).
    smp_zero: str
    #: -smp levels pseries lacks and that the release knows; for a known one, > 1 is refused.
    smp_levels: tuple[str, ...]
    #: How a refused level is named: "{level} not supported ..." (before 9.0) or "{level} > 1 ...".
    smp_level_text: str
    #: One line each: what this release does differently on the paths modeled (for `releases`).
    changes: tuple[str, ...] = ()
    #: The interrupt-controller code of this release, where it differs from today's.
    irq: IrqPolicy = field(default=TODAY)
    #: pseries' MachineClass max_cpus: -smp maxcpus beyond it is refused while parsing (today
    #: SPAPR_IRQ_NR_IPIS, one XIVE IPI per possible vCPU; 1024 up to 5.2).
    max_cpus: int = 0x1000
    #: A variant is a release with a patch applied (``4.1+kurz-2019``); its base release.
    base: str | None = None
    #: False for a vendor build that compiles QEMU's own pseries-X.Y types out and keeps only its
    #: named types (machine_variants), each following the rules of an upstream version.
    upstream_types: bool = True

    @property
    def latest(self) -> tuple[int, int]:
        return self.machine_versions[-1]

    @property
    def pseries_name(self) -> str:
        """The machine type ``pseries`` is an alias of (the newest this release defines)."""
        return self.name_of(self.latest)

    def name_of(self, version: tuple[int, int]) -> str:
        """The machine type this release defines for `version` (its first name for it)."""
        if self.upstream_types:
            return f"pseries-{version[0]}.{version[1]}"
        for name, follows in self.machine_variants:
            if follows == version:
                return name
        raise ConfigError(f"QEMU {self.version} has no machine type like pseries-{version[0]}."
                          f"{version[1]}")

    def machine_types(self) -> dict[str, tuple[int, int]]:
        """Every machine type name this release accepts (``pseries`` included), to its version."""
        names = ({f"pseries-{v[0]}.{v[1]}": v for v in self.machine_versions}
                 if self.upstream_types else {})
        names.update(dict(self.machine_variants))
        names["pseries"] = self.latest
        return names

    def default_cpu(self, version: tuple[int, int]) -> str:
        for last, cpu in self.default_cpus:
            if version <= last:
                return cpu
        raise ConfigError(f"QEMU {self.version} has no machine version {version}")


_OLD_CPUS = (("power7_v2.3", "power7"), ("power7+_v2.1", "power7"), ("power8e_v2.1", "power8"),
             ("power8nvl_v1.0", "power8"), ("power8_v2.0", "power8"), ("power9_v2.0", "power9"))
_OLD_ALIASES = (("power7", "power7_v2.3"), ("power7+", "power7+_v2.1"), ("power8e", "power8e_v2.1"),
                ("power8nvl", "power8nvl_v1.0"), ("power8", "power8_v2.0"),
                ("power10", "power10_v2.0"))

#: -smp in the 4.x and 5.x releases (vl.c smp_parse) is not modeled beyond plain counts.
_OLD_SMP = dict(tcg_smt="refused", smp_zero="unmodeled", smp_levels=(), smp_level_text="")
_OLD_4X_CPUS = _OLD_CPUS
_OLD_4X_ALIASES = _OLD_ALIASES[:-1] + (("power9", "power9_v2.0"),)


def _old(version: str, last: tuple[int, int], irq: IrqPolicy, changes: tuple[str, ...],
         base: str | None = None) -> Release:
    return Release(version=version, machine_versions=_versions(last),
                   machine_variants=(("pseries-2.12-sxxm", (2, 12)),), cpu_models=_OLD_4X_CPUS,
                   cpu_aliases=_OLD_4X_ALIASES,
                   default_cpus=(((2, 7), "power7_v2.3"), ((3, 1), "power8_v2.0"),
                                 (last, "power9_v2.0")),
                   changes=changes + (
                       "default CPU power9_v2.0 from pseries-4.0; at most 1024 CPUs "
                       "(mc->max_cpus)",
                       "TCG refuses threads > 1; -smp zero members and levels are not modeled"),
                   irq=irq, base=base, max_cpus=1024, **_OLD_SMP)


_IRQ_4_0 = IrqPolicy(
    init_checks=("split-any-accel", "tcg-irqchip-required", "dual-becomes-xics",
                 "xive-needs-power9", "dual-no-kvm", "xive-no-kvm"),
    kvm_xive=False, fallback_warning=False, connect_at="reset", cas_switch="reboot",
    cas_checks=False, nr_servers=False, kernel_irqchip_of="machine")
_IRQ_4_1 = IrqPolicy(
    init_checks=("split-any-accel", "tcg-irqchip-required", "dual-becomes-xics",
                 "xive-needs-power9", "broken-disconnect"),
    broken_disconnect_text="too-old", connect_at="reset", dual_reset="recreate",
    cas_switch="reboot", nr_servers=False, kernel_irqchip_of="machine")
_IRQ_4_2 = IrqPolicy(
    init_checks=_IRQ_4_1.init_checks, broken_disconnect_text="too-old", cas_switch="reboot",
    nr_servers=False, kernel_irqchip_of="machine")
_IRQ_5_0 = IrqPolicy(broken_disconnect_text="too-old")

RELEASES: dict[str, Release] = {r.version: r for r in (
    _old("4.0", (4, 0), _IRQ_4_0, (
        "machine types up to pseries-4.0; ic-mode introduced, pseries-4.0 defaults to xics",
        "XIVE is emulated only: ic-mode=xive,kernel-irqchip=on under KVM is 'kernel_irqchip "
        "requested. no KVM XIVE support'",
        "ic-mode=dual under KVM needs kernel-irqchip=off: 'No KVM support for the 'dual' machine'",
        "the fallback to the emulated XICS is silent",
        "the KVM XICS device is created at the first reset",
        "CAS takes any interrupt mode; XIVE newly negotiated on a dual machine reboots the guest",
        "kernel-irqchip is a machine property: TCG refuses kernel-irqchip=on, split is refused "
        "under any accelerator",
        "assumed as in 4.1, which spec/qemu.md 10 could not date: the POWER9-capable checks "
        "(dual becomes xics, xive refused) and the TCG kernel-irqchip=on refusal",
    )),
    _old("4.1", (4, 1), _IRQ_4_1, (
        "machine types up to pseries-4.1, which defaults to ic-mode=dual",
        "KVM XIVE; 'KVM is too old to support ic-mode=dual,kernel-irqchip=on' (no hints)",
        "KVM devices are created by the first reset, and every reset of a dual machine destroys "
        "both and creates the current one again",
        "CAS refuses invalid and unavailable modes; XIVE newly negotiated on a dual machine "
        "reboots the guest (CAS reboot)",
        "the fallback warns 'kernel_irqchip allowed but unavailable' with the hint",
        "kernel-irqchip is a machine property: TCG refuses kernel-irqchip=on, split is refused "
        "under any accelerator",
    )),
    _old("4.1+kurz-2019", (4, 1), IrqPolicy(
        init_checks=_IRQ_4_1.init_checks + ("dual-xics-without-kvm-xive",),
        broken_disconnect_text="too-old", connect_at="reset", dual_reset="recreate",
        cas_switch="reboot", nr_servers=False, kernel_irqchip_of="machine"), (
        "QEMU 4.1 with Greg Kurz's rejected patch of 2019-06-06 ('spapr: Don't use the \"dual\" "
        "interrupt controller mode with an old hypervisor'): under KVM without KVM_CAP_PPC_IRQ_XIVE "
        "ic-mode=dual silently becomes xics",
        "otherwise QEMU 4.1: machine types up to pseries-4.1",
    ), base="4.1"),
    _old("4.2", (4, 2), _IRQ_4_2, (
        "machine types up to pseries-4.2",
        "an active interrupt controller: KVM devices are created at init and re-created only "
        "when the active controller changes",
        "CAS still reboots the guest when XIVE is newly negotiated on a dual machine",
        "kernel-irqchip is a machine property: TCG refuses kernel-irqchip=on",
        "not modeled: the global kvm_irqchip_in_kernel() tests 5.2 made per device (the model "
        "tests each controller's own fd, as 5.2 does)",
    )),
    _old("5.0", (5, 0), _IRQ_5_0, (
        "machine types up to pseries-5.0",
        "the mode switch happens inside CAS: no CAS reboot",
        "kernel-irqchip belongs to the KVM accelerator: no effect under TCG, split refused under "
        "KVM only",
        "KVM_DEV_XICS_NR_SERVERS / KVM_DEV_XIVE_NR_SERVERS set from maxcpus",
        "not modeled: the global kvm_irqchip_in_kernel() tests 5.2 made per device (the model "
        "tests each controller's own fd, as 5.2 does)",
    )),
    _old("5.2", (5, 2), TODAY, (
        "machine types up to pseries-5.2",
        "'KVM is incompatible with ic-mode=dual,kernel-irqchip=on' and its two hints",
        "per-device in-kernel checks (spapr_xive_in_kernel)",
    )),
    Release(
        version="7.2",
        machine_versions=_versions((7, 2)),
        machine_variants=(("pseries-2.12-sxxm", (2, 12)),),
        cpu_models=_OLD_CPUS + (("power10_v1.0", "power10"), ("power10_v2.0", "power10")),
        cpu_aliases=_OLD_ALIASES + (("power9", "power9_v2.0"),),
        default_cpus=(((2, 7), "power7_v2.3"), ((3, 1), "power8_v2.0"), ((7, 2), "power9_v2.0")),
        tcg_smt="refused",
        smp_zero="deprecated",
        smp_levels=("clusters", "dies"),
        smp_level_text="{level} not supported by this machine's CPU topology",
        changes=(
            "machine types pseries-2.1 to 2.12, 2.12-sxxm, 3.0 to 7.2; pseries is pseries-7.2",
            "default CPU power9_v2.0 from pseries-4.0; power9_v2.2 does not exist",
            "TCG refuses threads > 1: 'TCG cannot support more than 1 thread/core on a pseries "
            "machine'",
            "-smp with a zero member: a 'Deprecated CPU topology' warning, the zero ignored",
            "-smp dies/clusters > 1: '<level> not supported by this machine's CPU topology'; "
            "books, drawers, modules unknown",
        ),
    ),
    Release(
        version="10.1",
        machine_versions=_versions((10, 1)),
        machine_variants=(("pseries-2.12-sxxm", (2, 12)),),
        cpu_models=_OLD_CPUS + (("power9_v2.2", "power9"), ("power10_v2.0", "power10")),
        cpu_aliases=_OLD_ALIASES + (("power9", "power9_v2.2"),),
        default_cpus=(((2, 7), "power7_v2.3"), ((3, 1), "power8_v2.0"), ((8, 2), "power9_v2.2"),
                      ((10, 1), "power10_v2.0")),
        tcg_smt="power8",
        smp_zero="invalid",
        smp_levels=("modules", "clusters", "dies", "books", "drawers"),
        smp_level_text="{level} > 1 not supported by this machine's CPU topology",
        changes=(
            "machine types up to pseries-10.1",
            "default CPU power9_v2.2 for pseries-4.0 to 8.2, power10_v2.0 from 9.0",
            "TCG runs SMT on POWER8 and later, up to 8 threads (8.1)",
            "-smp with a zero member is refused (9.0)",
            "-smp books, drawers (8.2) and modules (9.0) known: '> 1 not supported'",
        ),
    ),
)}
#: The release modeled when none is named: the newest this model knows.
DEFAULT_RELEASE = "10.1"


# --- RHEL 8's qemu-kvm ------------------------------------------------------------------------------

#: The ppc64 machine types of RHEL 8's qemu-kvm-6.2.0 (RHEL 8.6 to 8.10) and the upstream version
#: whose rules each follows, from the dist-git patch "Add ppc64 machine types" of the 6.2 rebase
#: (hw/ppc/spapr.c: every upstream DEFINE_SPAPR_MACHINE is under ``#if 0``, each pseries-rhel
#: class names its upstream twin). What matters here: pseries-rhel7.6.0 takes pseries-3.0's legacy
#: XICS backend (``smc->irq = &spapr_irq_xics_legacy``); pseries-rhel8.0.0 takes 4.0's
#: ``&spapr_irq_xics`` but 3.1's default CPU, power8_v2.0; 8.1.0 is 4.1 (dual, vsmt not from
#: threads); 8.2.0 is "4.2 + 5.0"; 8.3.0 5.1; 8.4.0 5.2; 8.5.0 6.0, with 6.1's sockets-first on
#: top of the rebase's own defaults. pseries-rhel8.6.0 came later, in "redhat: Define
#: pseries-rhel8.6.0 machine type" (bz#2031041), whose text is not among the sources read: as the
#: newest type it stands on the 6.2 defaults 8.5.0 overrides, hence 6.2. The -sxxm variant changes
#: only spectre capabilities. The types of RHEL 7.5 and older (without POWER9) left qemu-kvm in
#: 6.1; RHEL 9 adds none (its KVM hosts are x86-64, IBM Z and ARM 64).
RHEL8_MACHINES: tuple[tuple[str, tuple[int, int]], ...] = (
    ("pseries-rhel7.6.0", (3, 0)), ("pseries-rhel7.6.0-sxxm", (3, 0)),
    ("pseries-rhel8.0.0", (4, 0)), ("pseries-rhel8.1.0", (4, 1)), ("pseries-rhel8.2.0", (5, 0)),
    ("pseries-rhel8.3.0", (5, 1)), ("pseries-rhel8.4.0", (5, 2)), ("pseries-rhel8.5.0", (6, 0)),
    ("pseries-rhel8.6.0", (6, 2)),
)

_RHEL8 = Release(
    version="6.2-rhel8",
    machine_versions=tuple(sorted({v for _name, v in RHEL8_MACHINES})),
    machine_variants=RHEL8_MACHINES,
    upstream_types=False,
    cpu_models=_OLD_CPUS + (("power10_v1.0", "power10"), ("power10_v2.0", "power10")),
    cpu_aliases=_OLD_ALIASES + (("power9", "power9_v2.0"),),
    # pseries-rhel8.0.0 and 7.6.0 keep pseries-3.1's power8_v2.0; from 8.1.0 power9_v2.0.
    default_cpus=(((4, 0), "power8_v2.0"), ((6, 2), "power9_v2.0")),
    # spapr_machine_rhel_default_class_options: "Maximum supported VCPU count".
    max_cpus=384,
    changes=(
        "RHEL 8's qemu-kvm-6.2.0 (RHEL 8.6 to 8.10): machine types pseries-rhel7.6.0, "
        "pseries-rhel7.6.0-sxxm, pseries-rhel8.0.0 to pseries-rhel8.6.0; QEMU's own pseries-X.Y "
        "are compiled out; pseries is pseries-rhel8.6.0",
        "each pseries-rhel type follows an upstream version: 7.6.0 3.0 (legacy XICS), 8.0.0 4.0 "
        "(xics), 8.1.0 4.1 (dual), 8.2.0 5.0, 8.3.0 5.1, 8.4.0 5.2, 8.5.0 6.0, 8.6.0 6.2",
        "default CPU power8_v2.0 up to pseries-rhel8.0.0, power9_v2.0 from pseries-rhel8.1.0",
        "at most 384 CPUs (mc->max_cpus of every pseries-rhel type)",
        "interrupt controllers as QEMU 6.2, which behaves as 5.2 and later",
        "chosen by itself when the options name a pseries-rhel type and no --qemu is given",
        "TCG refuses threads > 1: 'TCG cannot support more than 1 thread/core on a pseries "
        "machine'",
        "-smp as 6.2 parses it: a zero member is a 'Deprecated CPU topology' warning, dies > 1 "
        "'not supported by this machine's CPU topology', clusters (7.0) unknown",
    ),
    tcg_smt="refused",
    smp_zero="deprecated",
    smp_levels=("dies",),
    smp_level_text="{level} not supported by this machine's CPU topology",
)
RELEASES[_RHEL8.version] = _RHEL8


def release_names() -> str:
    return ", ".join(RELEASES)


def release_for_machine(machine_type: str | None) -> Release:
    """The release modeled when none is named: the default, unless the options name a machine
    type that only a vendor build defines (``pseries-rhel8.6.0`` names RHEL's qemu-kvm)."""
    default = RELEASES[DEFAULT_RELEASE]
    if machine_type is None or machine_type in default.machine_types():
        return default
    for release in RELEASES.values():
        if not release.upstream_types and machine_type in release.machine_types():
            return release
    return default


def machine_type_note(machine_type: str, release: Release) -> str | None:
    """The model's word on a machine type `release` refuses: which build defines it, or why
    none does. None when there is nothing to add to QEMU's own refusal."""
    owners = [r.version for r in RELEASES.values()
              if r is not release and r.base is None and machine_type in r.machine_types()]
    if machine_type.startswith("pseries-rhel9"):
        return ("no qemu-kvm defines pseries-rhel9 machine types: RHEL 9 supports KVM hosts on "
                "x86-64, IBM Z and 64-bit ARM only, and the ppc64 types in RHEL 9's qemu-kvm "
                f"sources end at pseries-rhel8.5.0 (modeled by --qemu {_RHEL8.version})")
    if machine_type.startswith("pseries-rhel"):
        if owners:
            return (f"{machine_type} is a machine type of RHEL's qemu-kvm: --qemu {owners[0]} "
                    "models it, and is chosen without --qemu")
        return (f"RHEL 8's qemu-kvm (--qemu {_RHEL8.version}) defines "
                f"{', '.join(name for name, _v in RHEL8_MACHINES)}")
    if not release.upstream_types and owners:
        return (f"QEMU {release.version} compiles QEMU's own pseries-X.Y types out; its machine "
                f"types are {', '.join(name for name, _v in release.machine_variants)}")
    return None


def get_release(version: str | None) -> Release:
    """The release named `version` ("7.2"), or the default; an unknown one is bad input."""
    if version is None:
        return RELEASES[DEFAULT_RELEASE]
    if not isinstance(version, str) or version not in RELEASES:
        raise ConfigError(f"unknown QEMU release '{version}': this model knows "
                          f"{', '.join(RELEASES)}")
    return RELEASES[version]
