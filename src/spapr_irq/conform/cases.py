"""Conformance cases: a QEMU command line's interrupt-relevant part, the guest's kernel options,
and whether to reset and boot a second time. The default set spans machine types, CPUs,
ic-modes, xive=off, refusals and resets."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError


@dataclass(frozen=True)
class Case:
    name: str
    options: tuple[str, ...]  # QEMU options that the model reads too (-M, -cpu, -smp, ...)
    append: str = ""  # extra guest kernel options, e.g. "xive=off"
    reset: bool = False  # system_reset after the first report, then a second boot
    #: Migrate the booted guest to a QEMU started with these options (and -incoming), if given.
    migrate_to: tuple[str, ...] | None = None

    @property
    def guest(self) -> str:
        return "linux-xive-off" if "xive=off" in self.append.split() else "linux-xive"


def _case(name: str, options: str, append: str = "", reset: bool = False,
          migrate_to: str | None = None) -> Case:
    return Case(name, tuple(options.split()), append, reset,
                tuple(migrate_to.split()) if migrate_to is not None else None)


def migration_cases() -> list[Case]:
    """QEMU 7.2's ic-mode table: a booted guest (xics, xive, dual, dual with xive=off) moved to
    a destination with each ic-mode."""
    cases = []
    for src, append in (("xics", ""), ("xive", ""), ("dual", ""), ("dual", "xive=off")):
        for dst in ("xics", "xive", "dual"):
            name = f"migrate-{src}{'-xiveoff' if append else ''}-to-{dst}"
            cases.append(_case(name, f"-M pseries,ic-mode={src} -cpu POWER9 -smp 2", append,
                               migrate_to=f"-M pseries,ic-mode={dst} -cpu POWER9 -smp 2"))
    return cases


def default_cases() -> list[Case]:
    cases = []
    for cpu in ("POWER9", "POWER8"):
        for mode in ("", "xics", "xive", "dual"):
            props = f"pseries,ic-mode={mode}" if mode else "pseries"
            for append in ("", "xive=off"):
                name = f"7.2-{cpu.lower()}-{mode or 'default'}{'-xiveoff' if append else ''}"
                cases.append(_case(name, f"-M {props} -cpu {cpu} -smp 2", append))
    for machine in ("pseries-4.0", "pseries-4.1", "pseries-4.2", "pseries-5.0", "pseries-6.2"):
        cases.append(_case(f"{machine}-power9", f"-M {machine} -cpu POWER9 -smp 2"))
        cases.append(_case(f"{machine}-power9-xive", f"-M {machine},ic-mode=xive -cpu POWER9 -smp 2"))
    cases += [
        _case("3.1-default", "-M pseries-3.1 -cpu POWER9 -smp 2"),
        _case("3.0-legacy-power9", "-M pseries-3.0 -cpu POWER9 -smp 2"),
        _case("2.12-legacy-power8", "-M pseries-2.12 -cpu POWER8 -smp 2"),
        _case("2.7-legacy-htm-off", "-M pseries-2.7,cap-htm=off -cpu POWER8 -smp 2"),
        _case("nodefaults-xive", "-M pseries,ic-mode=xive -cpu POWER9 -smp 2 -nodefaults"),
        _case("net-none-xics", "-M pseries,ic-mode=xics -cpu POWER9 -smp 2 -net none"),
        _case("2.12-nodefaults", "-M pseries-2.12 -cpu POWER8 -smp 2 -nodefaults"),
        _case("dual-reset", "-M pseries,ic-mode=dual -cpu POWER9 -smp 2", reset=True),
        _case("xics-reset", "-M pseries,ic-mode=xics -cpu POWER9 -smp 2", reset=True),
        _case("refuse-legacy-ic-mode", "-M pseries-3.0,ic-mode=xics -cpu POWER9"),
        _case("refuse-bad-ic-mode", "-M pseries,ic-mode=bogus"),
        _case("refuse-compat", "-M pseries,max-cpu-compat=power9 -cpu POWER8"),
        _case("refuse-compat-xive", "-M pseries,max-cpu-compat=power9,ic-mode=xive -cpu POWER8"),
        _case("refuse-cpu-host", "-M pseries -cpu host"),
        _case("refuse-tcg-smt", "-M pseries -cpu POWER9 -smp 2,threads=2"),
        _case("refuse-htm", "-M pseries-2.11 -cpu POWER8"),
        _case("refuse-accel-prop", "-M pseries -accel tcg,kernel-irqchip=on"),
        _case("refuse-unknown-prop", "-M pseries,foo_bar=1"),
        _case("accept-kernel-irqchip-bogus", "-M pseries,kernel-irqchip=bogus -cpu POWER9 -smp 2"),
        _case("accept-ic_mode", "-M pseries,ic_mode=xive -cpu POWER9 -smp 2"),
        # -device as libvirt writes it: VIO devices at its addresses, JSON, a second PHB
        _case("devices-vio-irq-taken", "-M pseries -nodefaults -chardev null,id=c0 -device "
              "spapr-vty,chardev=c0,reg=0x30000000 -device spapr-vlan -device "
              "spapr-vscsi,id=scsi0,reg=0x00002000"),
        _case("devices-nic-and-second-phb", "-M pseries -nodefaults -nic user,model=spapr-vlan "
              "-device spapr-pci-host-bridge,index=1"),
        _case("devices-json-vlan", '-M pseries -nodefaults -netdev user,id=n0 -device '
              '{"driver":"spapr-vlan","netdev":"n0","id":"net0","reg":8192}'),
        _case("refuse-vio-address-taken", "-M pseries -device spapr-vlan,reg=0x71000000"),
    ]
    return cases + migration_cases()


def load_cases(path: Path) -> list[Case]:
    """Cases from a TOML file: [[case]] tables with name, options, and optional append, reset."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: cannot read the cases: {exc}") from None
    cases = []
    for index, table in enumerate(data.get("case", [])):
        if not isinstance(table, dict) or not isinstance(table.get("name"), str) \
                or not isinstance(table.get("options"), str):
            raise InputError(f"{path}: case {index + 1} needs a name and options (strings)")
        unknown = set(table) - {"name", "options", "append", "reset", "migrate_to"}
        if unknown:
            raise InputError(f"{path}: case {table['name']}: unknown key {sorted(unknown)[0]}")
        migrate_to = table.get("migrate_to")
        if migrate_to is not None and not isinstance(migrate_to, str):
            raise InputError(f"{path}: case {table['name']}: migrate_to is a string of options")
        cases.append(_case(table["name"], table["options"], str(table.get("append", "")),
                           bool(table.get("reset", False)), migrate_to))
    if not cases:
        raise InputError(f"{path}: no [[case]] tables")
    return cases
