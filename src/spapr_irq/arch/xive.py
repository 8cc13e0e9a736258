"""XIVE as the sPAPR machine uses it: sources (ESB PQ bits), the EAS table, ENDs with event queues
in guest memory, and the thread interrupt contexts the TIMA exposes (spec/qemu.md 6.1-6.6).

Plain state machines with no knowledge of KVM or of the machine. A trigger on a source runs the PQ
state machine; if it notifies, the router looks the LISN up in the EAT, writes the event into the
END's queue (big-endian, generation bit on top) and, unless the END's ESn coalesces it, posts the
priority in the OS ring of the vCPU whose CAM line matches, raising its external-interrupt line.
The same router serves QEMU's emulation and, as the hardware behind it, the in-kernel device.
"""

from __future__ import annotations

# --- EAS (64-bit, PPC bit 0 = MSB) -----------------------------------------------------------------------
EAS_VALID = 1 << 63
EAS_END_BLOCK_SHIFT, EAS_END_BLOCK_MASK = 56, 0xF  # bits 4-7
EAS_END_INDEX_SHIFT, EAS_END_INDEX_MASK = 32, 0xFFFFFF  # bits 8-31
EAS_MASKED = 1 << 31  # bit 32
EAS_END_DATA_MASK = 0x7FFFFFFF  # bits 33-63

# --- END words (32-bit, PPC bit 0 = MSB) -----------------------------------------------------------------
END_W0_VALID = 1 << 31
END_W0_ENQUEUE = 1 << 30
END_W0_UCOND_NOTIFY = 1 << 29
END_W0_SILENT_ESCALATE = 1 << 24
END_W0_QSIZE_SHIFT, END_W0_QSIZE_MASK = 16, 0xF  # bits 12-15
END_W1_ESn_SHIFT = 30  # bits 0-1 (P, Q)
END_W1_ESn_Q = 1 << 30
END_W1_ESe_Q = 1 << 28
END_W1_GENERATION = 1 << 22  # bit 9
END_W1_PAGE_OFF_MASK = 0x3FFFFF  # bits 10-31
END_W6_FORMAT_BIT = 1 << 23  # bit 8
END_W6_NVT_BLOCK_SHIFT, END_W6_NVT_BLOCK_MASK = 19, 0xF  # bits 9-12
END_W6_NVT_INDEX_MASK = 0x7FFFF  # bits 13-31
END_W7_F0_PRIORITY_SHIFT = 16  # bits 8-15

# --- ESB --------------------------------------------------------------------------------------------------
XIVE_ESB_RESET, XIVE_ESB_OFF, XIVE_ESB_PENDING, XIVE_ESB_QUEUED = 0b00, 0b01, 0b10, 0b11
XIVE_STATUS_ASSERTED = 0x4
XIVE_ESB_LOAD_EOI = 0x000
XIVE_ESB_STORE_EOI = 0x400
XIVE_ESB_GET = 0x800
XIVE_ESB_INJECT = 0x800
XIVE_ESB_SET_PQ_00 = 0xC00
XIVE_ESB_SET_PQ_01 = 0xD00
XIVE_ESB_SET_PQ_10 = 0xE00
XIVE_ESB_SET_PQ_11 = 0xF00
ESB_INVALID = (1 << 64) - 1  # what a refused load returns (-1)

#: PQ transitions: (new PQ, notify) by old PQ, for a trigger and for an EOI.
TRIGGER = {0b00: (0b10, True), 0b10: (0b11, False), 0b11: (0b11, False), 0b01: (0b01, False)}
EOI = {0b00: (0b00, False), 0b10: (0b00, False), 0b11: (0b10, True), 0b01: (0b01, False)}

# --- TIMA -------------------------------------------------------------------------------------------------
TM_QW0_USER, TM_QW1_OS, TM_QW2_HV_POOL, TM_QW3_HV_PHYS = 0x00, 0x10, 0x20, 0x30
TM_NSR, TM_CPPR, TM_IPB, TM_LSMFB, TM_ACK_CNT, TM_INC, TM_AGE, TM_PIPR = range(8)
TM_WORD2 = 0x8
TM_QW1W2_VO = 1 << 31
TM_QW1_NSR_EO = 0x80
TM_QW3_NSR_HE_PHYS = 0x80  # HE field = 0b10 (physical) in bits 0-1
TM_SPECIAL_OP = 0x800
TM_SPC_ACK_OS_REG = 0x810
TM_SPC_SET_OS_PENDING = 0x812
TM_SPC_PULL_OS_CTX = 0x818
TM_SPC_ACK_HV_REG = 0x830
TM_SPC_PULL_POOL_CTX = 0x828
TM_SPC_PULL_PHYS_CTX = 0x838
TM_SHIFT = 16
XIVE_TM_HW_PAGE, XIVE_TM_HV_PAGE, XIVE_TM_OS_PAGE, XIVE_TM_USER_PAGE = range(4)
XIVE_PRIORITY_MAX = 7

#: Byte access per TIMA page: 1 write, 2 read, 3 both (QEMU's xive_tm_*_view tables).
_HW_VIEW = bytes([3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
                  3, 3, 3, 3, 3, 3, 0, 2, 3, 3, 3, 3, 0, 0, 0, 0,
                  0, 0, 3, 3, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
                  3, 3, 3, 3, 0, 3, 0, 2, 3, 0, 0, 3, 3, 3, 3, 0])
_HV_VIEW = bytes([3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
                  3, 3, 3, 3, 3, 3, 0, 2, 3, 3, 3, 3, 0, 0, 0, 0,
                  0, 0, 3, 3, 0, 0, 0, 0, 0, 3, 3, 3, 0, 0, 0, 0,
                  3, 3, 3, 3, 0, 3, 0, 2, 3, 0, 0, 3, 0, 0, 0, 0])
_OS_VIEW = bytes([3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
                  2, 3, 2, 2, 2, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,
                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
_USER_VIEW = bytes([3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] + [0] * 48)
TM_VIEWS = (_HW_VIEW, _HV_VIEW, _OS_VIEW, _USER_VIEW)


def priority_to_ipb(priority: int) -> int:
    return 0 if priority > XIVE_PRIORITY_MAX else 1 << (XIVE_PRIORITY_MAX - priority)


def ipb_to_pipr(ipb: int) -> int:
    """The most favoured pending priority in an IPB, 0xff if none."""
    if not ipb & 0xFF:
        return 0xFF
    return 8 - (ipb & 0xFF).bit_length()


def nvt_cam_line(block: int, index: int) -> int:
    """CAM line of an NVT: block in bits 19+ above the 19-bit index."""
    return (block << 19) | index


def end_reset_value() -> list[int]:
    """spapr_xive_end_reset: all zero but ESe and ESn with Q set."""
    return [0, END_W1_ESe_Q | END_W1_ESn_Q, 0, 0, 0, 0, 0, 0]


def end_qaddr(end: list[int]) -> int:
    return ((end[2] & 0x0FFFFFFF) << 32) | end[3]


# ==========================================================================================================
# Sources
# ==========================================================================================================


class XiveSource:
    """`nr_irqs` sources, each a status byte: PQ in bits 0-1, ASSERTED, plus the LSI map.

    Every operation returns whether the source notifies the router."""

    def __init__(self, nr_irqs: int, reset_pq: int = XIVE_ESB_OFF, store_eoi: bool = False) -> None:
        self.nr_irqs = nr_irqs
        self.reset_pq = reset_pq
        self.store_eoi = store_eoi
        self.status = bytearray([reset_pq]) * nr_irqs
        self.lsi: set[int] = set()
        self.errors: list[str] = []  # guest errors QEMU would log (LOG_GUEST_ERROR)

    def set_lsi(self, srcno: int, lsi: bool) -> None:
        if lsi:
            self.lsi.add(srcno)
        else:
            self.lsi.discard(srcno)

    def pq(self, srcno: int) -> int:
        return self.status[srcno] & 0b11

    def set_pq(self, srcno: int, pq: int) -> int:
        """Set PQ, returning the old value (the SET_PQ_xx loads)."""
        old = self.status[srcno] & 0b11
        self.status[srcno] = (self.status[srcno] & ~0b11) | (pq & 0b11)
        return old

    def asserted(self, srcno: int) -> bool:
        return bool(self.status[srcno] & XIVE_STATUS_ASSERTED)

    def _set_asserted(self, srcno: int, level: bool) -> None:
        if level:
            self.status[srcno] |= XIVE_STATUS_ASSERTED
        else:
            self.status[srcno] &= ~XIVE_STATUS_ASSERTED & 0xFF

    def trigger(self, srcno: int) -> bool:
        new, notify = TRIGGER[self.status[srcno] & 0b11]
        self.status[srcno] = (self.status[srcno] & ~0b11) | new
        if srcno in self.lsi and new == XIVE_ESB_QUEUED:
            self.errors.append(f"XIVE: queued an event on LSI IRQ {srcno}")
        return notify

    def _lsi_trigger(self, srcno: int) -> bool:
        old = self.status[srcno] & 0b11
        self._set_asserted(srcno, True)
        if old == XIVE_ESB_RESET:
            self.set_pq(srcno, XIVE_ESB_PENDING)
            return True
        return False

    def eoi(self, srcno: int) -> bool:
        new, notify = EOI[self.status[srcno] & 0b11]
        self.status[srcno] = (self.status[srcno] & ~0b11) | new
        if srcno in self.lsi and self.asserted(srcno):
            notify = self._lsi_trigger(srcno)
        return notify

    def set_irq(self, srcno: int, level: int) -> bool:
        """A device line: an MSI triggers on a non-zero value; an LSI follows the level."""
        if srcno in self.lsi:
            if level:
                return self._lsi_trigger(srcno)
            self._set_asserted(srcno, False)
            return False
        return self.trigger(srcno) if level else False

    # -- the ESB pages: even page triggers, odd page manages ----------------------------------------------
    def esb_load(self, srcno: int, trigger_page: bool, offset: int) -> tuple[int, bool]:
        """A load; returns (value, notify)."""
        if trigger_page:
            self.errors.append(f"XIVE: invalid load on IRQ {srcno} trigger page")
            return ESB_INVALID, False
        if offset < XIVE_ESB_GET:  # XIVE_ESB_LOAD_EOI
            notify = self.eoi(srcno)
            return int(notify), notify
        if offset < XIVE_ESB_SET_PQ_00:
            return self.pq(srcno), False
        return self.set_pq(srcno, (offset >> 8) & 0b11), False

    def esb_store(self, srcno: int, trigger_page: bool, offset: int) -> bool:
        """A store; returns notify."""
        if trigger_page or offset < XIVE_ESB_STORE_EOI:
            return self.trigger(srcno)
        if offset < XIVE_ESB_INJECT:
            if not self.store_eoi:
                self.errors.append(f"XIVE: invalid Store EOI for IRQ {srcno}")
                return False
            return self.eoi(srcno)
        if offset < XIVE_ESB_SET_PQ_00:
            return True  # XIVE_ESB_INJECT: notify whatever the PQ bits say
        self.set_pq(srcno, (offset >> 8) & 0b11)
        return False

    def reset(self) -> None:
        """Every PQ back to `reset_pq`, levels dropped; the LSI map is configuration and stays."""
        self.status[:] = bytearray([self.reset_pq]) * self.nr_irqs


# ==========================================================================================================
# Thread interrupt contexts (the TIMA)
# ==========================================================================================================


class XiveTCTX:
    """A vCPU's thread interrupt context: the 64 bytes of the four TIMA rings, and its line."""

    __slots__ = ("vcpu_id", "regs", "output")

    def __init__(self, vcpu_id: int) -> None:
        self.vcpu_id = vcpu_id
        self.regs = bytearray(64)
        self.output = False
        self.reset()

    def reset(self) -> None:
        self.regs[:] = bytes(64)
        self.regs[TM_QW1_OS + TM_LSMFB] = 0xFF
        self.regs[TM_QW1_OS + TM_ACK_CNT] = 0xFF
        self.regs[TM_QW1_OS + TM_AGE] = 0xFF
        self.regs[TM_QW1_OS + TM_PIPR] = 0xFF
        self.regs[TM_QW3_HV_PHYS + TM_PIPR] = 0xFF
        self.output = False

    # -- CAM lines -----------------------------------------------------------------------------------------
    def set_os_cam(self, cam: int) -> None:
        """OS ring word 2 := VO | cam, big-endian (sPAPR does this at every CPU reset)."""
        self.set_word2(TM_QW1_OS, TM_QW1W2_VO | cam)

    def set_word2(self, ring: int, word: int) -> None:
        self.regs[ring + TM_WORD2:ring + TM_WORD2 + 4] = word.to_bytes(4, "big")

    def word2(self, ring: int) -> int:
        return int.from_bytes(self.regs[ring + TM_WORD2:ring + TM_WORD2 + 4], "big")

    @property
    def os_cam(self) -> int:
        return self.word2(TM_QW1_OS)

    # -- presentation ----------------------------------------------------------------------------------------
    def notify(self, ring: int = TM_QW1_OS) -> None:
        regs = self.regs
        regs[ring + TM_PIPR] = ipb_to_pipr(regs[ring + TM_IPB])
        if regs[ring + TM_PIPR] < regs[ring + TM_CPPR]:
            regs[ring + TM_NSR] |= TM_QW1_NSR_EO if ring == TM_QW1_OS else TM_QW3_NSR_HE_PHYS
            self.output = True

    def ipb_update(self, priority: int, ring: int = TM_QW1_OS) -> None:
        self.regs[ring + TM_IPB] |= priority_to_ipb(priority)
        self.notify(ring)

    def accept(self, ring: int = TM_QW1_OS) -> int:
        """The ACK cycle: (NSR << 8) | CPPR; with an exception pending, CPPR := PIPR."""
        regs = self.regs
        nsr = regs[ring + TM_NSR]
        mask = TM_QW1_NSR_EO if ring == TM_QW1_OS else 0xC0
        self.output = False
        if nsr & mask:
            cppr = regs[ring + TM_PIPR]
            regs[ring + TM_CPPR] = cppr
            regs[ring + TM_IPB] &= ~priority_to_ipb(cppr) & 0xFF
            regs[ring + TM_PIPR] = ipb_to_pipr(regs[ring + TM_IPB])
            regs[ring + TM_NSR] &= ~mask & 0xFF
        return (nsr << 8) | regs[ring + TM_CPPR]

    def set_cppr(self, cppr: int, ring: int = TM_QW1_OS) -> None:
        if cppr > XIVE_PRIORITY_MAX:
            cppr = 0xFF
        self.regs[ring + TM_CPPR] = cppr
        self.notify(ring)

    # -- the TIMA: special operations, then raw register access ------------------------------------------
    def tm_write(self, offset: int, value: int, size: int) -> str | None:
        """A store at `offset` in the 4-page TIMA; returns a guest error text when refused."""
        handler = _OPS_BY_PAGE.get(((offset >> TM_SHIFT) & 0x3, offset & 0xFFF, size, True))
        if handler is not None:
            handler(self, value)
            return None
        if offset & TM_SPECIAL_OP:
            return f"XIVE: invalid write access at TIMA @{offset:#x}"
        return self._raw_write(offset, value, size)

    def tm_read(self, offset: int, size: int) -> tuple[int, str | None]:
        """A load; returns (value, guest error text or None). Refused loads read all ones."""
        handler = _OPS_BY_PAGE.get(((offset >> TM_SHIFT) & 0x3, offset & 0xFFF, size, False))
        if handler is not None:
            return handler(self, None), None
        if offset & TM_SPECIAL_OP:
            return (1 << (8 * size)) - 1, f"XIVE: invalid read access at TIMA @{offset:#x}"
        return self._raw_read(offset, size)

    @staticmethod
    def _mask(offset: int, size: int, write: bool) -> int:
        view = TM_VIEWS[(offset >> TM_SHIFT) & 0x3]
        reg = offset & 0x3F
        bit = 0x1 if write else 0x2
        mask = 0
        for i in range(size):
            if reg + i < 64 and view[reg + i] & bit:
                mask |= 0xFF << (8 * (size - i - 1))
        return mask

    def _raw_write(self, offset: int, value: int, size: int) -> str | None:
        mask = self._mask(offset, size, True)
        if size < 4 or not mask or offset & 0x30 == TM_QW0_USER:
            return f"XIVE: invalid write access at TIMA @{offset:#x}"
        reg = offset & 0x3F
        for i in range(size):
            shift = 8 * (size - i - 1)
            if (mask >> shift) & 0xFF:
                self.regs[reg + i] = (value >> shift) & 0xFF
        return None

    def _raw_read(self, offset: int, size: int) -> tuple[int, str | None]:
        mask = self._mask(offset, size, False)
        if size < 4 or not mask or offset & 0x30 == TM_QW0_USER:
            return (1 << (8 * size)) - 1, f"XIVE: invalid read access at TIMA @{offset:#x}"
        reg = offset & 0x3F
        value = 0
        for i in range(size):
            value |= (self.regs[reg + i] if reg + i < 64 else 0) << (8 * (size - i - 1))
        return value & mask, None


def _op_set_os_cppr(tctx: XiveTCTX, value) -> None:
    tctx.set_cppr(value & 0xFF, TM_QW1_OS)


def _op_push_os_ctx(tctx: XiveTCTX, value) -> None:
    """QEMU xive_tm_push_os_ctx + xive_tctx_need_resend: new CAM word; with VO, PIPR from IPB and notify."""
    word = value & 0xFFFFFFFF
    tctx.set_word2(TM_QW1_OS, word)
    if word & TM_QW1W2_VO:
        # sPAPR keeps no NVT table, so there is no NVT IPB backlog to merge (it is always 0);
        # the restored IPB alone decides PIPR, and the line is raised if PIPR < CPPR.
        tctx.notify(TM_QW1_OS)


def _op_set_hv_cppr(tctx: XiveTCTX, value) -> None:
    tctx.set_cppr(value & 0xFF, TM_QW3_HV_PHYS)


def _op_vt_push(tctx: XiveTCTX, value) -> None:
    tctx.regs[TM_QW3_HV_PHYS + TM_WORD2] = value & 0xFF


def _op_vt_poll(tctx: XiveTCTX, value) -> int:
    """QEMU xive_tm_vt_poll: the whole PHYS word-2 byte (masked with 0xff, not just VT)."""
    return tctx.regs[TM_QW3_HV_PHYS + TM_WORD2] & 0xFF


def _op_ack_os(tctx: XiveTCTX, value) -> int:
    return tctx.accept(TM_QW1_OS)


def _op_set_os_pending(tctx: XiveTCTX, value) -> None:
    tctx.regs[TM_QW1_OS + TM_IPB] |= priority_to_ipb(value & 0xFF)
    tctx.notify(TM_QW1_OS)


def _op_pull_os_ctx(tctx: XiveTCTX, value) -> int:
    """QEMU xive_tm_pull_os_ctx: return word 2, clear VO, lower the OS line (NSR/IPB/PIPR kept)."""
    word = tctx.word2(TM_QW1_OS)
    tctx.set_word2(TM_QW1_OS, word & ~TM_QW1W2_VO)
    tctx.output = False  # xive_tctx_reset_os_signal (QEMU >= 7.1)
    return word


def _op_ack_hv(tctx: XiveTCTX, value) -> int:
    return tctx.accept(TM_QW3_HV_PHYS)


def _op_pull_pool_ctx(tctx: XiveTCTX, value) -> int:
    word = tctx.word2(TM_QW2_HV_POOL)
    tctx.set_word2(TM_QW2_HV_POOL, word & ~(1 << 31))
    return word


def _op_pull_phys_ctx(tctx: XiveTCTX, value) -> int:
    byte = tctx.regs[TM_QW3_HV_PHYS + TM_WORD2]
    tctx.regs[TM_QW3_HV_PHYS + TM_WORD2] = byte & 0x7F
    return byte


#: (page, offset, size, write?) -> handler. A page may also use the ops of less privileged pages.
TM_OPERATIONS = {
    (XIVE_TM_OS_PAGE, TM_QW1_OS + TM_CPPR, 1, True): _op_set_os_cppr,
    (XIVE_TM_HV_PAGE, TM_QW1_OS + TM_WORD2, 4, True): _op_push_os_ctx,
    (XIVE_TM_HV_PAGE, TM_QW3_HV_PHYS + TM_CPPR, 1, True): _op_set_hv_cppr,
    (XIVE_TM_HV_PAGE, TM_QW3_HV_PHYS + TM_WORD2, 1, True): _op_vt_push,
    (XIVE_TM_HV_PAGE, TM_QW3_HV_PHYS + TM_WORD2, 1, False): _op_vt_poll,
    (XIVE_TM_OS_PAGE, TM_SPC_ACK_OS_REG, 2, False): _op_ack_os,
    (XIVE_TM_OS_PAGE, TM_SPC_SET_OS_PENDING, 1, True): _op_set_os_pending,
    (XIVE_TM_HV_PAGE, TM_SPC_PULL_OS_CTX, 4, False): _op_pull_os_ctx,
    (XIVE_TM_HV_PAGE, TM_SPC_PULL_OS_CTX, 8, False): _op_pull_os_ctx,
    (XIVE_TM_HV_PAGE, TM_SPC_ACK_HV_REG, 2, False): _op_ack_hv,
    (XIVE_TM_HV_PAGE, TM_SPC_PULL_POOL_CTX, 4, False): _op_pull_pool_ctx,
    (XIVE_TM_HV_PAGE, TM_SPC_PULL_POOL_CTX, 8, False): _op_pull_pool_ctx,
    (XIVE_TM_HV_PAGE, TM_SPC_PULL_PHYS_CTX, 1, False): _op_pull_phys_ctx,
}


#: The same table flattened: every page gets its own ops and those of the less privileged pages.
_OPS_BY_PAGE = {(page, offset, size, write): handler
                for (op_page, offset, size, write), handler in TM_OPERATIONS.items()
                for page in range(op_page + 1)}


# ==========================================================================================================
# The router
# ==========================================================================================================


class XiveRouter:
    """EAT and ENDT lookups, queue writes into guest memory, and the presenter.

    `memory` is guest RAM: anything with ``write_u32(addr, value)`` (big-endian) and
    ``contains(addr, length)``.
    `tctxs` maps vCPU ids to contexts; a context is matched by its OS CAM line."""

    def __init__(self, nr_irqs: int, nr_ends: int, memory) -> None:
        self.nr_irqs = nr_irqs
        self.nr_ends = nr_ends
        self.memory = memory
        self.eat: dict[int, int] = {}  # sparse: absent LISNs have an all-zero EAS
        self.endt: dict[int, list[int]] = {}  # sparse: absent ENDs hold their reset value
        self.source = XiveSource(nr_irqs)
        self.tctxs: dict[int, XiveTCTX] = {}
        self.errors: list[str] = []

    # -- EAT ---------------------------------------------------------------------------------------------
    def eas(self, lisn: int) -> int:
        return self.eat.get(lisn, 0)

    def eas_valid(self, lisn: int) -> bool:
        return bool(self.eat.get(lisn, 0) & EAS_VALID)

    def claim(self, lisn: int, lsi: bool) -> None:
        """OR VALID|MASKED into the LISN's EAS (whatever a free left stays) and mark an LSI; an
        MSI claim leaves an old LSI bit alone. The caller checked the LISN was free."""
        assert not self.eas_valid(lisn)
        self.eat[lisn] = self.eat.get(lisn, 0) | EAS_VALID | EAS_MASKED
        if lsi:
            self.source.lsi.add(lisn)

    def free(self, lisn: int) -> None:
        """spapr_xive_irq_free clears only the VALID bit."""
        eas = self.eat.get(lisn, 0) & ~EAS_VALID
        if eas:
            self.eat[lisn] = eas
        else:
            self.eat.pop(lisn, None)

    def valid_lisns(self) -> list[int]:
        return sorted(lisn for lisn, eas in self.eat.items() if eas & EAS_VALID)

    def end(self, end_idx: int) -> list[int]:
        """The END's eight words, created at their reset value on first use."""
        end = self.endt.get(end_idx)
        if end is None:
            end = self.endt[end_idx] = end_reset_value()
        return end

    def reset_tables(self) -> None:
        """Valid EAS become VALID|MASKED, others 0; every END cleared with ESe/ESn Q set."""
        self.eat = {lisn: EAS_VALID | EAS_MASKED for lisn, eas in self.eat.items() if eas & EAS_VALID}
        self.endt.clear()

    # -- events --------------------------------------------------------------------------------------------
    def set_irq(self, lisn: int, level: int) -> None:
        if self.source.set_irq(lisn, level):
            self.notify(lisn)

    def notify(self, lisn: int) -> None:
        """A source notification: EAS -> END -> queue and presenter."""
        if lisn >= self.nr_irqs:
            self.errors.append(f"XIVE: Unknown LISN {lisn:x}")
            return
        eas = self.eat.get(lisn, 0)
        if not eas & EAS_VALID:
            self.errors.append(f"XIVE: invalid LISN {lisn:x}")
            return
        if eas & EAS_MASKED:
            return
        end_blk = (eas >> EAS_END_BLOCK_SHIFT) & EAS_END_BLOCK_MASK
        end_idx = (eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK
        self.end_notify(end_blk, end_idx, eas & EAS_END_DATA_MASK)

    def end_notify(self, end_blk: int, end_idx: int, data: int) -> None:
        if end_idx >= self.nr_ends:
            self.errors.append(f"XIVE: No END {end_blk:x}/{end_idx:x}")
            return
        end = self.endt.get(end_idx)
        if end is None or not end[0] & END_W0_VALID:
            self.errors.append(f"XIVE: END {end_blk:x}/{end_idx:x} is invalid")
            return
        if end[0] & END_W0_ENQUEUE:
            self._enqueue(end, data)
        if end[0] & END_W0_SILENT_ESCALATE:
            return
        if end[6] & END_W6_FORMAT_BIT:
            return  # F=1 (EBB): not used by sPAPR
        priority = (end[7] >> END_W7_F0_PRIORITY_SHIFT) & 0xFF
        if priority == 0xFF:
            return
        if not end[0] & END_W0_UCOND_NOTIFY:
            esn = (end[1] >> END_W1_ESn_SHIFT) & 0b11
            new, notify = TRIGGER[esn]
            end[1] = (end[1] & ~(0b11 << END_W1_ESn_SHIFT)) | (new << END_W1_ESn_SHIFT)
            if not notify:
                return
        nvt_blk = (end[6] >> END_W6_NVT_BLOCK_SHIFT) & END_W6_NVT_BLOCK_MASK
        nvt_idx = end[6] & END_W6_NVT_INDEX_MASK
        self.present(nvt_blk, nvt_idx, priority)

    def _enqueue(self, end: list[int], data: int) -> None:
        qsize = (end[0] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK
        qindex = end[1] & END_W1_PAGE_OFF_MASK
        qgen = 1 if end[1] & END_W1_GENERATION else 0
        qaddr = end_qaddr(end) + (qindex << 2)
        entry = (qgen << 31) | (data & 0x7FFFFFFF)
        if not self.memory.contains(qaddr, 4):
            self.errors.append(f"XIVE: failed to write END data @{qaddr:#x}")
            return
        self.memory.write_u32(qaddr, entry)
        qindex = (qindex + 1) & ((1 << (qsize + 10)) - 1)
        if qindex == 0:
            end[1] ^= END_W1_GENERATION
        end[1] = (end[1] & ~END_W1_PAGE_OFF_MASK) | qindex

    def present(self, nvt_blk: int, nvt_idx: int, priority: int) -> bool:
        """Post `priority` in the OS ring of the context whose CAM matches the NVT."""
        cam = nvt_cam_line(nvt_blk, nvt_idx).to_bytes(3, "big")  # CAM bits 8-31 of OS word 2
        for tctx in self.tctxs.values():
            regs = tctx.regs
            if regs[TM_QW1_OS + TM_WORD2] & 0x80 and regs[0x19:0x1C] == cam:  # VO and the CAM
                tctx.ipb_update(priority, TM_QW1_OS)
                return True
        self.errors.append(f"XIVE: NVT {nvt_blk:x}/{nvt_idx:x} is not dispatched")
        return False

    def esb_load(self, srcno: int, trigger_page: bool, offset: int) -> int:
        value, notify = self.source.esb_load(srcno, trigger_page, offset)
        if notify:
            self.notify(srcno)
        return value

    def esb_store(self, srcno: int, trigger_page: bool, offset: int) -> None:
        if self.source.esb_store(srcno, trigger_page, offset):
            self.notify(srcno)
