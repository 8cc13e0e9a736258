"""The Linux sPAPR XIVE driver of a pseries guest (arch/powerpc/sysdev/xive: spapr.c, common.c;
spec/linux.md B.2): a 64K event queue per CPU, the CPPR opened by a TIMA store, one IPI per CPU,
H_INT_SET_SOURCE_CONFIG to route, ACK on the TIMA, the queue read by its generation bit, EOI on
the ESB (H_INT_ESB for LSIs), and the kexec teardown that ends in H_INT_RESET.
"""

from __future__ import annotations

from ..arch.xive import (XIVE_ESB_LOAD_EOI, XIVE_ESB_SET_PQ_00, XIVE_ESB_SET_PQ_01,
                         XIVE_ESB_SET_PQ_10)
from ..errors import StateError
from .driver import Driver, Handled

MINUS_ONE = (1 << 64) - 1
XIVE_SRC_H_INT_ESB, XIVE_SRC_LSI, XIVE_SRC_TRIGGER, XIVE_SRC_STORE_EOI = 0x8, 0x4, 0x2, 0x1
XIVE_ESB_VAL_Q = 0x1
XIVE_BAD_IRQ = 0x7FFFFFFF  # the EISN of an unrouted source; dropped if ever popped
IPI_EISN = 0x10  # the Linux irq number of the IPIs; device EISNs start above it
QUEUE_AREA = 0x1000_0000  # where this guest keeps its event queues (64K each)
TM_SPC_ACK_OS_REG, TM_QW1_OS_CPPR = 0x810, 0x11


class _XiveSource:
    """What Linux keeps per interrupt (struct xive_irq_data)."""

    __slots__ = ("lisn", "kind", "flags", "eoi_page", "trig_page", "eisn", "saved_p", "stale_p",
                 "masked", "server", "priority")

    def __init__(self, lisn, kind, flags, eoi_page, trig_page, eisn):
        self.lisn, self.kind, self.flags = lisn, kind, flags
        self.eoi_page, self.trig_page, self.eisn = eoi_page, trig_page, eisn
        self.saved_p, self.stale_p, self.masked, self.server, self.priority = False, False, True, 0, 0


class _XiveQueue:
    __slots__ = ("qpage", "idx", "toggle", "msk")

    def __init__(self, qpage: int, shift: int) -> None:
        self.qpage, self.idx, self.toggle, self.msk = qpage, 0, 0, (1 << (shift - 2)) - 1


class XiveDriver(Driver):
    """What a Linux pseries guest does with XIVE: a 64K event queue per CPU at the one priority it
    picks from ibm,plat-res-int-priorities (6 on QEMU), CPPR 0xff by a TIMA store, one IPI source
    per CPU triggered by an ESB store, H_INT_SET_SOURCE_CONFIG to route, ACK on the TIMA, the
    queue scanned by its generation bit, EOI by an ESB load (H_INT_ESB for LSIs)."""

    def __init__(self, machine) -> None:
        self.m = machine
        self.handled: list[Handled] = []
        self.warnings: list[str] = []
        path, node = machine.intc_node()
        self.tima = node["reg"][2]  # resource 1: the OS ring page
        reserved = machine.fdt["/"].get("ibm,plat-res-int-priorities", [])
        taken = {p for base, count in zip(reserved[::2], reserved[1::2])
                 for p in range(base, min(base + count, 8))}
        free = [p for p in range(8) if p not in taken]
        if not free:
            raise StateError("no valid priority found in 'ibm,plat-res-int-priorities'")
        self.priority = max(free)
        sizes = node["ibm,xive-eq-sizes"]
        self.qshift = 16 if 16 in sizes else sizes[-1]
        base, count = node["ibm,xive-lisn-ranges"][:2]
        self.free_lisns = list(range(base, base + count))
        self.sources: dict[int, _XiveSource] = {}  # by LISN
        self.by_eisn: dict[int, _XiveSource] = {}
        self.ipis: dict[int, _XiveSource] = {}  # by vCPU
        self.queues: dict[tuple[int, int], _XiveQueue] = {}
        self.pending: dict[int, int] = {}  # vCPU -> pending priority bitmap
        self.cppr: dict[int, int] = {}
        self.replay: dict[int, bool] = {}  # vCPU -> the EOI-time peek found more in a queue
        self.next_eisn = IPI_EISN + 1
        self.fuzz = 0  # xive_pick_irq_target's static counter
        self.next_queue = QUEUE_AREA

    def _hcall(self, vcpu: int, name: str, *args: int) -> tuple[int, ...]:
        answer = self.m.hcall(vcpu, name, *args)
        if answer[0] != 0:
            self.warnings.append(f"{name} returned {answer[0]}")
        return answer

    # -- boot ----------------------------------------------------------------------------------------------
    def init(self) -> None:
        """xive_core_init on the boot CPU (queue, CPPR 0xff, IPI), then each secondary as it
        comes up (xive_smp_prepare_cpu: queue and IPI; xive_smp_setup_cpu: CPPR 0xff)."""
        self.online = set(self.m.vcpus)
        for n, vcpu in enumerate(self.m.vcpus):
            self.pending[vcpu] = 0
            self.ensure_queue(vcpu, self.priority)
            if n == 0:
                self._open_cppr(vcpu)
            self._setup_ipi(vcpu)
            if n:
                self._open_cppr(vcpu)

    def _open_cppr(self, vcpu: int) -> None:
        """xive_setup_cpu: a byte store of 0xff to the OS CPPR "to enable flow of interrupts"."""
        self.cppr[vcpu] = 0xFF
        self.m.mmio_write(vcpu, self.tima + TM_QW1_OS_CPPR, 1, 0xFF)

    def _setup_ipi(self, vcpu: int) -> None:
        """xive_setup_cpu_ipi: a LISN from ibm,xive-lisn-ranges, routed to the CPU, unmasked."""
        if not self.free_lisns:
            self.warnings.append(f"Failed to allocate IPI on CPU {vcpu}")
            return
        lisn = self.free_lisns.pop(0)
        source = self._populate(lisn, "ipi", IPI_EISN)
        self.ipis[vcpu] = source
        self._configure(source, vcpu, self.priority)
        self._unmask(source)

    def online_cpu(self, vcpu: int) -> None:
        """A hot-plugged CPU coming up (start_secondary): its queue and IPI, then its CPPR."""
        self.online.add(vcpu)
        self.pending[vcpu] = 0
        self.ensure_queue(vcpu, self.priority)
        self._setup_ipi(vcpu)
        self._open_cppr(vcpu)

    def offline_cpu(self, vcpu: int) -> None:
        """Before a CPU is unplugged (xive_smp_disable_cpu, migrate_irqs): its interrupts are
        moved to the boot CPU, its CPPR closed, its IPI masked and freed, its queue disabled."""
        self.online.discard(vcpu)
        target = next(v for v in self.m.vcpus if v != vcpu)
        for source in list(self.sources.values()):
            if source.kind != "ipi" and source.server == vcpu and not source.masked:
                self.ensure_queue(target, source.priority)
                self._configure(source, target, source.priority)
        self._teardown_cpu(vcpu)
        self.pending.pop(vcpu, None)

    def _teardown_cpu(self, vcpu: int) -> None:
        """xive_teardown_cpu: CPPR 0 by a TIMA store, the IPI masked, unrouted and its LISN
        freed, every queue of the CPU disabled."""
        self.cppr[vcpu] = 0
        self.m.mmio_write(vcpu, self.tima + TM_QW1_OS_CPPR, 1, 0)
        ipi = self.ipis.pop(vcpu, None)
        if ipi is not None:
            self.mask(ipi.lisn)
            self._hcall(vcpu, "H_INT_SET_SOURCE_CONFIG", 0x2, ipi.lisn, vcpu, 0xFF, XIVE_BAD_IRQ)
            self.sources.pop(ipi.lisn, None)
            self.free_lisns.insert(0, ipi.lisn)
        for key in [key for key in self.queues if key[0] == vcpu]:
            self._hcall(vcpu, "H_INT_SET_QUEUE_CONFIG", 0, vcpu, key[1], 0, 0)
            del self.queues[key]

    def shutdown(self) -> None:
        """What kexec and kdump do (xive_teardown_cpu on every CPU, then xive_shutdown): CPPR 0,
        each IPI masked and unrouted, its LISN freed, each queue disabled, then H_INT_RESET."""
        for vcpu in self.m.vcpus:
            self._teardown_cpu(vcpu)
        self._hcall(self.m.vcpus[0], "H_INT_RESET", 0)
        self.pending = {vcpu: 0 for vcpu in self.m.vcpus}

    def ensure_queue(self, vcpu: int, priority: int) -> None:
        """setup_queue: H_INT_GET_QUEUE_INFO then H_INT_SET_QUEUE_CONFIG with a zeroed page."""
        if (vcpu, priority) in self.queues:
            return
        qpage = self.next_queue
        self.next_queue += 1 << self.qshift
        self.m.memory.zero(qpage, 1 << self.qshift)
        self._hcall(vcpu, "H_INT_GET_QUEUE_INFO", 0, vcpu, priority)
        rc = self._hcall(vcpu, "H_INT_SET_QUEUE_CONFIG", 1, vcpu, priority, qpage, self.qshift)[0]
        if rc == 0:
            self.queues[(vcpu, priority)] = _XiveQueue(qpage, self.qshift)

    # -- sources -------------------------------------------------------------------------------------------
    def _populate(self, lisn: int, kind: str, eisn: int) -> _XiveSource:
        answer = self._hcall(self.m.vcpus[0], "H_INT_GET_SOURCE_INFO", 0, lisn)
        flags, eoi_page, trig_page = (answer[1], answer[2], answer[3]) if answer[0] == 0 else (0, 0, 0)
        if flags & XIVE_SRC_TRIGGER:
            trig_page = eoi_page
        source = _XiveSource(lisn, kind, flags, eoi_page, trig_page, eisn)
        self.sources[lisn] = source
        self.by_eisn[eisn] = source
        return source

    def _esb_load(self, vcpu: int, source: _XiveSource, offset: int) -> int:
        if source.flags & XIVE_SRC_H_INT_ESB:
            answer = self._hcall(vcpu, "H_INT_ESB", 0, source.lisn, offset, 0)
            return answer[1] if answer[0] == 0 else MINUS_ONE
        return self.m.mmio_read(vcpu, source.eoi_page + offset, 8)

    def _trigger(self, vcpu: int, source: _XiveSource) -> None:
        if source.flags & XIVE_SRC_H_INT_ESB:
            self._hcall(vcpu, "H_INT_ESB", 1, source.lisn, 0, 0)
        else:
            self.m.mmio_write(vcpu, source.trig_page, 8, 0)

    def _configure(self, source: _XiveSource, server: int, priority: int) -> None:
        source.server, source.priority = server, priority
        self._hcall(self.m.vcpus[0], "H_INT_SET_SOURCE_CONFIG", 0x2, source.lisn, server, priority,
                    source.eisn)

    def _unmask(self, source: _XiveSource) -> None:
        """Load SET_PQ_10 if a P was saved at mask time (its event still sits in a queue), else
        SET_PQ_00 (xive_do_source_set_mask)."""
        self._esb_load(self.m.vcpus[0], source,
                       XIVE_ESB_SET_PQ_10 if source.saved_p else XIVE_ESB_SET_PQ_00)
        if not source.saved_p:
            source.stale_p = False
        source.saved_p, source.masked = False, False

    def map(self, lisn: int, lsi: bool = False) -> int:
        """irq_create_mapping (xive_irq_domain_map): the next Linux irq number, which becomes the
        EISN; the source's info, then PQ=01, "off by default". Returns the irq number."""
        source = self._populate(lisn, "lsi" if lsi else "msi", self.next_eisn)
        self.next_eisn += 1
        self._esb_load(self.m.vcpus[0], source, XIVE_ESB_SET_PQ_01)
        return source.eisn

    def pick_target(self) -> int:
        """xive_pick_irq_target for an interrupt with the default affinity: a static counter
        picks the starting CPU among the online ones (xive_find_target_in_mask)."""
        cpu = self.m.vcpus[self.fuzz % len(self.m.vcpus)]
        self.fuzz += 1
        return cpu

    def startup(self, lisn: int, server: int, priority: int | None = None, lsi: bool = False) -> None:
        """Map the interrupt unless mapped already, route it, unmask it."""
        priority = self.priority if priority is None else priority
        if lisn not in self.sources:
            self.map(lisn, lsi)
        source = self.sources[lisn]
        for vcpu in {server}:
            self.ensure_queue(vcpu, priority)
        self._configure(source, server, priority)
        self._unmask(source)

    def mask(self, lisn: int) -> None:
        """disable_irq: SET_PQ_01; a P that is not stale (its event was not handled while masked)
        is saved. Disabling a disabled IRQ touches nothing."""
        source = self.sources[lisn]
        if source.masked:
            return
        old = self._esb_load(self.m.vcpus[0], source, XIVE_ESB_SET_PQ_01)
        if not source.stale_p and old & 0x2:  # a failed H_INT_ESB (-1) counts as P, as in Linux
            source.saved_p = True
        source.stale_p = False
        source.masked = True

    def unmask(self, lisn: int, server: int, priority: int | None = None) -> None:
        """enable_irq, routing the IRQ first if asked; the kernel refuses an unbalanced enable."""
        source = self.sources[lisn]
        if not source.masked:
            self.warnings.append(f"Unbalanced enable for IRQ {lisn}")
            return
        priority = source.priority if priority is None else priority
        if (server, priority) != (source.server, source.priority):
            self.ensure_queue(server, priority)
            self._configure(source, server, priority)
        self._unmask(source)

    def set_affinity(self, lisn: int, server: int) -> None:
        """xive_irq_set_affinity: route to the new target, masked or not (masking is the PQ's)."""
        source = self.sources[lisn]
        self.ensure_queue(server, source.priority)
        self._configure(source, server, source.priority)

    def send_ipi(self, sender: int, target: int) -> None:
        """xive_cause_ipi: an 8-byte store of 0 to the target CPU's IPI trigger page."""
        self._trigger(sender, self.ipis[target])

    # -- the interrupt path --------------------------------------------------------------------------------
    def _scan(self, vcpu: int, peek: bool) -> int:
        """xive_scan_interrupts: most favoured pending priority first, an entry is valid when its
        generation bit differs from the queue's toggle; an empty queue clears its pending bit.
        The CPPR follows what was found (0xff for nothing), even when only peeking."""
        irq, prio = 0, 0
        pending = self.pending[vcpu]
        read_u32 = self.m.memory.read_u32
        while pending:
            prio = (pending & -pending).bit_length() - 1
            q = self.queues.get((vcpu, prio))
            if q is not None:
                entry = read_u32(q.qpage + 4 * q.idx)
                if entry >> 31 != q.toggle:
                    irq = entry & 0x7FFFFFFF
                    if peek:
                        break
                    q.idx = (q.idx + 1) & q.msk
                    if q.idx == 0:
                        q.toggle ^= 1
                    if irq != XIVE_BAD_IRQ:
                        break
                    irq = 0  # an event of a source shut down while it was queued: dropped
                    continue
            pending &= ~(1 << prio)
        self.pending[vcpu] = pending
        if irq == 0:
            prio = 0xFF
        if prio != self.cppr[vcpu]:  # even when peeking: the EOI-time peek reopens the CPPR
            self.cppr[vcpu] = prio
            self.m.mmio_write(vcpu, self.tima + TM_QW1_OS_CPPR, 1, prio)
        return irq

    def _update_pending(self, vcpu: int) -> None:
        ack = self.m.mmio_read(vcpu, self.tima + TM_SPC_ACK_OS_REG, 2)
        cppr, nsr = ack & 0xFF, (ack >> 8) & 0xFF
        if nsr & 0x80 and cppr != 0xFF:
            self.pending[vcpu] |= 1 << cppr
            if cppr >= self.cppr[vcpu]:
                self.warnings.append(f"CPU {vcpu} odd ack CPPR, got {cppr} at {self.cppr[vcpu]}")
            self.cppr[vcpu] = cppr

    def handle_one(self, vcpu: int) -> Handled | None:
        """xive_get_irq, the handler, then xive_irq_eoi: the source EOI and the queue peek that
        reopens the CPPR (xive_do_queue_eoi), noting whether the queue asks for a replay."""
        self._update_pending(vcpu)
        eisn = self._scan(vcpu, peek=False)
        self.replay[vcpu] = False
        if eisn == 0:
            return Handled(vcpu, "spurious", 0)
        source = self.by_eisn.get(eisn)
        if eisn == IPI_EISN:
            source = self.ipis[vcpu]
        if source is None:
            self.warnings.append(f"xive: got interrupt {eisn} without descriptor, dropping")
            return Handled(vcpu, "unexpected", eisn)
        if source.kind == "lsi":
            self.m.set_irq(source.lisn, 0)  # the device handler acks its device
        if source.masked:
            source.stale_p = True  # xive_irq_eoi: a disabled IRQ gets no source EOI
        elif source.flags & XIVE_SRC_LSI:
            self._esb_load(vcpu, source, XIVE_ESB_LOAD_EOI)  # the EOI cycle re-triggers a level
        else:
            old = self._esb_load(vcpu, source, XIVE_ESB_SET_PQ_00)
            if old & XIVE_ESB_VAL_Q:  # -1 from a failed H_INT_ESB re-triggers, as in Linux
                self._trigger(vcpu, source)
        source.saved_p = False  # no longer occupies a queue slot
        self.replay[vcpu] = self._scan(vcpu, peek=True) != 0  # force_external_irq_replay
        handled = Handled(vcpu, source.kind, source.lisn)
        self.handled.append(handled)
        return handled

    def _has_work(self, vcpu: int) -> bool:
        return self._scan(vcpu, peek=True) != 0

    def handle(self, vcpu: int, limit: int = 10_000) -> list[Handled]:
        """Take interrupts while the line is raised or the queue asks for a replay."""
        out = []
        more = self.m.irq_pending(vcpu) or self._has_work(vcpu)
        while more and len(out) < limit:
            handled = self.handle_one(vcpu)
            out.append(handled)
            if handled.kind == "spurious" and not self.m.irq_pending(vcpu):
                break
            more = self.replay[vcpu] or self.m.irq_pending(vcpu)
        return out
