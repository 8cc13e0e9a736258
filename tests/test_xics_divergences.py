"""Where QEMU's emulated XICS and KVM's in-kernel XICS show the guest different things.

Each test runs the same guest steps on both backends and states what each one does. These are the
behaviours of the real implementations (hw/intc/xics.c, arch/powerpc/kvm/book3s_xics.c), kept
side by side so that a change to either model that closes or widens a gap is seen.
"""

from __future__ import annotations

import pytest

from spapr_irq import Machine, papr

MSI = 0x1100  # the default VIO device's number: claimed as an MSI on every pseries machine


def machine(backend: str) -> Machine:
    irqchip = {"emulated": "off", "kvm": "on"}[backend]
    m = Machine.create(f"-M pseries,ic-mode=xics,kernel-irqchip={irqchip} -cpu power9 -smp 2",
                       host="power9-linux-5.10")
    for vcpu in m.vcpus:
        m.hcall(vcpu, "H_CPPR", 0xFF)
    return m


def accept_and_eoi(m: Machine, vcpu: int) -> int:
    rc, xirr = m.hcall(vcpu, "H_XIRR")
    if xirr & 0xFFFFFF == 2:
        m.hcall(vcpu, "H_IPI", vcpu, 0xFF)
    m.hcall(vcpu, "H_EOI", xirr)
    return xirr & 0xFFFFFF


def drain(m: Machine, vcpu: int) -> list[int]:
    out = []
    while m.irq_pending(vcpu):
        out.append(accept_and_eoi(m, vcpu))
    return out


BOTH = pytest.mark.parametrize("backend", ["emulated", "kvm"])


@pytest.mark.parametrize("backend, handled", [("emulated", [2, MSI]), ("kvm", [2, MSI, MSI])])
def test_msi_fired_twice_then_displaced_by_an_ipi(backend, handled):
    """QEMU's single REJECTED bit folds both firings into one; KVM queues the second (Q bit)."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 0, 5)
    m.set_irq(MSI, 1)
    m.set_irq(MSI, 1)
    m.hcall(1, "H_IPI", 0, 4)
    assert drain(m, 0) == handled


@pytest.mark.parametrize("backend, after_unmask", [("emulated", False), ("kvm", True)])
def test_msi_fired_twice_then_masked_before_handling(backend, after_unmask):
    """QEMU's resend drops a REJECTED MSI whose source is masked; KVM keeps it masked-pending."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 0, 5)
    m.set_irq(MSI, 1)
    m.set_irq(MSI, 1)
    m.rtas(0, "ibm,int-off", MSI)
    assert drain(m, 0) == [MSI]
    m.rtas(0, "ibm,int-on", MSI)
    assert m.irq_pending(0) is after_unmask


@pytest.mark.parametrize("backend, handled", [("emulated", []), ("kvm", [MSI])])
def test_rejected_msi_masked_before_its_resend(backend, handled):
    """QEMU loses it: its resend clears REJECTED and, the source being masked, delivers nothing
    and remembers nothing. KVM keeps it masked-pending ("this implementation will differ from
    PAPR and not lose such interrupts") and delivers it at unmask."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 0, 6)
    m.set_irq(MSI, 1)  # presented
    m.hcall(1, "H_IPI", 0, 4)  # the IPI displaces it: rejected
    m.rtas(0, "ibm,int-off", MSI)
    assert drain(m, 0) == [2]
    m.rtas(0, "ibm,int-on", MSI)
    assert drain(m, 0) == handled


@pytest.mark.parametrize("backend, cppr", [("emulated", 0xFF), ("kvm", 0x05)])
def test_h_xirr_with_nothing_pending(backend, cppr):
    """QEMU sets CPPR to the pending priority (0xff, PAPR's letter); KVM leaves CPPR alone."""
    m = machine(backend)
    m.hcall(0, "H_CPPR", 0x05)
    assert m.hcall(0, "H_XIRR") == (0, 0x05 << 24)
    assert m.hcall(0, "H_IPOLL", 0)[1] >> 24 == cppr


@pytest.mark.parametrize("backend, first", [("emulated", MSI), ("kvm", 2)])
def test_ipi_at_the_priority_of_a_pending_device_interrupt(backend, first):
    """At equal priority QEMU keeps the device interrupt; KVM lets the IPI displace it."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 0, 4)
    m.set_irq(MSI, 1)
    m.hcall(1, "H_IPI", 0, 4)
    assert drain(m, 0)[0] == first


@pytest.mark.parametrize("backend, status", [("emulated", papr.RTAS_OUT_PARAM_ERROR), ("kvm", 0)])
def test_set_xive_priority_above_0xff(backend, status):
    """QEMU refuses it; KVM stores the priority in a byte (0x105 becomes 0x05)."""
    m = machine(backend)
    assert m.rtas(0, "ibm,set-xive", MSI, 0, 0x105) == (status,)


@pytest.mark.parametrize("backend, at_once", [("emulated", False), ("kvm", True)])
def test_rejected_msi_moved_to_another_server(backend, at_once):
    """KVM offers a waiting MSI to its new server at once; QEMU at the next resend."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 1, 6)
    m.set_irq(MSI, 1)
    m.hcall(0, "H_IPI", 1, 4)  # the IPI displaces the MSI on server 1
    m.rtas(0, "ibm,set-xive", MSI, 0, 6)
    assert m.irq_pending(0) is at_once
    assert drain(m, 1) == [2]
    assert drain(m, 0) == [MSI]  # both deliver it in the end


def test_moving_state_from_emulated_to_kvm_loses_a_rejected_msi():
    """QEMU's KVM source word has no bit for REJECTED (only MASKED_PENDING becomes PENDING), so
    an MSI waiting for a resend in the emulated ICS is not pending in the kernel after the move."""
    source, target = machine("emulated"), machine("kvm")
    source.rtas(0, "ibm,set-xive", MSI, 0, 5)
    target.rtas(0, "ibm,set-xive", MSI, 0, 5)
    source.hcall(0, "H_CPPR", 5)
    source.set_irq(MSI, 1)  # rejected: CPPR is not above 5
    target.hcall(0, "H_CPPR", 5)
    target.xics.post_load(source.xics.pre_save())
    source.hcall(0, "H_CPPR", 0xFF)
    target.hcall(0, "H_CPPR", 0xFF)
    assert drain(source, 0) == [MSI]
    assert drain(target, 0) == []


def test_moving_state_from_kvm_to_emulated_can_deliver_a_waiting_msi_twice():
    """KVM reports a waiting MSI as PENDING; QEMU reads that back as MASKED_PENDING|REJECTED. The
    resend after the move delivers it, and a later ibm,set-xive delivers it again."""
    source, target = machine("kvm"), machine("emulated")
    for m in (source, target):
        m.rtas(0, "ibm,set-xive", MSI, 0, 5)
        m.hcall(0, "H_CPPR", 5)
    source.set_irq(MSI, 1)  # waits in the kernel with resend set
    target.xics.post_load(source.xics.pre_save())
    target.hcall(0, "H_CPPR", 0xFF)
    assert drain(target, 0) == [MSI]
    target.rtas(0, "ibm,set-xive", MSI, 0, 5)
    assert drain(target, 0) == [MSI]
