"""-smp: the CPU topology as QEMU parses and completes it (hw/core/machine-smp.c), for a machine
that knows sockets, cores and threads only, as pseries does.

Values are read as QEMU's options visitor reads an int64 (base 0, blanks and a sign allowed) and
then held in C ``unsigned``: ``-smp -1`` is 4294967295 and is refused by the CPU limit, which QEMU
prints as -1. Refusals carry the texts of the QEMU release modeled (releases.py): 7.2 warns about a zero
member and names a refused level without "> 1"; 9.0 and later refuse zeros.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import ConfigError

#: SMPConfiguration's members, in QEMU's order.
PARAMETERS = ("cpus", "drawers", "books", "sockets", "dies", "clusters", "modules", "cores",
              "threads", "maxcpus")
#: Levels pseries does not have, in the order machine_parse_smp_config refuses them.
UNSUPPORTED = ("modules", "clusters", "dies", "books", "drawers")


class Topology(NamedTuple):
    cpus: int
    sockets: int
    cores: int
    threads: int
    maxcpus: int


def parse_base0(text: str) -> int | None:
    """A number as C's strtoll/strtoull in base 0 read it whole: leading blanks, a sign, 0x hex,
    0 octal or decimal. None when it is not one, or is too long for 64 bits in any case."""
    match = re.fullmatch(r"\s*([+-]?)(0[xX][0-9a-fA-F]{1,64}|0[0-7]{0,64}|[1-9][0-9]{0,64})", text)
    if not match:
        return None
    sign, digits = match.groups()
    value = int(digits, 16 if digits[:2].lower() == "0x" else 8 if digits[0] == "0" else 10)
    return -value if sign == "-" else value


def _int64(name: str, text: str) -> int:
    """qemu_strtoi64: a number beyond int64 is refused like one that is not a number."""
    value = parse_base0(text)
    if value is None or not -(1 << 63) <= value < 1 << 63:
        raise ConfigError(f"Parameter 'smp.{name}' expects integer")
    return value


def read_smp(option: str, props: list[str], release=None) -> dict[str, int]:
    """The members given to one -smp option, split at its commas (a leading bare value is
    ``cpus``; of a repeated member, the last)."""
    given: dict[str, int] = {}
    for index, prop in enumerate(props):
        if "=" not in prop:
            if index == 0:
                given["cpus"] = _int64("cpus", prop)
                continue
            if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", prop):
                raise ConfigError(f"{option}: Expected '=' after parameter '{prop}'")
            raise ConfigError(f"{option}: Invalid parameter '{prop}'")
        key, val = prop.split("=", 1)
        if release is not None and release.smp_zero == "unmodeled" and key in UNSUPPORTED:
            raise NotImplementedError(f"-smp {key}= in QEMU {release.version} is not modeled")
        known = PARAMETERS if release is None else [p for p in PARAMETERS if p not in UNSUPPORTED
                                                     or p in release.smp_levels]
        if key not in known:
            raise ConfigError(f"Parameter 'smp.{key}' is unexpected")
        given[key] = _int64(key, val)
    return given


def topology(given: dict[str, int], prefer_sockets: bool, machine: str,
             max_cpus: int, release=None) -> tuple[Topology, list[str]]:
    """machine_parse_smp_config: refuse zeros and unsupported levels, complete what is missing
    (sockets first up to pseries-6.1, cores first since 6.2; threads last), then check that the
    product matches maxcpus, covers the boot CPUs and fits the machine. Returns the topology and
    the warnings printed on the way."""
    warnings = []
    zero = "CPU topology parameters must be greater than zero"
    if any(value == 0 for value in given.values()):
        if release is not None and release.smp_zero == "unmodeled":
            raise NotImplementedError(f"-smp with a zero member in QEMU {release.version} is not "
                                      "modeled")
        if release is not None and release.smp_zero == "deprecated":
            warnings.append(f"Deprecated CPU topology (considered invalid): {zero}")
        else:
            raise ConfigError(f"Invalid CPU topology: {zero}")
    text = "{level} > 1 not supported by this machine's CPU topology"
    levels = UNSUPPORTED
    if release is not None:
        text, levels = release.smp_level_text, [lv for lv in UNSUPPORTED if lv in release.smp_levels]
    for level in levels:
        if given.get(level, 1) > 1:  # compared as the int64 given
            raise ConfigError(text.format(level=level))
    cpus, sockets, cores, threads, maxcpus = (given.get(name, 0) & 0xFFFFFFFF for name in
                                              ("cpus", "sockets", "cores", "threads", "maxcpus"))
    if cpus == 0 and maxcpus == 0:
        sockets, cores, threads = sockets or 1, cores or 1, threads or 1
    else:
        maxcpus = maxcpus or cpus
        if prefer_sockets:
            if sockets == 0:
                cores, threads = cores or 1, threads or 1
                sockets = maxcpus // (cores * threads)
            elif cores == 0:
                threads = threads or 1
                cores = maxcpus // (sockets * threads)
        else:
            if cores == 0:
                sockets, threads = sockets or 1, threads or 1
                cores = maxcpus // (sockets * threads)
            elif sockets == 0:
                threads = threads or 1
                sockets = maxcpus // (cores * threads)
        if threads == 0:
            threads = maxcpus // (sockets * cores)
    total = sockets * cores * threads
    maxcpus = maxcpus or total
    cpus = cpus or maxcpus
    hierarchy = f"sockets ({sockets}) * cores ({cores}) * threads ({threads})"
    if total != maxcpus:
        raise ConfigError("Invalid CPU topology: product of the hierarchy must match maxcpus: "
                          f"{hierarchy} != maxcpus ({maxcpus})")
    if maxcpus < cpus:
        raise ConfigError("Invalid CPU topology: maxcpus must be equal to or greater than smp: "
                          f"{hierarchy} == maxcpus ({maxcpus}) < smp_cpus ({cpus})")
    if maxcpus > max_cpus:
        shown = maxcpus - (1 << 32) if maxcpus >= 1 << 31 else maxcpus  # printed with %d
        raise ConfigError(f"Invalid SMP CPUs {shown}. The max CPUs supported by machine "
                          f"'{machine}' is {max_cpus}")
    return Topology(cpus, sockets, cores, threads, maxcpus), warnings
