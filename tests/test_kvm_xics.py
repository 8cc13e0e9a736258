"""The in-kernel XICS (spapr_irq.host.xics, Linux book3s_xics.c) against spec/linux.md A.3 and C.3.

Each test drives a ``KernelXics`` directly: two ICPs (servers 0 and 1) are connected, sources are
created through their 64-bit state word (``set_source``, KVM_DEV_XICS_GRP_SOURCES), interrupts
are raised with ``irq_line`` (KVM_IRQ_LINE) and the guest side is played with the in-kernel
hypercalls (H_XIRR, H_CPPR, H_EOI, H_IPI, H_IPOLL) and RTAS calls (set-xive, get-xive, int-off,
int-on). A fresh ICP has CPPR 0 and accepts nothing, so most tests open it with H_CPPR(0xff).
The ICP state register (KVM_REG_PPC_ICP_STATE) is covered near the end, followed by a
hypothesis test of random hcall sequences.
"""

from __future__ import annotations

import errno as E

import pytest
from hypothesis import given, settings, strategies as st

from spapr_irq.host.device import DeviceErrno as XicsErrno
from spapr_irq.host.uapi import (
    ICP_CPPR_SHIFT,
    ICP_MFRR_SHIFT,
    ICP_PPRI_SHIFT,
    ICP_XISR_SHIFT,
    KVM_INTERRUPT_SET,
    KVM_INTERRUPT_SET_LEVEL,
    KVM_INTERRUPT_UNSET,
    KVM_XICS_LEVEL_SENSITIVE,
    KVM_XICS_MASKED,
    KVM_XICS_PENDING,
    KVM_XICS_PRESENTED,
    KVM_XICS_PRIORITY_SHIFT,
    KVM_XICS_QUEUED,
)
from spapr_irq.host.xics import MASKED, PQ_PRESENTED, PQ_QUEUED, XICS_IPI, KernelXics
from spapr_irq.papr import H_PARAMETER, H_SUCCESS

MSI, MSI2, LSI = 0x1300, 0x1301, 0x1200  # all in ICS block 4
UNSET_IN_BLOCK = 0x1302  # block 4 exists, this source was never set
NO_BLOCK = 0x5000  # block 20 is never created
BLOCK = MSI >> 10
UNKNOWN_SERVER = 7


def word(server: int = 0, priority: int = 5, flags: int = 0) -> int:
    """A source state word: server in bits 0-31, priority in bits 32-39, flag bits above."""
    return server | priority << KVM_XICS_PRIORITY_SHIFT | flags


def make(*, msi: int | None = 5, msi2: int | None = None, lsi: int | None = None,
         server: int = 0, open_icps: tuple[int, ...] = (0, 1)) -> KernelXics:
    """ICPs 0 and 1 connected and opened (CPPR 0xff) as listed; MSI/MSI2/LSI at the given priority
    on `server` (None leaves a source unset)."""
    kx = KernelXics()
    kx.connect_icp(0)
    kx.connect_icp(1)
    for number, priority, flags in ((MSI, msi, 0), (MSI2, msi2, 0),
                                    (LSI, lsi, KVM_XICS_LEVEL_SENSITIVE)):
        if priority is not None:
            kx.set_source(number, word(server, priority, flags))
    for icp in open_icps:
        kx.h_cppr(kx.icps[icp], 0xFF)
    return kx


def icp_word(cppr: int, xisr: int, mfrr: int, pending: int) -> int:
    return (cppr << ICP_CPPR_SHIFT | xisr << ICP_XISR_SHIFT | mfrr << ICP_MFRR_SHIFT
            | pending << ICP_PPRI_SHIFT)


def state(kx: KernelXics, server: int = 0) -> tuple[int, int, int, int]:
    """(CPPR, XISR, MFRR, pending priority) of one ICP."""
    icp = kx.icps[server]
    return icp.cppr, icp.xisr, icp.mfrr, icp.pending_pri


def errno_of(call, *args) -> int:
    with pytest.raises(XicsErrno) as info:
        call(*args)
    return info.value.errno


def fire(kx: KernelXics, irq: int = MSI) -> None:
    kx.irq_line(irq, KVM_INTERRUPT_SET)


def accept_and_eoi(kx: KernelXics, server: int = 0) -> int:
    """The guest's H_XIRR then H_EOI with the value returned; returns the XIRR."""
    icp = kx.icps[server]
    xirr = kx.h_xirr(icp)
    assert kx.h_eoi(icp, xirr) == H_SUCCESS
    return xirr


# -- set_source / get_source (KVM_DEV_XICS_GRP_SOURCES) --------------------------------------------


def test_set_source_unknown_server_with_a_priority_is_einval():
    kx = make(msi=None)
    assert errno_of(kx.set_source, MSI, word(UNKNOWN_SERVER, 5)) == E.EINVAL


def test_set_source_unknown_server_is_einval_even_when_masked_flag_set():
    kx = make(msi=None)
    assert errno_of(kx.set_source, MSI, word(UNKNOWN_SERVER, 5, KVM_XICS_MASKED)) == E.EINVAL


def test_set_source_unknown_server_with_priority_ff_is_accepted():
    kx = make(msi=None)
    kx.set_source(MSI, word(UNKNOWN_SERVER, MASKED))
    assert kx.get_xive(MSI) == (UNKNOWN_SERVER, MASKED)


def test_set_source_rejected_word_does_not_create_the_source():
    kx = make(msi=None, lsi=5)
    with pytest.raises(XicsErrno):
        kx.set_source(MSI, word(UNKNOWN_SERVER, 5))
    assert errno_of(kx.get_source, MSI) == E.ENOENT


def test_set_source_rejected_word_still_creates_the_ics_block():
    # kvmppc_xics_create_ics runs before the server check: numbers in the block now have an ICS.
    kx = make(msi=None)
    with pytest.raises(XicsErrno):
        kx.set_source(0x5000, word(UNKNOWN_SERVER, 5))
    assert kx.find_source(0x5001) is not None


def test_set_source_masked_keeps_priority_as_saved_and_live_priority_ff():
    kx = make(msi=None)
    kx.set_source(MSI, word(1, 5, KVM_XICS_MASKED))
    source = kx.sources[MSI]
    assert (source.saved_priority, source.priority) == (5, MASKED)
    assert kx.get_xive(MSI) == (1, MASKED)


def test_set_source_pending_msi_is_delivered_at_once():
    kx = make(msi=None)
    kx.set_source(MSI, word(0, 5, KVM_XICS_PENDING))
    assert state(kx)[1:] == (MSI, 0xFF, 5)
    assert kx.sources[MSI].pq == PQ_PRESENTED


def test_set_source_pending_lsi_is_delivered_at_once():
    kx = make(msi=None)
    kx.set_source(LSI, word(1, 3, KVM_XICS_LEVEL_SENSITIVE | KVM_XICS_PENDING))
    assert (kx.icps[1].xisr, kx.icps[1].pending_pri) == (LSI, 3)


def test_set_source_pending_to_a_closed_icp_is_marked_for_resend():
    kx = make(msi=None, open_icps=())
    kx.set_source(MSI, word(0, 5, KVM_XICS_PENDING))
    assert kx.sources[MSI].resend and kx.icps[0].need_resend
    assert kx.get_source(MSI) == word(0, 5, KVM_XICS_PENDING | KVM_XICS_PRESENTED)


def test_set_source_without_pending_does_not_deliver():
    kx = make(msi=None)
    kx.set_source(MSI, word(0, 5, KVM_XICS_PRESENTED))
    assert kx.icps[0].xisr == 0


@pytest.mark.parametrize("flags, pq", [
    (0, 0),
    (KVM_XICS_PRESENTED, PQ_PRESENTED),
    (KVM_XICS_QUEUED, PQ_QUEUED),
    (KVM_XICS_PRESENTED | KVM_XICS_QUEUED, PQ_PRESENTED | PQ_QUEUED),
])
def test_set_source_presented_and_queued_set_p_and_q(flags, pq):
    kx = make(msi=None)
    kx.set_source(MSI, word(0, 5, flags))
    assert kx.sources[MSI].pq == pq


def test_set_source_replaces_pq_resend_and_masked_pending():
    kx = make(msi=None, open_icps=())
    kx.set_source(MSI, word(0, 5, KVM_XICS_PENDING | KVM_XICS_QUEUED))
    kx.set_source(MSI, word(0, 5))
    source = kx.sources[MSI]
    assert (source.pq, source.resend, source.masked_pending) == (0, False, False)


@pytest.mark.parametrize("irq", [NO_BLOCK, UNSET_IN_BLOCK], ids=["no-ics-block", "unset-source"])
def test_get_source_of_a_never_set_source_is_enoent(irq):
    kx = make()
    assert errno_of(kx.get_source, irq) == E.ENOENT


@pytest.mark.parametrize("irq, value", [
    (MSI, word(0, 5)),
    (MSI, word(1, 0, KVM_XICS_PRESENTED)),
    (MSI, word(0, 6, KVM_XICS_PRESENTED | KVM_XICS_QUEUED)),
    (MSI, word(0, 6, KVM_XICS_QUEUED)),
    (MSI, word(1, 7, KVM_XICS_MASKED)),
    (MSI, word(0, MASKED, KVM_XICS_MASKED)),
    (MSI, word(UNKNOWN_SERVER, MASKED, KVM_XICS_MASKED)),
    (MSI, word(0, 5, KVM_XICS_MASKED | KVM_XICS_PENDING | KVM_XICS_PRESENTED)),
    (LSI, word(0, 5, KVM_XICS_LEVEL_SENSITIVE)),
    (LSI, word(1, 2, KVM_XICS_LEVEL_SENSITIVE | KVM_XICS_PENDING | KVM_XICS_PRESENTED)),
    (LSI, word(0, 4, KVM_XICS_LEVEL_SENSITIVE | KVM_XICS_MASKED)),
])
def test_get_source_round_trips_canonical_words(irq, value):
    kx = make(msi=None)
    kx.set_source(irq, value)
    assert kx.get_source(irq) == value


def test_get_source_of_a_masked_source_reports_saved_priority_and_masked():
    kx = make()
    kx.int_off(MSI)
    assert kx.get_source(MSI) == word(0, 5, KVM_XICS_MASKED)


def test_get_source_of_a_delivered_msi_reports_presented_not_pending():
    kx = make(msi=None)
    kx.set_source(MSI, word(0, 5, KVM_XICS_PENDING))
    assert kx.get_source(MSI) == word(0, 5, KVM_XICS_PRESENTED)


# -- irq_line (KVM_IRQ_LINE) -----------------------------------------------------------------------


def test_msi_set_is_presented_with_p_set_and_output_raised():
    kx = make()
    fire(kx)
    icp = kx.icps[0]
    assert (icp.xisr, icp.pending_pri, icp.out_ee) == (MSI, 5, True)
    assert kx.sources[MSI].pq == PQ_PRESENTED
    assert kx.get_source(MSI) & KVM_XICS_PRESENTED


def test_msi_set_goes_to_the_source_server():
    kx = make(server=1)
    fire(kx)
    assert (kx.icps[0].xisr, kx.icps[1].xisr) == (0, MSI)


def test_msi_fired_while_presented_is_queued():
    kx = make()
    fire(kx)
    fire(kx)
    assert kx.sources[MSI].pq == PQ_PRESENTED | PQ_QUEUED
    assert kx.get_source(MSI) == word(0, 5, KVM_XICS_PRESENTED | KVM_XICS_QUEUED)
    assert state(kx) == (0xFF, MSI, 0xFF, 5)


def test_queued_msi_is_presented_again_after_eoi():
    kx = make()
    fire(kx)
    fire(kx)
    assert accept_and_eoi(kx) == 0xFF << 24 | MSI
    assert kx.sources[MSI].pq == PQ_PRESENTED  # EOI shifted Q into P
    assert state(kx) == (0xFF, MSI, 0xFF, 5)
    accept_and_eoi(kx)
    assert kx.sources[MSI].pq == 0
    assert state(kx) == (0xFF, 0, 0xFF, 0xFF)


def test_third_msi_fire_while_pq_11_is_coalesced():
    kx = make()
    for _ in range(3):
        fire(kx)
    assert kx.sources[MSI].pq == PQ_PRESENTED | PQ_QUEUED
    presented = 0
    while kx.icps[0].xisr:
        accept_and_eoi(kx)
        presented += 1
    assert presented == 2


@pytest.mark.parametrize("level", [0, KVM_INTERRUPT_UNSET])
def test_msi_level_zero_or_unset_does_nothing(level):
    kx = make()
    kx.irq_line(MSI, level)
    assert kx.sources[MSI].pq == 0
    assert state(kx) == (0xFF, 0, 0xFF, 0xFF)


def test_msi_unset_while_presented_does_not_clear_p():
    kx = make()
    fire(kx)
    kx.irq_line(MSI, KVM_INTERRUPT_UNSET)
    assert kx.sources[MSI].pq == PQ_PRESENTED
    assert kx.icps[0].xisr == MSI


@pytest.mark.parametrize("level", [KVM_INTERRUPT_SET_LEVEL, KVM_INTERRUPT_SET, 1])
def test_lsi_asserted_sets_p_and_is_delivered(level):
    kx = make(msi=None, lsi=5)
    kx.irq_line(LSI, level)
    assert kx.sources[LSI].pq == PQ_PRESENTED
    assert state(kx)[1:] == (LSI, 0xFF, 5)
    assert kx.get_source(LSI) & KVM_XICS_PENDING


def test_lsi_asserted_again_while_p_set_does_nothing():
    kx = make(msi=None, lsi=5)
    kx.irq_line(LSI, KVM_INTERRUPT_SET_LEVEL)
    kx.h_xirr(kx.icps[0])  # accepted, still asserted
    kx.irq_line(LSI, KVM_INTERRUPT_SET_LEVEL)
    assert kx.sources[LSI].pq == PQ_PRESENTED
    assert state(kx) == (5, 0, 0xFF, 0xFF)


def test_lsi_unset_clears_p():
    kx = make(msi=None, lsi=5)
    kx.irq_line(LSI, KVM_INTERRUPT_SET_LEVEL)
    kx.irq_line(LSI, KVM_INTERRUPT_UNSET)
    assert kx.sources[LSI].pq == 0
    assert not kx.get_source(LSI) & (KVM_XICS_PENDING | KVM_XICS_PRESENTED)


def test_lsi_still_asserted_is_presented_again_at_eoi():
    kx = make(msi=None, lsi=5)
    kx.irq_line(LSI, KVM_INTERRUPT_SET_LEVEL)
    accept_and_eoi(kx)
    assert state(kx) == (0xFF, LSI, 0xFF, 5)


def test_lsi_deasserted_before_eoi_is_not_presented_again():
    kx = make(msi=None, lsi=5)
    kx.irq_line(LSI, KVM_INTERRUPT_SET_LEVEL)
    xirr = kx.h_xirr(kx.icps[0])
    kx.irq_line(LSI, KVM_INTERRUPT_UNSET)
    kx.h_eoi(kx.icps[0], xirr)
    assert state(kx) == (0xFF, 0, 0xFF, 0xFF)


@pytest.mark.parametrize("irq", [NO_BLOCK, UNSET_IN_BLOCK], ids=["no-ics-block", "unset-source"])
@pytest.mark.parametrize("level", [KVM_INTERRUPT_SET, KVM_INTERRUPT_UNSET])
def test_irq_line_on_a_source_that_does_not_exist_is_einval(irq, level):
    """ics_deliver_irq's code: KVM_IRQ_LINE itself returns 0 (see test_kvm.py)."""
    kx = make()
    assert kx.irq_line(irq, level) == -E.EINVAL


# -- delivery rules (icp_try_to_deliver / icp_deliver_irq) -----------------------------------------


@pytest.mark.parametrize("cppr, xisr, mfrr, pending, accepted", [
    (6, 0, 0xFF, 0xFF, True),
    (5, 0, 0xFF, 0xFF, False),  # CPPR == p
    (4, 0, 0xFF, 0xFF, False),  # CPPR < p
    (0xFF, 0, 5, 0xFF, False),  # MFRR == p
    (0xFF, XICS_IPI, 6, 6, True),  # pending IPI less favoured: displaced
    (0xFF, XICS_IPI, 5, 5, False),  # pending_pri == p
    (0xFF, XICS_IPI, 4, 4, False),  # pending_pri < p
], ids=["all-greater", "cppr-equal", "cppr-lower", "mfrr-equal", "pending-greater",
        "pending-equal", "pending-lower"])
def test_delivery_needs_cppr_mfrr_and_pending_all_less_favoured(cppr, xisr, mfrr, pending,
                                                                 accepted):
    kx = make()
    kx.set_icp(0, icp_word(cppr, xisr, mfrr, pending))
    fire(kx)
    if accepted:
        assert state(kx) == (cppr, MSI, mfrr, 5)
        assert not kx.sources[MSI].resend
    else:
        assert state(kx) == (cppr, xisr, mfrr, pending)
        assert kx.sources[MSI].resend and kx.icps[0].need_resend


def test_failed_delivery_marks_icp_need_resend_and_source_resend():
    kx = make(open_icps=())
    fire(kx)
    icp = kx.icps[0]
    assert (icp.xisr, icp.need_resend, icp.resend_map) == (0, True, {BLOCK})
    assert kx.sources[MSI].resend
    assert kx.get_source(MSI) & KVM_XICS_PENDING


def test_failed_delivery_is_resent_when_h_cppr_lowers_priority():
    kx = make(open_icps=())
    fire(kx)
    kx.h_cppr(kx.icps[0], 0xFF)
    assert state(kx)[1:] == (MSI, 0xFF, 5)
    assert not kx.icps[0].need_resend and not kx.sources[MSI].resend


def test_failed_delivery_is_resent_when_h_cppr_lowers_priority_enough():
    kx = make(open_icps=())
    fire(kx)
    kx.h_cppr(kx.icps[0], 5)  # still not less favoured than 5: resent, fails again
    assert kx.icps[0].xisr == 0 and kx.sources[MSI].resend and kx.icps[0].need_resend
    kx.h_cppr(kx.icps[0], 6)
    assert state(kx) == (6, MSI, 0xFF, 5)


def test_failed_delivery_is_resent_at_eoi_of_the_blocking_interrupt():
    kx = make(msi=5, msi2=3)
    fire(kx, MSI2)
    xirr = kx.h_xirr(kx.icps[0])  # CPPR 3
    fire(kx, MSI)
    assert kx.icps[0].xisr == 0 and kx.sources[MSI].resend
    kx.h_eoi(kx.icps[0], xirr)
    assert state(kx) == (0xFF, MSI, 0xFF, 5)


def test_more_favoured_interrupt_displaces_the_pending_one_which_is_marked_resend():
    kx = make(msi=5, msi2=3)
    fire(kx, MSI)
    fire(kx, MSI2)
    assert state(kx)[1:] == (MSI2, 0xFF, 3)
    assert kx.sources[MSI].resend and kx.icps[0].need_resend
    assert kx.sources[MSI].pq == PQ_PRESENTED  # not lost, only waiting


def test_displaced_interrupt_comes_back_after_the_favoured_one_is_eoied():
    kx = make(msi=5, msi2=3)
    fire(kx, MSI)
    fire(kx, MSI2)
    assert accept_and_eoi(kx) == 0xFF << 24 | MSI2
    assert state(kx) == (0xFF, MSI, 0xFF, 5)


def test_equal_priority_interrupt_does_not_displace_the_pending_one():
    kx = make(msi=5, msi2=5)
    fire(kx, MSI)
    fire(kx, MSI2)
    assert kx.icps[0].xisr == MSI
    assert kx.sources[MSI2].resend


def test_displaced_interrupt_is_offered_again_at_once_to_its_server():
    kx = make(msi=5, msi2=3)
    fire(kx, MSI)
    kx.set_xive(MSI, 1, 5)  # now routed to server 1; nothing to resend, so no delivery
    assert (kx.icps[0].xisr, kx.icps[1].xisr) == (MSI, 0)
    fire(kx, MSI2)
    assert (kx.icps[0].xisr, kx.icps[1].xisr) == (MSI2, MSI)
    assert not kx.sources[MSI].resend


def test_masked_source_at_delivery_becomes_masked_pending():
    kx = make(msi=None)
    kx.set_source(MSI, word(0, 5, KVM_XICS_MASKED))
    fire(kx)
    source = kx.sources[MSI]
    assert source.masked_pending and not source.resend
    assert state(kx) == (0xFF, 0, 0xFF, 0xFF)
    assert kx.get_source(MSI) == word(0, 5, KVM_XICS_MASKED | KVM_XICS_PENDING | KVM_XICS_PRESENTED)


def test_set_xive_with_a_priority_delivers_a_masked_pending_interrupt():
    kx = make(msi=None)
    kx.set_source(MSI, word(0, 5, KVM_XICS_MASKED))
    fire(kx)
    kx.set_xive(MSI, 1, 4)
    assert (kx.icps[1].xisr, kx.icps[1].pending_pri) == (MSI, 4)
    assert not kx.sources[MSI].masked_pending


def test_set_xive_with_priority_ff_keeps_the_interrupt_masked_pending():
    kx = make(msi=None)
    kx.set_source(MSI, word(0, 5, KVM_XICS_MASKED))
    fire(kx)
    kx.set_xive(MSI, 0, MASKED)
    assert kx.sources[MSI].masked_pending
    assert kx.icps[0].xisr == 0


def test_int_on_delivers_a_masked_pending_interrupt():
    kx = make()
    kx.int_off(MSI)
    fire(kx)
    assert kx.icps[0].xisr == 0 and kx.sources[MSI].masked_pending
    kx.int_on(MSI)
    assert state(kx)[1:] == (MSI, 0xFF, 5)
    assert not kx.sources[MSI].masked_pending


def test_set_xive_delivers_an_interrupt_waiting_for_resend():
    kx = make(open_icps=())
    fire(kx)
    kx.h_cppr(kx.icps[1], 0xFF)
    kx.set_xive(MSI, 1, 5)
    assert kx.icps[1].xisr == MSI
    assert not kx.sources[MSI].resend


# -- H_XIRR ----------------------------------------------------------------------------------------


def test_h_xirr_returns_cppr_and_xisr_and_accepts_the_interrupt():
    kx = make()
    fire(kx)
    assert kx.h_xirr(kx.icps[0]) == 0xFF << 24 | MSI
    assert state(kx) == (5, 0, 0xFF, 0xFF)
    assert not kx.icps[0].out_ee


def test_h_xirr_accepting_an_ipi_returns_xisr_2():
    kx = make()
    kx.h_ipi(0, 4)
    assert kx.h_xirr(kx.icps[0]) == 0xFF << 24 | XICS_IPI
    assert state(kx) == (4, 0, 4, 0xFF)


def test_h_xirr_with_nothing_pending_leaves_cppr_unchanged():
    kx = make()
    kx.h_cppr(kx.icps[0], 0x80)
    assert kx.h_xirr(kx.icps[0]) == 0x80 << 24
    assert state(kx) == (0x80, 0, 0xFF, 0xFF)


# -- H_CPPR ----------------------------------------------------------------------------------------


def test_h_cppr_equal_value_is_a_noop():
    kx = make(open_icps=())
    fire(kx)  # fails against CPPR 0: need_resend set
    kx.h_cppr(kx.icps[0], 0)
    assert kx.icps[0].need_resend and kx.sources[MSI].resend
    assert state(kx) == (0, 0, 0xFF, 0xFF)


def test_h_cppr_uses_only_the_low_byte():
    kx = make(open_icps=())
    kx.h_cppr(kx.icps[0], 0x1FF)
    assert kx.icps[0].cppr == 0xFF


def test_h_cppr_more_favoured_than_pending_rejects_and_reoffers_a_device_interrupt():
    kx = make()
    fire(kx)
    kx.h_cppr(kx.icps[0], 5)
    assert state(kx) == (5, 0, 0xFF, 0xFF)
    assert kx.sources[MSI].resend and kx.icps[0].need_resend  # re-offered, failed


def test_device_interrupt_rejected_by_h_cppr_comes_back_when_cppr_goes_down():
    kx = make()
    fire(kx)
    kx.h_cppr(kx.icps[0], 2)
    kx.h_cppr(kx.icps[0], 0xFF)
    assert state(kx) == (0xFF, MSI, 0xFF, 5)


def test_h_cppr_rejected_device_interrupt_is_reoffered_to_its_server_at_once():
    kx = make()
    fire(kx)
    kx.set_xive(MSI, 1, 5)
    kx.h_cppr(kx.icps[0], 5)
    assert (kx.icps[0].xisr, kx.icps[1].xisr) == (0, MSI)


def test_h_cppr_more_favoured_but_still_above_pending_keeps_the_interrupt():
    kx = make()
    fire(kx)
    kx.h_cppr(kx.icps[0], 6)
    assert state(kx) == (6, MSI, 0xFF, 5)
    assert not kx.sources[MSI].resend


def test_h_cppr_rejected_ipi_is_not_reoffered():
    kx = make()
    kx.h_ipi(0, 5)
    kx.h_cppr(kx.icps[0], 5)
    assert state(kx) == (5, 0, 5, 0xFF)
    assert not kx.icps[0].need_resend


def test_h_cppr_rejected_ipi_comes_back_from_mfrr_when_cppr_goes_down():
    kx = make()
    kx.h_ipi(0, 5)
    kx.h_cppr(kx.icps[0], 3)
    kx.h_cppr(kx.icps[0], 0xFF)
    assert state(kx) == (0xFF, XICS_IPI, 5, 5)


def test_h_cppr_down_to_mfrr_does_not_present_the_ipi():
    kx = make()
    kx.h_cppr(kx.icps[0], 3)
    kx.h_ipi(0, 5)
    kx.h_cppr(kx.icps[0], 5)  # MFRR must be strictly more favoured than CPPR
    assert state(kx) == (5, 0, 5, 0xFF)


# -- H_IPI -----------------------------------------------------------------------------------------


def test_h_ipi_to_an_unknown_server_is_h_parameter():
    kx = make()
    before = [kx.get_icp(s) for s in (0, 1)]
    assert kx.h_ipi(UNKNOWN_SERVER, 5) == H_PARAMETER
    assert [kx.get_icp(s) for s in (0, 1)] == before


def test_h_ipi_more_favoured_than_cppr_presents_the_ipi():
    kx = make()
    assert kx.h_ipi(1, 5) == H_SUCCESS
    assert state(kx, 1) == (0xFF, XICS_IPI, 5, 5)
    assert kx.icps[1].out_ee
    assert state(kx, 0) == (0xFF, 0, 0xFF, 0xFF)


def test_h_ipi_not_more_favoured_than_cppr_only_sets_mfrr():
    kx = make()
    kx.h_cppr(kx.icps[0], 5)
    kx.h_ipi(0, 5)
    assert state(kx) == (5, 0, 5, 0xFF)


def test_h_ipi_rejects_a_less_favoured_device_interrupt():
    kx = make()
    fire(kx)
    kx.h_ipi(0, 3)
    assert state(kx) == (0xFF, XICS_IPI, 3, 3)
    assert kx.sources[MSI].resend and kx.icps[0].need_resend


def test_h_ipi_rejects_a_device_interrupt_of_equal_priority():
    kx = make()
    fire(kx)
    kx.h_ipi(0, 5)
    assert state(kx) == (0xFF, XICS_IPI, 5, 5)
    assert kx.sources[MSI].resend


def test_h_ipi_less_favoured_than_pending_leaves_the_device_interrupt():
    kx = make()
    fire(kx)
    kx.h_ipi(0, 6)
    assert state(kx) == (0xFF, MSI, 6, 5)
    assert not kx.sources[MSI].resend


def test_h_ipi_making_mfrr_less_favoured_resends():
    kx = make()
    kx.set_icp(0, icp_word(0xFF, 0, 5, 0xFF))
    fire(kx)  # blocked by MFRR 5
    assert kx.icps[0].need_resend
    kx.h_ipi(0, 0xFF)
    assert state(kx) == (0xFF, MSI, 0xFF, 5)
    assert not kx.icps[0].need_resend


def test_h_ipi_making_mfrr_more_favoured_does_not_resend():
    kx = make(open_icps=())
    fire(kx)
    kx.h_ipi(0, 3)
    assert kx.icps[0].need_resend and kx.sources[MSI].resend


def test_ipi_and_device_interrupt_both_delivered_in_priority_order():
    kx = make()
    fire(kx)
    kx.h_ipi(0, 3)
    assert kx.h_xirr(kx.icps[0]) == 0xFF << 24 | XICS_IPI
    kx.h_ipi(0, 0xFF)  # the guest clears MFRR before EOI
    kx.h_eoi(kx.icps[0], 0xFF << 24 | XICS_IPI)
    assert state(kx) == (0xFF, MSI, 0xFF, 5)


# -- H_IPOLL ---------------------------------------------------------------------------------------


def test_h_ipoll_returns_xirr_and_mfrr_without_side_effects():
    kx = make()
    fire(kx)
    kx.h_ipi(0, 7)
    before = kx.get_icp(0)
    assert kx.h_ipoll(0) == (H_SUCCESS, 0xFF << 24 | MSI, 7)
    assert kx.get_icp(0) == before
    assert kx.sources[MSI].pq == PQ_PRESENTED


def test_h_ipoll_of_an_unknown_server_is_h_parameter():
    kx = make()
    assert kx.h_ipoll(UNKNOWN_SERVER)[0] == H_PARAMETER


# -- H_EOI -----------------------------------------------------------------------------------------


def test_h_eoi_sets_cppr_from_the_xirr_top_byte():
    kx = make(open_icps=())
    assert kx.h_eoi(kx.icps[0], 0x42 << 24 | XICS_IPI) == H_SUCCESS
    assert kx.icps[0].cppr == 0x42


def test_h_eoi_of_the_ipi_has_no_ics_eoi():
    kx = make()  # no ICS block 0 exists, yet EOI of irq 2 succeeds
    kx.h_ipi(0, 5)
    xirr = kx.h_xirr(kx.icps[0])
    kx.h_ipi(0, 0xFF)
    assert kx.h_eoi(kx.icps[0], xirr) == H_SUCCESS
    assert state(kx) == (0xFF, 0, 0xFF, 0xFF)


def test_h_eoi_of_the_ipi_leaves_source_pq_alone():
    kx = make()
    kx.set_source(MSI, word(0, 5, KVM_XICS_PRESENTED | KVM_XICS_QUEUED))
    kx.h_eoi(kx.icps[0], 0xFF << 24 | XICS_IPI)
    assert kx.sources[MSI].pq == PQ_PRESENTED | PQ_QUEUED


def test_h_eoi_of_an_unknown_ics_block_is_h_parameter_after_setting_cppr():
    kx = make(open_icps=())
    assert kx.h_eoi(kx.icps[0], 0x80 << 24 | NO_BLOCK) == H_PARAMETER
    assert kx.icps[0].cppr == 0x80


def test_h_eoi_lowering_cppr_presents_a_pending_ipi():
    kx = make()
    kx.h_ipi(0, 5)
    xirr = kx.h_xirr(kx.icps[0])
    kx.h_eoi(kx.icps[0], xirr)  # MFRR not cleared: the IPI is presented again
    assert state(kx) == (0xFF, XICS_IPI, 5, 5)


# -- RTAS: set-xive / get-xive / int-off / int-on --------------------------------------------------


@pytest.mark.parametrize("call, args", [
    ("set_xive", (NO_BLOCK, 0, 5)),
    ("get_xive", (NO_BLOCK,)),
    ("int_off", (NO_BLOCK,)),
    ("int_on", (NO_BLOCK,)),
])
def test_rtas_on_an_unknown_ics_block_is_einval(call, args):
    kx = make()
    assert errno_of(getattr(kx, call), *args) == E.EINVAL


def test_set_xive_to_an_unknown_server_is_einval():
    kx = make()
    assert errno_of(kx.set_xive, MSI, UNKNOWN_SERVER, 5) == E.EINVAL
    assert kx.get_xive(MSI) == (0, 5)


def test_int_on_with_an_unknown_source_server_is_einval():
    kx = make(msi=None)
    kx.set_source(MSI, word(UNKNOWN_SERVER, MASKED))
    assert errno_of(kx.int_on, MSI) == E.EINVAL


def test_int_off_does_not_check_the_server():
    kx = make(msi=None)
    kx.set_source(MSI, word(UNKNOWN_SERVER, MASKED))
    kx.int_off(MSI)
    assert kx.get_xive(MSI) == (UNKNOWN_SERVER, MASKED)


def test_set_xive_sets_server_and_priority():
    kx = make()
    kx.set_xive(MSI, 1, 3)
    assert kx.get_xive(MSI) == (1, 3)
    assert kx.get_source(MSI) == word(1, 3)


def test_int_off_saves_the_current_priority_and_masks():
    kx = make()
    kx.int_off(MSI)
    assert kx.get_xive(MSI) == (0, MASKED)
    assert kx.sources[MSI].saved_priority == 5


def test_int_on_restores_the_saved_priority():
    kx = make()
    kx.int_off(MSI)
    kx.int_on(MSI)
    assert kx.get_xive(MSI) == (0, 5)
    assert kx.get_source(MSI) == word(0, 5)


def test_second_int_off_saves_the_masked_priority():
    kx = make()
    kx.int_off(MSI)
    kx.int_off(MSI)  # int-off saves whatever the live priority is
    kx.int_on(MSI)
    assert kx.get_xive(MSI) == (0, MASKED)


def test_masked_source_does_not_deliver_until_int_on():
    kx = make()
    kx.int_off(MSI)
    fire(kx)
    fire(kx)
    assert kx.icps[0].xisr == 0
    kx.int_on(MSI)
    assert kx.icps[0].xisr == MSI
    assert kx.sources[MSI].pq == PQ_PRESENTED | PQ_QUEUED


# -- ICP state register (KVM_REG_PPC_ICP_STATE) ----------------------------------------------------


def test_get_icp_of_a_fresh_icp():
    kx = KernelXics()
    kx.connect_icp(0)
    assert kx.get_icp(0) == icp_word(0, 0, 0xFF, 0xFF)


def test_get_icp_packs_cppr_xisr_mfrr_and_pending_priority():
    kx = make()
    fire(kx)
    kx.h_ipi(0, 9)
    assert kx.get_icp(0) == 0xFF << 56 | MSI << 32 | 9 << 24 | 5 << 16


@pytest.mark.parametrize("cppr, xisr, mfrr, pending", [
    (0xFF, 0, 0xFF, 5),  # no XISR but a pending priority
    (0xFF, XICS_IPI, 6, 5),  # IPI pending priority is not MFRR
    (5, XICS_IPI, 5, 5),  # IPI not more favoured than CPPR
    (4, XICS_IPI, 5, 5),
    (0xFF, MSI, 5, 5),  # device pending not more favoured than MFRR
    (5, MSI, 0xFF, 5),  # device pending not more favoured than CPPR
    (0xFF, NO_BLOCK, 0xFF, 5),  # no ICS block for the XISR
], ids=["xisr0-pending", "ipi-pending-ne-mfrr", "ipi-eq-cppr", "ipi-gt-cppr", "dev-eq-mfrr",
        "dev-eq-cppr", "dev-no-block"])
def test_set_icp_inconsistent_state_is_einval_and_changes_nothing(cppr, xisr, mfrr, pending):
    kx = make()
    before = kx.get_icp(0)
    assert errno_of(kx.set_icp, 0, icp_word(cppr, xisr, mfrr, pending)) == E.EINVAL
    assert kx.get_icp(0) == before


@pytest.mark.parametrize("cppr, xisr, mfrr, pending", [
    (0, 0, 0xFF, 0xFF),
    (0xFF, 0, 3, 0xFF),
    (0xFF, XICS_IPI, 5, 5),
    (6, MSI, 0xFF, 5),
    (0xFF, LSI, 7, 6),
    (0xFF, UNSET_IN_BLOCK, 0xFF, 5),  # only the ICS block is checked
])
def test_set_icp_valid_state_round_trips(cppr, xisr, mfrr, pending):
    kx = make(lsi=5)
    value = icp_word(cppr, xisr, mfrr, pending)
    kx.set_icp(1, value)
    assert kx.get_icp(1) == value
    assert state(kx, 1) == (cppr, xisr, mfrr, pending)


def test_set_icp_ignores_the_low_16_bits():
    kx = make()
    kx.set_icp(0, icp_word(0xFF, XICS_IPI, 5, 5) | 0xBEEF)
    assert kx.get_icp(0) == icp_word(0xFF, XICS_IPI, 5, 5)


def test_set_icp_making_mfrr_less_favoured_resends():
    kx = make()
    kx.set_icp(0, icp_word(0xFF, 0, 5, 0xFF))
    fire(kx)
    kx.set_icp(0, icp_word(0xFF, 0, 0xFF, 0xFF))
    assert state(kx) == (0xFF, MSI, 0xFF, 5)
    assert not kx.icps[0].need_resend


def test_set_icp_lowering_only_cppr_keeps_need_resend_without_resending():
    kx = make(open_icps=())
    fire(kx)
    kx.set_icp(0, icp_word(0xFF, 0, 0xFF, 0xFF))
    assert kx.icps[0].xisr == 0
    assert kx.icps[0].need_resend and kx.sources[MSI].resend
    kx.h_ipi(0, 0xFF)  # MFRR unchanged: still no resend
    kx.h_cppr(kx.icps[0], 0xFE)
    kx.h_cppr(kx.icps[0], 0xFF)  # Down_CPPR performs it
    assert kx.icps[0].xisr == MSI


def test_set_icp_displacing_an_xisr_does_not_reject_it():
    kx = make()
    fire(kx)
    kx.set_icp(0, icp_word(0xFF, 0, 0xFF, 0xFF))
    assert kx.icps[0].xisr == 0
    assert not kx.sources[MSI].resend and not kx.icps[0].need_resend


# -- random hcall sequences ------------------------------------------------------------------------

SOURCES = (0x1300, 0x1700)  # two sources in two ICS blocks (4 and 5)
ABSENT = 0x1302
PRIORITY = st.one_of(st.integers(0, 7), st.just(0xFF), st.integers(0, 0xFF))
LEVEL = st.sampled_from([KVM_INTERRUPT_SET, KVM_INTERRUPT_UNSET, KVM_INTERRUPT_SET_LEVEL, 0, 1])
SERVER = st.sampled_from([0, 1])
SOURCE_SETUP = st.tuples(st.booleans(), SERVER, st.integers(0, 7))  # (lsi, server, priority)
LINE = st.tuples(st.just("line"), st.sampled_from(SOURCES + (ABSENT,)), LEVEL)
OPS = st.lists(st.one_of(
    LINE,
    LINE,
    st.tuples(st.just("xirr"), SERVER),
    st.tuples(st.just("eoi"), SERVER),
    st.tuples(st.just("cppr"), SERVER, PRIORITY),
    st.tuples(st.just("ipi"), st.sampled_from([0, 1, UNKNOWN_SERVER]), PRIORITY),
), min_size=15, max_size=80)


@settings(max_examples=400, deadline=None)
@given(st.tuples(SOURCE_SETUP, SOURCE_SETUP), OPS)
def test_random_hcall_sequences_raise_only_xics_errno_and_present_a_source_once(setup, ops):
    kx = KernelXics()
    for server in (0, 1):
        kx.connect_icp(server)
        kx.h_cppr(kx.icps[server], 0xFF)
    for irq, (lsi, server, priority) in zip(SOURCES, setup):
        kx.set_source(irq, word(server, priority, KVM_XICS_LEVEL_SENSITIVE if lsi else 0))
    accepted: dict[int, list[int]] = {0: [], 1: []}  # XIRRs the guest has yet to EOI, per CPU

    for op, *args in ops:
        try:
            if op == "line":
                kx.irq_line(*args)
            elif op == "xirr":
                xirr = kx.h_xirr(kx.icps[args[0]])
                if xirr & 0xFFFFFF:
                    accepted[args[0]].append(xirr)
            elif op == "eoi" and accepted[args[0]]:
                assert kx.h_eoi(kx.icps[args[0]], accepted[args[0]].pop()) == H_SUCCESS
            elif op == "cppr":
                kx.h_cppr(kx.icps[args[0]], args[1])
            elif op == "ipi":
                expected = H_PARAMETER if args[0] == UNKNOWN_SERVER else H_SUCCESS
                assert kx.h_ipi(*args) == expected
        except XicsErrno:
            assert op == "line" and args[0] == ABSENT
        for irq in SOURCES:
            presenting = [s for s, icp in kx.icps.items() if icp.xisr == irq]
            assert len(presenting) <= 1, (irq, presenting)
        for icp in kx.icps.values():
            assert icp.xisr in (0, XICS_IPI) + SOURCES
            assert (icp.xisr == 0) == (icp.pending_pri == 0xFF)
