"""Linux-like guests: what they read from the device tree and answer at CAS (spec/linux.md B.1).

A profile reads ``/chosen/ibm,arch-vec-5-platform-support`` from the tree the machine built, fills
byte 23 of its option vector 5 the way ``prom_init`` does, calls CAS, then picks its interrupt driver
from ``/chosen/ibm,architecture-vec-5`` as ``xive_spapr_disabled()`` does and runs its init
sequence: :class:`XicsDriver` (icp-hv.c and ics-rtas.c) for XICS. The sPAPR XIVE driver comes with
issue 4; until then a guest that negotiated XIVE stops after CAS.

The guest talks to the machine only through what a guest has: hypercalls, RTAS calls, its
external-interrupt line, and the device tree. It imports nothing of the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from . import papr
from .errors import GuestError, StateError


@dataclass(frozen=True)
class GuestProfile:
    name: str
    description: str
    xive_support: bool  # the kernel has the sPAPR XIVE driver (Linux 4.14+)
    xive_off: bool = False  # booted with xive=off

    # -- prom_init ------------------------------------------------------------------------------------
    def platform_byte23(self, fdt: dict) -> int | None:
        """Byte 23 from ibm,arch-vec-5-platform-support, read pair by pair; None if absent."""
        pairs = fdt.get("/chosen", {}).get("ibm,arch-vec-5-platform-support")
        if not pairs:
            return None
        for i in range(0, min(len(pairs), 8) - 1, 2):
            if pairs[i] == papr.OV5_INTC_BYTE:
                return pairs[i + 1] & papr.OV5_XIVE_MASK
        return None

    def wants_xive(self, platform: int | None) -> bool:
        """prom_parse_xive_model: EITHER -> XIVE unless xive=off; EXPLOIT -> XIVE even with
        xive=off ("Ignoring cmdline option xive=off"); LEGACY or absent -> XICS."""
        if not self.xive_support or platform is None:
            return False
        if platform == papr.OV5_XIVE_BOTH:
            return not self.xive_off
        return platform == papr.OV5_XIVE_EXPLOIT

    def ov5(self, fdt: dict) -> bytes:
        """The option vector 5 this guest sends at CAS (ov5[0] is byte 1)."""
        vector = bytearray(26)
        platform = self.platform_byte23(fdt)
        vector[papr.OV5_INTC_BYTE - 1] = (papr.OV5_XIVE_EXPLOIT if self.wants_xive(platform)
                                          else papr.OV5_XIVE_LEGACY)
        pairs = fdt.get("/chosen", {}).get("ibm,arch-vec-5-platform-support", b"")
        for i in range(0, min(len(pairs), 8) - 1, 2):
            if pairs[i] == papr.OV5_MMU_BYTE and pairs[i + 1] & 0xC0:
                vector[papr.OV5_MMU_BYTE - 1] = 0x40  # radix when offered; never "both"
        return bytes(vector)

    # -- the kernel proper ------------------------------------------------------------------------------
    def driver(self, fdt: dict) -> str:
        """xive_spapr_disabled(): XIVE iff CAS gave EXPLOIT and the kernel has the driver (an
        EXPLOIT-only result overrides xive=off)."""
        negotiated = papr.ov5_byte(fdt.get("/chosen", {}).get("ibm,architecture-vec-5", b""),
                                   papr.OV5_INTC_BYTE)
        if negotiated & papr.OV5_XIVE_MASK == papr.OV5_XIVE_EXPLOIT and self.xive_support:
            return "xive"
        return "xics"

    def boot(self, machine) -> str:
        """Firmware CAS on the boot vCPU, the driver choice and its init; returns the mode."""
        machine.cas(machine.vcpus[0], self.ov5(machine.fdt))
        mode = self.driver(machine.fdt)
        machine.driver = XicsDriver(machine) if mode == "xics" else None
        if machine.driver is not None:
            machine.driver.init()
        return mode


GUESTS: dict[str, GuestProfile] = {g.name: g for g in (
    GuestProfile("linux-xive", "Linux with the sPAPR XIVE driver: asks for XIVE whenever offered",
                 xive_support=True),
    GuestProfile("linux-xive-off", "Linux booted with xive=off: asks for XICS unless only XIVE is "
                 "offered, where the option is ignored", xive_support=True, xive_off=True),
    GuestProfile("linux-legacy", "Linux without XIVE support (before 4.14): always asks for XICS",
                 xive_support=False),
)}
DEFAULT_GUEST = "linux-xive"


def get_guest(name: str) -> GuestProfile:
    if name not in GUESTS:
        raise GuestError(f"unknown guest '{name}': use one of {', '.join(GUESTS)}")
    return GUESTS[name]


# ==========================================================================================================
# The Linux XICS driver (arch/powerpc/sysdev/xics: icp-hv.c, ics-rtas.c, xics-common.c)
# ==========================================================================================================

XICS_IPI = 2
XICS_IRQ_SPURIOUS = 0
IPI_PRIORITY = 4
DEFAULT_PRIORITY = 5
LOWEST_PRIORITY = 0xFF


class Handled(NamedTuple):
    """One interrupt the guest handled: on which vCPU, what (ipi, msi, lsi, spurious), which."""

    vcpu: int
    kind: str
    irq: int


class XicsDriver:
    """What a Linux pseries guest does with XICS: CPPR 0xff on every CPU, sources routed with
    ibm,set-xive and ibm,int-on, IPIs by H_IPI at priority 4, H_XIRR then H_EOI per interrupt."""

    def __init__(self, machine) -> None:
        self.m = machine
        self.handled: list[Handled] = []
        self.lsi: set[int] = set()  # device lines the driver knows are level-sensitive
        self.devices: dict[int, str] = {}  # irq -> "msi" | "lsi", as requested by drivers
        self.warnings: list[str] = []

    def _hcall(self, vcpu: int, name: str, *args: int) -> tuple[int, ...]:
        answer = self.m.hcall(vcpu, name, *args)
        if answer[0] != 0:
            self.warnings.append(f"{name} returned {answer[0]}")
        return answer

    def _rtas(self, vcpu: int, name: str, *args: int, nret: int = 1) -> tuple[int, ...]:
        answer = self.m.rtas(vcpu, name, *args, nret=nret)
        if answer[0] != 0:
            self.warnings.append(f"{name} returned {answer[0]}")
        return answer

    # -- boot ------------------------------------------------------------------------------------------
    def init(self) -> None:
        """xics_init, then xics_setup_cpu on each CPU: open the CPPR to accept everything."""
        for vcpu in self.m.vcpus:
            self._hcall(vcpu, "H_CPPR", LOWEST_PRIORITY)

    # -- sources (ics-rtas.c) ---------------------------------------------------------------------------
    def startup(self, irq: int, server: int, priority: int = DEFAULT_PRIORITY, lsi: bool = False
                ) -> None:
        """request_irq: route the source to `server` at `priority`, then int-on."""
        self.devices[irq] = "lsi" if lsi else "msi"
        if lsi:
            self.lsi.add(irq)
        self._rtas(self.m.vcpus[0], "ibm,set-xive", irq, server, priority)
        self._rtas(self.m.vcpus[0], "ibm,int-on", irq)

    def mask(self, irq: int) -> None:
        """ics_rtas_mask_real_irq: int-off, then set-xive to the default server at 0xff."""
        self._rtas(self.m.vcpus[0], "ibm,int-off", irq)
        self._rtas(self.m.vcpus[0], "ibm,set-xive", irq, self.m.vcpus[0], LOWEST_PRIORITY)

    def unmask(self, irq: int, server: int, priority: int = DEFAULT_PRIORITY) -> None:
        """ics_rtas_unmask_irq: set-xive to the server at the priority, then int-on."""
        self._rtas(self.m.vcpus[0], "ibm,set-xive", irq, server, priority)
        self._rtas(self.m.vcpus[0], "ibm,int-on", irq)

    def set_affinity(self, irq: int, server: int) -> None:
        """ics_rtas_set_affinity: read the priority with get-xive, write it back to the server."""
        answer = self._rtas(self.m.vcpus[0], "ibm,get-xive", irq, nret=3)
        if answer[0] == 0:
            self._rtas(self.m.vcpus[0], "ibm,set-xive", irq, server, answer[2])

    # -- IPIs (icp-hv.c) --------------------------------------------------------------------------------
    def send_ipi(self, source: int, target: int) -> None:
        self._hcall(source, "H_IPI", target, IPI_PRIORITY)

    # -- the interrupt path -------------------------------------------------------------------------------
    def handle_one(self, vcpu: int) -> Handled | None:
        """One external exception: H_XIRR, the handler, H_EOI with the CPPR from before."""
        answer = self._hcall(vcpu, "H_XIRR")
        if answer[0] != 0:
            return None
        xirr = answer[1]
        vec = xirr & 0xFFFFFF
        if vec == XICS_IRQ_SPURIOUS:
            return Handled(vcpu, "spurious", 0)
        if vec == XICS_IPI:
            self._hcall(vcpu, "H_IPI", vcpu, LOWEST_PRIORITY)  # icp_hv_ipi_action clears MFRR
            kind = "ipi"
        else:
            kind = self.devices.get(vec, "unexpected")
            if vec in self.lsi:
                self.m.set_irq(vec, 0)  # the device handler acks its device: the line drops
        self._hcall(vcpu, "H_EOI", xirr)  # (popped CPPR << 24) | hwirq; the CPPR is xirr's
        handled = Handled(vcpu, kind, vec)
        self.handled.append(handled)
        return handled

    def handle(self, vcpu: int, limit: int = 10_000) -> list[Handled]:
        """Take interrupts on `vcpu` while its external-interrupt line is raised."""
        out = []
        while self.m.irq_pending(vcpu) and len(out) < limit:
            handled = self.handle_one(vcpu)
            if handled is None:
                break
            out.append(handled)
        return out

    def drain(self, limit: int = 100_000) -> list[Handled]:
        """Every vCPU handles until no line is raised anywhere."""
        out: list[Handled] = []
        progress = True
        while progress and len(out) < limit:
            progress = False
            for vcpu in self.m.vcpus:
                got = self.handle(vcpu)
                if got:
                    out.extend(got)
                    progress = True
        return out


@dataclass(frozen=True)
class Event:
    """One interrupt to fire: an IPI from `source` to `vcpu`, or a device MSI/LSI routed to
    `vcpu` at `priority`."""

    kind: str  # ipi | msi | lsi
    vcpu: int
    priority: int = DEFAULT_PRIORITY
    source: int = 0


class Workload:
    """Fires interrupts at a booted XICS guest and collects what it handled, in order.

    Device sources are claimed on demand, one per (kind, vCPU, priority): MSIs from the PHB's MSI
    allocator, LSIs as free external numbers claimed level-sensitive."""

    def __init__(self, machine) -> None:
        if getattr(machine, "driver", None) is None:
            raise StateError("boot a guest that negotiated XICS before running a workload")
        self.m = machine
        self.driver: XicsDriver = machine.driver
        self.sources: dict[tuple[str, int, int], int] = {}

    def source(self, kind: str, vcpu: int, priority: int) -> int:
        key = (kind, vcpu, priority)
        if key not in self.sources:
            if kind == "msi":
                irq = self.m.msi_alloc(1)
            else:
                irq = next(n for n in range(0x1FFF, 0x1000, -1) if not any(self.m.irq_claimed(n).values()))
                self.m.claim_irq(irq, lsi=True)
            self.driver.startup(irq, vcpu, priority, lsi=kind == "lsi")
            self.sources[key] = irq
        return self.sources[key]

    def fire(self, event: Event) -> None:
        if event.kind == "ipi":
            self.driver.send_ipi(event.source, event.vcpu)
            return
        if event.kind not in ("msi", "lsi"):
            raise ValueError(f"unknown event kind {event.kind!r} (ipi, msi or lsi)")
        self.m.set_irq(self.source(event.kind, event.vcpu, event.priority), 1)

    def run(self, events, drain_each: bool = False) -> list[Handled]:
        """Fire `events` (draining after each if asked), drain, and return what was handled."""
        out: list[Handled] = []
        for event in events:
            self.fire(event)
            if drain_each:
                out.extend(self.driver.drain())
        out.extend(self.driver.drain())
        return out
