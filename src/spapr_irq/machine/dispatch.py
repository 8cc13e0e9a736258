"""What the guest reaches: hypercalls, RTAS calls and MMIO dispatched to the controllers, device
lines into the active one, and each vCPU's external-interrupt line.

:class:`GuestInterface` is the part of the machine the guest talks to (hw/ppc/spapr_hcall.c's table,
spapr_rtas.c's, the XIVE MMIO regions); the in-kernel XICS answers its own hcalls and RTAS calls
first, as KVM does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import papr
from ..errors import KvmError, MachineError, StateError, strerror
from ..intc.base import ConnectError, GuestContext, InterruptController

_REG_LIMIT = 1 << 64
_MMIO_SIZES = frozenset((1, 2, 4, 8))
_TIMA_SIZE = 4 * papr.XIVE_TM_PAGE_SIZE
_ADDR_LIMIT = 1 << 64


@dataclass
class Registration:
    name: str
    number: int
    owner: InterruptController


class DispatchTable:
    """hcalls or RTAS calls by number; a second registration of a number is a bug and refused."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.entries: dict[int, Registration] = {}

    def register(self, name: str, number: int, owner: InterruptController) -> None:
        if number in self.entries:
            raise MachineError(f"{self.kind} {name} ({number:#x}) registered twice")
        self.entries[number] = Registration(name, number, owner)

    def lookup(self, number: int) -> Registration | None:
        return self.entries.get(number)

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries.values()]


class GuestInterface:
    """hcalls, RTAS, MMIO, device lines and interrupt lines (part of the Machine)."""

    # ====================================================================================================
    # Guest-facing calls
    # ====================================================================================================
    def _check_vcpu(self, vcpu: int) -> None:
        if vcpu not in self._vcpu_set:
            raise MachineError(f"no vCPU {vcpu}", stage="hcall")

    def _context(self) -> GuestContext:
        cas = self.ov5_cas
        xive = len(cas) >= papr.OV5_INTC_BYTE and bool(cas[papr.OV5_INTC_BYTE - 1]
                                                       & papr.OV5_XIVE_EXPLOIT)
        in_kernel = self.kvm is not None and self.kvm.irqchip_in_kernel
        self._clock += 1
        return GuestContext(not xive and not in_kernel, xive, self._clock)

    @staticmethod
    def _registers(args: tuple, count: int, what: str) -> list[int]:
        """Guest registers: 64-bit values (negative ones as two's complement), unset ones 0."""
        if len(args) <= count and all(type(v) is int and 0 <= v < _REG_LIMIT for v in args):
            return list(args)
        if len(args) > count:
            raise MachineError(f"{what} takes at most {count} arguments, got {len(args)}",
                               stage="hcall")
        values = []
        for value in args:
            if not isinstance(value, int) or isinstance(value, bool):
                raise MachineError(f"{what} arguments are integers, got {value!r}", stage="hcall")
            if not -(1 << 63) <= value < (1 << 64):
                raise MachineError(f"{what} argument {value:#x} does not fit a 64-bit register",
                                   stage="hcall")
            values.append(value & ((1 << 64) - 1))
        return values

    def hcall(self, vcpu: int, call: str | int, *args: int) -> tuple[int, ...]:
        """A hypercall from `vcpu`, by name or number, with up to nine argument registers
        (r4-r12). Returns (rc, *return registers). The in-kernel XICS answers its own hcalls."""
        self._require_running("make an hcall")
        self._check_vcpu(vcpu)
        number = papr.HCALLS.get(call) if isinstance(call, str) else call
        if number is None:
            raise MachineError(f"unknown hcall name {call!r}", stage="hcall")
        registers = self._registers(args, 9, "an hcall")
        registers += [0] * (9 - len(registers))
        kvm = self.kvm
        if kvm is not None and kvm.irqchip_in_kernel:
            name = papr.HCALL_NAMES.get(number)
            if name in papr.XICS_HCALLS:
                answer = kvm.hcall(vcpu, name, registers)
                if answer is not None:
                    return answer
        handler = self._handlers.get(number)
        if handler is None:
            entry = self.hcalls.lookup(number)
            handler = entry.owner.hcall_handler(entry.name) if entry else None
            if handler is None:
                return (papr.H_FUNCTION,)
            self._handlers[number] = handler
        try:
            return handler(self._context(), vcpu, registers)
        except ConnectError as exc:  # H_INT_ESB on a kernel ESB page that SIGBUSes QEMU
            raise self._sigbus(exc, "hcall") from None

    def rtas(self, vcpu: int, call: str | int, *args: int, nret: int | None = None
             ) -> tuple[int, ...]:
        """An RTAS call from `vcpu` by name or token with its nargs arguments and nret return
        words (by default the call's own: 3 for ibm,get-xive, 1 for the others). Returns
        (status, *rets). Tokens defined in KVM are served by the kernel."""
        self._require_running("call RTAS")
        self._check_vcpu(vcpu)
        token = papr.RTAS_TOKENS.get(call) if isinstance(call, str) else call
        if token is None:
            raise MachineError(f"unknown RTAS call name {call!r}", stage="rtas")
        if nret is None:
            nret = papr.RTAS_NRET.get(papr.RTAS_NAMES.get(token, ""), 1)
        if not isinstance(nret, int) or not 0 <= nret <= 16:
            raise MachineError(f"nret must be 0 to 16, got {nret!r}", stage="rtas")
        words = [value & 0xFFFFFFFF for value in self._registers(args, 16, "an RTAS call")]
        if self.kvm is not None:
            try:
                answer = self.kvm.rtas(token, words, nret)
            except KvmError as exc:  # H_RTAS with 16 or more arguments fails KVM_RUN
                raise self._internal_error(f"error: kvm run failed {strerror(exc.errno)}",
                                           "rtas") from None
            if answer is not None:
                return answer
        entry = self.rtas_calls.lookup(token)
        handler = entry.owner.rtas_handler(entry.name) if entry else None
        if handler is None:
            return (papr.RTAS_OUT_PARAM_ERROR,)
        return handler(self._context(), vcpu, words, nret)

    def _check_mmio(self, vcpu: int, addr: int, size: int) -> None:
        if self.runstate != "running":
            raise StateError(f"cannot access MMIO: the machine is {self.runstate}")
        self._check_vcpu(vcpu)
        if size not in _MMIO_SIZES:
            raise MachineError(f"MMIO access size {size} is not 1, 2, 4 or 8", stage="mmio")
        if not isinstance(addr, int) or not 0 <= addr < (1 << 64):
            raise MachineError(f"MMIO address {addr!r} is not a 64-bit address", stage="mmio")

    def mmio_read(self, vcpu: int, addr: int, size: int) -> int:
        """A load from `vcpu`: the XIVE ESB pages and TIMA when XIVE is active. Unassigned
        addresses read 0 (QEMU 7.2 has no transaction-failed hook for ppc; 8.1 raises a machine
        check on POWER9 and POWER10)."""
        if not (self.runstate == "running" and vcpu in self._vcpu_set and size in _MMIO_SIZES
                and type(addr) is int and 0 <= addr < _ADDR_LIMIT):
            self._check_mmio(vcpu, addr, size)
        xive = self.xive
        if xive is not None and xive.mmio_enabled:
            try:
                offset = addr - xive.vc_base
                if 0 <= offset < xive.nr_irqs << papr.XIVE_ESB_SHIFT:
                    return xive.esb_read(offset, size)
                offset = addr - xive.tm_base
                if 0 <= offset < _TIMA_SIZE:
                    return xive.tima_read(vcpu, offset, size)
            except ConnectError as exc:
                raise self._sigbus(exc, "mmio") from None
        return 0

    def mmio_write(self, vcpu: int, addr: int, size: int, value: int) -> None:
        """A store from `vcpu`; unassigned addresses ignore it."""
        if not (self.runstate == "running" and vcpu in self._vcpu_set and size in _MMIO_SIZES
                and type(addr) is int and 0 <= addr < _ADDR_LIMIT):
            self._check_mmio(vcpu, addr, size)
        xive = self.xive
        if xive is not None and xive.mmio_enabled:
            value &= (1 << (8 * size)) - 1
            try:
                offset = addr - xive.vc_base
                if 0 <= offset < xive.nr_irqs << papr.XIVE_ESB_SHIFT:
                    xive.esb_write(offset, value, size)
                    return
                offset = addr - xive.tm_base
                if 0 <= offset < _TIMA_SIZE:
                    xive.tima_write(vcpu, offset, value, size)
            except ConnectError as exc:
                raise self._sigbus(exc, "mmio") from None

    def _sigbus(self, exc: ConnectError, stage: str) -> MachineError:
        """In-kernel XIVE pages the kernel does not map (TIMA HW/HV/user pages, ESB pages of
        sources it does not know) SIGBUS QEMU: a fatal stop that leaves nothing in KVM."""
        error = MachineError(exc.message, exc.hints, stage)
        self._fatal(error)
        return error

    def set_irq(self, irq: int, level: int) -> None:
        """A device line into the active controller: an MSI fires on a non-zero level, an LSI
        follows it (spapr_qirq -> the active controller's set_irq)."""
        if self.runstate not in ("running", "paused"):
            raise StateError(f"cannot raise an IRQ: the machine is {self.runstate}")
        active = self.active
        if not (active is not None and type(irq) is int and active.is_claimed(irq)) and (
                not isinstance(irq, int) or not any(intc.is_claimed(irq) for intc in self._controllers())):
            raise MachineError(f"IRQ {irq!r} is not claimed", stage="irq")
        try:
            self.active.set_irq(irq, level)
        except ConnectError as exc:
            self.reports.append(exc.text)
            self._step("error-report", exc.text)

    def irq_pending(self, vcpu: int) -> bool:
        """The vCPU's external-interrupt line as its presenter in the active controller drives it
        (the kernel's ICP when XICS runs in KVM)."""
        self._check_vcpu(vcpu)
        if self.active is self.xics and self.xics is not None:
            if self.xics.in_kernel:
                return self.kvm.xics_output(vcpu)
            return self.xics.icps[vcpu].output
        if self.active is self.xive and self.xive is not None:
            return self.xive.output(vcpu)
        return False
