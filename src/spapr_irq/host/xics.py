"""The software XICS as Linux KVM implements it (arch/powerpc/kvm/book3s_xics.c, spec/linux.md A.3,
C.3): the ``kvm-xics`` device behind KVM_DEV_TYPE_XICS on POWER8 hosts, on POWER9 hosts booted
xive=off and in nested (pseries L1) hypervisors.

It differs from QEMU's emulation (:mod:`spapr_irq.arch.xics`) in how it remembers work: a source
carries P/Q bits (an MSI that fires while presented is queued, and EOI shifts Q into P), a failed
delivery marks the source ``resend`` and the ICP ``need_resend``, and a rejected interrupt is
offered again at once rather than waiting for the next resend. The guest-visible sequence is the
same for a well-behaved guest; the few edges where the two differ are stated in tests.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass, field

from ..papr import H_HARDWARE, H_PARAMETER, H_SUCCESS
from .device import DeviceErrno, KvmDevice, KvmVcpu
from .uapi import (KVM_DEV_XICS_GRP_SOURCES, KVM_INTERRUPT_SET, KVM_INTERRUPT_SET_LEVEL,
                   KVM_INTERRUPT_UNSET, KVMPPC_XICS_FIRST_IRQ, KVMPPC_XICS_ICS_SHIFT, KVMPPC_XICS_NR_IRQS,
                   IcpStateWord, XicsSourceWord)

MASKED = 0xFF
XICS_IPI = 2
PQ_PRESENTED = 1
PQ_QUEUED = 2
ICS_SHIFT = KVMPPC_XICS_ICS_SHIFT



@dataclass
class KSource:
    number: int
    server: int = 0
    priority: int = MASKED
    saved_priority: int = MASKED
    lsi: bool = False
    pq: int = 0
    masked_pending: bool = False
    resend: bool = False
    exists: bool = False


@dataclass
class KIcp:
    server: int
    cppr: int = 0
    xisr: int = 0
    pending_pri: int = 0xFF
    mfrr: int = 0xFF
    need_resend: bool = False
    resend_map: set[int] = field(default_factory=set)  # ICS blocks holding sources to resend

    @property
    def out_ee(self) -> bool:
        """The external-interrupt request KVM queues for the vCPU."""
        return bool(self.xisr) and self.pending_pri < self.cppr


class KernelXics:
    """One VM's in-kernel XICS: ICS blocks of 1024 sources and one ICP per connected server."""

    def __init__(self) -> None:
        self.blocks: set[int] = set()
        self.sources: dict[int, KSource] = {}
        self.icps: dict[int, KIcp] = {}

    # -- lookup --------------------------------------------------------------------------------------------
    def find_source(self, irq: int) -> KSource | None:
        """kvmppc_xics_find_ics: the source if its ICS block exists (the source itself may not)."""
        if irq >> ICS_SHIFT not in self.blocks:
            return None
        source = self.sources.get(irq)
        if source is None:
            source = self.sources[irq] = KSource(irq)
        return source

    def connect_icp(self, server: int) -> None:
        self.icps[server] = KIcp(server)

    # -- delivery ------------------------------------------------------------------------------------------
    def _try_to_deliver(self, icp: KIcp, irq: int, priority: int) -> tuple[bool, int]:
        if icp.cppr > priority and icp.mfrr > priority and icp.pending_pri > priority:
            reject = icp.xisr
            icp.xisr, icp.pending_pri = irq, priority
            return True, reject
        icp.need_resend = True
        return False, 0

    def deliver(self, icp: KIcp | None, irq: int, check_resend: bool) -> None:
        """icp_deliver_irq: offer `irq` to its server; a rejected interrupt is offered again."""
        while True:
            source = self.find_source(irq)
            if source is None:
                return
            if icp is None or source.server != icp.server:
                icp = self.icps.get(source.server)
                if icp is None:
                    return  # "server not found"
            if check_resend and not source.resend:
                return
            source.resend = False
            if source.priority == MASKED:
                source.masked_pending = True
                return
            delivered, reject = self._try_to_deliver(icp, irq, source.priority)
            if delivered:
                if reject and reject != XICS_IPI:
                    irq, check_resend = reject, False
                    continue
                return
            source.resend = True
            icp.resend_map.add(irq >> ICS_SHIFT)
            return

    def check_resend(self, icp: KIcp) -> None:
        for block in sorted(icp.resend_map):
            icp.resend_map.discard(block)
            for irq in sorted(n for n in self.sources if n >> ICS_SHIFT == block):
                if self.sources[irq].resend:
                    self.deliver(icp, irq, True)

    def down_cppr(self, icp: KIcp, cppr: int) -> None:
        icp.cppr = cppr
        if icp.mfrr < cppr and icp.mfrr <= icp.pending_pri:
            icp.pending_pri, icp.xisr = icp.mfrr, XICS_IPI
        resend, icp.need_resend = icp.need_resend, False
        if resend:
            self.check_resend(icp)

    # -- hypercalls (kvmppc_xics_hcall) --------------------------------------------------------------------
    def h_xirr(self, icp: KIcp) -> int:
        xirr = icp.xisr | (icp.cppr << 24)
        if icp.xisr:
            icp.cppr, icp.pending_pri, icp.xisr = icp.pending_pri, 0xFF, 0
        return xirr

    def h_cppr(self, icp: KIcp, cppr: int) -> None:
        """Down_CPPR when less favoured, nothing when equal; then Up_CPPR's reject step runs in
        both other cases (after a Down_CPPR it only matters for an inconsistent state)."""
        cppr &= 0xFF
        if cppr > icp.cppr:
            self.down_cppr(icp, cppr)
        elif cppr == icp.cppr:
            return
        reject = 0
        icp.cppr = cppr
        if cppr <= icp.pending_pri:
            reject, icp.xisr, icp.pending_pri = icp.xisr, 0, 0xFF
        if reject and reject != XICS_IPI:
            self.deliver(icp, reject, False)

    def h_ipi(self, server: int, mfrr: int) -> int:
        icp = self.icps.get(server)
        if icp is None:
            return H_PARAMETER
        old_mfrr = icp.mfrr
        icp.mfrr = mfrr & 0xFF  # an 8-bit field; the comparisons below use the full register
        reject, resend = 0, False
        if mfrr < icp.cppr and mfrr <= icp.pending_pri:
            reject = icp.xisr
            icp.pending_pri, icp.xisr = mfrr & 0xFF, XICS_IPI
        if mfrr > old_mfrr:
            resend, icp.need_resend = icp.need_resend, False
        if reject and reject != XICS_IPI:
            self.deliver(icp, reject, False)
        if resend:
            self.check_resend(icp)
        return H_SUCCESS

    def h_ipoll(self, server: int) -> tuple[int, int, int]:
        icp = self.icps.get(server)
        if icp is None:
            return H_PARAMETER, 0, 0
        return H_SUCCESS, (icp.cppr << 24) | icp.xisr, icp.mfrr

    def h_eoi(self, icp: KIcp, xirr: int) -> int:
        self.down_cppr(icp, (xirr >> 24) & 0xFF)
        irq = xirr & 0xFFFFFF
        if irq == XICS_IPI:
            return H_SUCCESS
        source = self.find_source(irq)
        if source is None:
            return H_PARAMETER
        if not source.lsi:
            source.pq >>= 1
        if source.pq & PQ_PRESENTED:
            self.deliver(icp, irq, False)
        return H_SUCCESS

    # -- KVM_IRQ_LINE (ics_deliver_irq) ----------------------------------------------------------------------
    def irq_line(self, irq: int, level: int) -> int:
        """ics_deliver_irq; returns its code, which KVM_IRQ_LINE does not report."""
        source = self.find_source(irq)
        if source is None or not source.exists:
            return -E.EINVAL
        if level in (KVM_INTERRUPT_SET_LEVEL, KVM_INTERRUPT_SET):
            level = 1
        elif level == KVM_INTERRUPT_UNSET:
            level = 0
        if not source.lsi and level == 0:
            return 0
        if source.lsi:
            if level:
                if source.pq & PQ_PRESENTED:
                    return 0
                source.pq = PQ_PRESENTED
            else:
                source.pq = 0
        else:
            source.pq = ((source.pq << 1) & 3) | PQ_PRESENTED
        if source.pq == PQ_PRESENTED:
            self.deliver(None, irq, False)
        return 0

    # -- RTAS (kvmppc_xics_set_xive and friends) -------------------------------------------------------------
    def _write_xive(self, source: KSource, server: int, priority: int, saved: int) -> bool:
        source.server, source.priority, source.saved_priority = server, priority & 0xFF, saved & 0xFF
        if (source.masked_pending or source.resend) and priority != MASKED:
            source.masked_pending = source.resend = False
            return True
        return False

    def set_xive(self, irq: int, server: int, priority: int) -> None:
        source = self.find_source(irq)
        icp = self.icps.get(server)
        if source is None or icp is None:
            raise DeviceErrno(E.EINVAL)
        if self._write_xive(source, server, priority, priority):
            self.deliver(icp, irq, False)

    def get_xive(self, irq: int) -> tuple[int, int]:
        source = self.find_source(irq)
        if source is None:
            raise DeviceErrno(E.EINVAL)
        return source.server, source.priority

    def int_on(self, irq: int) -> None:
        source = self.find_source(irq)
        if source is None:
            raise DeviceErrno(E.EINVAL)
        icp = self.icps.get(source.server)
        if icp is None:
            raise DeviceErrno(E.EINVAL)
        if self._write_xive(source, source.server, source.saved_priority, source.saved_priority):
            self.deliver(icp, irq, False)

    def int_off(self, irq: int) -> None:
        source = self.find_source(irq)
        if source is None:
            raise DeviceErrno(E.EINVAL)
        self._write_xive(source, source.server, MASKED, source.priority)

    # -- device attributes and ONE_REG ---------------------------------------------------------------------
    def set_source(self, irq: int, value: int) -> None:
        """xics_set_source: the state word; PENDING asks for a delivery at once."""
        self.blocks.add(irq >> ICS_SHIFT)  # the ICS block is created before any check
        word = XicsSourceWord.unpack(value)
        if word.priority != MASKED and word.server not in self.icps:
            raise DeviceErrno(E.EINVAL)
        source = self.find_source(irq)
        source.server, source.saved_priority = word.server, word.priority
        source.priority = MASKED if word.masked else word.priority
        source.resend = source.masked_pending = False
        source.lsi = word.lsi
        source.pq = 0
        if word.presented or word.pending:
            source.pq |= PQ_PRESENTED
        if word.queued:
            source.pq |= PQ_QUEUED
        source.exists = True
        if word.pending:
            self.deliver(None, irq, False)

    def get_source(self, irq: int) -> int:
        source = self.sources.get(irq) if irq >> ICS_SHIFT in self.blocks else None
        if source is None or not source.exists:
            raise DeviceErrno(E.ENOENT)
        masked = source.priority == MASKED
        pending = (bool(source.pq & PQ_PRESENTED) if source.lsi
                   else source.masked_pending or source.resend)
        return XicsSourceWord(source.server, source.saved_priority if masked else source.priority,
                              lsi=source.lsi, masked=masked, pending=pending,
                              presented=bool(source.pq & PQ_PRESENTED),
                              queued=bool(source.pq & PQ_QUEUED)).pack()

    def get_icp(self, server: int) -> int:
        icp = self.icps[server]
        return IcpStateWord(icp.cppr, icp.xisr, icp.mfrr, icp.pending_pri).pack()

    def set_icp(self, server: int, value: int) -> None:
        """kvmppc_xics_set_icp: the new state must be consistent; a displaced XISR is not
        rejected (userspace restores sources to match), but a less favoured MFRR resends."""
        icp = self.icps[server]
        cppr, xisr, mfrr, pending = IcpStateWord.unpack(value)
        if xisr == 0:
            if pending != 0xFF:
                raise DeviceErrno(E.EINVAL)
        elif xisr == XICS_IPI:
            if pending != mfrr or pending >= cppr:
                raise DeviceErrno(E.EINVAL)
        elif pending >= mfrr or pending >= cppr or self.find_source(xisr) is None:
            raise DeviceErrno(E.EINVAL)
        resend = False
        if mfrr > icp.mfrr:
            resend, icp.need_resend = icp.need_resend, False
        icp.cppr, icp.xisr, icp.mfrr, icp.pending_pri = cppr, xisr, mfrr, pending
        if resend:
            self.check_resend(icp)


class XicsDevice(KvmDevice):
    """KVM_DEV_TYPE_XICS on a host without a XIVE: the kvm-xics device (POWER8, POWER9 booted
    xive=off, nested hypervisors). Only the source attributes exist, any server number may connect
    (once), and the hypercalls and RTAS calls are :class:`KernelXics`'s."""

    kind = "kvm-xics"

    def __init__(self, kvm, fd: int) -> None:
        super().__init__(kvm, fd)
        self.state = KernelXics()

    def injectable(self, call: str, group: int | None = None, attr: int | None = None) -> set[int]:
        """The errnos this device can meet on its own in `call` now (see host.faults)."""
        if call == "set_attr" and group == KVM_DEV_XICS_GRP_SOURCES:
            in_range = KVMPPC_XICS_FIRST_IRQ <= attr < KVMPPC_XICS_NR_IRQS
            return {E.ENOMEM} if in_range and attr >> ICS_SHIFT not in self.state.blocks else set()
        if call == "enable_cap":  # attr: the server number; EEXIST comes before the kzalloc
            return {E.ENOMEM} if attr not in self.state.icps else set()
        return set()

    def has_attr(self, group: int, attr: int) -> bool:
        return group == KVM_DEV_XICS_GRP_SOURCES and KVMPPC_XICS_FIRST_IRQ <= attr < KVMPPC_XICS_NR_IRQS

    def set_attr(self, group: int, attr: int, value, fault: int = 0) -> None:
        if group == KVM_DEV_XICS_GRP_SOURCES:
            if not KVMPPC_XICS_FIRST_IRQ <= attr < KVMPPC_XICS_NR_IRQS:
                raise DeviceErrno(E.ENOENT)
            if fault:
                raise DeviceErrno(fault)  # kvmppc_xics_create_ics: no block made
            self.state.set_source(attr, value)
            return
        raise DeviceErrno(E.ENXIO)  # no KVM_DEV_XICS_GRP_CTRL here, not even NR_SERVERS

    def get_attr(self, group: int, attr: int):
        if group == KVM_DEV_XICS_GRP_SOURCES:
            return self.state.get_source(attr)
        raise DeviceErrno(E.ENXIO)

    def connect_vcpu(self, vcpu: KvmVcpu, server: int, fault: int = 0) -> None:
        """kvmppc_xics_create_icp: any server number, but only once."""
        if server in self.state.icps:
            raise DeviceErrno(E.EEXIST)
        if fault:
            raise DeviceErrno(fault)
        vcpu.attach(self, server)
        self.state.connect_icp(server)

    # -- what the VM routes here --------------------------------------------------------------------
    def get_icp(self, server: int) -> int:
        return self.state.get_icp(server)

    def set_icp(self, server: int, value: int) -> None:
        self.state.set_icp(server, value)

    def output(self, server: int) -> bool:
        icp = self.state.icps.get(server)
        return bool(icp and icp.out_ee)

    def set_irq(self, irq: int, level: int) -> int:
        return self.state.irq_line(irq, level)

    def hcall(self, server: int, name: str, args) -> tuple[int, ...]:
        """kvmppc_xics_hcall for a connected vCPU."""
        xics = self.state
        icp = xics.icps.get(server)
        if icp is None:
            return (H_HARDWARE,)
        if name == "H_XIRR":
            return (H_SUCCESS, xics.h_xirr(icp))
        if name == "H_XIRR_X":
            return (H_SUCCESS, xics.h_xirr(icp), self.kvm.timebase())
        if name == "H_IPOLL":
            rc, xirr, mfrr = xics.h_ipoll(args[0])
            return (rc,) if rc else (rc, xirr, mfrr)
        if name == "H_CPPR":
            xics.h_cppr(icp, args[0])
            return (H_SUCCESS,)
        if name == "H_EOI":
            return (xics.h_eoi(icp, args[0] & 0xFFFFFFFF),)
        return (xics.h_ipi(args[0], args[1]),)  # H_IPI

    def set_xive(self, irq: int, server: int, priority: int) -> int:
        return self._rtas(self.state.set_xive, irq, server, priority)

    def get_xive(self, irq: int) -> tuple[int, int, int]:
        try:
            server, priority = self.state.get_xive(irq)
        except DeviceErrno as exc:
            return -exc.errno, 0, 0
        return 0, server, priority

    def int_on(self, irq: int) -> int:
        return self._rtas(self.state.int_on, irq)

    def int_off(self, irq: int) -> int:
        return self._rtas(self.state.int_off, irq)

    @staticmethod
    def _rtas(fn, *args) -> int:
        try:
            fn(*args)
        except DeviceErrno as exc:
            return -exc.errno
        return 0

    def release(self) -> None:
        self.state = KernelXics()
        super().release()
