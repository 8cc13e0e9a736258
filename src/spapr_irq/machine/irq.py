"""IRQ numbers: claims on every controller, the MSI allocator of the default PHB, and the IRQs of
QEMU's default pseries devices (hw/ppc/spapr_irq.c spapr_irq_claim/free, spapr_irq_msi_alloc).

:class:`IrqNumbers` is the part of the machine that hands out numbers; it reads the machine's
controllers and mode but decides nothing else.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import papr
from ..cmdline import VIO_MODELS
from ..errors import InputError, MachineError
from ..intc.base import ClaimError, ConnectError


class Device(NamedTuple):
    """A device of the machine with an interrupt: its name, device-tree node, IRQ and trigger."""

    name: str
    node: str
    irq: int
    lsi: bool = False
    option: str | None = None  # the -device option that made it (QEMU prefixes its errors)


VIO_REG_BASE = 0x71000000  # the first VIO address QEMU hands out (spapr_vio.c)
PHB_BUID_BASE = 0x800000020000000  # the default PHB's BUID; a PHB of index N adds N


def vio_reg_to_irq(reg: int) -> int:
    """spapr_vio_reg_to_irq: QEMU's addresses keep their low byte; libvirt's vty addresses
    (0x30000000 + 0x1000 * n) map to 0xf0-0xff, its other ones ((reg >> 12) & 0xff)."""
    if reg >= VIO_REG_BASE:
        index = reg & 0xFF
    elif reg >= 0x30000000:
        index = 0xF0 | ((reg >> 12) & 0xF)
    else:
        index = (reg >> 12) & 0xFF
    return papr.SPAPR_IRQ_VIO | index


def default_devices(config) -> list[Device]:
    """The devices with an interrupt that a pseries machine creates, in QEMU's order: the EPOW
    and hot-plug event sources (hot-plug since pseries-2.8); at machine init the VIO devices (a
    spapr-vty per serial port, the spapr-nvram, the NICs of the default or -nic / -net nic whose
    model is spapr-vlan, a spapr-vscsi per SCSI bus of the drives and the default CD-ROM),
    numbered from 0x71000000 in that order, with the default PHB's four LSIs between the NVRAM
    and the NICs; then the -device VIO devices (at their `reg`, or the next free address) and
    PHBs (four LSIs at 0x1200 + 4 * index). `irq` is the fixed number of QEMU 3.1 and later;
    legacy machines allocate instead. Two devices at one address are QEMU's refusal."""
    nics = ["spapr-vlan"] if config.nic else []
    nics += [model for model in config.nic_models if model == "spapr-vlan"]
    early = ["spapr-vty"] * config.serial + ["spapr-nvram"]
    late = nics + ["spapr-vscsi"] * config.scsi_buses
    names = dict(VIO_MODELS, **{"spapr-nvram": "nvram"})
    regs: dict[int, str] = {}
    next_reg = VIO_REG_BASE

    def vio(model: str, reg: int | None, option: str | None = None) -> Device:
        nonlocal next_reg
        if reg is None:
            while next_reg in regs:
                next_reg += 1
            reg, next_reg = next_reg, next_reg + 1
        elif reg in regs:
            raise MachineError(f"{option + ': ' if option else ''}{model} and {regs[reg]} "
                               f"devices conflict at address {reg:#x}")
        regs[reg] = model
        return Device(f"VIO {model}", f"/vdevice/{names[model]}@{reg:x}", vio_reg_to_irq(reg),
                      option=option)

    def phb(index: int, option: str | None = None) -> list[Device]:
        node = f"/pci@{PHB_BUID_BASE + index:x}"
        prefix = "PHB" if index == 0 else f"PHB{index}"
        return [Device(f"{prefix} LSI {'ABCD'[pin]}", node,
                       papr.SPAPR_IRQ_PCI_LSI + index * 4 + pin, lsi=True, option=option)
                for pin in range(4)]

    devices = [Device("EPOW", "/event-sources/epow-events", papr.SPAPR_IRQ_EPOW)]
    if config.version >= (2, 8):
        devices.append(Device("HOTPLUG", "/event-sources/hot-plug-events", papr.SPAPR_IRQ_HOTPLUG))
    devices += [vio(model, None) for model in early] + phb(0)
    devices += [vio(model, None) for model in late]
    for model, arg, option in config.devices:
        devices += phb(arg, option) if model == "spapr-pci-host-bridge" else [vio(model, arg,
                                                                                   option)]
    return devices


class MsiAllocator:
    """The sPAPR MSI bitmap: SPAPR_NR_MSIS numbers from SPAPR_IRQ_MSI (spapr_irq_msi_alloc)."""

    def __init__(self) -> None:
        self.used = bytearray(papr.SPAPR_NR_MSIS)

    def alloc(self, num: int, align: bool) -> int:
        """QEMU's quirk, kept: align=True searches with mask 0 (no alignment), False with mask 1."""
        if num < 1:
            raise MachineError(f"can't find a free {num}-IRQ block")
        mask = 0 if align else 1
        index = 0
        while index + num <= len(self.used):
            if index & mask:
                index += 1
                continue
            busy = next((i for i in range(index, index + num) if self.used[i]), None)
            if busy is None:
                self.used[index:index + num] = b"\x01" * num
                return papr.SPAPR_IRQ_MSI + index
            index = busy + 1
        raise MachineError(f"can't find a free {num}-IRQ block")

    def free(self, irq: int, num: int) -> None:
        start = irq - papr.SPAPR_IRQ_MSI
        self.used[start:start + num] = bytes(num)

    def empty(self) -> bool:
        return not any(self.used)


class IrqNumbers:
    """Claiming and freeing IRQ numbers on every controller (part of the Machine)."""

    def _claim_default_irqs(self) -> None:
        """The IRQs of the machine's own devices, in the order QEMU creates them
        (:func:`default_devices`): fixed numbers, or first fit from 0x1000 on legacy machines."""
        claimed = []
        self.devices = []
        for device in default_devices(self.config):
            irq = self._legacy_find() if self.mode == "legacy" else device.irq
            try:
                self._claim(irq, device.lsi)
            except ClaimError as exc:  # a -device's realize fails with its option as prefix
                if device.option is None:
                    raise
                prefix = "can't allocate LSIs: " if device.lsi else ""
                raise MachineError(f"{device.option}: {prefix}{exc.message}") from None
            self.irq_owners[irq] = device.name
            self.devices.append(device._replace(irq=irq))
            claimed.append(f"{device.name} {irq:#x}")
        self._step("devices", "claimed " + ", ".join(claimed))

    def _legacy_find(self, num: int = 1, align: bool = False) -> int:
        """spapr_irq_find on legacy machines: the first free block from source 0, aligned to its
        size when asked (MSI vectors: 1, 2, 4, 8, 16 or 32 of them)."""
        if align and num not in (1, 2, 4, 8, 16, 32):
            raise MachineError(f"an aligned block is 1, 2, 4, 8, 16 or 32 IRQs, not {num} "
                               "(QEMU asserts it)", stage="claim")
        ics = self.xics.ics
        step = num if align else 1
        for first in range(0, ics.nr_irqs, step):
            if num > ics.nr_irqs - first:
                break
            if all(ics.is_free(ics.offset + n) for n in range(first, first + num)):
                return ics.offset + first
        raise MachineError(f"can't find a free {num}-IRQ block", stage="claim")

    # ====================================================================================================
    # IRQ numbers
    # ====================================================================================================
    def _kernel_irqchip(self) -> bool:
        """QEMU's global kvm_irqchip_in_kernel(): some controller runs in KVM."""
        return self.kvm is not None and self.kvm.irqchip_in_kernel

    def _claim(self, irq: int, lsi: bool) -> None:
        """spapr_irq_claim: the ICS, then the XIVE, stopping at the first failure with nothing
        undone (QEMU does not roll a partial claim back)."""
        for intc in self._controllers():
            report = intc.claim(irq, lsi, self._kernel_irqchip())
            if report:
                self.reports.append(report)
                self._step("error-report", report)

    def claim_irq(self, irq: int, lsi: bool = False) -> None:
        """Claim an external IRQ number (0x1000-0x1fff) as MSI or LSI in every controller, as a
        device does when it is realized; a failure is the device's, the machine runs on. An
        incoming machine realizes its devices before the stream arrives: it may claim too."""
        if self.runstate != "inmigrate":
            self._require_running("claim an IRQ")
        self._check_xirq(irq)
        try:
            self._claim(irq, lsi)
        except (ClaimError, ConnectError) as exc:
            raise MachineError(exc.message, exc.hints, stage="claim") from None
        self.irq_owners[irq] = "claim_irq"

    def free_irq(self, irq: int, num: int = 1) -> None:
        """spapr_irq_free: release `num` numbers from `irq` in every controller."""
        self._require_running("free an IRQ")
        for n in range(irq, irq + num):
            self._check_xirq(n)
        for n in range(irq, irq + num):
            for intc in self._controllers():
                intc.free(n)
            self.irq_owners.pop(n, None)

    def _check_xirq(self, irq: int) -> None:
        if not isinstance(irq, int) or isinstance(irq, bool):
            raise TypeError("an IRQ number is an int")
        last = papr.SPAPR_XIRQ_BASE + (papr.ICS_NR_IRQS_LEGACY if self.mode == "legacy"
                                       else papr.SPAPR_NR_XIRQS)
        if not papr.SPAPR_XIRQ_BASE <= irq < last:
            raise MachineError(f"IRQ {irq:#x} is outside the external range "
                               f"{papr.SPAPR_XIRQ_BASE:#x}..{last - 1:#x}", stage="claim")

    def irq_claimed(self, irq: int) -> dict[str, bool]:
        """Whether each controller has `irq` claimed (they must agree)."""
        return {intc.name: intc.is_claimed(irq) for intc in self._controllers()}

    def msi_alloc(self, num: int, align: bool = False, config_addr: int = 0) -> int:
        """The default PHB's ibm,change-msi for the device at `config_addr`: a block of `num`
        numbers (the MSI bitmap, or first fit on legacy machines), each claimed. If a claim fails, the numbers claimed before it
        and the bitmap block are freed and the half-claimed number is left as it is, as QEMU
        does; the failure is reported (rtas_ibm_change_msi answers RTAS_OUT_HW_ERROR)."""
        self._require_running("allocate MSIs")
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise MachineError(f"can't find a free {num}-IRQ block", stage="claim")
        legacy = self.mode == "legacy"
        irq = self._legacy_find(num, align) if legacy else self.msi.alloc(num, align)
        for i in range(num):
            try:
                self._claim(irq + i, False)
            except (ClaimError, ConnectError) as exc:
                for n in range(irq, irq + i):
                    for intc in self._controllers():
                        intc.free(n)
                if not legacy:
                    self.msi.free(irq, num)
                text = f"Can't allocate MSIs for device {config_addr:x}: {exc.message}"
                self.reports.append(text)
                self._step("error-report", text)
                raise MachineError(exc.message, exc.hints, stage="claim") from None
        self.msi_blocks[irq] = num
        for n in range(irq, irq + num):
            self.irq_owners[n] = f"MSI block {irq:#x}"
        return irq

    def msi_free(self, irq: int) -> None:
        self._require_running("free MSIs")
        if not isinstance(irq, int) or isinstance(irq, bool):
            raise InputError(f"an MSI block is named by its first IRQ number, not {irq!r}")
        if irq not in self.msi_blocks:
            raise MachineError(f"no MSI block starts at {irq:#x}", stage="claim")
        self._free_msi_block(irq, self.msi_blocks[irq])

    def _free_msi_block(self, irq: int, num: int) -> None:
        for n in range(irq, irq + num):
            for intc in self._controllers():
                intc.free(n)
            self.irq_owners.pop(n, None)
        if self.mode != "legacy":
            self.msi.free(irq, num)
        del self.msi_blocks[irq]
