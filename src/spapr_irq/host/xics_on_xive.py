"""XICS-on-XIVE as Linux KVM implements it (arch/powerpc/kvm/book3s_xive.c and its template): the
``kvm-xive`` device behind KVM_DEV_TYPE_XICS on POWER9 and POWER10 PowerNV hosts.

The guest sees XICS (H_XIRR, H_CPPR, H_EOI, H_IPI, ibm,set-xive, ...), but nothing of a software
ICP exists: every guest source is backed by a hardware XIVE IPI whose PQ bits do the masking, each
vCPU is a XIVE virtual processor with one event queue per priority in host memory, the MFRR is
software state signalled by a per-vCPU hardware IPI routed to priority 0, and H_XIRR scans the
queues, most favoured first. So the rules differ from book3s_xics.c (spec/linux.md A.3, and the
kernel source this follows):

- guest priorities and CPPRs 7..0xfe become 6 (``xive_prio_from_guest``), and 6 is reported back;
- a source set with an unknown server is accepted and left untargeted (the error is swallowed);
- ibm,int-on of a source never targeted fails (RTAS -3); ibm,set-xive at 0xff masks, and
  retargets (failing -3 for an unknown server) only a source already targeted;
- the ICP state read gives XISR 0 and PPRI 0xff; the ICP state write is not validated;
- H_EOI(0) succeeds; H_EOI of a number in no source block answers H_PARAMETER after its CPPR
  update; H_IPOLL writes only r4 (of the polled vCPU's own registers, for another server);
- an interrupt already in a queue when its source is masked is still delivered.

The queues and thread contexts are the XIVE hardware of :mod:`spapr_irq.arch.xive`.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass

from ..arch.xive import (EAS_END_DATA_MASK, EAS_END_INDEX_SHIFT, EAS_MASKED, EAS_VALID,
                         END_W0_ENQUEUE, END_W0_QSIZE_SHIFT, END_W0_UCOND_NOTIFY, END_W0_VALID,
                         END_W1_GENERATION, END_W7_F0_PRIORITY_SHIFT, TM_CPPR, TM_QW1_OS, XIVE_ESB_OFF,
                         XIVE_ESB_SET_PQ_00, XIVE_ESB_SET_PQ_10, XIVE_ESB_SET_PQ_11, XiveRouter,
                         XiveTCTX, nvt_cam_line)
from ..memory import GuestMemory
from .device import DeviceErrno, KvmDevice, KvmVcpu, XiveVps, prio_from_guest
from .xics_on_xive_hcalls import (KVMPPC_XIVE_Q_COUNT, MASKED, Q_SHIFT, XICS_IPI, Queue,
                                  XicsHcalls, XiveVcpu)
from .uapi import (KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_GRP_SOURCES, KVM_DEV_XICS_NR_SERVERS,
                   KVM_INTERRUPT_SET_LEVEL, KVM_INTERRUPT_UNSET, KVMPPC_XICS_FIRST_IRQ,
                   KVMPPC_XICS_ICS_SHIFT, KVMPPC_XICS_NR_IRQS, IcpStateWord, XicsSourceWord)

XIVE_Q_GAP = 2  # entries a queue keeps free: a target is full at (msk + 1) - XIVE_Q_GAP
ESB_P, ESB_Q = 0x2, 0x1
_HW_IPIS = KVMPPC_XICS_NR_IRQS + (1 << 14)  # the router's sources: a HW IPI per guest source,
#                                             then one per vCPU for its MFRR


@dataclass
class IrqState:
    """struct kvmppc_xive_irq_state: one guest source and the hardware IPI behind it."""

    number: int
    valid: bool = False
    ipi: int | None = None  # the HW IPI (router source number), allocated at first set_source
    guest_priority: int = MASKED
    saved_priority: int = MASKED
    act_server: int = 0
    act_priority: int = MASKED
    old_p: bool = False
    old_q: bool = False
    lsi: bool = False
    asserted: bool = False
    saved_scan_prio: int = MASKED
    saved_p: bool = False
    saved_q: bool = False
    in_queue: bool = False


class XicsOnXiveDevice(KvmDevice, XiveVps, XicsHcalls):
    """KVM_DEV_TYPE_XICS on a XIVE host: the kvm-xive device."""

    kind = "kvm-xive"

    def __init__(self, kvm, fd: int) -> None:
        super().__init__(kvm, fd)
        self.reset_state()

    def reset_state(self) -> None:
        """What kvmppc_xive_get_device leaves: a zeroed kvmppc_xive (also what the 5.2-5.4
        second create does to a live device)."""
        self.router = XiveRouter(_HW_IPIS, 1 << 24, GuestMemory(1 << 40))
        self.router.source.reset_pq = XIVE_ESB_OFF
        self.blocks: set[int] = set()
        self.sources: dict[int, IrqState] = {}
        self.xcs: dict[int, XiveVcpu] = {}  # by server number
        self.qmap = 0
        self.src_count = 0
        self.saved_src_count = 0
        self.delayed_irqs = 0
        self.nr_servers = self.kvm.max_vcpus
        self.vp_block_allocated = not self.kvm.host.has("nr-servers")  # before 5.5: at create
        self._next_ipi = 0
        self._next_qpage = 0x1000_0000

    def zero(self) -> None:
        """What a second KVM_CREATE_DEVICE does to the live device on Linux 5.2 to 5.4.2
        (kvmppc_xive_get_device memsets the cached kvmppc_xive before the EEXIST check): its
        source blocks, queue map and counters are gone; the vCPUs keep their own state."""
        self.blocks, self.sources, self.qmap = set(), {}, 0
        self.src_count = self.saved_src_count = self.delayed_irqs = 0

    def injectable(self, call: str, group: int | None = None, attr: int | None = None) -> set[int]:
        """The errnos this device can meet on its own in `call` now (see host.faults)."""
        if call == "set_attr" and group == KVM_DEV_XICS_GRP_SOURCES:
            if not KVMPPC_XICS_FIRST_IRQ <= attr < KVMPPC_XICS_NR_IRQS:
                return set()
            state = self.sources.get(attr)
            return {E.ENOMEM} if state is None or state.ipi is None else set()
        if call == "enable_cap":  # attr: the server number asked for
            return self.connect_injectable(attr)
        return set()

    @property
    def vp_ids(self) -> dict[int, int]:
        return {server: xc.vp_id for server, xc in self.xcs.items()}

    # ==================================================================================================
    # Hardware (OPAL): IPIs, their routing, queues
    # ==================================================================================================
    def _alloc_ipi(self) -> int:
        """xive_native_alloc_irq: a hardware IPI, its EAS masked."""
        ipi = self._next_ipi
        self._next_ipi += 1
        self.router.eat[ipi] = EAS_VALID | EAS_MASKED
        return ipi

    def _configure_irq(self, ipi: int, vp_id: int, prio: int, eisn: int) -> None:
        """xive_native_configure_irq: route a hardware interrupt to (VP, priority) with `eisn`."""
        if prio == MASKED:
            self.router.eat[ipi] = EAS_VALID | EAS_MASKED
            return
        end_idx = (vp_id << 3) | prio
        self.router.eat[ipi] = EAS_VALID | (end_idx << EAS_END_INDEX_SHIFT) | (eisn & EAS_END_DATA_MASK)

    def _configure_queue(self, xc: XiveVcpu, prio: int, qpage: int | None) -> None:
        """xive_native_configure_queue: the END of (VP, prio), enqueuing into `qpage` or, with
        no page, only notifying (how priority 0 carries MFRR changes)."""
        end = [END_W0_VALID | END_W0_UCOND_NOTIFY, 0, 0, 0, 0, 0, nvt_cam_line(0, xc.vp_id),
               prio << END_W7_F0_PRIORITY_SHIFT]
        if qpage is not None:
            end[0] |= END_W0_ENQUEUE | ((Q_SHIFT - 12) << END_W0_QSIZE_SHIFT)
            end[1] = END_W1_GENERATION
            end[2], end[3] = (qpage >> 32) & 0x0FFFFFFF, qpage & 0xFFFFFFFF
        self.router.endt[(xc.vp_id << 3) | prio] = end
        queue = xc.queues[prio]
        queue.qpage, queue.idx, queue.toggle = qpage, 0, 0

    def _provision_queue(self, xc: XiveVcpu, prio: int) -> None:
        """xive_provision_queue: a zeroed 64K page for the queue."""
        if xc.queues[prio].qpage is not None:
            return
        qpage = self._next_qpage
        self._next_qpage += 1 << Q_SHIFT
        self._configure_queue(xc, prio, qpage)

    def _check_provisioning(self, prio: int) -> None:
        """xive_check_provisioning: once a priority is used, every vCPU gets a queue for it."""
        if self.qmap & (1 << prio):
            return
        for xc in self.xcs.values():
            self._provision_queue(xc, prio)
        self.qmap |= 1 << prio

    def _trigger(self, ipi: int) -> None:
        """A store to the trigger page of a hardware IPI."""
        if self.router.source.trigger(ipi):
            self.router.notify(ipi)

    def _esb_load(self, ipi: int, offset: int) -> int:
        return self.router.esb_load(ipi, False, offset)

    def _source_eoi(self, ipi: int) -> None:
        """xive_vm_source_eoi for an IPI: PQ to 00, and re-trigger if Q was set."""
        if self._esb_load(ipi, XIVE_ESB_SET_PQ_00) & ESB_Q:
            self._trigger(ipi)

    @staticmethod
    def _read_eq(memory, queue: Queue, idx: int, toggle: int) -> tuple[int, int, int]:
        """__xive_read_eq: (entry or 0 if empty, new idx, new toggle)."""
        word = memory.read_u32(queue.qpage + 4 * idx)
        if word >> 31 == toggle:
            return 0, idx, toggle
        idx = (idx + 1) & queue.msk
        if idx == 0:
            toggle ^= 1
        return word & 0x7FFFFFFF, idx, toggle

    # ==================================================================================================
    # Sources and targets
    # ==================================================================================================
    def find_source(self, irq: int) -> IrqState | None:
        """kvmppc_xive_find_source: the state if its 1024-source block exists."""
        if not 0 <= irq < KVMPPC_XICS_NR_IRQS or irq >> KVMPPC_XICS_ICS_SHIFT not in self.blocks:
            return None
        state = self.sources.get(irq)
        if state is None:
            state = self.sources[irq] = IrqState(irq)
        return state

    def _lock_and_mask(self, state: IrqState) -> int:
        """xive_lock_and_mask: guest priority to MASKED, the IPI's PQ to 10, the old P and Q
        remembered; returns the old guest priority (no change if it was already masked)."""
        old = state.guest_priority
        state.guest_priority = MASKED
        if old == MASKED:
            return old
        pq = self._esb_load(state.ipi, XIVE_ESB_SET_PQ_10)
        state.old_p, state.old_q = bool(pq & ESB_P), bool(pq & ESB_Q)
        return old

    def _finish_unmask(self, state: IrqState, prio: int) -> None:
        """xive_finish_unmask: Q restored as PQ=11, an effective EOI unless P was set."""
        if state.guest_priority == MASKED:
            if state.old_q:
                self._esb_load(state.ipi, XIVE_ESB_SET_PQ_11)
            if not state.old_p:
                self._source_eoi(state.ipi)
        state.guest_priority = prio & 0xFF

    def _select_target(self, server: int, prio: int) -> int:
        """kvmppc_xive_select_target: the server if its queue has room, else any vCPU's."""
        xc = self.xcs.get(server)
        if xc is None:
            raise DeviceErrno(E.EINVAL)
        candidates = [xc] + [other for s, other in sorted(self.xcs.items()) if s != server]
        for candidate in candidates:
            queue = candidate.queues[prio]
            if queue.qpage is not None and queue.count < queue.msk + 1 - XIVE_Q_GAP:
                queue.count += 1
                return candidate.server
        raise DeviceErrno(E.EBUSY)

    def _target_interrupt(self, state: IrqState, server: int, prio: int) -> None:
        """xive_target_interrupt: route the source's IPI to a vCPU's queue for `prio`."""
        server = self._select_target(server, prio)
        if state.act_priority != MASKED:
            old = self.xcs.get(state.act_server)
            if old is not None:
                old.queues[state.act_priority].pending_count += 1
        state.act_priority, state.act_server = prio, server
        self._configure_irq(state.ipi, self.xcs[server].vp_id, prio, state.number)

    # ==================================================================================================
    # KVM_DEV_XICS_GRP_SOURCES and _CTRL
    # ==================================================================================================
    def has_attr(self, group: int, attr: int) -> bool:
        if group == KVM_DEV_XICS_GRP_SOURCES:
            return KVMPPC_XICS_FIRST_IRQ <= attr < KVMPPC_XICS_NR_IRQS
        if group == KVM_DEV_XICS_GRP_CTRL:
            return self.kvm.host.has("nr-servers") and attr == KVM_DEV_XICS_NR_SERVERS
        return False

    def set_attr(self, group: int, attr: int, value, fault: int = 0) -> None:
        if group == KVM_DEV_XICS_GRP_SOURCES:
            self.set_source(attr, value, fault)
            return
        if (group == KVM_DEV_XICS_GRP_CTRL and self.kvm.host.has("nr-servers")
                and attr == KVM_DEV_XICS_NR_SERVERS):
            self.set_nr_servers(value)
            return
        raise DeviceErrno(E.ENXIO)

    def get_attr(self, group: int, attr: int):
        if group == KVM_DEV_XICS_GRP_SOURCES:
            return self.get_source(attr)
        raise DeviceErrno(E.ENXIO)

    def set_source(self, irq: int, value: int, fault: int = 0) -> None:
        """xive_set_source: the block and the IPI first, then masked, targeted if the priority and
        server allow (a failure to target is swallowed: the source stays untargeted), P and Q
        restored (PENDING forces Q without P, so it is resent), and unmasked unless MASKED."""
        if not KVMPPC_XICS_FIRST_IRQ <= irq < KVMPPC_XICS_NR_IRQS:
            raise DeviceErrno(E.ENOENT)
        block = irq >> KVMPPC_XICS_ICS_SHIFT
        if fault and block not in self.blocks:
            raise DeviceErrno(fault)  # kvmppc_xive_create_src_block failed: nothing made
        self.blocks.add(block)
        state = self.find_source(irq)
        if state.ipi is None:
            if fault:
                raise DeviceErrno(fault)  # xive_native_alloc_irq failed; the block stays
            state.ipi = self._alloc_ipi()
        word = XicsSourceWord.unpack(value)
        server, guest_prio = word.server, word.priority
        state.guest_priority = 0
        self._lock_and_mask(state)
        act_prio = prio_from_guest(guest_prio)
        state.act_priority = MASKED
        if act_prio != MASKED:
            self._check_provisioning(act_prio)
            try:
                self._target_interrupt(state, server, act_prio)
            except DeviceErrno:
                pass  # "leave it alone and masked"
        if self.delayed_irqs and self._check_delayed_irq(irq):
            word = word._replace(pending=True)
        state.lsi = word.lsi
        state.asserted = word.lsi and word.pending
        state.old_p = word.presented and not word.pending
        state.old_q = word.queued or word.pending
        if word.masked:
            state.guest_priority = MASKED
        else:
            self._finish_unmask(state, guest_prio)
        state.saved_priority = guest_prio
        if not state.valid:
            self.src_count += 1
        state.valid = True

    def _check_delayed_irq(self, irq: int) -> bool:
        for xc in self.xcs.values():
            if xc.delayed_irq == irq:
                xc.delayed_irq = 0
                self.delayed_irqs -= 1
                return True
        return False

    def get_source(self, irq: int) -> int:
        """xive_get_source: the first read of a save masks every source, syncs, finds which are
        still in a queue, and unmasks again; each read then converts one source's saved state."""
        state = self.find_source(irq)
        if state is None or not state.valid:
            raise DeviceErrno(E.ENOENT)
        if self.saved_src_count == 0:
            self._pre_save_scan()
        self.saved_src_count += 1
        prio = state.saved_scan_prio
        masked = prio == MASKED
        if masked:
            prio = state.saved_priority
        if state.lsi:
            word = XicsSourceWord(state.act_server, prio, lsi=True, masked=masked,
                                  pending=state.saved_p)
        else:
            word = XicsSourceWord(state.act_server, prio, masked=masked,
                                  pending=state.in_queue or (prio == MASKED and state.saved_q),
                                  presented=state.saved_p, queued=state.saved_q)
        value = word.pack()
        if self.saved_src_count == self.src_count:
            for each in self.sources.values():
                each.in_queue = False
            self.saved_src_count = 0
        return value

    def _pre_save_scan(self) -> None:
        valid = [state for _, state in sorted(self.sources.items()) if state.valid]
        for state in valid:
            state.saved_scan_prio = self._lock_and_mask(state)
            state.saved_p, state.saved_q = state.old_p, state.old_q
        memory = self.router.memory
        for xc in self.xcs.values():
            for queue in xc.queues:
                if queue.qpage is None:
                    continue
                idx, toggle = queue.idx, queue.toggle
                while True:
                    irq, idx, toggle = self._read_eq(memory, queue, idx, toggle)
                    if not irq:
                        break
                    if irq > XICS_IPI:
                        queued = self.find_source(irq)
                        if queued is not None:
                            queued.in_queue = True
        for state in valid:
            if state.saved_scan_prio != MASKED:
                self._finish_unmask(state, state.saved_scan_prio)

    # ==================================================================================================
    # vCPUs: connect, ONE_REG ICP_STATE
    # ==================================================================================================
    def connect_vcpu(self, vcpu: KvmVcpu, server: int, fault: int = 0) -> None:
        """kvmppc_xive_connect_vcpu: the VP checks of the release, then the vCPU's context, its
        MFRR IPI routed to priority 0 (EISN 2), and a queue for every provisioned priority."""
        vp_id = self.compute_vp_id(server, fault)
        tctx = XiveTCTX(server)
        tctx.regs[TM_QW1_OS:TM_QW1_OS + 8] = (0x00000000FF000000).to_bytes(8, "big")
        tctx.set_os_cam(nvt_cam_line(0, vp_id))
        self.router.tctxs[server] = tctx
        xc = XiveVcpu(server, vp_id, self._alloc_ipi(), tctx)
        self.xcs[server] = xc
        self._configure_irq(xc.vp_ipi, vp_id, 0, XICS_IPI)
        self._esb_load(xc.vp_ipi, XIVE_ESB_SET_PQ_00)
        for prio in range(KVMPPC_XIVE_Q_COUNT):
            if self.qmap & (1 << prio):
                self._provision_queue(xc, prio)
            else:
                self._configure_queue(xc, prio, None)
        vcpu.attach(self, server)

    def get_icp(self, server: int) -> int:
        """kvmppc_xive_get_icp: CPPR and MFRR; no XISR, PPRI 0xff (since Linux 4.15)."""
        xc = self.xcs[server]
        return IcpStateWord(xc.cppr, 0, xc.mfrr, 0xFF).pack()

    def set_icp(self, server: int, value: int) -> None:
        """kvmppc_xive_set_icp: taken as given (no consistency check, PPRI ignored): CPPR as is,
        MFRR (signalled if it beats the CPPR), and an XISR source resent now or, if not set up
        yet, when it is."""
        xc = self.xcs[server]
        cppr, xisr, mfrr, _ = IcpStateWord.unpack(value)  # PPRI ignored
        xc.cppr = xc.hw_cppr = cppr
        xc.tctx.regs[TM_QW1_OS + TM_CPPR] = cppr  # the saved context, pushed at the next entry
        xc.tctx.notify(TM_QW1_OS)
        xc.mfrr = mfrr
        if mfrr < cppr:
            self._trigger(xc.vp_ipi)
        if xisr > XICS_IPI:
            state = self.find_source(xisr)
            if state is not None and state.valid:
                self._trigger(state.ipi)
            else:
                xc.delayed_irq = xisr
                self.delayed_irqs += 1

    def output(self, server: int) -> bool:
        xc = self.xcs.get(server)
        return bool(xc and xc.tctx.output)

    def release(self) -> None:
        super().release()
        self.reset_state()

    # ==================================================================================================
    # KVM_IRQ_LINE (kvmppc_xive_set_irq)
    # ==================================================================================================
    def set_irq(self, irq: int, level: int) -> int:
        """A level on a guest source: SET_LEVEL (or 1 on an LSI) asserts and triggers, UNSET or 0
        deasserts (nothing queued is taken back), anything else triggers. Returns the handler's
        code, which KVM_IRQ_LINE does not report."""
        state = self.find_source(irq)
        if state is None or not state.valid:
            return -E.EINVAL
        if (level == 1 and state.lsi) or level == KVM_INTERRUPT_SET_LEVEL:
            state.asserted = True
        elif level in (0, KVM_INTERRUPT_UNSET):
            state.asserted = False
            return 0
        self._trigger(state.ipi)
        return 0

    # ==================================================================================================
    # The XICS RTAS calls (kvmppc_xive_set_xive and friends); each returns 0 or -errno
    # ==================================================================================================
    def set_xive(self, irq: int, server: int, priority: int) -> int:
        """Queues for the priority first (even for a source that does not exist), mask or
        prepare the unmask, retarget only for a valid new priority that changes something, then
        unmask even if targeting failed; the saved priority always follows."""
        priority &= 0xFF
        if priority != MASKED:
            self._check_provisioning(prio_from_guest(priority))
        state = self.find_source(irq)
        if state is None:
            return -E.EINVAL
        if state.ipi is None and priority != MASKED:
            raise NotImplementedError(
                "ibm,set-xive with a priority on a XICS-on-XIVE source that was never set up: the "
                "kernel programs hardware interrupt 0 and EOIs an unmapped ESB page (not modelled)")
        if priority == MASKED:
            self._lock_and_mask(state)
        new_act = state.act_priority if priority == MASKED else prio_from_guest(priority)
        rc = 0
        if new_act != MASKED and (state.act_server != server or state.act_priority != new_act):
            try:
                self._target_interrupt(state, server, new_act)
            except DeviceErrno as exc:
                rc = -exc.errno
        if priority != MASKED:
            self._finish_unmask(state, priority)
        state.saved_priority = priority
        return rc

    def get_xive(self, irq: int) -> tuple[int, int, int]:
        """(rc, server, priority): the server the source is routed to, the guest's priority."""
        state = self.find_source(irq)
        if state is None:
            return -E.EINVAL, 0, 0
        return 0, state.act_server, state.guest_priority

    def int_on(self, irq: int) -> int:
        state = self.find_source(irq)
        if state is None:
            return -E.EINVAL
        if state.act_priority == MASKED:
            return -E.EINVAL  # "int_on on untargetted interrupt"
        if state.saved_priority == MASKED:
            return 0
        self._finish_unmask(state, state.saved_priority)
        return 0

    def int_off(self, irq: int) -> int:
        state = self.find_source(irq)
        if state is None:
            return -E.EINVAL
        state.saved_priority = self._lock_and_mask(state)  # never set up: already MASKED
        return 0
