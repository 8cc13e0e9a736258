"""QEMU's in-kernel XIVE (hw/intc/spapr_xive_kvm.c): the sPAPR XIVE configured into
KVM_DEV_TYPE_XIVE through its attribute groups, the kernel's ESB and TIMA pages mapped over the
emulated ones, the vCPUs connected, the run-state handler, and the state pulled back.

:class:`XiveKvm` is the KVM side of :class:`~spapr_irq.intc.xive.XiveController`.
"""

from __future__ import annotations

import errno as E

from .. import papr
from ..arch.xive import (EAS_END_DATA_MASK, EAS_END_INDEX_MASK, EAS_END_INDEX_SHIFT, EAS_MASKED,
                         END_W0_QSIZE_MASK, END_W0_QSIZE_SHIFT, END_W0_UCOND_NOTIFY, END_W0_VALID,
                         END_W1_GENERATION, END_W1_PAGE_OFF_MASK, XIVE_ESB_GET,
                         XIVE_ESB_SET_PQ_00, XIVE_ESB_SET_PQ_10, XIVE_STATUS_ASSERTED, end_qaddr)
from ..errors import KvmError, strerror
from ..host.device import Sigbus
from ..host.kvm import Kvm
from ..host.uapi import (KVM_CAP_PPC_IRQ_XIVE, KVM_DEV_TYPE_XIVE, KVM_DEV_XIVE_EQ_SYNC,
                         KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_GRP_EQ_CONFIG, KVM_DEV_XIVE_GRP_SOURCE,
                         KVM_DEV_XIVE_GRP_SOURCE_CONFIG, KVM_DEV_XIVE_NR_SERVERS,
                         KVM_REG_PPC_VP_STATE,
                         KVM_XIVE_ESB_PAGE_OFFSET, KVM_XIVE_LEVEL_ASSERTED, KVM_XIVE_LEVEL_SENSITIVE,
                         KVM_XIVE_TIMA_PAGE_OFFSET)
from ..host.xive_native import KvmPpcXiveEq
from .base import MINUS_ONE, ConnectError, attr_error, has_attr


class XiveKvm:
    """The KVM side of the sPAPR XIVE controller."""

    def connect_kvm(self, kvm: Kvm, nr_servers: int, max_cpus: int) -> None:
        """kvmppc_xive_connect: device, NR_SERVERS, ESB and TIMA mappings, vCPUs, source reset."""
        if self.fd is not None:
            return  # rebooting under the XIVE-only interrupt mode
        self.kvm = kvm
        if not kvm.cap_xive:
            self.kvm = None
            raise ConnectError("IRQ_XIVE capability must be present for KVM")
        try:
            fd = kvm.create_device(KVM_DEV_TYPE_XIVE)
        except KvmError as exc:
            self.kvm = None
            raise ConnectError(f"XIVE: error creating KVM device: {strerror(exc.errno)}") from None
        self.fd = fd
        with self._connecting():
            # QEMU 5.0+ (nr_servers 0: an older QEMU, which leaves KVM's default)
            if nr_servers and has_attr(kvm, fd, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS):
                try:
                    kvm.set_attr(fd, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS, nr_servers)
                except KvmError as exc:
                    raise attr_error(exc, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS) from None
            for pgoff, npages in ((KVM_XIVE_ESB_PAGE_OFFSET, 2 * self.nr_irqs),
                                  (KVM_XIVE_TIMA_PAGE_OFFSET, 4)):
                try:
                    kvm.mmap(fd, pgoff, npages)
                except KvmError as exc:
                    raise ConnectError(
                        f"XIVE: unable to set memory mapping: {strerror(exc.errno)}"
                    ) from None
                self.mappings.append(pgoff)
            self.change_handler = True
            for vcpu_id in sorted(self.tctxs):
                self._connect_vcpu(vcpu_id)
            for lisn in self.state.valid_lisns():
                self._reset_source(lisn)
            kvm.irqchip_in_kernel = True

    def disconnect_kvm(self) -> None:
        """kvmppc_xive_disconnect: unmap, close the fd, forget vCPUs, drop the run-state handler."""
        kvm = self.kvm
        if kvm is None:
            return
        for pgoff in self.mappings:
            kvm.munmap(self.fd, pgoff)
        self.mappings.clear()
        if self.fd is not None:
            kvm.close(self.fd)
            self.fd = None
        kvm.irqchip_in_kernel = False
        self.kvm_presenters.clear()
        self.change_handler = False
        self.kvm = None

    def _connect_vcpu(self, vcpu_id: int) -> None:
        if vcpu_id in self.kvm_presenters:
            return
        try:
            self.kvm.enable_cap(vcpu_id, KVM_CAP_PPC_IRQ_XIVE, self.fd, vcpu_id)
        except KvmError as exc:
            hints = (f"Try -smp maxcpus=N with N < {self.max_cpus}",) if exc.errno == E.ENOSPC else ()
            raise ConnectError(
                f"XIVE: unable to connect CPU{vcpu_id} to KVM device: {strerror(exc.errno)}", hints
            ) from None
        self.kvm_presenters.add(vcpu_id)

    def _reset_source(self, lisn: int) -> None:
        flags = 0
        if lisn in self.state.source.lsi:
            flags |= KVM_XIVE_LEVEL_SENSITIVE
            if self.state.source.status[lisn] & XIVE_STATUS_ASSERTED:
                flags |= KVM_XIVE_LEVEL_ASSERTED
        try:
            self.kvm.set_attr(self.fd, KVM_DEV_XIVE_GRP_SOURCE, lisn, flags)
        except KvmError as exc:
            raise attr_error(exc, KVM_DEV_XIVE_GRP_SOURCE, lisn) from None

    # -- device tree --------------------------------------------------------------------------------------
    # -- the guest interface: H_INT_* (hw/intc/spapr_xive.c) ------------------------------------------------
    # Every handler answers H_FUNCTION until the guest negotiated XIVE at CAS, then checks its flags,
    # LISN, priority and target in QEMU's order. Under KVM the same checks run in QEMU, which then
    # programs the kernel; a KVM failure is reported and answers H_HARDWARE.

    # -- the kernel side (hw/intc/spapr_xive_kvm.c) ----------------------------------------------------
    def _kvm_attr(self, group: int, attr: int, value) -> bool:
        """kvm_device_access for a write; a failure is reported, and True is returned."""
        try:
            self.kvm.set_attr(self.fd, group, attr, value)
        except KvmError as exc:
            self.reports.append(attr_error(exc, group, attr).message)
            return True
        return False

    def _kvm_set_source_config(self, lisn: int, eas: int) -> bool:
        """kvmppc_xive_set_source_config: priority b0-2, server << 3, masked << 32, EISN << 33."""
        end_idx = (eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK
        server, priority = end_idx >> 3, end_idx & 7
        word = (priority & 0x7) | ((server << 3) & 0xFFFFFFF8)
        word |= (1 if eas & EAS_MASKED else 0) << 32
        word |= ((eas & EAS_END_DATA_MASK) << 33) & 0xFFFFFFFE00000000
        return self._kvm_attr(KVM_DEV_XIVE_GRP_SOURCE_CONFIG, lisn, word)

    def _kvm_set_queue_config(self, end_idx: int, end: list[int]) -> bool:
        """kvmppc_xive_set_queue_config: the 64-byte kvm_ppc_xive_eq for (server, priority)."""
        eq = KvmPpcXiveEq()
        eq.flags = 1 if end[0] & END_W0_UCOND_NOTIFY else 0
        if end[0] & END_W0_VALID:  # a disabled queue goes down with size and page 0
            eq.qshift = ((end[0] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 12
            eq.qaddr = end_qaddr(end)
            eq.qtoggle = 1 if end[1] & END_W1_GENERATION else 0
            eq.qindex = end[1] & END_W1_PAGE_OFF_MASK
        return self._kvm_attr(KVM_DEV_XIVE_GRP_EQ_CONFIG, end_idx, eq)

    def _kvm_get_queue_config(self, end_idx: int, end: list[int]) -> bool:
        """kvmppc_xive_get_queue_config: refresh the END's generation and index from KVM."""
        try:
            eq = self.kvm.get_attr(self.fd, KVM_DEV_XIVE_GRP_EQ_CONFIG, end_idx)
        except KvmError as exc:
            # kvm_device_access() text, as error_report_err prints it (KVM_GET_DEVICE_ATTR)
            self.reports.append(attr_error(exc, KVM_DEV_XIVE_GRP_EQ_CONFIG, end_idx,
                                            write=False).message)
            return True
        end[1] = (END_W1_GENERATION if eq.qtoggle else 0) | (eq.qindex & END_W1_PAGE_OFF_MASK)
        return False

    def _kvm_esb(self, srcno: int, trigger_page: bool, offset: int, value, size: int):
        page = 2 * srcno + (0 if trigger_page else 1)
        try:
            answer = self.kvm.xive_esb(self.fd, page, offset, value)
        except Sigbus as exc:
            raise ConnectError(f"QEMU received SIGBUS on the KVM XIVE ESB mapping: {exc}") from None
        return None if answer is None else answer & ((1 << (8 * size)) - 1)

    def _kvm_esb_rw(self, lisn: int, offset: int, data: int, store: bool) -> int:
        """kvmppc_xive_esb_rw: a load at LOAD_EOI on an LSI is SET_PQ_00 plus a re-trigger while
        the level is held; anything else is the access itself on the mapped page."""
        if not store and lisn in self.state.source.lsi and offset == 0x000:
            self._kvm_esb(lisn, False, XIVE_ESB_SET_PQ_00, None, 8)
            if self.state.source.asserted(lisn):
                self._kvm_esb(lisn, True, 0, 0, 8)
            return 0
        # the access lands in the contiguous mapping, maybe past this source's management page
        addr = (lisn << papr.XIVE_ESB_SHIFT) + (1 << (papr.XIVE_ESB_SHIFT - 1)) + offset
        page = addr >> (papr.XIVE_ESB_SHIFT - 1)
        srcno, trigger_page, in_page = page >> 1, not page & 1, addr & 0xFFF
        if store:
            self._kvm_esb(srcno, trigger_page, in_page, data, 8)
            return MINUS_ONE
        return self._kvm_esb(srcno, trigger_page, in_page, None, 8)

    def _kvm_tima(self, vcpu: int, offset: int, value, size: int):
        try:
            return self.kvm.xive_tima(self.fd, vcpu, offset, value, size)
        except Sigbus as exc:
            raise ConnectError(f"QEMU received SIGBUS on the KVM XIVE TIMA mapping: {exc}") from None

    def _kvm_output(self, vcpu: int) -> bool:
        return self.kvm.xive_output(self.fd, vcpu)

    # -- VM run state and migration -------------------------------------------------------------------
    def vm_state_change(self, running: bool) -> None:
        """kvmppc_xive_change_state_handler: on stop, mask every source (PQ=10 unless off) keeping
        the old PQ in QEMU's copy, then EQ_SYNC; on resume, put each PQ back, re-triggering an
        event that was queued while stopped."""
        if not self.in_kernel:
            return
        source = self.state.source
        if running:
            for lisn in self.state.valid_lisns():
                pq = source.pq(lisn)
                old = self._kvm_esb(lisn, False, XIVE_ESB_SET_PQ_00 + (pq << 8), None, 8)
                if pq == 0b00 and old == 0b11:
                    self._kvm_esb(lisn, True, 0, 0, 8)
            return
        for lisn in self.state.valid_lisns():
            pq = self._kvm_esb(lisn, False, XIVE_ESB_GET, None, 8)
            if pq != 0b01:
                pq = self._kvm_esb(lisn, False, XIVE_ESB_SET_PQ_10, None, 8)
            source.set_pq(lisn, pq)
        self._kvm_attr(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_EQ_SYNC, None)

    def synchronize_state(self, running: bool, strict: bool = False) -> None:
        """kvmppc_xive_synchronize_state: refresh QEMU's copy from KVM (before `info pic` or a
        save): the PQs only while running (stopped, QEMU's copy holds the real ones and the
        kernel the masked ones), the queues' generation and index, each vCPU's OS ring. A vCPU
        whose state cannot be read is reported; with `strict` (xive-tctx pre_save, which fails
        the migration) the first one raises ConnectError."""
        if not self.in_kernel:
            return
        if running:
            for lisn in self.state.valid_lisns():
                self.state.source.set_pq(lisn, self._kvm_esb(lisn, False, XIVE_ESB_GET, None, 8))
        for end_idx, end in self.state.endt.items():
            if end[0] & END_W0_VALID:
                self._kvm_get_queue_config(end_idx, end)
        for vcpu, tctx in self.tctxs.items():
            try:
                word = self.kvm.get_one_reg(vcpu, KVM_REG_PPC_VP_STATE)
            except KvmError as exc:
                text = f"XIVE: could not capture KVM state of CPU {vcpu}: {strerror(exc.errno)}"
                self.reports.append(text)
                if strict:
                    raise ConnectError(text) from None
                continue
            tctx.regs[0x10:0x18] = word.to_bytes(8, "big")
