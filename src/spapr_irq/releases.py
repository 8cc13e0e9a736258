"""QEMU releases as data: what differs between the releases this model reproduces.

A :class:`Release` holds the facts that change from one QEMU to the next on the paths this model
covers: the machine types and what ``pseries`` means, the CPU models and the default CPU of each
machine version, and the releases' own texts and rules for ``-smp`` and TCG SMT. Code asks the
release; it never compares version numbers of QEMU itself. 7.2 is what Debian bookworm ships and
what the reference runs in the project's conformance data were made with; the newest is the
default.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def latest(self) -> tuple[int, int]:
        return self.machine_versions[-1]

    def machine_types(self) -> dict[str, tuple[int, int]]:
        """Every machine type name this release accepts (``pseries`` included), to its version."""
        names = {f"pseries-{v[0]}.{v[1]}": v for v in self.machine_versions}
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

RELEASES: dict[str, Release] = {r.version: r for r in (
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


def get_release(version: str | None) -> Release:
    """The release named `version` ("7.2"), or the default; an unknown one is bad input."""
    if version is None:
        return RELEASES[DEFAULT_RELEASE]
    if not isinstance(version, str) or version not in RELEASES:
        raise ConfigError(f"unknown QEMU release '{version}': this model knows "
                          f"{', '.join(RELEASES)}")
    return RELEASES[version]
