"""The modeled host: accelerator, CPU generation, kernel version, nesting, firmware.

A Host only states facts; what its KVM offers (capabilities, device types, release semantics, the
bugs of a given kernel) is derived here from Linux's history (:data:`LINUX_CHANGES`, spec/linux.md
A.1-A.6) so that every consumer reads the same answers. A host that cannot exist (a nested POWER8,
KVM on POWER10 before Linux ran guests there, ...) is refused with a :class:`HostError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config import CPU_FAMILIES
from ..errors import HostError

Version = tuple[int, int, int]


@dataclass(frozen=True)
class Change:
    """A change to Linux: the first mainline release that has it, and the stable releases it was
    backported to (a stable x.y.z has it, as do the later x.y releases)."""

    mainline: Version
    stable: tuple[Version, ...] = ()
    title: str = ""

    def in_kernel(self, kernel: Version) -> bool:
        if kernel >= self.mainline:
            return True
        return any(fix <= kernel < (fix[0], fix[1] + 1, 0) for fix in self.stable)


#: The changes this model depends on, by the name the code asks for them.
LINUX_CHANGES: dict[str, Change] = {
    "kvm-xics": Change((3, 10, 0), title="KVM: PPC: Book3S: Add API for in-kernel XICS emulation"),
    "smt-mode": Change((4, 13, 0), title="KVM: PPC: Book3S HV: Allow userspace to set the "
                       "desired SMT mode (KVM_CAP_PPC_SMT)"),
    "xics-on-xive": Change((4, 12, 0), title="KVM: PPC: Book3S HV: Native usage of the XIVE "
                           "interrupt controller"),
    "pack-vcpu-ids": Change((4, 19, 0), title="KVM: PPC: Book3S HV: Pack VCORE IDs to access full "
                            "VCPU ID space (1e175d2e07c7)"),
    "nested-hv": Change((4, 20, 0), title="Nested HV KVM support for radix guests on POWER9"),
    "xive-native": Change((5, 2, 0), title="KVM: PPC: Book3S HV: XIVE: Activate XIVE exploitation "
                          "mode (3fab2d10588e)"),
    "xive-release": Change((5, 2, 0), title="KVM: PPC: Book3S HV: XIVE: Replace the 'destroy' "
                           "method by a 'release' method (5422e95103cf)"),
    "opal-queue-state-gate": Change((5, 4, 0), ((5, 3, 6),), "KVM: PPC: Book3S: Enable XIVE native "
                                    "capability only if OPAL has required functions (2ad7a27deaf6)"),
    "vp-in-use-check": Change((5, 4, 0), ((5, 3, 8),), "KVM: PPC: Book3S HV: XIVE: Ensure VP isn't "
                              "already in use (12ade69c1eb9)"),
    "xive-slot-after-vps": Change((5, 5, 0), ((5, 4, 3), (5, 3, 16)), "KVM: PPC: Book3S HV: XIVE: "
                                  "Set kvm->arch.xive when VPs are allocated (e7d71c943040)"),
    "nr-servers": Change((5, 5, 0), title="KVM: PPC: Book3S HV: XIVE: Allow userspace to set the # "
                         "of VPs (efe5ddcae496)"),
    "power10-hv": Change((5, 9, 0), title="KVM: PPC: Book3SHV: Enable support for ISA v3.1 guests"),
    "packed-vcpu-id-check": Change((5, 10, 0), title="KVM: PPC: Book3S HV: XIVE: Fix vCPU id "
                                   "sanity check (f54db39fbe40)"),
    "xics-release": Change((5, 10, 0), title="KVM: PPC: Book3S HV: XICS: Replace the 'destroy' "
                           "method by a 'release' method"),
}

#: The CPU model of each host generation: its PVR is the only one KVM-HV accepts for a vCPU.
HOST_CPU_MODELS = {"power8": "power8_v2.0", "power9": "power9_v2.2", "power10": "power10_v2.0"}


def version_text(kernel: Version) -> str:
    return ".".join(str(part) for part in (kernel if kernel[2] else kernel[:2]))


@dataclass(frozen=True)
class Host:
    """A host kernel. `accel` is "kvm" or "tcg" (no KVM at all). `kernel` may be given as
    (major, minor) or (major, minor, stable); it is kept as three numbers."""

    name: str
    accel: str = "kvm"
    cpu: str | None = None  # power8 | power9 | power10 (None under tcg)
    kernel: tuple[int, ...] | None = None
    nested: bool = False  # an L1 pseries guest running KVM-HV (no HV mode)
    xive_off: bool = False  # host booted with xive=off: OPAL XICS emulation, no native XIVE
    opal_queue_state: bool = True  # firmware implements OPAL_XIVE_GET/SET_QUEUE_STATE

    def __post_init__(self) -> None:
        if self.kernel is not None and len(self.kernel) == 2:
            object.__setattr__(self, "kernel", (*self.kernel, 0))
        if self.has_kvm:
            self._check()

    def _check(self) -> None:
        """Refuse hosts Linux never ran (spec/linux.md A.1, A.6)."""
        where = f"host '{self.name}'"
        if self.cpu not in HOST_CPU_MODELS:
            raise HostError(f"{where}: cpu must be power8, power9 or power10")
        if not self.has("kvm-xics"):
            raise HostError(f"{where}: in-kernel XICS needs Linux 3.10 or later")
        if self.nested and self.cpu == "power8":
            raise HostError(f"{where}: a nested KVM-HV hypervisor needs a POWER9 or later L1 "
                            "(a POWER8 pseries guest cannot load kvm-hv)")
        if self.nested and not self.has("nested-hv"):
            raise HostError(f"{where}: nested KVM-HV first appeared in Linux 4.20")
        if self.cpu == "power10" and not self.has("power10-hv"):
            raise HostError(f"{where}: KVM-HV runs guests on POWER10 from Linux 5.9")

    def has(self, change: str) -> bool:
        """Whether this host's kernel has the named change of :data:`LINUX_CHANGES`."""
        return self.has_kvm and LINUX_CHANGES[change].in_kernel(self.kernel)

    # -- what KVM offers ---------------------------------------------------------------------------
    @property
    def has_kvm(self) -> bool:
        return self.accel == "kvm"

    @property
    def cpu_model(self) -> str | None:
        """The host's own CPU model; KVM-HV runs vCPUs with this PVR only."""
        return HOST_CPU_MODELS.get(self.cpu) if self.has_kvm else None

    @property
    def xive_enabled(self) -> bool:
        """xive_enabled(): the host kernel drives a XIVE (POWER9 and later, Linux 4.12 and later,
        unless booted xive=off)."""
        return (self.has_kvm and CPU_FAMILIES.index(self.cpu) >= 2 and not self.xive_off
                and self.has("xics-on-xive"))

    @property
    def hv_mode(self) -> bool:
        """CPU_FTR_HVMODE: bare-metal PowerNV; false in a nested (pseries L1) hypervisor."""
        return self.has_kvm and not self.nested

    @property
    def xics_on_xive(self) -> bool:
        """KVM_DEV_TYPE_XICS is backed by XICS-on-XIVE (book3s_xive.c), not the software XICS."""
        return self.xive_enabled and self.hv_mode

    @property
    def xive_native(self) -> bool:
        """KVM_DEV_TYPE_XIVE is registered: a XICS-on-XIVE host, Linux 5.2+, and, once the OPAL
        gate is in (5.4, 5.3.6), only with the OPAL queue-state calls."""
        if not (self.xics_on_xive and self.has("xive-native")):
            return False
        return self.opal_queue_state or not self.has("opal-queue-state-gate")

    @property
    def xics_device_kind(self) -> str | None:
        """Which implementation answers KVM_DEV_TYPE_XICS: kvm-xive (XICS-on-XIVE) or kvm-xics."""
        if not self.has_kvm:
            return None
        return "kvm-xive" if self.xics_on_xive else "kvm-xics"

    def device_has_release(self, kind: str) -> bool:
        """Whether closing the device fd releases it (else it lives until the VM is destroyed)."""
        if kind in ("kvm-xive", "kvm-xive-native"):
            return self.has("xive-release")
        if kind == "kvm-xics":
            return self.has("xics-release")
        raise ValueError(kind)

    @property
    def nr_servers_attr(self) -> bool:
        """KVM_DEV_XICS/XIVE_NR_SERVERS exist from Linux 5.5 (XICS: only on XICS-on-XIVE)."""
        return self.has("nr-servers")

    def describe(self) -> str:
        if not self.has_kvm:
            return "TCG: no KVM, every controller is emulated"
        parts = [f"{self.cpu.upper()} host, Linux {version_text(self.kernel)}"]
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
        # KVM in a PowerVM LPAR (Linux 6.7+, the PAPR nested API v2): a pseries L1 like the one
        # above, on POWER10; its KVM offers the software XICS and no XIVE device (kvmppc_xive_
        # native_supported() needs PowerNV).
        _kvm("power10-powervm-linux-6.8", "power10", (6, 8), nested=True),
        _kvm("power9-oldfw-linux-5.4", "power9", (5, 4), opal_queue_state=False),
    )
}
DEFAULT_HOST = "power9-linux-5.10"

_YES = {"yes": True, "on": True, "true": True, "no": False, "off": False, "false": False}


def parse_host(text: str) -> Host:
    """A preset name, or ``kvm:cpu=power9,kernel=5.2[.N][,nested=yes][,xive=off][,firmware=old]``."""
    if not isinstance(text, str):
        raise HostError(f"a host is a preset name or kvm:cpu=...,kernel=..., not {text!r}")
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
    if cpu not in HOST_CPU_MODELS:
        raise HostError(f"host '{text}': cpu must be power8, power9 or power10")
    match = re.fullmatch(r"([0-9]{1,3})\.([0-9]{1,3})(?:\.([0-9]{1,3}))?", fields.get("kernel", ""))
    if not match:
        raise HostError(f"host '{text}': kernel must be a version like 5.10 or 5.3.6")
    kernel = (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
    nested = _flag(text, fields, "nested", "yes", "no")
    xive_on = _flag(text, fields, "xive", "on", "off", default=True)
    if cpu == "power8" and fields.get("xive") is not None and xive_on:
        raise HostError(f"host '{text}': POWER8 has no XIVE, so xive=on cannot be")
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
