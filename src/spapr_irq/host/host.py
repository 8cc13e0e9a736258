"""The modeled host: accelerator, CPU generation, kernel version, nesting, firmware.

A Host only states facts; what its KVM offers (capabilities, device types, release semantics) is
derived here from spec/linux.md A.1-A.6 so that every consumer reads the same answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config import CPU_FAMILIES
from ..errors import HostError


@dataclass(frozen=True)
class Host:
    """A host kernel. `accel` is "kvm" or "tcg" (no KVM at all)."""

    name: str
    accel: str = "kvm"
    cpu: str | None = None  # power8 | power9 | power10 (None under tcg)
    kernel: tuple[int, int] | None = None
    nested: bool = False  # an L1 pseries guest running KVM-HV (no HV mode)
    xive_off: bool = False  # host booted with xive=off: OPAL XICS emulation, no native XIVE
    opal_queue_state: bool = True  # firmware implements OPAL_XIVE_GET/SET_QUEUE_STATE

    # -- what KVM offers ---------------------------------------------------------------------------
    @property
    def has_kvm(self) -> bool:
        return self.accel == "kvm"

    @property
    def xive_enabled(self) -> bool:
        """xive_enabled(): the host kernel drives a XIVE (POWER9 and later, unless xive=off)."""
        return self.has_kvm and CPU_FAMILIES.index(self.cpu) >= 2 and not self.xive_off

    @property
    def hv_mode(self) -> bool:
        """CPU_FTR_HVMODE: bare-metal PowerNV; false in a nested (pseries L1) hypervisor."""
        return self.has_kvm and not self.nested

    @property
    def xics_on_xive(self) -> bool:
        """KVM_DEV_TYPE_XICS is backed by XICS-on-XIVE (since 4.12), not the software XICS."""
        return self.xive_enabled and self.hv_mode and self.kernel >= (4, 12)

    @property
    def xive_native(self) -> bool:
        """KVM_DEV_TYPE_XIVE is registered: XICS-on-XIVE host, Linux 5.2+, and from 5.4 only with
        the OPAL queue-state calls ("Enable XIVE native capability only if OPAL has required
        functions", posted 2019-08-26, after the 5.3 merge window; spec/linux.md A.1)."""
        if not (self.xics_on_xive and self.kernel >= (5, 2)):
            return False
        return self.opal_queue_state or self.kernel < (5, 4)

    @property
    def xics_device_kind(self) -> str | None:
        """Which implementation answers KVM_DEV_TYPE_XICS: kvm-xive (XICS-on-XIVE) or kvm-xics."""
        if not self.has_kvm:
            return None
        return "kvm-xive" if self.xics_on_xive else "kvm-xics"

    def device_has_release(self, kind: str) -> bool:
        """Whether closing the device fd releases it (else it lives until the VM is destroyed)."""
        if kind in ("kvm-xive", "kvm-xive-native"):
            return self.kernel >= (5, 2)
        if kind == "kvm-xics":
            return self.kernel >= (5, 10)
        raise ValueError(kind)

    @property
    def nr_servers_attr(self) -> bool:
        """KVM_DEV_XICS/XIVE_NR_SERVERS exist from Linux 5.5 (XICS: only on XICS-on-XIVE)."""
        return self.kernel >= (5, 5)

    def describe(self) -> str:
        if not self.has_kvm:
            return "TCG: no KVM, every controller is emulated"
        parts = [f"{self.cpu.upper()} host, Linux {self.kernel[0]}.{self.kernel[1]}"]
        if self.nested:
            parts.append("nested (pseries L1 hypervisor)")
        if self.xive_off:
            parts.append("booted xive=off")
        if not self.opal_queue_state:
            parts.append("OPAL without XIVE queue-state calls")
        return ", ".join(parts)


# --- Presets -----------------------------------------------------------------------------------------


def _kvm(name: str, cpu: str, kernel: tuple[int, int], **kw) -> Host:
    return Host(name=name, accel="kvm", cpu=cpu, kernel=kernel, **kw)


PRESETS: dict[str, Host] = {
    host.name: host
    for host in (
        Host(name="tcg", accel="tcg"),
        _kvm("power8-linux-4.19", "power8", (4, 19)),
        _kvm("power8-linux-5.10", "power8", (5, 10)),
        _kvm("power9-linux-4.19", "power9", (4, 19)),
        _kvm("power9-linux-5.2", "power9", (5, 2)),
        _kvm("power9-linux-5.10", "power9", (5, 10)),
        _kvm("power10-linux-6.6", "power10", (6, 6)),
        _kvm("power9-nested-linux-5.4", "power9", (5, 4), nested=True),
        _kvm("power9-nested-linux-5.10", "power9", (5, 10), nested=True),
        _kvm("power9-oldfw-linux-5.4", "power9", (5, 4), opal_queue_state=False),
    )
}
DEFAULT_HOST = "power9-linux-5.10"

_YES = {"yes": True, "on": True, "true": True, "no": False, "off": False, "false": False}


def parse_host(text: str) -> Host:
    """A preset name, or ``kvm:cpu=power9,kernel=5.2[,nested=yes][,xive=off][,firmware=old]``."""
    if text in PRESETS:
        return PRESETS[text]
    if not text.startswith("kvm:"):
        names = ", ".join(PRESETS)
        raise HostError(f"unknown host '{text}': use one of {names} or kvm:cpu=...,kernel=...")
    fields: dict[str, str] = {}
    for item in text[4:].split(","):
        if "=" not in item:
            raise HostError(f"host '{text}': expected key=value, got '{item}'")
        key, value = item.split("=", 1)
        if key in fields:
            raise HostError(f"host '{text}': '{key}' given twice")
        fields[key] = value
    unknown = set(fields) - {"cpu", "kernel", "nested", "xive", "firmware"}
    if unknown:
        raise HostError(f"host '{text}': unknown key '{sorted(unknown)[0]}'"
                        " (known: cpu, kernel, nested, xive, firmware)")
    cpu = fields.get("cpu")
    if cpu not in ("power8", "power9", "power10"):
        raise HostError(f"host '{text}': cpu must be power8, power9 or power10")
    match = re.fullmatch(r"([0-9]+)\.([0-9]+)", fields.get("kernel", ""))
    if not match:
        raise HostError(f"host '{text}': kernel must be a version like 5.10")
    kernel = (int(match.group(1)), int(match.group(2)))
    if kernel < (3, 10):
        raise HostError(f"host '{text}': in-kernel XICS needs Linux 3.10 or later")
    nested = _flag(text, fields, "nested", "yes", "no")
    xive_on = _flag(text, fields, "xive", "on", "off", default=True)
    firmware = fields.get("firmware", "new")
    if firmware not in ("new", "old"):
        raise HostError(f"host '{text}': firmware must be new or old")
    return Host(
        name=text, accel="kvm", cpu=cpu, kernel=kernel, nested=nested,
        xive_off=not xive_on, opal_queue_state=firmware == "new",
    )


def _flag(text: str, fields: dict[str, str], key: str, yes: str, no: str, default=False) -> bool:
    if key not in fields:
        return default
    value = fields[key]
    if value not in _YES:
        raise HostError(f"host '{text}': {key} must be {yes} or {no}")
    return _YES[value]
