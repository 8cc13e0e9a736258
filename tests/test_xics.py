"""QEMU's emulated XICS (spec/qemu.md 5.2-5.3): one presentation rule per test, on the fabric."""

from __future__ import annotations

import pytest

from spapr_irq.arch.xics import (ICP, XICS_STATUS_ASSERTED, XICS_STATUS_MASKED_PENDING,
                            XICS_STATUS_REJECTED, XICS_STATUS_SENT, Xics)

MSI, MSI2, LSI = 0x1300, 0x1301, 0x1200


@pytest.fixture
def xics() -> Xics:
    fabric = Xics(0x1000, 0x1000)
    for server in (0, 1):
        fabric.icps[server] = ICP(server)
        fabric.set_cppr(fabric.icps[server], 0xFF)
    fabric.ics.set_irq_type(MSI, lsi=False)
    fabric.ics.set_irq_type(MSI2, lsi=False)
    fabric.ics.set_irq_type(LSI, lsi=True)
    return fabric


def route(xics: Xics, irq: int, server: int = 0, priority: int = 5) -> None:
    xics.write_xive(irq, server, priority, priority)


def test_msi_is_presented_with_its_priority_and_raises_the_line(xics):
    route(xics, MSI)
    xics.set_irq(MSI, 1)
    icp = xics.icps[0]
    assert (icp.xisr, icp.pending_priority, icp.output) == (MSI, 5, True)


def test_msi_level_zero_does_nothing(xics):
    route(xics, MSI)
    xics.set_irq(MSI, 0)
    assert xics.icps[0].xisr == 0


def test_accept_returns_xirr_and_moves_cppr_to_the_pending_priority(xics):
    route(xics, MSI)
    xics.set_irq(MSI, 1)
    icp = xics.icps[0]
    assert xics.accept(icp) == (0xFF << 24) | MSI
    assert (icp.cppr, icp.xisr, icp.pending_priority, icp.output) == (5, 0, 0xFF, False)


def test_accept_with_nothing_pending_sets_cppr_to_0xff(xics):
    icp = xics.icps[0]
    xics.set_cppr(icp, 3)
    assert xics.accept(icp) == 3 << 24
    assert icp.cppr == 0xFF  # QEMU follows PAPR literally; KVM keeps the CPPR (see divergences)


def test_more_favoured_interrupt_preempts_and_the_old_one_is_rejected(xics):
    route(xics, MSI, priority=5)
    route(xics, MSI2, priority=3)
    xics.set_irq(MSI, 1)
    xics.set_irq(MSI2, 1)
    assert xics.icps[0].xisr == MSI2
    assert xics.ics.source(MSI).status & XICS_STATUS_REJECTED


def test_less_favoured_interrupt_is_rejected_while_another_is_pending(xics):
    route(xics, MSI, priority=3)
    route(xics, MSI2, priority=5)
    xics.set_irq(MSI, 1)
    xics.set_irq(MSI2, 1)
    assert xics.icps[0].xisr == MSI
    assert xics.ics.source(MSI2).status & XICS_STATUS_REJECTED


def test_interrupt_not_more_favoured_than_cppr_is_rejected(xics):
    route(xics, MSI, priority=5)
    xics.set_cppr(xics.icps[0], 5)
    xics.set_irq(MSI, 1)
    assert xics.icps[0].xisr == 0
    assert xics.ics.source(MSI).status & XICS_STATUS_REJECTED


def test_rejected_msi_is_resent_at_eoi(xics):
    route(xics, MSI, priority=3)
    route(xics, MSI2, priority=5)
    xics.set_irq(MSI, 1)
    xics.set_irq(MSI2, 1)
    icp = xics.icps[0]
    xirr = xics.accept(icp)
    xics.eoi(icp, xirr)
    assert icp.xisr == MSI2
    assert not xics.ics.source(MSI2).status & XICS_STATUS_REJECTED


def test_rejected_msi_is_resent_when_cppr_is_made_less_favoured(xics):
    route(xics, MSI, priority=5)
    icp = xics.icps[0]
    xics.set_cppr(icp, 4)
    xics.set_irq(MSI, 1)
    assert icp.xisr == 0
    xics.set_cppr(icp, 0xFF)
    assert icp.xisr == MSI


def test_raising_cppr_above_the_pending_interrupt_rejects_it_and_lowers_the_line(xics):
    route(xics, MSI, priority=5)
    xics.set_irq(MSI, 1)
    icp = xics.icps[0]
    xics.set_cppr(icp, 5)
    assert (icp.xisr, icp.pending_priority, icp.output) == (0, 0xFF, False)
    assert xics.ics.source(MSI).status & XICS_STATUS_REJECTED


def test_raising_cppr_but_staying_below_the_pending_one_keeps_it(xics):
    route(xics, MSI, priority=5)
    xics.set_irq(MSI, 1)
    xics.set_cppr(xics.icps[0], 6)
    assert xics.icps[0].xisr == MSI


def test_eoi_restores_the_cppr_from_the_xirr_top_byte(xics):
    icp = xics.icps[0]
    xics.set_cppr(icp, 4)
    xics.eoi(icp, (0x7F << 24) | MSI)
    assert icp.cppr == 0x7F


def test_mfrr_more_favoured_than_cppr_presents_an_ipi(xics):
    icp = xics.icps[1]
    xics.set_mfrr(icp, 4)
    assert (icp.xisr, icp.pending_priority, icp.output) == (2, 4, True)


def test_mfrr_not_more_favoured_than_cppr_waits(xics):
    icp = xics.icps[1]
    xics.set_cppr(icp, 4)
    xics.set_mfrr(icp, 4)
    assert icp.xisr == 0
    xics.set_cppr(icp, 5)
    assert icp.xisr == 2


def test_ipi_preempts_a_less_favoured_device_interrupt_which_is_rejected(xics):
    route(xics, MSI, priority=5)
    xics.set_irq(MSI, 1)
    xics.set_mfrr(xics.icps[0], 4)
    assert xics.icps[0].xisr == 2
    assert xics.ics.source(MSI).status & XICS_STATUS_REJECTED


def test_ipi_does_not_replace_a_device_interrupt_of_equal_priority(xics):
    route(xics, MSI, priority=4)
    xics.set_irq(MSI, 1)
    xics.set_mfrr(xics.icps[0], 4)
    assert xics.icps[0].xisr == MSI


def test_device_interrupt_more_favoured_than_a_pending_ipi_preempts_it(xics):
    route(xics, MSI, priority=3)
    xics.set_mfrr(xics.icps[0], 4)
    xics.set_irq(MSI, 1)
    assert xics.icps[0].xisr == MSI
    icp = xics.icps[0]
    xics.eoi(icp, xics.accept(icp))
    assert icp.xisr == 2  # the IPI comes back from MFRR at the resend


def test_ipoll_reads_xirr_and_mfrr_without_side_effects(xics):
    route(xics, MSI)
    xics.set_irq(MSI, 1)
    icp = xics.icps[0]
    xics.set_mfrr(icp, 0x10)
    before = (icp.xirr, icp.pending_priority, icp.mfrr, icp.output)
    assert xics.ipoll(icp) == (icp.xirr, 0x10)
    assert (icp.xirr, icp.pending_priority, icp.mfrr, icp.output) == before


def test_lsi_is_delivered_while_asserted_and_marked_sent(xics):
    route(xics, LSI)
    xics.set_irq(LSI, 1)
    source = xics.ics.source(LSI)
    assert source.status == XICS_STATUS_ASSERTED | XICS_STATUS_SENT
    assert xics.icps[0].xisr == LSI


def test_lsi_refires_at_eoi_while_still_asserted(xics):
    route(xics, LSI)
    xics.set_irq(LSI, 1)
    icp = xics.icps[0]
    xics.eoi(icp, xics.accept(icp))
    assert icp.xisr == LSI


def test_lsi_does_not_refire_once_the_line_is_low(xics):
    route(xics, LSI)
    xics.set_irq(LSI, 1)
    icp = xics.icps[0]
    xirr = xics.accept(icp)
    xics.set_irq(LSI, 0)
    xics.eoi(icp, xirr)
    assert icp.xisr == 0


def test_rejected_lsi_loses_sent_and_is_resent(xics):
    route(xics, LSI, priority=5)
    route(xics, MSI, priority=2)
    xics.set_irq(LSI, 1)
    xics.set_irq(MSI, 1)
    assert not xics.ics.source(LSI).status & XICS_STATUS_SENT
    icp = xics.icps[0]
    xics.eoi(icp, xics.accept(icp))
    assert icp.xisr == LSI


def test_masked_msi_is_remembered_and_delivered_when_unmasked(xics):
    route(xics, MSI, priority=5)
    xics.write_xive(MSI, 0, 0xFF, 5)  # int-off
    xics.set_irq(MSI, 1)
    assert xics.ics.source(MSI).status & XICS_STATUS_MASKED_PENDING
    assert xics.icps[0].xisr == 0
    xics.write_xive(MSI, 0, 5, 5)  # int-on
    assert xics.icps[0].xisr == MSI
    assert not xics.ics.source(MSI).status & XICS_STATUS_MASKED_PENDING


def test_masked_lsi_is_delivered_when_unmasked_if_still_asserted(xics):
    xics.write_xive(LSI, 0, 0xFF, 5)
    xics.set_irq(LSI, 1)
    assert xics.icps[0].xisr == 0
    xics.write_xive(LSI, 0, 5, 5)
    assert xics.icps[0].xisr == LSI


def test_msi_routed_to_another_server_goes_there(xics):
    route(xics, MSI, server=1)
    xics.set_irq(MSI, 1)
    assert (xics.icps[0].xisr, xics.icps[1].xisr) == (0, MSI)


def test_resend_on_one_server_offers_rejected_sources_of_every_server(xics):
    route(xics, MSI, server=1, priority=5)
    xics.set_cppr(xics.icps[1], 5)
    xics.set_irq(MSI, 1)
    xics.icps[1].xirr = 0xFF << 24  # CPPR opened without a resend (as a migration would)
    xics.resend(xics.icps[0])
    assert xics.icps[1].xisr == MSI


def test_freed_source_ignores_reject(xics):
    xics.ics.free(MSI)
    xics.ics_reject(MSI)
    assert xics.ics.source(MSI).status == 0
