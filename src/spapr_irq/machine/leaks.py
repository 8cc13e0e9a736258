"""The leak census (guarantee G3): what the machine or the host kernel holds that no owner
accounts for, by kind, after any transition.

:class:`LeakCensus` is the part of :class:`~spapr_irq.machine.machine.Machine` that counts; it
reads the machine, its controllers and the modeled KVM and changes nothing.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import papr


class Leak(NamedTuple):
    """Something a transition left behind: its kind and what it is."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return self.detail


class LeakCensus:
    """The machine's leaks(): each kind its own check."""

    def leaks(self) -> list[Leak]:
        """What the machine holds that no owner accounts for (G3), by kind: ``kvm-fd`` (a device
        fd of an inactive controller, or one no controller owns), ``mapping`` (ESB/TIMA pages or
        XIVE MMIO of a controller that is not the active in-kernel XIVE), ``rtas-token`` (kernel
        RTAS tokens without the in-kernel XICS), ``registration`` (an hcall or RTAS call not
        registered exactly once, to its controller), ``vcpu`` (a presenter connected where no
        active controller owns it), ``irq`` (a number claimed with no owner, or claimed in one
        controller and not the other), ``irqchip`` (QEMU's kernel-irqchip flag disagreeing)."""
        leaks: list[Leak] = []
        intcs = self._controllers()
        for intc in intcs:
            if intc is not self.active and intc.in_kernel:
                leaks.append(Leak("kvm-fd", f"inactive {intc.label} still has KVM fd {intc.fd}"))
        xive = self.xive
        if xive is not None and xive.mmio_enabled and self.active is not xive:
            leaks.append(Leak("mapping", "inactive XIVE still has its MMIO regions enabled"))
        if self.runstate != "shutdown":  # once QEMU has exited only the kernel's side counts
            self._registration_leaks(leaks)
            self._irq_leaks(leaks)
        if self.kvm is not None:
            self._kvm_leaks(leaks)
        return leaks

    def _registration_leaks(self, leaks: list[Leak]) -> None:
        for table, attribute, numbers in ((self.hcalls, "hcalls", papr.HCALLS),
                                          (self.rtas_calls, "rtas_calls", papr.RTAS_TOKENS)):
            wanted = {numbers[name]: (name, intc) for intc in self._controllers()
                      for name in getattr(intc, attribute)}
            for number, entry in table.entries.items():
                if wanted.get(number, (None, None))[1] is not entry.owner:
                    leaks.append(Leak("registration", f"{table.kind} {entry.name} is registered "
                                      f"to a controller that does not serve it"))
            for number, (name, intc) in wanted.items():
                if number not in table.entries:
                    leaks.append(Leak("registration", f"{table.kind} {name} of {intc.label} "
                                      "is not registered"))

    def _irq_leaks(self, leaks: list[Leak]) -> None:
        intcs = self._controllers()
        last = papr.SPAPR_XIRQ_BASE + (papr.ICS_NR_IRQS_LEGACY if self.mode == "legacy"
                                       else papr.SPAPR_NR_XIRQS)
        claimed: set[int] = set()
        for intc in intcs:
            claimed.update(n for n in intc.claimed_irqs() if n >= papr.SPAPR_XIRQ_BASE)
        for irq in sorted(claimed):
            where = [intc.label for intc in intcs if intc.is_claimed(irq)]
            if irq not in self.irq_owners:
                leaks.append(Leak("irq", f"IRQ {irq:#x} claimed in {' and '.join(where)} with "
                                  "no device owning it"))
            elif len(where) != len(intcs):
                leaks.append(Leak("irq", f"IRQ {irq:#x} claimed in {where[0]} only"))
        for irq, owner in sorted(self.irq_owners.items()):
            if irq < last and irq not in claimed and irq >= papr.SPAPR_XIRQ_BASE:
                leaks.append(Leak("irq", f"IRQ {irq:#x} of {owner} is not claimed"))
        if self.mode != "legacy":
            blocks = {n for first, num in self.msi_blocks.items() for n in range(first, first + num)}
            for index, used in enumerate(self.msi.used):
                if used and papr.SPAPR_IRQ_MSI + index not in blocks:
                    leaks.append(Leak("irq", f"MSI {papr.SPAPR_IRQ_MSI + index:#x} allocated in "
                                      "the bitmap with no device owning it"))

    def _kvm_leaks(self, leaks: list[Leak]) -> None:
        kvm = self.kvm
        owners = {intc.fd: intc for intc in self._controllers() if intc.fd is not None}
        for fd in kvm.fds:
            if fd not in owners:
                leaks.append(Leak("kvm-fd", f"KVM device fd {fd} open with no controller owning it"))
        xive = self.xive
        for fd, pgoff in kvm.mappings:
            if xive is None or fd != xive.fd or pgoff not in xive.mappings:
                leaks.append(Leak("mapping", f"KVM mapping of fd {fd} at page offset {pgoff} "
                                  "with no controller owning it"))
        xics_kernel = self.xics is not None and self.xics.in_kernel
        tokens = kvm.rtas_tokens
        expected = {papr.RTAS_TOKENS[name]: name for name in self.xics.KERNEL_TOKEN_ORDER} \
            if xics_kernel else {}
        if tokens != expected:
            extra = sorted(f"{name} ({token:#x})" for token, name in tokens.items()
                           if expected.get(token) != name)
            if extra or not xics_kernel:
                leaks.append(Leak("rtas-token", "RTAS kernel tokens defined without the in-kernel "
                                  f"XICS serving them: {', '.join(extra)}"))
        for vcpu_id, vcpu in sorted(kvm.vcpus.items()):
            device = vcpu.device
            if device is None or device.fd not in kvm.fds:
                continue  # detached, or attached to a device QEMU closed (the kernel keeps it)
            owner = owners.get(device.fd)
            if owner is None or owner is not self.active:
                leaks.append(Leak("vcpu", f"vCPU {vcpu_id} is connected to KVM device fd "
                                  f"{device.fd}, which the active controller does not own"))
        for intc in self._controllers():
            if not intc.in_kernel and intc.kvm_presenters:
                leaks.append(Leak("vcpu", f"{intc.label} still counts vCPUs "
                                  f"{sorted(intc.kvm_presenters)} as connected to KVM"))
        in_kernel = any(intc.in_kernel for intc in self._controllers())
        if kvm.irqchip_in_kernel != in_kernel:
            leaks.append(Leak("irqchip", "kvm_kernel_irqchip disagrees with the controllers"))
