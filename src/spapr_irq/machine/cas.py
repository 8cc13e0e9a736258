"""CAS and the device tree: the machine's option vector 5 (spapr_ovec.c), what it offers in
``ibm,arch-vec-5-platform-support``, ibm,client-architecture-support
(spapr_hcall.c do_client_architecture_support) and the nodes it rewrites (spapr.c spapr_dt_*).

:class:`ClientArchitecture` is the part of :class:`~spapr_irq.machine.machine.Machine` that talks
with the guest's firmware: it checks the guest's answer and asks the controller side to switch.
"""

from __future__ import annotations

from .. import papr
from ..errors import MachineError, StateError
from ..policy import advertised_byte23, mode_has_xics, mode_has_xive


def mode_name(byte23: int) -> str:
    """The mode byte 23 of OV5 offers: "dual" (0x80), "xive" (0x40) or "xics" (0x00)."""
    return {papr.OV5_XIVE_BOTH: "dual", papr.OV5_XIVE_EXPLOIT: "xive"}.get(byte23, "xics")


class ClientArchitecture:
    """What the machine offers the guest, and what the guest's CAS answer changes."""

    def _init_ov5(self) -> None:
        """The machine's OV5: XIVE exploitation when the mode has XIVE, and from pseries-2.8 (the
        hot-plug event source) OV5_HP_EVT."""
        ov5 = bytearray(papr.ov5_with(papr.OV5_INTC_BYTE,
                                      papr.OV5_XIVE_EXPLOIT if mode_has_xive(self.mode) else 0))
        if self.config.version >= (2, 8):
            ov5[papr.OV5_HP_EVT_BYTE - 1] |= papr.OV5_HP_EVT
        self.ov5 = bytes(ov5)

    def _advertise(self) -> None:
        self.fdt = self._build_fdt(boot=True)
        byte23 = self.advertised_byte23
        self._step("advertise", f"ibm,arch-vec-5-platform-support byte 23 = {byte23:#04x} "
                   f"({mode_name(byte23)})", "advertise")

    def cas(self, vcpu: int, ov5: bytes) -> int:
        """ibm,client-architecture-support with the guest's option vector 5 (ov5[0] is byte 1)."""
        self._require_running("run CAS")
        if not isinstance(ov5, (bytes, bytearray)):
            raise TypeError("ov5 must be bytes")
        self._check_vcpu(vcpu)
        return self._guarded("cas", self._cas, bytes(ov5))

    def _cas(self, ov5: bytes) -> int:
        if papr.ov5_byte(ov5, papr.OV5_MMU_BYTE) & papr.OV5_MMU_BOTH:
            raise MachineError("guest requested hash and radix MMU, which is invalid.")
        byte23 = papr.ov5_byte(ov5, papr.OV5_INTC_BYTE)
        policy = self.config.release.irq
        if byte23 & papr.OV5_XIVE_BOTH and policy.cas_checks:
            self._step("cas", f"guest byte 23 = {byte23:#04x}", "cas-invalid")
            raise MachineError("guest requested an invalid interrupt mode")
        guest_xive = bool(byte23 & papr.OV5_XIVE_EXPLOIT)
        had_xive = bool(papr.ov5_byte(self.ov5_cas, papr.OV5_INTC_BYTE) & papr.OV5_XIVE_EXPLOIT)
        self._step("cas", f"guest asks for {'XIVE' if guest_xive else 'XICS'} "
                   f"(byte 23 = {byte23:#04x})", "cas-invalid")
        self.ov5_cas = bytes(a & b for a, b in zip(self.ov5.ljust(len(ov5), b"\0"),
                                                    ov5.ljust(len(self.ov5), b"\0")))
        if not policy.cas_checks:
            self._step("cas", f"QEMU {self.config.qemu} does not check the interrupt mode at CAS")
        elif guest_xive and not mode_has_xive(self.mode):
            self._step("cas", f"ic-mode={self.mode} has no XIVE", "cas-unavailable")
            raise MachineError(
                "Guest requested unavailable interrupt mode (XIVE), try the ic-mode=xive or "
                "ic-mode=dual machine property")
        elif not guest_xive and not mode_has_xics(self.mode):
            self._step("cas", f"ic-mode={self.mode} has no XICS", "cas-unavailable")
            raise MachineError(
                "Guest requested unavailable interrupt mode (XICS), either don't set the ic-mode "
                "machine property or try ic-mode=xics or ic-mode=dual")
        else:
            self._step("cas", f"ic-mode={self.mode} has {'XIVE' if guest_xive else 'XICS'}",
                       "cas-unavailable")
        if policy.cas_switch == "reboot":
            now_xive = bool(papr.ov5_byte(self.ov5_cas, papr.OV5_INTC_BYTE) & papr.OV5_XIVE_EXPLOIT)
            if now_xive and not had_xive and self.xics is not None and self.xive is not None:
                self._step("cas", "XIVE newly negotiated on a machine with both modes: reset "
                           "requested, keeping the CAS result (CAS reboot)", "cas-reboot")
                self._reset(cas_reboot=True)
                return papr.H_SUCCESS
        else:
            self._update_active("cas-switch")
        self.fdt = self._build_fdt(boot=False)
        return papr.H_SUCCESS

    @property
    def power9_mode(self) -> bool:
        """ppc_check_compat(first_cpu, ISA 3.00, 0, max-cpu-compat)."""
        return self.power9_capable

    @property
    def advertised_byte23(self) -> int:
        return advertised_byte23(self.mode, self.power9_mode)

    @property
    def advertised_mode(self) -> str:
        """What byte 23 offers: "dual" (0x80), "xive" (0x40) or "xics" (0x00)."""
        return mode_name(self.advertised_byte23)

    def _mmu_byte(self) -> int:
        if not self.power9_mode:
            return 0x00
        if self.accel == "tcg":
            return 0xC0
        return 0x40 if self.host.nested else 0x80

    def _build_fdt(self, boot: bool) -> dict[str, dict]:
        nr_servers = self.config.nr_servers
        name, node = self.active.dt_node(nr_servers)
        chosen = {"ibm,architecture-vec-5": self.ov5_cas}
        if boot:
            chosen["ibm,arch-vec-5-platform-support"] = bytes(
                [23, self.advertised_byte23, 24, self._mmu_byte(), 25, 0x00, 26, 0x40])
        root = {"compatible": "qemu,pseries", "model": "IBM pSeries (emulated by qemu)"}
        root.update(self.active.root_props())
        tree = {"/": root, "/chosen": chosen, "/" + name: node}
        for device in self.devices:
            if not device.lsi:  # event sources and VIO devices: one MSI-like edge interrupt each
                tree[device.node] = {"interrupts": [device.irq, 0], "qemu,device": device.name}
        return tree

    def intc_node(self) -> tuple[str, dict]:
        """The interrupt-controller node of the current device tree."""
        for path, props in self.fdt.items():
            if path.startswith("/interrupt-controller"):
                return path, props
        raise StateError("no interrupt-controller node")
