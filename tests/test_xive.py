"""The XIVE architecture model (spec/qemu.md 6.2-6.4, 6.6): structures, the ESB PQ state machine
and its pages, routing through the EAS and END into guest memory, and the TIMA of a thread context.

Expected values are written out from the spec (PPC bit numbering, bit 0 = MSB), not taken from the
module's own tables, so a wrong constant or transition in spapr_irq.arch.xive shows up here.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spapr_irq.memory import GuestMemory
from spapr_irq.arch.xive import (ESB_INVALID, XiveRouter, XiveSource, XiveTCTX,
                            end_qaddr, end_reset_value, ipb_to_pipr, nvt_cam_line,
                            priority_to_ipb)
from spapr_irq.arch import xive


def bit32(n: int) -> int:
    """PPC bit `n` of a 32-bit word (bit 0 = MSB)."""
    return 1 << (31 - n)


def bit64(n: int) -> int:
    """PPC bit `n` of a 64-bit word (bit 0 = MSB)."""
    return 1 << (63 - n)


# --- spec 6.2, written out independently of the module ----------------------------------------------
S_EAS_VALID, S_EAS_MASKED = bit64(0), bit64(32)
S_END_VALID, S_END_ENQUEUE, S_END_UCOND = bit32(0), bit32(1), bit32(2)
S_END_SILENT_ESCALATE = bit32(7)
S_ESN_SHIFT = 30  # w1 bits 0-1
S_ESN_Q, S_ESE_Q = bit32(1), bit32(3)
S_GENERATION = bit32(9)
S_PAGE_OFF_MASK = (1 << 22) - 1  # w1 bits 10-31

RESET, OFF, PENDING, QUEUED = 0b00, 0b01, 0b10, 0b11
ALL_PQ = (RESET, OFF, PENDING, QUEUED)

# --- TIMA pages (spec 6.1: page 0 HW, 1 HV, 2 OS, 3 USER, 64K each) -----------------------------------
HW, HV, OS, USER = (page << 16 for page in range(4))
OS_RING = 0x10
NSR, CPPR, IPB, LSMFB, ACK_CNT, INC, AGE, PIPR = (OS_RING + i for i in range(8))
ACK_OS_REG, SET_OS_PENDING, PULL_OS_CTX = 0x810, 0x812, 0x818
VO = bit32(0)

# --- a small sPAPR-like fabric -------------------------------------------------------------------------
SRC = 5  # an MSI source number
NR_IRQS, NR_ENDS = 0x100, 0x100
RAM = 1 << 20
QADDR = 0x10000  # a 64K-aligned queue page in RAM
VCPU, PRIO = 1, 6
END_IDX = (VCPU << 3) + PRIO  # spec 6.1: END index = (vcpu_id << 3) + priority
NVT_IDX = 0x400 + VCPU  # spec 6.1: NVT index = 0x400 + vcpu_id
LISN, EISN = 0x20, 0x1234


def source(pq: int, **kw) -> XiveSource:
    src = XiveSource(16, **kw)
    src.set_pq(SRC, pq)
    return src


def lsi_source(pq: int = RESET) -> XiveSource:
    src = source(pq)
    src.set_lsi(SRC, True)
    return src


def tctx(vcpu: int = VCPU, cppr: int | None = None) -> XiveTCTX:
    ctx = XiveTCTX(vcpu)
    ctx.set_os_cam(nvt_cam_line(0, 0x400 + vcpu))
    if cppr is not None:
        ctx.set_cppr(cppr)
    return ctx


def router(*, ucond: bool = True, qsize: int = 0, qaddr: int = QADDR, priority: int = PRIO,
           generation: bool = True, dispatched: bool = True) -> XiveRouter:
    """LISN -> END (VCPU, PRIO) -> queue at `qaddr` -> vCPU VCPU with CPPR 0xff, PQ 00."""
    r = XiveRouter(NR_IRQS, NR_ENDS, GuestMemory(RAM))
    r.eat[LISN] = S_EAS_VALID | (END_IDX << 32) | EISN  # END block 0
    r.source.set_pq(LISN, RESET)
    r.endt[END_IDX] = [
        S_END_VALID | S_END_ENQUEUE | (S_END_UCOND if ucond else 0) | (qsize << 16),
        S_GENERATION if generation else 0,  # H_INT_SET_QUEUE_CONFIG: generation 1, offset 0, ESn 00
        (qaddr >> 32) & 0x0FFFFFFF,
        qaddr & 0xFFFFFFFF,
        0, 0,
        NVT_IDX,  # NVT block 0
        priority << 16,
    ]
    if dispatched:
        r.tctxs[VCPU] = tctx(VCPU, cppr=0xFF)
    return r


def qentry(r: XiveRouter, index: int) -> int:
    return r.memory.read_be(QADDR + 4 * index, 4)


def page_off(r: XiveRouter) -> int:
    return r.endt[END_IDX][1] & S_PAGE_OFF_MASK


def esn(r: XiveRouter) -> int:
    return (r.endt[END_IDX][1] >> S_ESN_SHIFT) & 0b11


def os_ipb(r: XiveRouter, vcpu: int = VCPU) -> int:
    return r.tctxs[vcpu].regs[IPB]


# ======================================================================================================
# 6.2 structures
# ======================================================================================================

@pytest.mark.parametrize("value, expected", [
    (xive.EAS_VALID, bit64(0)),
    (xive.EAS_MASKED, bit64(32)),
    (xive.EAS_END_BLOCK_MASK << xive.EAS_END_BLOCK_SHIFT, sum(bit64(b) for b in range(4, 8))),
    (xive.EAS_END_INDEX_MASK << xive.EAS_END_INDEX_SHIFT, sum(bit64(b) for b in range(8, 32))),
    (xive.EAS_END_DATA_MASK, sum(bit64(b) for b in range(33, 64))),
    (xive.END_W0_VALID, bit32(0)),
    (xive.END_W0_ENQUEUE, bit32(1)),
    (xive.END_W0_UCOND_NOTIFY, bit32(2)),
    (xive.END_W0_SILENT_ESCALATE, bit32(7)),
    (xive.END_W0_QSIZE_MASK << xive.END_W0_QSIZE_SHIFT, sum(bit32(b) for b in range(12, 16))),
    (0b11 << xive.END_W1_ESn_SHIFT, bit32(0) | bit32(1)),
    (xive.END_W1_ESn_Q, bit32(1)),
    (xive.END_W1_ESe_Q, bit32(3)),
    (xive.END_W1_GENERATION, bit32(9)),
    (xive.END_W1_PAGE_OFF_MASK, sum(bit32(b) for b in range(10, 32))),
    (xive.END_W6_FORMAT_BIT, bit32(8)),
    (xive.END_W6_NVT_BLOCK_MASK << xive.END_W6_NVT_BLOCK_SHIFT, sum(bit32(b) for b in range(9, 13))),
    (xive.END_W6_NVT_INDEX_MASK, sum(bit32(b) for b in range(13, 32))),
    (0xFF << xive.END_W7_F0_PRIORITY_SHIFT, sum(bit32(b) for b in range(8, 16))),
    (xive.TM_QW1W2_VO, bit32(0)),
])
def test_structure_fields_sit_at_their_ppc_bit_positions(value, expected):
    """Every EAS/END/TIMA field constant covers exactly the PPC bits spec 6.2/6.6 give it."""
    assert value == expected


def test_end_queue_address_joins_w2_low_28_bits_and_w3():
    """The queue address is ((w2 & 0x0fffffff) << 32) | w3; MIGRATION_REG (w2 bits 0-3) is ignored."""
    end = [0, 0, 0xF000_0ABC, 0xDEAD_B000, 0, 0, 0, 0]
    assert end_qaddr(end) == 0x0ABC_DEAD_B000


def test_end_reset_value_sets_only_ese_q_and_esn_q():
    """spapr_xive_end_reset: all words zero except w1 = ESe Q | ESn Q."""
    assert end_reset_value() == [0, bit32(1) | bit32(3), 0, 0, 0, 0, 0, 0]


def test_end_reset_value_is_a_fresh_list_each_time():
    """Mutating one reset END does not change the next one handed out."""
    first = end_reset_value()
    first[1] = 0
    assert end_reset_value()[1] == S_ESN_Q | S_ESE_Q


@pytest.mark.parametrize("priority, ipb", [
    (0, 0x80), (1, 0x40), (3, 0x10), (6, 0x02), (7, 0x01), (8, 0x00), (0xFF, 0x00),
])
def test_priority_to_ipb_is_one_bit_per_priority_and_none_past_seven(priority, ipb):
    """IPB bit of a priority is 1 << (7 - priority); priorities above 7 have none."""
    assert priority_to_ipb(priority) == ipb


@pytest.mark.parametrize("ipb, pipr", [
    (0x00, 0xFF), (0x80, 0), (0x01, 7), (0x02, 6), (0x03, 6), (0x41, 1), (0xFF, 0), (0x12, 3),
])
def test_ipb_to_pipr_is_the_most_favoured_pending_priority(ipb, pipr):
    """PIPR is the lowest-numbered priority with its IPB bit set, 0xff when none is."""
    assert ipb_to_pipr(ipb) == pipr


@pytest.mark.parametrize("priority", range(8))
def test_ipb_to_pipr_inverts_priority_to_ipb(priority):
    """A lone priority's IPB bit reads back as that priority."""
    assert ipb_to_pipr(priority_to_ipb(priority)) == priority


@pytest.mark.parametrize("block, index, cam", [
    (0, 0x400, 0x400), (0, 0x401, 0x401), (1, 0, 0x80000), (0xF, 0x7FFFF, 0x7FFFFF),
])
def test_nvt_cam_line_puts_the_block_above_the_19_bit_index(block, index, cam):
    """CAM line = (block << 19) | index."""
    assert nvt_cam_line(block, index) == cam


# ======================================================================================================
# 6.3 ESB PQ state machine
# ======================================================================================================

@pytest.mark.parametrize("old, new, notify", [
    (RESET, PENDING, True), (PENDING, QUEUED, False), (QUEUED, QUEUED, False), (OFF, OFF, False),
])
def test_msi_trigger_follows_the_pq_table(old, new, notify):
    """An MSI trigger: 00 -> 10 notifies; 10 -> 11, 11 -> 11, 01 -> 01 do not."""
    src = source(old)
    assert src.trigger(SRC) is notify
    assert src.pq(SRC) == new
    assert src.errors == []


@pytest.mark.parametrize("old, new, notify", [
    (RESET, RESET, False), (PENDING, RESET, False), (QUEUED, PENDING, True), (OFF, OFF, False),
])
def test_msi_eoi_follows_the_pq_table(old, new, notify):
    """An EOI: 00 -> 00, 10 -> 00, 01 -> 01 quietly; 11 -> 10 notifies the queued event."""
    src = source(old)
    assert src.eoi(SRC) is notify
    assert src.pq(SRC) == new


@pytest.mark.parametrize("old, new, notify", [
    (RESET, PENDING, True), (PENDING, QUEUED, False), (QUEUED, QUEUED, False), (OFF, OFF, False),
])
def test_msi_set_irq_level_one_is_a_trigger(old, new, notify):
    """A device raising an MSI line runs the trigger transition."""
    src = source(old)
    assert src.set_irq(SRC, 1) is notify
    assert src.pq(SRC) == new


@pytest.mark.parametrize("pq", ALL_PQ)
def test_msi_set_irq_level_zero_does_nothing(pq):
    """Lowering an MSI line neither notifies nor changes PQ."""
    src = source(pq)
    assert src.set_irq(SRC, 0) is False
    assert src.pq(SRC) == pq


def test_lsi_level_one_from_00_goes_to_10_notifies_and_asserts():
    """LSI set_irq(1) at PQ 00: PQ 10, notify, ASSERTED recorded in the status byte."""
    src = lsi_source(RESET)
    assert src.set_irq(SRC, 1) is True
    assert src.pq(SRC) == PENDING
    assert src.asserted(SRC)
    assert src.status[SRC] & 0x4


@pytest.mark.parametrize("pq", [PENDING, QUEUED, OFF])
def test_lsi_level_one_outside_00_asserts_without_notify_or_pq_change(pq):
    """LSI set_irq(1) notifies only from 00; otherwise it just records the level."""
    src = lsi_source(pq)
    assert src.set_irq(SRC, 1) is False
    assert src.pq(SRC) == pq
    assert src.asserted(SRC)


def test_lsi_eoi_with_level_held_renotifies():
    """An EOI on an LSI whose level is still high goes back to 10 and notifies again."""
    src = lsi_source()
    src.set_irq(SRC, 1)
    assert src.eoi(SRC) is True
    assert src.pq(SRC) == PENDING
    assert src.asserted(SRC)


def test_lsi_eoi_after_level_dropped_goes_to_00_without_notify():
    """Dropping the LSI level clears ASSERTED; the EOI then ends at 00 with no notification."""
    src = lsi_source()
    src.set_irq(SRC, 1)
    assert src.set_irq(SRC, 0) is False
    assert not src.asserted(SRC)
    assert src.eoi(SRC) is False
    assert src.pq(SRC) == RESET


def test_lsi_held_while_masked_is_delivered_by_the_eoi_after_unmask():
    """An LSI asserted at PQ 01 stays silent; after SET_PQ_00 the EOI cycle re-triggers it."""
    src = lsi_source(OFF)
    assert src.set_irq(SRC, 1) is False
    src.set_pq(SRC, RESET)
    assert src.eoi(SRC) is True
    assert src.pq(SRC) == PENDING


def test_lsi_trigger_that_queues_records_a_guest_error():
    """A trigger on an LSI that leaves PQ 11 is logged as 'queued an event on LSI IRQ'."""
    src = lsi_source(PENDING)
    assert src.trigger(SRC) is False
    assert src.pq(SRC) == QUEUED
    assert src.errors == [f"XIVE: queued an event on LSI IRQ {SRC}"]


def test_lsi_trigger_from_00_records_no_error():
    """An LSI trigger that does not queue is not an error."""
    src = lsi_source(RESET)
    assert src.trigger(SRC) is True
    assert src.errors == []


def test_source_reset_restores_reset_pq_and_drops_levels_but_keeps_the_lsi_map():
    """Source reset: every PQ back to reset-pq (01), ASSERTED cleared, LSI map unchanged."""
    src = lsi_source(RESET)
    src.set_irq(SRC, 1)
    src.reset()
    assert all(src.pq(n) == OFF for n in range(src.nr_irqs))
    assert not src.asserted(SRC)
    assert SRC in src.lsi


# ======================================================================================================
# 6.3 ESB pages: loads
# ======================================================================================================

@pytest.mark.parametrize("offset", [0x000, 0x3FF, 0x400, 0x7FF])
def test_management_load_below_0x800_is_an_eoi_returning_1_when_it_notifies(offset):
    """A load at 0x000-0x7FF EOIs; from 11 it returns 1, notifies and leaves 10."""
    src = source(QUEUED)
    assert src.esb_load(SRC, False, offset) == (1, True)
    assert src.pq(SRC) == PENDING


@pytest.mark.parametrize("offset", [0x000, 0x3FF, 0x400, 0x7FF])
def test_management_load_eoi_returns_0_when_nothing_is_queued(offset):
    """A load EOI from 10 returns 0, does not notify and leaves 00."""
    src = source(PENDING)
    assert src.esb_load(SRC, False, offset) == (0, False)
    assert src.pq(SRC) == RESET


@pytest.mark.parametrize("offset", [0x800, 0x9AB, 0xBFF])
@pytest.mark.parametrize("pq", ALL_PQ)
def test_management_load_at_get_returns_pq_unchanged(offset, pq):
    """A load at 0x800-0xBFF (ESB_GET) returns PQ and changes nothing."""
    src = source(pq)
    assert src.esb_load(SRC, False, offset) == (pq, False)
    assert src.pq(SRC) == pq


@pytest.mark.parametrize("offset, new", [
    (0xC00, RESET), (0xCFF, RESET), (0xD00, OFF), (0xDFF, OFF),
    (0xE00, PENDING), (0xEFF, PENDING), (0xF00, QUEUED), (0xFFF, QUEUED),
])
@pytest.mark.parametrize("old", ALL_PQ)
def test_management_load_at_set_pq_returns_old_pq_and_sets_new(offset, new, old):
    """A load at 0xC00/0xD00/0xE00/0xF00 (SET_PQ_xx) returns the old PQ and sets xx, silently."""
    src = source(old)
    assert src.esb_load(SRC, False, offset) == (old, False)
    assert src.pq(SRC) == new


@pytest.mark.parametrize("offset", [0x000, 0x400, 0x800, 0xC00, 0xFFF])
@pytest.mark.parametrize("pq", ALL_PQ)
def test_trigger_page_load_returns_all_ones_logs_and_changes_nothing(offset, pq):
    """Any load on the trigger page is refused: ESB_INVALID (-1, all ones), a guest error, no change."""
    src = source(pq)
    value, notify = src.esb_load(SRC, True, offset)
    assert value == ESB_INVALID == (1 << 64) - 1
    assert notify is False
    assert src.pq(SRC) == pq
    assert len(src.errors) == 1 and "invalid load" in src.errors[0]


# ======================================================================================================
# 6.3 ESB pages: stores
# ======================================================================================================

@pytest.mark.parametrize("offset", [0x000, 0x3FF, 0x400, 0x800, 0xC00, 0xFFF])
@pytest.mark.parametrize("old, new, notify", [
    (RESET, PENDING, True), (PENDING, QUEUED, False), (QUEUED, QUEUED, False), (OFF, OFF, False),
])
def test_trigger_page_store_at_any_offset_triggers(offset, old, new, notify):
    """Every store on the trigger page runs the trigger transition, whatever the offset."""
    src = source(old)
    assert src.esb_store(SRC, True, offset) is notify
    assert src.pq(SRC) == new


@pytest.mark.parametrize("offset", [0x000, 0x200, 0x3FF])
@pytest.mark.parametrize("old, new, notify", [
    (RESET, PENDING, True), (PENDING, QUEUED, False), (QUEUED, QUEUED, False), (OFF, OFF, False),
])
def test_management_store_below_0x400_triggers(offset, old, new, notify):
    """A store at 0x000-0x3FF on the management page triggers."""
    src = source(old)
    assert src.esb_store(SRC, False, offset) is notify
    assert src.pq(SRC) == new


@pytest.mark.parametrize("offset", [0x400, 0x7FF])
@pytest.mark.parametrize("pq", ALL_PQ)
def test_store_eoi_without_store_eoi_support_is_refused(offset, pq):
    """Without XIVE_SRC_STORE_EOI (sPAPR default) a store at 0x400-0x7FF logs an error, no EOI."""
    src = source(pq)
    assert src.esb_store(SRC, False, offset) is False
    assert src.pq(SRC) == pq
    assert src.errors == [f"XIVE: invalid Store EOI for IRQ {SRC}"]


@pytest.mark.parametrize("offset", [0x400, 0x7FF])
@pytest.mark.parametrize("old, new, notify", [
    (RESET, RESET, False), (PENDING, RESET, False), (QUEUED, PENDING, True), (OFF, OFF, False),
])
def test_store_eoi_with_store_eoi_support_performs_the_eoi(offset, old, new, notify):
    """With XIVE_SRC_STORE_EOI a store at 0x400-0x7FF is an EOI."""
    src = source(old, store_eoi=True)
    assert src.esb_store(SRC, False, offset) is notify
    assert src.pq(SRC) == new
    assert src.errors == []


@pytest.mark.parametrize("offset", [0x800, 0xBFF])
@pytest.mark.parametrize("pq", ALL_PQ)
def test_store_at_inject_notifies_whatever_pq_says(offset, pq):
    """A store at 0x800-0xBFF (ESB_INJECT) notifies unconditionally and leaves PQ alone."""
    src = source(pq)
    assert src.esb_store(SRC, False, offset) is True
    assert src.pq(SRC) == pq


@pytest.mark.parametrize("offset, new", [
    (0xC00, RESET), (0xCFF, RESET), (0xD00, OFF), (0xE00, PENDING), (0xF00, QUEUED), (0xFFF, QUEUED),
])
@pytest.mark.parametrize("old", ALL_PQ)
def test_management_store_at_set_pq_sets_pq_silently(offset, new, old):
    """A store at 0xC00-0xFFF sets PQ to (offset >> 8) & 3 without notifying."""
    src = source(old)
    assert src.esb_store(SRC, False, offset) is False
    assert src.pq(SRC) == new


# ======================================================================================================
# ESB pages through the router
# ======================================================================================================

def test_router_esb_store_trigger_routes_the_event_into_the_queue():
    """A trigger-page store on a routed source writes the EQ entry and presents the priority."""
    r = router()
    r.esb_store(LISN, True, 0)
    assert qentry(r, 0) == (1 << 31) | EISN
    assert os_ipb(r) == priority_to_ipb(PRIO)
    assert r.source.pq(LISN) == PENDING


def test_router_esb_load_eoi_forwards_the_queued_event_and_returns_1():
    """A load EOI at PQ 11 returns 1 and routes the queued event (second EQ entry)."""
    r = router()
    r.esb_store(LISN, True, 0)
    r.esb_store(LISN, True, 0)  # coalesced: PQ 11
    assert page_off(r) == 1
    assert r.esb_load(LISN, False, 0x000) == 1
    assert page_off(r) == 2
    assert r.esb_load(LISN, False, 0x000) == 0
    assert page_off(r) == 2 and r.source.pq(LISN) == RESET


@pytest.mark.parametrize("offset", [0x800, 0xC00, 0xD00, 0xE00, 0xF00])
def test_router_esb_load_get_and_set_pq_route_nothing(offset):
    """GET and SET_PQ loads never reach the router."""
    r = router()
    r.source.set_pq(LISN, QUEUED)
    r.esb_load(LISN, False, offset)
    assert page_off(r) == 0 and os_ipb(r) == 0


def test_router_esb_load_on_trigger_page_returns_all_ones_and_routes_nothing():
    """A trigger-page load through the router: all ones, a source guest error, no event."""
    r = router()
    r.source.set_pq(LISN, QUEUED)
    assert r.esb_load(LISN, True, 0x000) == (1 << 64) - 1
    assert r.source.pq(LISN) == QUEUED
    assert page_off(r) == 0 and len(r.source.errors) == 1


def test_router_esb_inject_routes_even_when_pq_is_off():
    """ESB_INJECT routes an event even with the source at PQ 01."""
    r = router()
    r.source.set_pq(LISN, OFF)
    r.esb_store(LISN, False, 0x800)
    assert qentry(r, 0) == (1 << 31) | EISN
    assert r.source.pq(LISN) == OFF


def test_router_refused_store_eoi_routes_nothing():
    """The refused store EOI at 0x400 does not EOI a queued event (sPAPR has no Store EOI)."""
    r = router()
    r.source.set_pq(LISN, QUEUED)
    r.esb_store(LISN, False, 0x400)
    assert r.source.pq(LISN) == QUEUED and page_off(r) == 0
    assert r.source.errors == [f"XIVE: invalid Store EOI for IRQ {LISN}"]


# ======================================================================================================
# 6.4 routing: EAS
# ======================================================================================================

def test_valid_unmasked_eas_routes_to_its_end():
    """A valid, unmasked EAS: one queue entry, the priority presented, no error."""
    r = router()
    r.set_irq(LISN, 1)
    assert qentry(r, 0) == (1 << 31) | EISN
    assert page_off(r) == 1
    assert os_ipb(r) == priority_to_ipb(PRIO)
    assert r.errors == []


def test_masked_eas_drops_the_event_silently():
    """A masked EAS ends the notification: no queue write, no presentation, no error."""
    r = router()
    r.eat[LISN] |= S_EAS_MASKED
    r.set_irq(LISN, 1)
    assert qentry(r, 0) == 0 and page_off(r) == 0
    assert os_ipb(r) == 0
    assert r.errors == []


def test_invalid_eas_drops_the_event_with_an_error():
    """An EAS without VALID: 'XIVE: invalid LISN', nothing written."""
    r = router()
    r.eat[LISN] &= ~S_EAS_VALID
    r.set_irq(LISN, 1)
    assert r.errors == [f"XIVE: invalid LISN {LISN:x}"]
    assert qentry(r, 0) == 0 and page_off(r) == 0 and os_ipb(r) == 0


def test_never_configured_lisn_is_invalid():
    """A LISN with no EAS entry reads as all-zero: invalid, with an error."""
    r = router()
    r.notify(0x30)
    assert r.errors == ["XIVE: invalid LISN 30"]


def test_unknown_lisn_is_dropped_with_an_error():
    """A LISN at or past nr_irqs has no EAS: 'XIVE: Unknown LISN', nothing written."""
    r = router()
    r.notify(NR_IRQS)
    assert r.errors == [f"XIVE: Unknown LISN {NR_IRQS:x}"]
    assert page_off(r) == 0 and os_ipb(r) == 0


def test_claim_makes_an_eas_valid_and_masked_and_free_clears_only_valid():
    """claim: EAS = VALID | MASKED; free: VALID cleared, the rest kept."""
    r = XiveRouter(NR_IRQS, NR_ENDS, GuestMemory(RAM))
    r.claim(LISN, lsi=True)
    assert r.eas(LISN) == S_EAS_VALID | S_EAS_MASKED
    assert LISN in r.source.lsi
    r.free(LISN)
    assert r.eas(LISN) == S_EAS_MASKED and not r.eas_valid(LISN)


# ======================================================================================================
# 6.4 routing: END and queue
# ======================================================================================================

def test_invalid_end_drops_the_event_with_an_error():
    """An END without VALID: 'XIVE: END blk/idx is invalid', no queue write, no presentation."""
    r = router()
    r.endt[END_IDX][0] &= ~S_END_VALID
    r.set_irq(LISN, 1)
    assert r.errors == [f"XIVE: END 0/{END_IDX:x} is invalid"]
    assert qentry(r, 0) == 0 and page_off(r) == 0 and os_ipb(r) == 0


def test_end_at_its_reset_value_is_invalid():
    """An END never configured holds its reset value, which is not VALID."""
    r = router()
    del r.endt[END_IDX]
    r.notify(LISN)
    assert r.errors == [f"XIVE: END 0/{END_IDX:x} is invalid"]


def test_end_index_past_nr_ends_is_reported():
    """An EAS pointing past the END table: 'XIVE: No END'."""
    r = router()
    r.eat[LISN] = S_EAS_VALID | (NR_ENDS << 32) | EISN
    r.notify(LISN)
    assert r.errors == [f"XIVE: No END 0/{NR_ENDS:x}"]


def test_queue_entry_is_big_endian_with_the_generation_bit_on_top():
    """An EQ entry is 4 big-endian bytes: generation in bit 31, the EISN below."""
    r = router()
    r.notify(LISN)
    assert r.memory.read(QADDR, 4) == bytes([0x80, 0x00, 0x12, 0x34])


def test_queue_entry_with_generation_0_has_the_top_bit_clear():
    """With GENERATION clear in w1 the entry is the bare EISN."""
    r = router(generation=False)
    r.notify(LISN)
    assert qentry(r, 0) == EISN


def test_queue_entry_keeps_only_the_31_low_bits_of_the_eas_data():
    """The largest EISN (31 bits) fills the entry below the generation bit."""
    r = router()
    r.eat[LISN] = S_EAS_VALID | (END_IDX << 32) | 0x7FFFFFFF
    r.notify(LISN)
    assert qentry(r, 0) == 0xFFFFFFFF


def test_end_notify_masks_data_to_31_bits():
    """Data wider than 31 bits cannot overwrite the generation bit."""
    r = router(generation=False)
    r.end_notify(0, END_IDX, 0xFFFFFFFF)
    assert qentry(r, 0) == 0x7FFFFFFF


def test_queue_index_increments_per_event():
    """Each event lands in the next entry and PAGE_OFF counts them."""
    r = router()
    for data in (1, 2, 3):
        r.end_notify(0, END_IDX, data)
    assert [qentry(r, i) for i in range(4)] == [(1 << 31) | 1, (1 << 31) | 2, (1 << 31) | 3, 0]
    assert page_off(r) == 3


def test_queue_of_qsize_0_wraps_after_1024_entries_and_toggles_the_generation():
    """QSIZE 0 = 4K = 1024 entries: the 1024th event wraps PAGE_OFF to 0 and flips GENERATION."""
    r = router(qsize=0)
    for data in range(1024):
        r.end_notify(0, END_IDX, data)
    assert page_off(r) == 0
    assert not r.endt[END_IDX][1] & S_GENERATION
    assert all(qentry(r, i) == (1 << 31) | i for i in range(1024))
    assert r.memory.read_be(QADDR + 4096, 4) == 0  # nothing past the 4K queue


def test_wrapped_queue_rewrites_entry_0_with_the_new_generation():
    """After the wrap entry 0 is rewritten with generation 0 while entry 1 keeps generation 1."""
    r = router(qsize=0)
    for data in range(1024):
        r.end_notify(0, END_IDX, data)
    r.end_notify(0, END_IDX, 0x555)
    assert qentry(r, 0) == 0x555
    assert qentry(r, 1) == (1 << 31) | 1
    assert page_off(r) == 1


def test_second_wrap_toggles_the_generation_back():
    """Two full laps of the queue bring GENERATION back to 1."""
    r = router(qsize=0)
    for data in range(2048):
        r.end_notify(0, END_IDX, data)
    assert page_off(r) == 0
    assert r.endt[END_IDX][1] & S_GENERATION
    assert qentry(r, 0) == 1024  # written during the second lap, generation 0


def test_larger_qsize_does_not_wrap_at_1024():
    """QSIZE 4 (64K) holds 2^14 entries: the 1025th event goes to entry 1024."""
    r = router(qsize=4)
    for data in range(1025):
        r.end_notify(0, END_IDX, data)
    assert page_off(r) == 1025
    assert qentry(r, 1024) == (1 << 31) | 1024


def test_queue_outside_guest_memory_records_an_error_and_writes_nothing():
    """A queue address past RAM: 'failed to write END data', PAGE_OFF and GENERATION unchanged."""
    r = router(qaddr=RAM)
    r.notify(LISN)
    assert r.errors == [f"XIVE: failed to write END data @{RAM:#x}"]
    assert page_off(r) == 0 and r.endt[END_IDX][1] & S_GENERATION
    assert all(qentry(r, i) == 0 for i in range(4))


def test_end_without_enqueue_writes_no_queue_but_still_presents():
    """ENQUEUE clear: no queue write, the priority is still presented."""
    r = router()
    r.endt[END_IDX][0] &= ~S_END_ENQUEUE
    r.notify(LISN)
    assert qentry(r, 0) == 0 and page_off(r) == 0
    assert os_ipb(r) == priority_to_ipb(PRIO)


# ======================================================================================================
# 6.4 routing: ESn coalescing, priority, escalation, presenter
# ======================================================================================================

def test_without_ucond_notify_first_event_presents_and_sets_esn_p():
    """ESn 00: the first event presents and ESn goes to 10."""
    r = router(ucond=False)
    r.notify(LISN)
    assert esn(r) == PENDING
    assert os_ipb(r) == priority_to_ipb(PRIO)


def test_without_ucond_notify_second_event_is_coalesced_into_esn_q():
    """ESn 10: a second event is queued but not presented, and ESn goes to 11; a third keeps 11."""
    r = router(ucond=False)
    r.notify(LISN)
    r.tctxs[VCPU].tm_read(OS | ACK_OS_REG, 2)  # consume the first presentation
    r.notify(LISN)
    assert esn(r) == QUEUED
    assert os_ipb(r) == 0 and not r.tctxs[VCPU].output
    assert page_off(r) == 2  # both events were still queued
    r.notify(LISN)
    assert esn(r) == QUEUED and os_ipb(r) == 0 and page_off(r) == 3


def test_clearing_esn_in_end_w1_rearms_presentation():
    """sPAPR has no END ESB page (kept disabled); resetting ESn in w1 bits 0-1 re-arms the END."""
    r = router(ucond=False)
    r.notify(LISN)
    r.tctxs[VCPU].tm_read(OS | ACK_OS_REG, 2)
    r.notify(LISN)
    assert esn(r) == QUEUED
    r.endt[END_IDX][1] &= ~(0b11 << S_ESN_SHIFT)
    r.tctxs[VCPU].set_cppr(0xFF)
    r.notify(LISN)
    assert esn(r) == PENDING
    assert os_ipb(r) == priority_to_ipb(PRIO)


def test_end_with_esn_off_never_presents_without_ucond_notify():
    """ESn 01 (the END reset value's Q) swallows every event unless UCOND_NOTIFY is set."""
    r = router(ucond=False)
    r.endt[END_IDX][1] |= S_ESN_Q
    for _ in range(3):
        r.notify(LISN)
    assert esn(r) == OFF
    assert os_ipb(r) == 0 and page_off(r) == 3


def test_with_ucond_notify_every_event_presents_and_esn_is_untouched():
    """UCOND_NOTIFY skips ESn: each event presents again after the previous was acknowledged."""
    r = router(ucond=True)
    ctx = r.tctxs[VCPU]
    for _ in range(3):
        ctx.set_cppr(0xFF)
        r.notify(LISN)
        assert ctx.output and os_ipb(r) == priority_to_ipb(PRIO)
        ctx.tm_read(OS | ACK_OS_REG, 2)
    assert esn(r) == RESET


def test_priority_0xff_in_w7_queues_but_does_not_present():
    """END priority 0xff (format 0) means masked: the entry is queued, nothing presented, no error."""
    r = router(priority=0xFF)
    r.notify(LISN)
    assert page_off(r) == 1
    assert os_ipb(r) == 0 and not r.tctxs[VCPU].output
    assert r.errors == []


def test_priority_0xff_does_not_consume_esn():
    """The 0xff stop comes before the ESn check, so ESn stays 00."""
    r = router(ucond=False, priority=0xFF)
    r.notify(LISN)
    assert esn(r) == RESET


def test_silent_escalate_queues_but_does_not_present():
    """SILENT_ESCALATE: the entry is queued, the presenter is skipped, no error."""
    r = router()
    r.endt[END_IDX][0] |= S_END_SILENT_ESCALATE
    r.notify(LISN)
    assert page_off(r) == 1
    assert os_ipb(r) == 0
    assert r.errors == []


def test_nvt_not_dispatched_records_an_error():
    """No context with a matching OS CAM: 'XIVE: NVT blk/idx is not dispatched'."""
    r = router(dispatched=False)
    r.notify(LISN)
    assert page_off(r) == 1  # the event is in the queue nonetheless
    assert r.errors == [f"XIVE: NVT 0/{NVT_IDX:x} is not dispatched"]


def test_context_with_another_cam_is_not_matched():
    """Only the CAM (0 << 19) | (0x400 + vcpu) matches; another vCPU's context does not."""
    r = router(dispatched=False)
    r.tctxs[2] = tctx(2, cppr=0xFF)
    r.notify(LISN)
    assert r.tctxs[2].regs[IPB] == 0
    assert r.errors == [f"XIVE: NVT 0/{NVT_IDX:x} is not dispatched"]


def test_context_without_vo_is_not_matched():
    """A context whose OS CAM lacks VO (pulled) is not dispatched even with the right CAM."""
    r = router()
    ctx = r.tctxs[VCPU]
    ctx.set_word2(OS_RING, NVT_IDX)  # CAM without VO
    r.notify(LISN)
    assert ctx.regs[IPB] == 0
    assert r.errors == [f"XIVE: NVT 0/{NVT_IDX:x} is not dispatched"]


def test_event_is_presented_to_the_matching_context_only():
    """Of two dispatched contexts only the one whose CAM matches the END's NVT gets the IPB bit."""
    r = router()
    r.tctxs[0] = tctx(0, cppr=0xFF)
    r.notify(LISN)
    assert r.tctxs[VCPU].regs[IPB] == priority_to_ipb(PRIO) and r.tctxs[VCPU].output
    assert r.tctxs[0].regs[IPB] == 0 and not r.tctxs[0].output


def test_end_to_end_event_is_acknowledged_at_its_priority():
    """Trigger -> queue -> presenter -> ACK returns EO with the priority as the new CPPR."""
    r = router()
    r.esb_store(LISN, True, 0)
    ctx = r.tctxs[VCPU]
    assert ctx.tm_read(OS | ACK_OS_REG, 2) == ((0x80 << 8) | PRIO, None)
    assert ctx.regs[CPPR] == PRIO and not ctx.output


# ======================================================================================================
# 6.6 TIMA: state and presentation
# ======================================================================================================

def test_tctx_reset_values():
    """Reset: all zero but OS LSMFB/ACK#/AGE/PIPR and PHYS PIPR = 0xff; CPPR 0; line low."""
    ctx = XiveTCTX(0)
    expected = bytearray(64)
    for reg in (LSMFB, ACK_CNT, AGE, PIPR, 0x30 + 7):
        expected[reg] = 0xFF
    assert ctx.regs == expected
    assert ctx.regs[CPPR] == 0 and ctx.output is False


def test_tctx_reset_clears_a_used_context():
    """reset() returns a used context (CAM, CPPR, IPB, line) to the reset values."""
    ctx = tctx(cppr=7)
    ctx.ipb_update(3)
    ctx.reset()
    assert ctx.regs == XiveTCTX(0).regs and not ctx.output


def test_set_os_cam_writes_vo_and_cam_big_endian_into_word2():
    """set_os_cam: OS ring word 2 (0x18-0x1b) = VO | cam, big-endian."""
    ctx = XiveTCTX(VCPU)
    ctx.set_os_cam(nvt_cam_line(0, NVT_IDX))
    assert ctx.regs[0x18:0x1C] == (VO | NVT_IDX).to_bytes(4, "big") == bytes([0x80, 0, 0x04, 0x01])


@pytest.mark.parametrize("priority", range(8))
def test_ipb_update_below_cppr_sets_ipb_pipr_nsr_eo_and_the_line(priority):
    """With CPPR 0xff any priority 0-7 sets its IPB bit, PIPR, NSR EO (0x80) and raises the line."""
    ctx = tctx(cppr=0xFF)
    ctx.ipb_update(priority)
    assert ctx.regs[IPB] == 1 << (7 - priority)
    assert ctx.regs[PIPR] == priority
    assert ctx.regs[NSR] == 0x80
    assert ctx.output


def test_ipb_update_at_reset_cppr_0_delivers_nothing():
    """CPPR 0 after reset: the IPB bit and PIPR are recorded but NSR and the line stay clear."""
    ctx = tctx()
    ctx.ipb_update(PRIO)
    assert ctx.regs[IPB] == priority_to_ipb(PRIO) and ctx.regs[PIPR] == PRIO
    assert ctx.regs[NSR] == 0 and not ctx.output


@pytest.mark.parametrize("cppr", [3, PRIO])
def test_cppr_at_or_below_pipr_masks_the_interrupt(cppr):
    """PIPR must be strictly below CPPR: a CPPR of 3 or 6 masks a priority-6 event."""
    ctx = tctx(cppr=cppr)
    ctx.ipb_update(PRIO)
    assert ctx.regs[PIPR] == PRIO
    assert ctx.regs[NSR] == 0 and not ctx.output


def test_ipb_update_accumulates_and_pipr_is_the_most_favoured():
    """Two pending priorities: both IPB bits set, PIPR the lower number."""
    ctx = tctx(cppr=0xFF)
    ctx.ipb_update(6)
    ctx.ipb_update(2)
    assert ctx.regs[IPB] == 0x22 and ctx.regs[PIPR] == 2


# ======================================================================================================
# 6.6 TIMA: OS special operations
# ======================================================================================================

def test_ack_returns_nsr_and_new_cppr_and_consumes_the_priority():
    """ACK (2-byte load at OS 0x810): (NSR << 8) | CPPR, CPPR := PIPR, IPB bit cleared, line down."""
    ctx = tctx(cppr=0xFF)
    ctx.ipb_update(PRIO)
    assert ctx.tm_read(OS | ACK_OS_REG, 2) == ((0x80 << 8) | PRIO, None)
    assert ctx.regs[CPPR] == PRIO
    assert ctx.regs[IPB] == 0 and ctx.regs[PIPR] == 0xFF
    assert ctx.regs[NSR] == 0 and not ctx.output


def test_ack_takes_the_most_favoured_and_leaves_the_other_pending():
    """With priorities 2 and 6 pending the ACK takes 2; 6 stays in IPB and PIPR."""
    ctx = tctx(cppr=0xFF)
    ctx.ipb_update(6)
    ctx.ipb_update(2)
    assert ctx.tm_read(OS | ACK_OS_REG, 2)[0] == 0x8002
    assert ctx.regs[IPB] == priority_to_ipb(6) and ctx.regs[PIPR] == 6
    assert ctx.regs[CPPR] == 2


def test_ack_with_nothing_pending_returns_cppr_and_changes_nothing():
    """ACK without NSR EO returns just the CPPR and leaves the registers as they were."""
    ctx = tctx(cppr=5)
    before = bytes(ctx.regs)
    assert ctx.tm_read(OS | ACK_OS_REG, 2) == (5, None)
    assert bytes(ctx.regs) == before


def test_ack_of_a_masked_pending_priority_keeps_it_pending():
    """A pending but masked priority (no EO) is not consumed by an ACK."""
    ctx = tctx(cppr=3)
    ctx.ipb_update(PRIO)
    assert ctx.tm_read(OS | ACK_OS_REG, 2) == (3, None)
    assert ctx.regs[IPB] == priority_to_ipb(PRIO) and ctx.regs[CPPR] == 3


def test_set_os_pending_ors_the_priority_into_ipb_and_notifies():
    """SET_OS_PENDING (1-byte store at OS 0x812): IPB |= bit(prio), PIPR, EO and the line."""
    ctx = tctx(cppr=0xFF)
    ctx.regs[IPB] = priority_to_ipb(6)
    assert ctx.tm_write(OS | SET_OS_PENDING, 4, 1) is None
    assert ctx.regs[IPB] == priority_to_ipb(6) | priority_to_ipb(4)
    assert ctx.regs[PIPR] == 4 and ctx.regs[NSR] == 0x80 and ctx.output


@pytest.mark.parametrize("value, stored", [(0, 0), (5, 5), (7, 7), (8, 0xFF), (0x80, 0xFF), (0xFF, 0xFF)])
def test_cppr_byte_store_at_0x11_sets_cppr_and_values_above_7_become_0xff(value, stored):
    """A 1-byte store at OS 0x11 sets CPPR; anything above 7 is stored as 0xff."""
    ctx = tctx()
    assert ctx.tm_write(OS | 0x11, value, 1) is None
    assert ctx.regs[CPPR] == stored


def test_raising_cppr_above_a_pending_priority_delivers_it():
    """A CPPR store that unmasks the pending PIPR sets EO and raises the line."""
    ctx = tctx(cppr=3)
    ctx.ipb_update(PRIO)
    assert not ctx.output
    ctx.tm_write(OS | 0x11, 7, 1)
    assert ctx.regs[NSR] == 0x80 and ctx.output


# ======================================================================================================
# 6.6 TIMA: access rules
# ======================================================================================================

@pytest.mark.parametrize("page", [HW, HV, OS])
@pytest.mark.parametrize("size", [1, 2])
def test_raw_load_smaller_than_4_bytes_is_refused_with_all_ones(page, size):
    """Raw loads of 1 or 2 bytes are refused: all ones for that size and an error text."""
    ctx = tctx(cppr=5)
    value, error = ctx.tm_read(page | OS_RING, size)
    assert value == (1 << (8 * size)) - 1
    assert error and "invalid read access" in error


@pytest.mark.parametrize("page", [HW, HV, OS])
@pytest.mark.parametrize("size", [1, 2])
def test_raw_store_smaller_than_4_bytes_is_refused(page, size):
    """Raw stores of 1 or 2 bytes (other than special operations) change nothing and report."""
    ctx = tctx()
    before = bytes(ctx.regs)
    error = ctx.tm_write(page | IPB, 0xFFFF, size)
    assert error and "invalid write access" in error
    assert bytes(ctx.regs) == before


@pytest.mark.parametrize("page", [HW, HV, OS, USER])
@pytest.mark.parametrize("offset", [0x00, 0x08])
def test_user_ring_raw_accesses_are_refused(page, offset):
    """QW0 (user ring) raw loads and stores are refused from every page, whatever the view says."""
    ctx = tctx()
    before = bytes(ctx.regs)
    value, error = ctx.tm_read(page | offset, 4)
    assert value == 0xFFFFFFFF and error
    assert ctx.tm_write(page | offset, 0x12345678, 4)
    assert bytes(ctx.regs) == before


def test_os_page_reads_os_ring_word_0():
    """OS page 4-byte load at 0x10 returns NSR, CPPR, IPB, LSMFB."""
    ctx = tctx(cppr=0xFF)
    ctx.ipb_update(PRIO)
    assert ctx.tm_read(OS | OS_RING, 4) == (0x80_FF_02_FF, None)


def test_os_page_8_byte_load_masks_the_age_byte():
    """OS page 8-byte load at 0x10: AGE (no access) reads 0 though it holds 0xff."""
    ctx = tctx()
    assert ctx.regs[AGE] == 0xFF
    assert ctx.tm_read(OS | OS_RING, 8) == (0x00_00_00_FF_FF_00_00_FF, None)


def test_os_page_cannot_read_the_os_cam_word():
    """OS ring word 2 has no access from the OS page: all ones and an error."""
    ctx = tctx()
    value, error = ctx.tm_read(OS | 0x18, 4)
    assert value == 0xFFFFFFFF and error


def test_hv_page_reads_the_os_cam_word():
    """From the HV page OS ring word 2 reads back VO | cam."""
    ctx = tctx()
    assert ctx.tm_read(HV | 0x18, 4) == (VO | NVT_IDX, None)


#: QEMU's xive_tm_{hw,hv,os,user}_view (hw/intc/xive.c, the spec's [XIVE-CORE]): 1 w, 2 r, 3 rw.
QEMU_TM_VIEWS = {
    "HW": [3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
           3, 3, 3, 3, 3, 3, 0, 2, 3, 3, 3, 3, 0, 0, 0, 0,
           0, 0, 3, 3, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
           3, 3, 3, 3, 0, 3, 0, 2, 3, 0, 0, 3, 3, 3, 3, 0],
    "HV": [3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
           3, 3, 3, 3, 3, 3, 0, 2, 3, 3, 3, 3, 0, 0, 0, 0,
           0, 0, 3, 3, 0, 0, 0, 0, 0, 3, 3, 3, 0, 0, 0, 0,
           3, 3, 3, 3, 0, 3, 0, 2, 3, 0, 0, 3, 0, 0, 0, 0],
    "OS": [3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
           2, 3, 2, 2, 2, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0] + [0] * 32,
    "USER": [3] + [0] * 63,
}


@pytest.mark.parametrize("page, name", list(enumerate(QEMU_TM_VIEWS)))
def test_tm_views_match_qemu_access_maps(page, name):
    """Each TIMA page's byte access map is QEMU's (OS view of QW1: NSR r, CPPR rw, IPB..INC r,
    AGE none, PIPR r, word 2 none)."""
    assert list(xive.TM_VIEWS[page]) == QEMU_TM_VIEWS[name]


def test_hv_page_has_no_access_to_os_ring_word_3():
    """HV view of QW1 bytes 0x1c-0x1f is 0 (QEMU xive_tm_hv_view): a 4-byte load there is refused."""
    ctx = tctx()
    ctx.regs[0x1F] = 0x5A
    value, error = ctx.tm_read(HV | 0x1C, 4)
    assert value == 0xFFFFFFFF and error


def test_os_page_word_store_writes_only_the_writable_cppr_byte():
    """A 4-byte store at OS 0x10 is filtered by the OS view: only CPPR (rw) changes."""
    ctx = tctx()
    before = bytearray(ctx.regs)
    assert ctx.tm_write(OS | OS_RING, 0x11_05_33_44, 4) is None
    before[CPPR] = 0x05
    assert ctx.regs == before


def test_os_page_store_to_bytes_without_write_access_is_refused():
    """A 4-byte store at OS 0x14 (ACK#, INC, AGE, PIPR: none writable) is refused."""
    ctx = tctx()
    before = bytes(ctx.regs)
    error = ctx.tm_write(OS | 0x14, 0, 4)
    assert error and "invalid write access" in error
    assert bytes(ctx.regs) == before


def test_push_os_ctx_from_the_os_page_is_refused():
    """PUSH_OS_CTX (4-byte store at 0x18) is an HV operation: refused from the OS page."""
    ctx = tctx()
    error = ctx.tm_write(OS | 0x18, VO | 0x777, 4)
    assert error and "invalid write access" in error
    assert ctx.os_cam == VO | NVT_IDX


def test_push_os_ctx_from_the_hv_page_sets_the_os_cam():
    """From the HV page a 4-byte store at 0x18 writes the OS CAM word."""
    ctx = XiveTCTX(VCPU)
    assert ctx.tm_write(HV | 0x18, VO | NVT_IDX, 4) is None
    assert ctx.regs[0x18:0x1C] == (VO | NVT_IDX).to_bytes(4, "big")


@pytest.mark.parametrize("size", [4, 8])
def test_pull_os_ctx_from_the_os_page_is_refused(size):
    """PULL_OS_CTX (load at 0x818) from the OS page: all ones, an error, VO kept."""
    ctx = tctx()
    value, error = ctx.tm_read(OS | PULL_OS_CTX, size)
    assert value == (1 << (8 * size)) - 1
    assert error and "invalid read access" in error
    assert ctx.os_cam == VO | NVT_IDX


@pytest.mark.parametrize("size", [4, 8])
def test_pull_os_ctx_from_the_hv_page_returns_word2_and_clears_vo(size):
    """From the HV page a 4- or 8-byte load at 0x818 returns word 2 and clears VO."""
    ctx = tctx()
    assert ctx.tm_read(HV | PULL_OS_CTX, size) == (VO | NVT_IDX, None)
    assert ctx.os_cam == NVT_IDX


def test_pulled_context_is_no_longer_dispatched():
    """After PULL_OS_CTX the router finds no matching context."""
    r = router()
    r.tctxs[VCPU].tm_read(HV | PULL_OS_CTX, 4)
    r.notify(LISN)
    assert r.errors == [f"XIVE: NVT 0/{NVT_IDX:x} is not dispatched"]


def test_pull_os_ctx_lowers_the_os_line():
    """PULL_OS_CTX lowers the OS interrupt line but keeps NSR, IPB and PIPR (xive_tm_pull_os_ctx)."""
    ctx = tctx(cppr=0xFF)
    ctx.ipb_update(PRIO)
    assert ctx.output
    nsr, ipb, pipr = ctx.regs[NSR], ctx.regs[IPB], ctx.regs[PIPR]
    assert ctx.tm_read(HV | PULL_OS_CTX, 4) == (VO | NVT_IDX, None)
    assert not ctx.output
    assert (nsr, ipb, pipr) == (0x80, priority_to_ipb(PRIO), PRIO)
    assert (ctx.regs[NSR], ctx.regs[IPB], ctx.regs[PIPR]) == (nsr, ipb, pipr)


def test_push_os_ctx_with_vo_re_raises_the_line_of_a_pending_interrupt():
    """Pull then push of the same context: the still-pending interrupt raises the line again."""
    ctx = tctx(cppr=0xFF)
    ctx.ipb_update(PRIO)
    ctx.tm_read(HV | PULL_OS_CTX, 4)
    assert ctx.tm_write(HV | 0x18, VO | NVT_IDX, 4) is None
    assert ctx.output and ctx.regs[NSR] == 0x80 and ctx.regs[PIPR] == PRIO


def test_push_os_ctx_with_vo_recomputes_pipr_from_a_restored_ipb():
    """An IPB restored by a raw HV store leaves PIPR stale; pushing with VO recomputes it and notifies."""
    ctx = XiveTCTX(VCPU)
    # raw HV store of OS ring word 0: NSR 0, CPPR 0xff, IPB bit(PRIO), LSMFB 0xff (PIPR is read-only)
    assert ctx.tm_write(HV | OS_RING, 0x00_FF_00_FF | (priority_to_ipb(PRIO) << 8), 4) is None
    assert ctx.regs[PIPR] == 0xFF and not ctx.output
    assert ctx.tm_write(HV | 0x18, VO | NVT_IDX, 4) is None
    assert ctx.regs[PIPR] == PRIO
    assert ctx.regs[NSR] == 0x80 and ctx.output


def test_push_os_ctx_without_vo_does_not_recompute_nor_notify():
    """A push with VO clear only writes word 2: no resend (xive_tm_push_os_ctx checks VO)."""
    ctx = XiveTCTX(VCPU)
    ctx.tm_write(HV | OS_RING, 0x00_FF_00_FF | (priority_to_ipb(PRIO) << 8), 4)
    assert ctx.tm_write(HV | 0x18, NVT_IDX, 4) is None
    assert ctx.os_cam == NVT_IDX
    assert ctx.regs[PIPR] == 0xFF and ctx.regs[NSR] == 0 and not ctx.output


@pytest.mark.parametrize("byte", [0x80, 0x85, 0x05, 0xFF])
def test_vt_poll_returns_the_whole_phys_word2_byte(byte):
    """The 1-byte HV load at 0x38 returns the PHYS word-2 byte & 0xff (xive_tm_vt_poll), not just VT."""
    ctx = XiveTCTX(VCPU)
    assert ctx.tm_write(HV | 0x38, byte, 1) is None
    assert ctx.tm_read(HV | 0x38, 1) == (byte, None)


@pytest.mark.parametrize("offset, size", [
    (0x800, 8), (0x800, 4), (ACK_OS_REG, 4), (ACK_OS_REG, 1), (0x830, 2), (0xC10, 8), (0xFF8, 8),
])
def test_special_op_loads_not_in_the_table_are_refused_with_all_ones(offset, size):
    """A load at 0x800+ that is no operation for this page and size reads all ones and reports."""
    ctx = tctx(cppr=0xFF)
    ctx.ipb_update(PRIO)
    before = bytes(ctx.regs)
    value, error = ctx.tm_read(OS | offset, size)
    assert value == (1 << (8 * size)) - 1
    assert error and "invalid read access" in error
    assert bytes(ctx.regs) == before


@pytest.mark.parametrize("offset, size", [(0x800, 8), (SET_OS_PENDING, 2), (ACK_OS_REG, 2), (0xC10, 8)])
def test_special_op_stores_not_in_the_table_are_refused(offset, size):
    """A store at 0x800+ that is no write operation for this page and size changes nothing."""
    ctx = tctx(cppr=0xFF)
    before = bytes(ctx.regs)
    error = ctx.tm_write(OS | offset, 3, size)
    assert error and "invalid write access" in error
    assert bytes(ctx.regs) == before


def test_hw_page_may_use_hv_operations():
    """Operations of less privileged pages are found from more privileged ones: PULL from HW."""
    ctx = tctx()
    assert ctx.tm_read(HW | PULL_OS_CTX, 4) == (VO | NVT_IDX, None)
    assert ctx.os_cam == NVT_IDX


@pytest.mark.parametrize("page", [HW, HV, OS])
def test_os_ack_is_available_from_the_os_and_more_privileged_pages(page):
    """ACK_OS_REG works from the OS, HV and HW pages."""
    ctx = tctx(cppr=0xFF)
    ctx.ipb_update(PRIO)
    assert ctx.tm_read(page | ACK_OS_REG, 2) == (0x8000 | PRIO, None)


@pytest.mark.parametrize("page", [HW, HV])
def test_os_cppr_store_is_available_from_more_privileged_pages(page):
    """The 1-byte CPPR store at 0x11 is an OS operation reachable from HV and HW pages."""
    ctx = tctx()
    assert ctx.tm_write(page | 0x11, 9, 1) is None
    assert ctx.regs[CPPR] == 0xFF


def test_user_page_cannot_use_os_operations():
    """The user page is less privileged than the OS page: ACK from it is refused."""
    ctx = tctx(cppr=0xFF)
    ctx.ipb_update(PRIO)
    value, error = ctx.tm_read(USER | ACK_OS_REG, 2)
    assert value == 0xFFFF and error
    assert ctx.regs[IPB] == priority_to_ipb(PRIO)


# ======================================================================================================
# Property: the MSI PQ machine neither loses nor invents notifications
# ======================================================================================================

def _trigger(src):
    return src.trigger(0)


def _store_trigger(src):
    return src.esb_store(0, True, 0x000)


def _eoi(src):
    return src.eoi(0)


def _load_eoi(src):
    value, notify = src.esb_load(0, False, 0x000)
    assert value == int(notify)  # the load returns 1 exactly when it forwarded a notification
    return notify


TRIGGERS = {"trigger": _trigger, "store_trigger": _store_trigger}
EOIS = {"eoi": _eoi, "load_eoi": _load_eoi}


@given(st.lists(st.sampled_from(sorted(TRIGGERS) + sorted(EOIS)), max_size=60))
def test_msi_pq_machine_never_loses_nor_invents_a_notification(ops):
    """From PQ 00: notifies never exceed triggers, and every trigger is notified at or after it."""
    src = XiveSource(1, reset_pq=RESET)
    triggers = notifies = 0
    waiting = False  # a trigger has returned notify=False and no notification has followed yet
    for name in ops:
        if name in TRIGGERS:
            triggers += 1
            p_was_set = bool(src.pq(0) & 0b10)
            notify = TRIGGERS[name](src)
            assert notify is not p_was_set  # P set -> coalesced; P clear (from 00) -> notify
            waiting = waiting or not notify
        else:
            notify = EOIS[name](src)
        if notify:
            notifies += 1
            waiting = False
        assert notifies <= triggers
    # drain: EOI until nothing more is notified and PQ is back at 00
    for _ in range(3):
        if src.pq(0) == RESET:
            break
        if src.eoi(0):
            notifies += 1
            waiting = False
    assert src.pq(0) == RESET
    assert not waiting, "a coalesced trigger was never followed by a notifying EOI"
    assert notifies <= triggers
