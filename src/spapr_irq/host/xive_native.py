"""The in-kernel XIVE as Linux KVM drives it (arch/powerpc/kvm/book3s_xive_native.c, spec/linux.md
A.4): the KVM_DEV_TYPE_XIVE device's sources, event queues and virtual processors.

Behind the device is the XIVE hardware, so the same router as QEMU's emulation (:mod:`spapr_irq.arch.xive`) does
the presenting here; what differs is how it is configured: every guest source is backed by a
hardware IPI (so its ESB pages have MSI semantics and an LSI level lives in the source state),
priority 7 is the escalation queue and refused, only 64K queues with unconditional notification
are accepted, a source routed to a vCPU without a queue goes to another vCPU, and a vCPU's OS ring
starts with CPPR 0 and ACK_CNT 0xff.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass

from ..arch.xive import (EAS_END_INDEX_SHIFT, EAS_MASKED, EAS_VALID, END_W0_ENQUEUE,
                         END_W0_QSIZE_SHIFT, END_W0_UCOND_NOTIFY, END_W0_VALID, END_W1_GENERATION,
                         END_W1_PAGE_OFF_MASK, END_W7_F0_PRIORITY_SHIFT, TM_QW1_OS, XIVE_ESB_OFF,
                         XiveRouter, XiveTCTX, nvt_cam_line)
from .device import DeviceErrno, KvmDevice, KvmVcpu, Sigbus, XiveVps, prio_from_guest
from .uapi import (KVM_DEV_XIVE_EQ_SYNC, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_GRP_EQ_CONFIG,
                   KVM_DEV_XIVE_GRP_SOURCE, KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
                   KVM_DEV_XIVE_GRP_SOURCE_SYNC, KVM_DEV_XIVE_NR_SERVERS, KVM_DEV_XIVE_RESET, KVM_INTERRUPT_SET_LEVEL,
                   KVM_INTERRUPT_UNSET,
                   KVM_XIVE_EQ_ALWAYS_NOTIFY,
                   KVM_XIVE_EQ_PRIORITY_MASK, KVM_XIVE_EQ_SERVER_SHIFT, KVM_XIVE_ESB_PAGE_OFFSET,
                   KVM_XIVE_LEVEL_ASSERTED, KVM_XIVE_LEVEL_SENSITIVE, KVM_XIVE_SOURCE_EISN_MASK,
                   KVM_XIVE_SOURCE_EISN_SHIFT, KVM_XIVE_SOURCE_MASKED_SHIFT,
                   KVM_XIVE_SOURCE_PRIORITY_MASK, KVM_XIVE_SOURCE_SERVER_MASK,
                   KVM_XIVE_SOURCE_SERVER_SHIFT, KVM_XIVE_TIMA_PAGE_OFFSET, KVMPPC_XIVE_NR_IRQS)

MASKED = 0xFF
ICS_SHIFT = 10  # sources come in blocks of 1024, made on first use


@dataclass
class KvmPpcXiveEq:
    """struct kvm_ppc_xive_eq (64 bytes: flags, qshift, qaddr, qtoggle, qindex, padding)."""

    flags: int = 0
    qshift: int = 0
    qaddr: int = 0
    qtoggle: int = 0
    qindex: int = 0


class KernelXive:
    """The XIVE native device of one VM."""

    def __init__(self, memory) -> None:
        self.router = XiveRouter(KVMPPC_XIVE_NR_IRQS, 1 << 24, memory)
        self.router.source.reset_pq = XIVE_ESB_OFF
        self.blocks: set[int] = set()
        self.ipis: set[int] = set()  # sources that have their hardware IPI
        self.valid: set[int] = set()
        self.lsi: set[int] = set()
        self.asserted: set[int] = set()
        self.config: dict[int, tuple[int, int, int]] = {}  # srcno -> (server, priority, eisn)
        self.queues: dict[int, KvmPpcXiveEq] = {}  # (server << 3 | priority) -> guest EQ config
        self.vps: dict[int, int] = {}  # server -> VP id
        self.memory = memory
        self.resets = 0

    # -- vCPUs ---------------------------------------------------------------------------------------------
    @property
    def servers(self):
        return self.vps.keys()

    def connect_vcpu(self, server: int, vp_id: int) -> None:
        """The vCPU's OS ring starts at CPPR 0 with ACK_CNT 0xff, its CAM line its VP."""
        tctx = XiveTCTX(server)
        tctx.regs[TM_QW1_OS:TM_QW1_OS + 8] = (0x00000000FF000000).to_bytes(8, "big")
        tctx.set_os_cam(nvt_cam_line(0, vp_id))
        self.router.tctxs[server] = tctx
        self.vps[server] = vp_id

    def get_vp_state(self, server: int) -> int:
        """KVM_REG_PPC_VP_STATE: OS ring words 0-1 (NSR CPPR IPB LSMFB, ACK_CNT INC AGE PIPR)."""
        regs = self.router.tctxs[server].regs
        return int.from_bytes(regs[TM_QW1_OS:TM_QW1_OS + 8], "big")

    def set_vp_state(self, server: int, value: int) -> None:
        tctx = self.router.tctxs[server]
        tctx.regs[TM_QW1_OS:TM_QW1_OS + 8] = (value & ((1 << 64) - 1)).to_bytes(8, "big")
        tctx.notify(TM_QW1_OS)

    # -- KVM_DEV_XIVE_GRP_SOURCE ------------------------------------------------------------------------
    def set_source(self, srcno: int, flags: int, fault: int = 0) -> None:
        """kvmppc_xive_native_set_source: the block and the source's hardware IPI made on first
        use, the LSI and asserted flags set (never cleared; ASSERTED counts only with LSI), the
        IPI masked with PQ=01 and its EAS masked."""
        if not 0 <= srcno < KVMPPC_XIVE_NR_IRQS:
            raise DeviceErrno(E.E2BIG)
        block = srcno >> ICS_SHIFT
        if fault == E.ENOMEM and block not in self.blocks:
            raise DeviceErrno(fault)  # kvmppc_xive_create_src_block failed: nothing made
        self.blocks.add(block)
        if srcno not in self.ipis:
            if fault:
                raise DeviceErrno(fault)  # xive_native_alloc_irq failed: the block stays
            self.ipis.add(srcno)
        if flags & KVM_XIVE_LEVEL_SENSITIVE:
            self.lsi.add(srcno)
            if flags & KVM_XIVE_LEVEL_ASSERTED:
                self.asserted.add(srcno)
        self.valid.add(srcno)
        self.router.source.set_pq(srcno, XIVE_ESB_OFF)
        self.router.eat[srcno] = EAS_VALID | EAS_MASKED
        self.config[srcno] = (0, MASKED, 0)

    # -- KVM_DEV_XIVE_GRP_SOURCE_CONFIG -----------------------------------------------------------------
    def _find_source(self, srcno: int) -> None:
        """ENOENT when the source's block was never made, EINVAL when the source is not valid."""
        if not 0 <= srcno < KVMPPC_XIVE_NR_IRQS or srcno >> ICS_SHIFT not in self.blocks:
            raise DeviceErrno(E.ENOENT)
        if srcno not in self.valid:
            raise DeviceErrno(E.EINVAL)

    def set_source_config(self, srcno: int, value: int, fault: int = 0) -> None:
        """kvmppc_xive_native_set_source_config: the same target again is no change (even when
        asked to mask); a target needs a vCPU with a queue at the priority; 7 is refused."""
        self._find_source(srcno)
        priority = value & KVM_XIVE_SOURCE_PRIORITY_MASK
        server = (value & KVM_XIVE_SOURCE_SERVER_MASK) >> KVM_XIVE_SOURCE_SERVER_SHIFT
        masked = (value >> KVM_XIVE_SOURCE_MASKED_SHIFT) & 1
        eisn = (value & KVM_XIVE_SOURCE_EISN_MASK) >> KVM_XIVE_SOURCE_EISN_SHIFT
        if priority != prio_from_guest(priority):
            raise DeviceErrno(E.EINVAL)  # "invalid priority for queue %d for VCPU %d"
        if self.config.get(srcno) == (server, priority, eisn):
            return
        if priority != MASKED and not masked:
            server = self._select_target(server, priority)
            if fault:
                raise DeviceErrno(fault)  # xive_native_configure_irq failed
            self.config[srcno] = (server, priority, eisn)
            end_idx = (self.vps[server] << 3) | priority
            self.router.eat[srcno] = EAS_VALID | (end_idx << EAS_END_INDEX_SHIFT) | eisn
        else:
            self.config[srcno] = (0, MASKED, 0)
            self.router.eat[srcno] = EAS_VALID | EAS_MASKED

    def _select_target(self, server: int, priority: int) -> int:
        """kvmppc_xive_select_target: the server if its queue exists, else any vCPU's that does."""
        if server not in self.servers:
            raise DeviceErrno(E.EINVAL)
        if (server << 3) | priority in self.queues:
            return server
        for other in sorted(self.servers):
            if (other << 3) | priority in self.queues:
                return other
        raise DeviceErrno(E.EBUSY)

    def source_sync(self, srcno: int) -> None:
        self._find_source(srcno)

    # -- KVM_DEV_XIVE_GRP_EQ_CONFIG ------------------------------------------------------------------------
    def set_queue_config(self, eq_idx: int, eq: KvmPpcXiveEq, fault: int = 0) -> None:
        priority = eq_idx & KVM_XIVE_EQ_PRIORITY_MASK
        server = eq_idx >> KVM_XIVE_EQ_SERVER_SHIFT
        if server not in self.servers:
            raise DeviceErrno(E.ENOENT)
        if priority != prio_from_guest(priority):
            raise DeviceErrno(E.EINVAL)  # "Trying to restore invalid queue %d for VCPU %d"
        end_idx = (server << 3) | priority
        if not eq.qshift:
            if fault:
                raise DeviceErrno(fault)  # OPAL refused to reset the queue
            self.queues.pop(end_idx, None)
            self.router.endt.pop((self.vps[server] << 3) | priority, None)
            return
        if eq.flags != KVM_XIVE_EQ_ALWAYS_NOTIFY:
            raise DeviceErrno(E.EINVAL)  # END ESB coalescing is not supported
        if eq.qshift != 16:
            raise DeviceErrno(E.EINVAL)  # only 64K queues
        if eq.qaddr & ((1 << eq.qshift) - 1):
            raise DeviceErrno(E.EINVAL)  # "queue page is not aligned"
        if not self.memory.contains(eq.qaddr, 1 << eq.qshift):
            raise DeviceErrno(E.EINVAL)  # "Couldn't get queue page"
        if fault:
            raise DeviceErrno(fault)  # OPAL refused the queue
        toggle, index = 1, 0
        if eq.qtoggle != 1 or eq.qindex != 0:  # restore the queue state only when asked
            toggle, index = eq.qtoggle & 1, eq.qindex & END_W1_PAGE_OFF_MASK
        self.queues[end_idx] = KvmPpcXiveEq(eq.flags, eq.qshift, eq.qaddr)
        self.router.endt[(self.vps[server] << 3) | priority] = [
            END_W0_VALID | END_W0_ENQUEUE | END_W0_UCOND_NOTIFY | ((eq.qshift - 12) << END_W0_QSIZE_SHIFT),
            (END_W1_GENERATION if toggle else 0) | index,
            (eq.qaddr >> 32) & 0x0FFFFFFF, eq.qaddr & 0xFFFFFFFF, 0, 0,
            nvt_cam_line(0, self.vps[server]), priority << END_W7_F0_PRIORITY_SHIFT,
        ]

    def get_queue_config(self, eq_idx: int) -> KvmPpcXiveEq:
        priority = eq_idx & KVM_XIVE_EQ_PRIORITY_MASK
        server = eq_idx >> KVM_XIVE_EQ_SERVER_SHIFT
        if server not in self.servers:
            raise DeviceErrno(E.ENOENT)
        if priority != prio_from_guest(priority):
            raise DeviceErrno(E.EINVAL)
        end_idx = (server << 3) | priority
        queue = self.queues.get(end_idx)
        if queue is None:
            return KvmPpcXiveEq()
        end = self.router.endt[(self.vps[server] << 3) | priority]
        return KvmPpcXiveEq(KVM_XIVE_EQ_ALWAYS_NOTIFY, queue.qshift, queue.qaddr,
                            1 if end[1] & END_W1_GENERATION else 0, end[1] & END_W1_PAGE_OFF_MASK)

    # -- KVM_DEV_XIVE_GRP_CTRL -----------------------------------------------------------------------------
    def reset(self) -> None:
        """KVM_DEV_XIVE_RESET: every queue released; every routed source masked with PQ=01."""
        self.resets += 1
        self.queues.clear()
        self.router.endt.clear()
        for srcno in sorted(self.valid):
            if self.config.get(srcno, (0, MASKED, 0))[1] != MASKED:
                self.config[srcno] = (0, MASKED, 0)
                self.router.source.set_pq(srcno, XIVE_ESB_OFF)
                self.router.eat[srcno] = EAS_VALID | EAS_MASKED

    # -- the mapped pages ----------------------------------------------------------------------------------
    def esb(self, page: int, offset: int, value: int | None) -> int | None:
        """An access to ESB page `page` of the mapping (srcno = page // 2, even = trigger)."""
        srcno, trigger_page = page >> 1, not page & 1
        if srcno not in self.valid:
            raise Sigbus(f"ESB page of unknown source {srcno:#x}")
        if value is None:
            return self.router.esb_load(srcno, trigger_page, offset)
        self.router.esb_store(srcno, trigger_page, offset)
        return None

    def tima(self, server: int, offset: int, value: int | None, size: int) -> int | None:
        """The TIMA mapping: only page 2 (the OS ring) is backed."""
        page = offset >> 16
        if page != 2:
            raise Sigbus(f"TIMA page {page} is not mapped by KVM")
        tctx = self.router.tctxs[server]
        if value is None:
            return tctx.tm_read(offset, size)[0]
        tctx.tm_write(offset, value, size)
        return None


class XiveNativeDevice(KvmDevice, XiveVps):
    """KVM_DEV_TYPE_XIVE: the XIVE native exploitation device (kvm-xive-native, Linux 5.2+).

    Its file stays open while QEMU's ESB or TIMA mapping lives: closing the fd releases the
    device only at the last munmap."""

    kind = "kvm-xive-native"

    def __init__(self, kvm, fd: int) -> None:
        super().__init__(kvm, fd)
        self.state = KernelXive(kvm.memory)
        self.nr_servers = kvm.max_vcpus
        self.vp_block_allocated = False
        self.mappings: set[int] = set()  # mmap page offsets currently mapped

    @property
    def vp_ids(self) -> dict[int, int]:
        return self.state.vps

    @property
    def sources(self) -> dict[int, int]:
        """Allocated sources and their KVM_XIVE_LEVEL_* flags."""
        st = self.state
        return {srcno: (KVM_XIVE_LEVEL_SENSITIVE if srcno in st.lsi else 0)
                | (KVM_XIVE_LEVEL_ASSERTED if srcno in st.asserted else 0) for srcno in st.valid}

    @property
    def resets(self) -> int:
        return self.state.resets

    def injectable(self, call: str, group: int | None = None, attr: int | None = None) -> set[int]:
        """The errnos this device can meet on its own in `call` now (see host.faults)."""
        st = self.state
        if call == "set_attr" and group == KVM_DEV_XIVE_GRP_SOURCE:
            if not 0 <= attr < KVMPPC_XIVE_NR_IRQS:
                return set()
            return ({E.ENOMEM} if attr >> ICS_SHIFT not in st.blocks else set()) | (
                {E.ENXIO} if attr not in st.ipis else set())
        if call == "set_attr" and group == KVM_DEV_XIVE_GRP_SOURCE_CONFIG:
            return {E.ENXIO} if attr in st.valid else set()
        if call == "set_attr" and group == KVM_DEV_XIVE_GRP_EQ_CONFIG:
            return {E.EIO}
        if call == "get_attr" and group == KVM_DEV_XIVE_GRP_EQ_CONFIG:
            return {E.EIO} if attr in st.queues else set()
        if call == "enable_cap":  # attr: the server number asked for
            return self.connect_injectable(attr)
        if call == "get_one_reg":
            return {E.EIO}
        if call == "mmap":
            return {E.ENOMEM}
        return set()

    def has_attr(self, group: int, attr: int) -> bool:
        if group == KVM_DEV_XIVE_GRP_CTRL:
            if attr == KVM_DEV_XIVE_NR_SERVERS:
                return self.kvm.host.nr_servers_attr
            return attr in (KVM_DEV_XIVE_RESET, KVM_DEV_XIVE_EQ_SYNC)
        if group in (KVM_DEV_XIVE_GRP_SOURCE, KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
                     KVM_DEV_XIVE_GRP_SOURCE_SYNC):
            return 0 <= attr < KVMPPC_XIVE_NR_IRQS
        return group == KVM_DEV_XIVE_GRP_EQ_CONFIG

    def set_attr(self, group: int, attr: int, value, fault: int = 0) -> None:
        if group == KVM_DEV_XIVE_GRP_CTRL:
            if attr == KVM_DEV_XIVE_RESET:
                self.state.reset()
                return
            if attr == KVM_DEV_XIVE_EQ_SYNC:
                return  # flushes in-flight events (none are in flight in the model)
            if attr == KVM_DEV_XIVE_NR_SERVERS and self.kvm.host.nr_servers_attr:
                self.set_nr_servers(value)
                return
            raise DeviceErrno(E.ENXIO)
        if group == KVM_DEV_XIVE_GRP_SOURCE:
            self.state.set_source(attr, value, fault)
            return
        if group == KVM_DEV_XIVE_GRP_SOURCE_CONFIG:
            self.state.set_source_config(attr, value, fault)
            return
        if group == KVM_DEV_XIVE_GRP_EQ_CONFIG:
            self.state.set_queue_config(attr, value, fault)
            return
        if group == KVM_DEV_XIVE_GRP_SOURCE_SYNC:
            self.state.source_sync(attr)
            return
        raise DeviceErrno(E.ENXIO)

    def get_attr(self, group: int, attr: int, fault: int = 0):
        if group == KVM_DEV_XIVE_GRP_EQ_CONFIG:
            queue = self.state.get_queue_config(attr)
            if fault:
                raise DeviceErrno(fault)
            return queue
        raise DeviceErrno(E.ENXIO)

    def connect_vcpu(self, vcpu: KvmVcpu, server: int, fault: int = 0) -> None:
        vp_id = self.compute_vp_id(server, fault)
        vcpu.attach(self, server)
        self.state.connect_vcpu(server, vp_id)

    def get_vp_state(self, server: int, fault: int = 0) -> int:
        if fault:
            raise DeviceErrno(fault)
        return self.state.get_vp_state(server)

    def set_vp_state(self, server: int, value: int) -> None:
        self.state.set_vp_state(server, value)

    def set_irq(self, irq: int, level: int) -> int:
        """kvmppc_xive_set_irq on the native device's sources (QEMU triggers ESB pages instead)."""
        st = self.state
        if irq not in st.valid:
            return -E.EINVAL
        if (level == 1 and irq in st.lsi) or level == KVM_INTERRUPT_SET_LEVEL:
            st.asserted.add(irq)
        elif level in (0, KVM_INTERRUPT_UNSET):
            st.asserted.discard(irq)
            return 0
        st.router.esb_store(irq, True, 0)
        return 0

    def get_icp(self, server: int) -> int:
        raise NotImplementedError("ONE_REG ICP_STATE on a vCPU of the XIVE native device "
                                  "(kvmppc_xive_get_icp on a native VP) is not modelled")

    set_icp = get_icp

    def mmap(self, pgoff: int, npages: int, fault: int = 0) -> None:
        if pgoff == KVM_XIVE_TIMA_PAGE_OFFSET and npages <= 4 or (
                pgoff == KVM_XIVE_ESB_PAGE_OFFSET and npages <= KVMPPC_XIVE_NR_IRQS * 2):
            if fault:
                raise DeviceErrno(fault)
            self.mappings.add(pgoff)
            return
        raise DeviceErrno(E.EINVAL)

    def release(self) -> None:
        self.mappings.clear()
        self.state = KernelXive(self.kvm.memory)
        super().release()
