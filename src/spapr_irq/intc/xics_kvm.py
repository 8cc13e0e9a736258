"""QEMU's in-kernel XICS (hw/intc/xics_kvm.c): the ICS and ICPs pushed into KVM_DEV_TYPE_XICS,
the kernel RTAS tokens, the presenters attached to the vCPUs, and the state pulled back.

:class:`XicsKvm` is the KVM side of :class:`~spapr_irq.intc.xics.XicsController`; it reads and writes
the controller's ICS and ICPs as QEMU's functions read and write the ICSState and ICPState.
"""

from __future__ import annotations

import errno as E

from .. import papr
from ..arch.xics import (ICP, XICS_STATUS_ASSERTED, XICS_STATUS_MASKED_PENDING,
                         XICS_STATUS_PRESENTED, XICS_STATUS_QUEUED, XICS_STATUS_REJECTED, IcsIrq)
from ..errors import KvmError, strerror
from ..host.kvm import Kvm
from ..host.uapi import (KVM_CAP_IRQ_XICS, KVM_DEV_TYPE_XICS, KVM_DEV_XICS_GRP_CTRL,
                         KVM_DEV_XICS_GRP_SOURCES, KVM_DEV_XICS_NR_SERVERS, KVM_INTERRUPT_SET,
                         KVM_INTERRUPT_SET_LEVEL, KVM_INTERRUPT_UNSET, KVM_REG_PPC_ICP_STATE,
                         IcpStateWord, XicsSourceWord)
from .base import ConnectError, attr_error, check_extension, has_attr


class XicsKvm:
    """The KVM side of the sPAPR XICS controller."""

    #: Order in which QEMU defines the kernel RTAS tokens.
    KERNEL_TOKEN_ORDER = ("ibm,set-xive", "ibm,get-xive", "ibm,int-on", "ibm,int-off")

    def connect_kvm(self, kvm: Kvm, nr_servers: int, max_cpus: int) -> None:
        """xics_kvm_connect: RTAS tokens, device, NR_SERVERS, vCPUs, then push sources and ICPs."""
        if self.fd is not None:
            return  # rebooting under the XICS-only interrupt mode
        if not check_extension(kvm, KVM_CAP_IRQ_XICS):
            raise ConnectError("KVM and IRQ_XICS capability must be present for in-kernel XICS")
        self.kvm = kvm
        with self._connecting():
            for name in self.KERNEL_TOKEN_ORDER:
                try:
                    kvm.define_rtas_token(name, papr.RTAS_TOKENS[name])
                except KvmError as exc:
                    raise ConnectError(
                        f"kvmppc_define_rtas_kernel_token: {name}: {strerror(exc.errno)}"
                    ) from None
            try:
                fd = kvm.create_device(KVM_DEV_TYPE_XICS)
            except KvmError as exc:
                raise ConnectError(
                    f"Error on KVM_CREATE_DEVICE for XICS: {strerror(exc.errno)}"
                ) from None
            # QEMU 5.0+ (nr_servers 0: an older QEMU, which leaves KVM's default)
            if nr_servers and has_attr(kvm, fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS):
                try:
                    kvm.set_attr(fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS, nr_servers)
                except KvmError as exc:
                    # QEMU (7.2 and later) keeps the new fd only after this step, so its
                    # rollback cannot close it: the device leaks, open, with its kvm->arch slot.
                    raise attr_error(exc, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS) from None
            self.fd = fd
            kvm.irqchip_in_kernel = True
            for vcpu_id in sorted(self.icps):
                self._connect_icp(vcpu_id)
            for irq in self.ics.allocated():
                self._push_source(irq)
            for vcpu_id in sorted(self.icps):
                self._push_icp(vcpu_id)

    def disconnect_kvm(self) -> None:
        """xics_kvm_disconnect: close the fd (if QEMU kept it), undefine the four kernel RTAS
        tokens, clear the irqchip globals, forget which ICPs were connected."""
        kvm = self.kvm
        if kvm is None:
            return
        if self.fd is not None:
            kvm.close(self.fd)
            self.fd = None
        for name in self.KERNEL_TOKEN_ORDER:
            kvm.define_rtas_token(name, 0)  # cannot fail; an undefined name is no error
        kvm.irqchip_in_kernel = False
        self.kvm_presenters.clear()
        self.kvm = None

    def _connect_icp(self, vcpu_id: int) -> None:
        if vcpu_id in self.kvm_presenters:
            return
        try:
            self.kvm.enable_cap(vcpu_id, KVM_CAP_IRQ_XICS, self.fd, vcpu_id)
        except KvmError as exc:
            hints = (f"Try -smp maxcpus=N with N < {self.max_cpus}",) if exc.errno == E.ENOSPC else ()
            raise ConnectError(
                f"Unable to connect CPU{vcpu_id} to kernel XICS: {strerror(exc.errno)}", hints
            ) from None
        self.kvm_presenters.add(vcpu_id)

    def _push_source(self, irq: int) -> None:
        try:
            self.kvm.set_attr(self.fd, KVM_DEV_XICS_GRP_SOURCES, irq,
                              ics_kvm_state(self.ics.source(irq)))
        except KvmError as exc:
            raise attr_error(exc, KVM_DEV_XICS_GRP_SOURCES, irq) from None

    def _push_icp(self, vcpu_id: int) -> None:
        state = icp_kvm_state(self.icps[vcpu_id])
        try:
            self.kvm.set_one_reg(vcpu_id, KVM_REG_PPC_ICP_STATE, state)
        except KvmError as exc:
            raise ConnectError(
                f"Unable to restore KVM interrupt controller state ({state:#x}) for CPU {vcpu_id}: "
                f"{strerror(exc.errno)}"
            ) from None

    # -- device tree --------------------------------------------------------------------------------------
    # -- the guest interface, emulated (hw/intc/xics_spapr.c) ---------------------------------------------
    # Each handler gets the GuestContext the machine builds for the call, the calling vCPU and the
    # argument registers r4.. (always nine, unset ones 0). Returns (rc, *return registers).

    # -- state: QEMU's copy and the kernel's ------------------------------------------------------------
    def synchronize_state(self) -> None:
        """ics_get_kvm_state / icp_get_kvm_state: pull the kernel's state into QEMU's copy."""
        if not self.in_kernel:
            return
        for irq in self.ics.allocated():
            word = XicsSourceWord.unpack(self.kvm.get_attr(self.fd, KVM_DEV_XICS_GRP_SOURCES, irq))
            source = self.ics.source(irq)
            source.server = word.server
            source.saved_priority = word.priority
            source.priority = 0xFF if word.masked else word.priority
            source.status = 0
            if word.pending:
                if word.lsi:
                    source.status |= XICS_STATUS_ASSERTED
                else:  # a pending edge must have been rejected before: remember it both ways
                    source.status |= XICS_STATUS_MASKED_PENDING | XICS_STATUS_REJECTED
            if word.presented:
                source.status |= XICS_STATUS_PRESENTED
            if word.queued:
                source.status |= XICS_STATUS_QUEUED
        for vcpu_id, icp in self.icps.items():
            state = IcpStateWord.unpack(self.kvm.get_one_reg(vcpu_id, KVM_REG_PPC_ICP_STATE))
            icp.xirr = state.cppr << 24 | state.xisr
            icp.mfrr = state.mfrr
            icp.pending_priority = state.ppri

    def _kvm_set_irq(self, irq: int, level: int) -> None:
        """ics_kvm_set_irq: KVM_IRQ_LINE (MSI: only a non-zero value, as KVM_INTERRUPT_SET;
        LSI: SET_LEVEL or UNSET)."""
        source = self.ics.source(irq)
        if source.lsi:
            line = KVM_INTERRUPT_SET_LEVEL if level else KVM_INTERRUPT_UNSET
        elif level:
            line = KVM_INTERRUPT_SET
        else:
            return
        try:
            self.kvm.irq_line(irq, line)
        except KvmError as exc:
            raise ConnectError(f"kvm_irq_line: {strerror(exc.errno)}") from None


def ics_kvm_state(source: IcsIrq) -> int:
    """The KVM_DEV_XICS_GRP_SOURCES word for a source (ics_set_kvm_state_one): the saved priority,
    MASKED when the live priority is 0xff, PENDING for an asserted LSI or a masked-pending MSI."""
    status = source.status
    pending = status & (XICS_STATUS_ASSERTED if source.lsi else XICS_STATUS_MASKED_PENDING)
    return XicsSourceWord(source.server, source.saved_priority, lsi=source.lsi,
                          masked=source.priority == 0xFF, pending=bool(pending),
                          presented=bool(status & XICS_STATUS_PRESENTED),
                          queued=bool(status & XICS_STATUS_QUEUED)).pack()


def icp_kvm_state(icp: ICP) -> int:
    """The KVM_REG_PPC_ICP_STATE word: CPPR<<56 | XISR<<32 | MFRR<<24 | PPRI<<16."""
    return IcpStateWord(icp.cppr, icp.xisr, icp.mfrr, icp.pending_priority).pack()
