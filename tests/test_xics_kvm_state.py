"""QEMU's XICS state and the kernel's (hw/intc/xics_kvm.c): the source word and ICP register QEMU
pushes, what it reads back, and a machine's XICS state moved into a kernel XICS (post_load)."""

from __future__ import annotations

import pytest

from spapr_irq import Machine
from spapr_irq.arch.xics import (ICP, XICS_FLAGS_IRQ_LSI, XICS_FLAGS_IRQ_MSI, XICS_STATUS_ASSERTED,
                                 XICS_STATUS_MASKED_PENDING, XICS_STATUS_PRESENTED,
                                 XICS_STATUS_QUEUED, XICS_STATUS_REJECTED, IcsIrq)
from spapr_irq.host.uapi import (KVM_XICS_LEVEL_SENSITIVE, KVM_XICS_MASKED, KVM_XICS_PENDING,
                                 KVM_XICS_PRESENTED, KVM_XICS_QUEUED)
from spapr_irq.intc.base import ConnectError
from spapr_irq.intc.xics_kvm import icp_kvm_state, ics_kvm_state

MSI = 0x1100
KERNELS = {"kvm-xics": "kvm:cpu=power9,kernel=5.10,xive=off", "kvm-xive": "power9-linux-5.10"}


def test_the_source_word_carries_server_and_saved_priority():
    source = IcsIrq(server=3, priority=5, saved_priority=5, flags=XICS_FLAGS_IRQ_MSI)
    assert ics_kvm_state(source) == 3 | 5 << 32


def test_a_masked_source_sends_its_saved_priority_and_masked():
    source = IcsIrq(server=1, priority=0xFF, saved_priority=5, flags=XICS_FLAGS_IRQ_MSI)
    assert ics_kvm_state(source) == 1 | 5 << 32 | KVM_XICS_MASKED


def test_a_masked_msi_that_fired_is_pending():
    source = IcsIrq(priority=0xFF, saved_priority=5, status=XICS_STATUS_MASKED_PENDING,
                    flags=XICS_FLAGS_IRQ_MSI)
    assert ics_kvm_state(source) & KVM_XICS_PENDING


def test_a_rejected_msi_is_not_pending():
    """REJECTED has no bit in the word: test_xics_divergences.py shows what that loses."""
    source = IcsIrq(priority=5, saved_priority=5, status=XICS_STATUS_REJECTED,
                    flags=XICS_FLAGS_IRQ_MSI)
    assert not ics_kvm_state(source) & KVM_XICS_PENDING


@pytest.mark.parametrize("asserted", [True, False])
def test_an_lsi_is_level_sensitive_and_pending_while_asserted(asserted):
    source = IcsIrq(priority=5, saved_priority=5, flags=XICS_FLAGS_IRQ_LSI,
                    status=XICS_STATUS_ASSERTED if asserted else 0)
    word = ics_kvm_state(source)
    assert word & KVM_XICS_LEVEL_SENSITIVE and bool(word & KVM_XICS_PENDING) is asserted


def test_presented_and_queued_travel_as_they_came():
    source = IcsIrq(priority=5, saved_priority=5, flags=XICS_FLAGS_IRQ_MSI,
                    status=XICS_STATUS_PRESENTED | XICS_STATUS_QUEUED)
    assert ics_kvm_state(source) & (KVM_XICS_PRESENTED | KVM_XICS_QUEUED) == (
        KVM_XICS_PRESENTED | KVM_XICS_QUEUED)


def test_the_icp_register_packs_cppr_xisr_mfrr_and_pending_priority():
    icp = ICP(server=0, xirr=0x05001100, pending_priority=4, mfrr=0xFF)
    assert icp_kvm_state(icp) == 0x05 << 56 | 0x1100 << 32 | 0xFF << 24 | 4 << 16


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_a_masked_msi_that_fired_under_emulation_is_delivered_by_the_kernel_at_unmask(kernel):
    """The emulated ICS holds it MASKED_PENDING; the word QEMU pushes makes it PENDING, so the
    kernel delivers it once the guest unmasks it."""
    source = Machine.create("-M pseries,ic-mode=xics,kernel-irqchip=off -cpu power9 -smp 2",
                            host="power9-linux-5.10")
    target = Machine.create("-M pseries,ic-mode=xics,kernel-irqchip=on -cpu power9 -smp 2",
                            host=KERNELS[kernel])
    for m in (source, target):
        m.hcall(0, "H_CPPR", 0xFF)
        m.rtas(0, "ibm,set-xive", MSI, 0, 5)
        m.rtas(0, "ibm,int-off", MSI)
    source.set_irq(MSI, 1)
    assert source.xics.ics.source(MSI).status & XICS_STATUS_MASKED_PENDING
    target.xics.post_load(source.xics.pre_save())
    assert not target.irq_pending(0)
    target.rtas(0, "ibm,int-on", MSI)
    assert target.irq_pending(0)
    assert target.hcall(0, "H_XIRR") == (0, 0xFF << 24 | MSI)


def test_an_icp_state_the_software_xics_refuses_stops_the_load_with_qemus_text():
    """icp_set_kvm_state: an XISR with no pending priority below the MFRR is inconsistent for
    book3s_xics.c (EINVAL), and QEMU's load fails with its message."""
    machine = Machine.create("-M pseries,ic-mode=xics,kernel-irqchip=on -cpu power9",
                             host=KERNELS["kvm-xics"])
    state = machine.xics.pre_save()
    state["icp"][0] = (0xFF001100, 0xFF, 0xFF)
    with pytest.raises(ConnectError) as info:
        machine.xics.post_load(state)
    assert info.value.text == ("Unable to restore KVM interrupt controller state "
                               "(0xff001100ffff0000) for CPU 0: Invalid argument")


def test_a_failed_kvm_irq_line_is_reported_as_qemus_perror():
    """ics_kvm_set_irq: perror("kvm_irq_line"). KVM_IRQ_LINE fails only without an irqchip."""
    import errno

    from spapr_irq.errors import KvmError

    machine = Machine.create("-M pseries,ic-mode=xics -cpu power9", host="power9-linux-5.10")

    def no_irqchip(irq, level):
        raise KvmError("irq_line", errno.ENXIO)

    machine.kvm.irq_line = no_irqchip
    machine.set_irq(MSI, 1)
    assert machine.reports == ["kvm_irq_line: No such device or address"]


def test_a_claim_resets_the_priority_to_0xff_only_with_an_irqchip_in_the_kernel():
    """ics_set_irq_type: under kvm_irqchip_in_kernel() the source is reset to 0xff before QEMU
    pushes it; emulated, a number freed (zeroed) and claimed again keeps priority 0, unmasked."""
    for irqchip, host, priority in (("on", KERNELS["kvm-xics"], 0xFF),
                                    ("off", "power9-linux-5.10", 0)):
        machine = Machine.create(f"-M pseries,ic-mode=xics,kernel-irqchip={irqchip} -cpu power9",
                                 host=host)
        machine.claim_irq(0x1500)
        machine.rtas(0, "ibm,set-xive", 0x1500, 0, 5)
        machine.free_irq(0x1500)
        machine.claim_irq(0x1500)
        source = machine.xics.ics.source(0x1500)
        assert (source.priority, source.saved_priority) == (priority, priority), irqchip
        if irqchip == "on":
            word = machine.kvm.get_attr(machine.xics.fd, 1, 0x1500)
            assert word & KVM_XICS_MASKED and (word >> 32) & 0xFF == 0xFF


def test_a_claim_resets_the_xics_priority_while_xive_is_the_one_in_the_kernel():
    """kvm_irqchip_in_kernel() is global: with the in-kernel XIVE active, an ICS claim is reset
    to 0xff too (and not pushed: XICS has no device)."""
    machine = Machine.create("-M pseries -cpu power9", host="power9-linux-5.10")
    machine.boot("linux-xive")
    machine.claim_irq(0x1500)
    machine.free_irq(0x1500)  # the ICS entry zeroed: priority 0
    assert machine.xics.ics.source(0x1500).priority == 0
    machine.claim_irq(0x1500)
    assert machine.xics.ics.source(0x1500).priority == 0xFF
