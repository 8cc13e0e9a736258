"""Linux-like guests: what they read from the device tree and answer at CAS (spec/linux.md B.1).

A profile reads ``/chosen/ibm,arch-vec-5-platform-support`` from the tree the machine built, fills
byte 23 of its option vector 5 the way ``prom_init`` does, calls CAS, then picks its interrupt driver
from ``/chosen/ibm,architecture-vec-5`` as ``xive_spapr_disabled()`` does and runs its init
sequence: :class:`~spapr_irq.guest.linux_xics.XicsDriver` for XICS,
:class:`~spapr_irq.guest.linux_xive.XiveDriver` for XIVE.

The guest talks to the machine only through what a guest has: hypercalls, RTAS calls, MMIO, its
external-interrupt line, and the device tree. It imports nothing of the machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import papr
from ..errors import GuestError, StateError
from .linux_xics import XicsDriver
from .linux_xive import XiveDriver


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
        vector[papr.OV5_HP_EVT_BYTE - 1] |= papr.OV5_HP_EVT  # Linux asks for the event source
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
        """Start this kernel; returns the interrupt mode it runs. From firmware (the tree still
        offers ibm,arch-vec-5-platform-support, as after a reset) prom_init calls CAS on the
        boot vCPU. On a machine that negotiated already the kernel was kexec'd: the running
        kernel tears its driver down, and the new one takes the negotiated mode as it stands,
        without CAS (B.2). A CAS that rebooted the machine (QEMU 4.0-4.2) is made again."""
        if machine.fdt.get("/chosen", {}).get("ibm,arch-vec-5-platform-support"):
            machine.cas(machine.vcpus[0], self.ov5(machine.fdt))
            if machine.fdt.get("/chosen", {}).get("ibm,arch-vec-5-platform-support"):
                # QEMU 4.0-4.2 rebooted at CAS (the mode changed): firmware runs again, and so
                # does prom_init's CAS, which now finds the mode in place.
                machine.cas(machine.vcpus[0], self.ov5(machine.fdt))
        elif machine.driver is not None:
            machine.driver.shutdown()
        mode = self.driver(machine.fdt)
        if mode == "xics" and not machine.intc_node()[1].get("device_type", "").startswith("PowerPC"):
            raise StateError(f"{self.name} cannot run the XIVE mode the machine is in: "
                             "XICS: Cannot find a Presentation Controller !")
        machine.driver = XicsDriver(machine) if mode == "xics" else XiveDriver(machine)
        machine.driver.init()
        request_platform_irqs(machine.driver, machine.fdt)
        return mode


def request_platform_irqs(driver, fdt: dict) -> None:
    """What a booted pseries kernel does with the interrupts the device tree gives it, in
    Linux's order: the EPOW event source (init_ras_IRQ, "RAS_EPOW") mapped and requested,
    every /vdevice mapped as the VIO bus probes it, the first console's vty requested by the
    hvc driver ("hvc_console"), then the hot-plug event source ("RAS_HOTPLUG")."""
    def irq_of(path: str) -> int | None:
        node = fdt.get(path)
        return node["interrupts"][0] if node and node.get("interrupts") else None

    epow = irq_of("/event-sources/epow-events")
    if epow is not None:
        driver.map(epow)
        driver.startup(epow, driver.pick_target())
    vdevices = sorted((path for path in fdt if path.startswith("/vdevice/") and irq_of(path)),
                      key=lambda path: int(path.rsplit("@", 1)[1], 16))
    for path in vdevices:
        driver.map(irq_of(path))
    ttys = [path for path in vdevices if path.startswith("/vdevice/vty@")]
    if ttys:
        driver.startup(irq_of(ttys[0]), driver.pick_target())
    hotplug = irq_of("/event-sources/hot-plug-events")
    if hotplug is not None:
        driver.map(hotplug)
        driver.startup(hotplug, driver.pick_target())


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
