"""Where a XICS guest moved between different XICS implementations does not get what was
pending exactly once, stated pair by pair with the mechanism.

The three implementations keep different state: QEMU's emulated ICS marks a rejected MSI only
REJECTED (hw/intc/xics.c), the software XICS of book3s_xics.c keeps an XISR and source PQ bits,
and XICS-on-XIVE (book3s_xive.c) keeps its presented interrupts in XIVE queues and reports no XISR
at all (kvmppc_xive_get_icp). The stream carries QEMU's ICS and ICP fields between them
(xics_kvm.c ics_set_kvm_state_one / icp_set_kvm_state), and sections arrive ICS first, so the
kernel's sources are restored while its ICPs still hold their reset state (CPPR 0). What follows
is what the models of those sources give; the XIVE guest moves cleanly between every pair
(tests/test_migration.py) and so does a XICS guest between the pairs not listed here.
"""

from __future__ import annotations

from collections import Counter

import pytest

from test_migration import EVENTS, move

EMULATED = "tcg"
XICS_ON_XIVE = ["power9-linux-5.10", "power9-linux-4.19", "power9-oldfw-linux-5.4"]
SOFTWARE_XICS = "power9-nested-linux-5.10"
SENT = Counter(event.kind for event in EVENTS)  # 2 MSIs, 1 LSI, 2 IPIs


def outcome(mode: str, guest: str, src: str, dst: str) -> tuple[Counter, Counter]:
    """(lost, duplicated) interrupt kinds after the move, against the same guest not moved."""
    _target, moved, reference = move(mode, guest, src, dst)
    got, want = Counter(h.kind for h in moved), Counter(h.kind for h in reference)
    assert want == SENT
    return want - got, got - want


GUESTS = [("xics", "linux-xive"), ("dual", "linux-xive-off")]


@pytest.mark.parametrize("mode, guest", GUESTS)
@pytest.mark.parametrize("dst", [*XICS_ON_XIVE, SOFTWARE_XICS])
def test_emulated_to_in_kernel_loses_rejected_msis_and_presents_the_lsi_twice(mode, guest, dst):
    """Both MSIs were rejected by a more favoured interrupt on the emulated ICP: their state is
    REJECTED, and ics_set_kvm_state_one sends PENDING for an MSI only from MASKED_PENDING, so the
    kernel never learns of them. The presented LSI is sent as PENDING (asserted) with the ICP's
    XISR naming it: the kernel delivers it for each (XICS-on-XIVE triggers it in set_source and
    again in set_icp; the software XICS rejects it at the reset ICP and resends it later)."""
    lost, duplicated = outcome(mode, guest, EMULATED, dst)
    assert (lost, duplicated) == (Counter(msi=2), Counter(lsi=1))


@pytest.mark.parametrize("mode, guest", GUESTS)
@pytest.mark.parametrize("src", XICS_ON_XIVE)
def test_xics_on_xive_to_the_software_xics_loses_everything_pending(mode, guest, src):
    """kvmppc_xive_get_icp reports XISR 0: what the XIVE queues held leaves only as PRESENTED
    source states, which the software XICS restores as presented to nobody, and a pending IPI
    only as an MFRR below the CPPR, which kvmppc_xics_set_icp stores without presenting it."""
    lost, duplicated = outcome(mode, guest, src, SOFTWARE_XICS)
    assert (lost, duplicated) == (SENT, Counter())


@pytest.mark.parametrize("mode, guest", GUESTS)
@pytest.mark.parametrize("dst", [*XICS_ON_XIVE, SOFTWARE_XICS])
def test_from_the_software_xics_a_presented_lsi_arrives_twice(mode, guest, dst):
    """The software XICS reports a presented LSI as PENDING and PRESENTED and names it in the
    XISR; restored into a kernel XICS, the PENDING source is delivered again besides the XISR."""
    lost, duplicated = outcome(mode, guest, SOFTWARE_XICS, dst)
    assert (lost, duplicated) == (Counter(), Counter(lsi=1))


@pytest.mark.parametrize("mode, guest", GUESTS)
def test_from_the_software_xics_to_the_emulated_ics_nothing_is_lost_or_doubled(mode, guest):
    """QEMU's emulated ICS takes PRESENTED from the stream and post_load resends on every ICP:
    the LSI is presented once."""
    assert outcome(mode, guest, SOFTWARE_XICS, EMULATED) == (Counter(), Counter())


def _power8_mode(mode: str, host: str) -> str:
    cpu = {"tcg": "-cpu power8"}.get(host, "-cpu host")
    compat = ",max-cpu-compat=power8" if host.startswith("power9") else ""
    return f"-M pseries,ic-mode={mode}{compat} {cpu} -smp 2"


@pytest.mark.parametrize("src, dst", [("power8-linux-4.19", "power8-linux-5.10"),
                                      ("power8-linux-5.10", "power8-linux-5.10"),
                                      ("power8-linux-5.10", "power9-linux-5.10")])
def test_between_power8_hosts_a_presented_lsi_arrives_twice(src, dst):
    """The same mechanism between two software XICS (POWER8 KVM, a POWER9 one in POWER8 mode
    behind it): the restored PENDING source meets the destination's reset ICP (CPPR 0), is
    rejected and marked for resend, and is resent once the guest's EOI opens the CPPR, after the
    XISR copy was handled."""
    from spapr_irq import Machine, Workload

    source = Machine.create(_power8_mode("xics", src), host=src)
    source.boot("linux-xive")
    workload = Workload(source)
    for event in EVENTS:
        workload.fire(event)
    stream = source.save()
    target = Machine.create(_power8_mode("xics", dst), host=dst, incoming=True)
    lsi = next(irq for (kind, _v, _p), irq in workload.sources.items() if kind == "lsi")
    target.claim_irq(lsi, lsi=True)
    target.load(stream)
    target.resume_guest(source.driver)
    got = Counter(h.kind for h in target.driver.drain())
    assert (SENT - got, got - SENT) == (Counter(), Counter(lsi=1))


def test_xics_on_xive_loses_an_msi_that_fired_while_masked():
    """The guest masked the MSI (ibm,int-off: xive_lock_and_mask stores P and Q and sets PQ=10),
    then it fired (Q=1 in the ESB). The save's pre-scan masks every source again, but
    xive_lock_and_mask bails out for one already masked, so the Q the fire set is never read;
    xive_get_source reports it QUEUED only from the old Q. Unmasked on the same host the EOI in
    xive_finish_unmask would have re-triggered it; after the move it is gone."""
    from spapr_irq.explore import migrate

    options = "-M pseries,ic-mode=xics -cpu host -smp 2"
    result = migrate(options, "power9-linux-5.10", "power9-linux-5.10", "linux-xive",
                     to_options=options)
    assert result["delivered"] is False
    lost = Counter(map(tuple, result["expected"])) - Counter(map(tuple, result["handled"]))
    assert lost == Counter({(0, "msi", 0x1304): 1})  # the MSI behind the mask, and only it
