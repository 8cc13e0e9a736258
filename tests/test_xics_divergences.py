"""Where QEMU's emulated XICS and KVM's two in-kernel XICS show the guest different things.

Each test runs the same guest steps on the three backends and states what each one does:
``emulated`` (hw/intc/xics.c), ``kvm-xics`` (the software XICS of book3s_xics.c, on POWER8, on
POWER9 booted xive=off, in nested hypervisors) and ``kvm-xive`` (XICS-on-XIVE, book3s_xive.c, on
POWER9 and POWER10 PowerNV). They are kept side by side so that a change to any model that closes
or widens a gap is seen.
"""

from __future__ import annotations

import pytest

from spapr_irq import Machine, papr

MSI = 0x1100  # the default VIO device's number: claimed as an MSI on every pseries machine
LSI = 0x1200  # the default PHB's first LSI


HOSTS = {"emulated": ("off", "power9-linux-5.10"),
         "kvm-xics": ("on", "kvm:cpu=power9,kernel=5.10,xive=off"),
         "kvm-xive": ("on", "power9-linux-5.10")}


def machine(backend: str) -> Machine:
    irqchip, host = HOSTS[backend]
    m = Machine.create(f"-M pseries,ic-mode=xics,kernel-irqchip={irqchip} -cpu power9 -smp 2",
                       host=host)
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


@pytest.mark.parametrize("backend, handled", [("emulated", [2, MSI]), ("kvm-xics", [2, MSI, MSI]),
                                              ("kvm-xive", [2, MSI, MSI])])
def test_msi_fired_twice_then_displaced_by_an_ipi(backend, handled):
    """QEMU's single REJECTED bit folds both firings into one; KVM keeps the second (a Q bit, in
    the software ICS or in the hardware IPI's ESB)."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 0, 5)
    m.set_irq(MSI, 1)
    m.set_irq(MSI, 1)
    m.hcall(1, "H_IPI", 0, 4)
    assert drain(m, 0) == handled


@pytest.mark.parametrize("backend, after_unmask", [("emulated", False), ("kvm-xics", True),
                                                   ("kvm-xive", True)])
def test_msi_fired_twice_then_masked_before_handling(backend, after_unmask):
    """QEMU's resend drops a REJECTED MSI whose source is masked; KVM keeps it masked-pending
    (XICS-on-XIVE: the Q bit saved at masking is restored and resent at unmask)."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 0, 5)
    m.set_irq(MSI, 1)
    m.set_irq(MSI, 1)
    m.rtas(0, "ibm,int-off", MSI)
    assert drain(m, 0) == [MSI]
    m.rtas(0, "ibm,int-on", MSI)
    assert m.irq_pending(0) is after_unmask


@pytest.mark.parametrize("backend, while_masked, at_unmask", [
    ("emulated", [2], []), ("kvm-xics", [2], [MSI]), ("kvm-xive", [2, MSI], [])])
def test_rejected_msi_masked_before_its_resend(backend, while_masked, at_unmask):
    """QEMU loses it: its resend clears REJECTED and, the source being masked, delivers nothing
    and remembers nothing. The software XICS keeps it masked-pending ("this implementation will
    differ from PAPR and not lose such interrupts") and delivers it at unmask. XICS-on-XIVE never
    rejected it: it waits in the queue, and masking does not take it out, so it is delivered
    while masked (its EOI then only forgets P)."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 0, 6)
    m.set_irq(MSI, 1)  # presented (queued)
    m.hcall(1, "H_IPI", 0, 4)  # the IPI displaces it: rejected (or simply more favoured)
    m.rtas(0, "ibm,int-off", MSI)
    assert drain(m, 0) == while_masked
    m.rtas(0, "ibm,int-on", MSI)
    assert drain(m, 0) == at_unmask


@pytest.mark.parametrize("backend, cppr", [("emulated", 0xFF), ("kvm-xics", 0x05),
                                           ("kvm-xive", 0x05)])
def test_h_xirr_with_nothing_pending(backend, cppr):
    """QEMU sets CPPR to the pending priority (0xff, PAPR's letter); KVM leaves CPPR alone."""
    m = machine(backend)
    m.hcall(0, "H_CPPR", 0x05)
    assert m.hcall(0, "H_XIRR") == (0, 0x05 << 24)
    assert m.hcall(0, "H_IPOLL", 0)[1] >> 24 == cppr


@pytest.mark.parametrize("backend, first", [("emulated", MSI), ("kvm-xics", 2), ("kvm-xive", 2)])
def test_ipi_at_the_priority_of_a_pending_device_interrupt(backend, first):
    """At equal priority QEMU keeps the device interrupt; KVM lets the IPI displace it
    (XICS-on-XIVE: an MFRR at least as favoured wins the queue scan)."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 0, 4)
    m.set_irq(MSI, 1)
    m.hcall(1, "H_IPI", 0, 4)
    assert drain(m, 0)[0] == first


@pytest.mark.parametrize("backend, status", [("emulated", papr.RTAS_OUT_PARAM_ERROR),
                                             ("kvm-xics", 0), ("kvm-xive", 0)])
def test_set_xive_priority_above_0xff(backend, status):
    """QEMU refuses it; KVM stores the priority in a byte (0x105 becomes 0x05)."""
    m = machine(backend)
    assert m.rtas(0, "ibm,set-xive", MSI, 0, 0x105) == (status,)


@pytest.mark.parametrize("backend, at_once, on_1, on_0", [
    ("emulated", False, [2], [MSI]), ("kvm-xics", True, [2], [MSI]),
    ("kvm-xive", False, [2, MSI], [])])
def test_rejected_msi_moved_to_another_server(backend, at_once, on_1, on_0):
    """The software XICS offers a waiting MSI to its new server at once, QEMU at the next resend;
    XICS-on-XIVE leaves the entry in the old server's queue, which delivers it (only an H_CPPR
    that masks more would take it out and resend it)."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 1, 6)
    m.set_irq(MSI, 1)
    m.hcall(0, "H_IPI", 1, 4)  # the IPI displaces the MSI on server 1
    m.rtas(0, "ibm,set-xive", MSI, 0, 6)
    assert m.irq_pending(0) is at_once
    assert drain(m, 1) == on_1
    assert drain(m, 0) == on_0  # each delivers it once, in the end


@pytest.mark.parametrize("kernel", ["kvm-xics", "kvm-xive"])
def test_moving_state_from_emulated_to_kvm_loses_a_rejected_msi(kernel):
    """QEMU's KVM source word has no bit for REJECTED (only MASKED_PENDING becomes PENDING), so
    an MSI waiting for a resend in the emulated ICS is not pending in the kernel after the move."""
    source, target = machine("emulated"), machine(kernel)
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


@pytest.mark.parametrize("kernel", ["kvm-xics", "kvm-xive"])
def test_moving_state_from_kvm_to_emulated_can_deliver_a_waiting_msi_twice(kernel):
    """KVM reports a waiting MSI as PENDING (XICS-on-XIVE: it is still in a queue); QEMU reads
    that back as MASKED_PENDING|REJECTED. The resend after the move delivers it, and a later
    ibm,set-xive delivers it again."""
    source, target = machine(kernel), machine("emulated")
    for m in (source, target):
        m.rtas(0, "ibm,set-xive", MSI, 0, 5)
        m.hcall(0, "H_CPPR", 5)
    source.set_irq(MSI, 1)  # waits in the kernel with resend set
    target.xics.post_load(source.xics.pre_save())
    target.hcall(0, "H_CPPR", 0xFF)
    assert drain(target, 0) == [MSI]
    target.rtas(0, "ibm,set-xive", MSI, 0, 5)
    assert drain(target, 0) == [MSI]


# --- XICS-on-XIVE only ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend, order", [("emulated", [LSI, 2]), ("kvm-xics", [LSI, 2]),
                                            ("kvm-xive", [2, LSI])])
def test_an_ipi_before_a_more_favoured_device_interrupt(backend, order):
    """XICS-on-XIVE signals an MFRR change by a hardware IPI at priority 0: the ACK shows that
    priority only, the queue scan finds nothing there and synthesizes the IPI at the MFRR, and
    the more favoured interrupt waits for the next H_XIRR."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", LSI, 0, 3)
    m.set_irq(LSI, 1)
    m.hcall(1, "H_IPI", 0, 4)
    got = []
    while m.irq_pending(0):
        rc, xirr = m.hcall(0, "H_XIRR")
        got.append(xirr & 0xFFFFFF)
        if xirr & 0xFFFFFF == 2:
            m.hcall(0, "H_IPI", 0, 0xFF)
        else:
            m.set_irq(LSI, 0)
        m.hcall(0, "H_EOI", xirr)
    assert got == order


@pytest.mark.parametrize("backend, cppr", [("emulated", 0x40), ("kvm-xics", 0x40), ("kvm-xive", 6)])
def test_a_cppr_is_kept_as_the_queue_priority_it_maps_to(backend, cppr):
    """XICS-on-XIVE (xive_prio_from_guest): 6..0xfe become 6, and the guest reads 6 back."""
    m = machine(backend)
    m.hcall(0, "H_CPPR", 0x40)
    assert m.hcall(0, "H_IPOLL", 0)[1] >> 24 == cppr


@pytest.mark.parametrize("backend, answer", [("emulated", (0, 0xFF << 24, 0xFF)),
                                             ("kvm-xics", (0, 0xFF << 24, 0xFF)),
                                             ("kvm-xive", (0, 1, 0x55))])
def test_h_ipoll_of_another_server(backend, answer):
    """XICS-on-XIVE writes the polled vCPU's r4 (not the caller's, in every release read) and
    never r5: the caller gets its own registers back."""
    assert machine(backend).hcall(0, "H_IPOLL", 1, 0x55) == answer


@pytest.mark.parametrize("backend, rc", [("emulated", 0), ("kvm-xics", papr.H_PARAMETER),
                                         ("kvm-xive", 0)])
def test_h_eoi_of_0(backend, rc):
    """XISR 0 is "nothing": XICS-on-XIVE and QEMU skip the source EOI; the software XICS looks
    source 0 up, in a block that does not exist."""
    assert machine(backend).hcall(0, "H_EOI", 0xFF << 24) == (rc,)


@pytest.mark.parametrize("backend, rc", [("emulated", 0), ("kvm-xics", papr.H_PARAMETER),
                                         ("kvm-xive", papr.H_PARAMETER)])
def test_h_eoi_of_a_number_in_no_source_block(backend, rc):
    """Both kernels refuse a source they do not have; XICS-on-XIVE still applies the CPPR."""
    m = machine(backend)
    m.hcall(0, "H_CPPR", 5)
    assert m.hcall(0, "H_EOI", (0xFF << 24) | 0x5000) == (rc,)
    assert m.hcall(0, "H_IPOLL", 0)[1] >> 24 == 0xFF


@pytest.mark.parametrize("backend, status", [("emulated", 0), ("kvm-xics", 0), ("kvm-xive", -3)])
def test_int_on_of_a_source_never_targeted(backend, status):
    """A source the guest never routed: XICS-on-XIVE has no target to unmask it to and refuses
    (RTAS -3); QEMU and the software XICS restore its saved priority (0xff) to server 0."""
    m = machine(backend)
    m.claim_irq(0x1500)
    assert m.rtas(0, "ibm,int-on", 0x1500)[0] == status


@pytest.mark.parametrize("backend, status", [("emulated", -3), ("kvm-xics", -3), ("kvm-xive", 0)])
def test_set_xive_masked_to_an_unknown_server_of_an_untargeted_source(backend, status):
    """XICS-on-XIVE retargets only for a valid priority: 0xff to a server it does not know is
    accepted for a source never targeted."""
    m = machine(backend)
    m.claim_irq(0x1500)
    assert m.rtas(0, "ibm,set-xive", 0x1500, 9, 0xFF) == (status,)


@pytest.mark.parametrize("backend, result", [
    ("emulated", (True, 0)), ("kvm-xics", (False, -22)), ("kvm-xive", (True, 0))])
def test_icp_state_written_inconsistent(backend, result):
    """A ONE_REG ICP_STATE with an XISR and PPRI that cannot go together: the software XICS
    refuses it (EINVAL), XICS-on-XIVE takes it as given (it reads no PPRI), QEMU's own ICP just
    holds the fields."""
    import errno

    from spapr_irq.errors import KvmError
    from spapr_irq.host.uapi import KVM_REG_PPC_ICP_STATE

    m = machine(backend)
    word = (0xFF << 56) | (0x1100 << 32) | (0xFF << 24) | (0xFF << 16)  # XISR set, PPRI 0xff
    if backend == "emulated":
        m.xics.icps[0].xirr, m.xics.icps[0].pending_priority = 0xFF001100, 0xFF
        assert result == (True, 0)
        return
    try:
        m.kvm.set_one_reg(0, KVM_REG_PPC_ICP_STATE, word)
        got = (True, 0)
    except KvmError as exc:
        got = (False, -exc.errno)
    assert got == result and (got[1] == 0 or got[1] == -errno.EINVAL)


@pytest.mark.parametrize("backend, xisr, ppri", [("kvm-xics", 0x1100, 5), ("kvm-xive", 0, 0xFF)])
def test_icp_state_read_with_an_interrupt_presented(backend, xisr, ppri):
    """XICS-on-XIVE has no XISR to report: it reads 0, and PPRI 0xff (Linux 4.15 on)."""
    from spapr_irq.host.uapi import KVM_REG_PPC_ICP_STATE

    m = machine(backend)
    m.rtas(0, "ibm,set-xive", MSI, 0, 5)
    m.set_irq(MSI, 1)
    state = m.kvm.get_one_reg(0, KVM_REG_PPC_ICP_STATE)
    assert ((state >> 32) & 0xFFFFFF, (state >> 16) & 0xFF) == (xisr, ppri)


@pytest.mark.parametrize("backend, seen", [("emulated", [2]), ("kvm-xics", [2]),
                                           ("kvm-xive", [2, 0])])
def test_a_second_ipi_before_the_first_is_taken(backend, seen):
    """XICS-on-XIVE triggers its MFRR IPI on each H_IPI; the second sets Q, the fetch's EOI replays
    it, and the guest finds nothing behind it: a spurious XIRR (0)."""
    m = machine(backend)
    m.hcall(1, "H_IPI", 0, 4)
    m.hcall(1, "H_IPI", 0, 4)
    assert drain(m, 0) == seen


@pytest.mark.parametrize("backend, seen", [("emulated", [LSI]), ("kvm-xics", [LSI]),
                                           ("kvm-xive", [LSI, LSI])])
def test_a_level_raised_again_while_high(backend, seen):
    """KVM_IRQ_LINE SET_LEVEL triggers XICS-on-XIVE's IPI each time: the second sets Q and is
    delivered after the EOI, though the line fell in between; the others keep one level."""
    m = machine(backend)
    m.rtas(0, "ibm,set-xive", LSI, 0, 5)
    m.set_irq(LSI, 1)
    m.set_irq(LSI, 1)
    got = []
    while m.irq_pending(0):
        rc, xirr = m.hcall(0, "H_XIRR")
        got.append(xirr & 0xFFFFFF)
        m.set_irq(LSI, 0)  # the device is served
        m.hcall(0, "H_EOI", xirr)
    assert got == seen


@pytest.mark.parametrize("kernel, delivered", [("kvm-xics", True), ("kvm-xive", False)])
def test_moving_state_out_of_kvm_with_a_masked_source_that_fired(kernel, delivered):
    """XICS-on-XIVE saves a masked source with the P and Q it kept when masking it: a source that
    fired since (its hardware Q is set) is saved as quiet, and the target never delivers it. The
    software XICS saves it masked-pending."""
    source, target = machine(kernel), machine("emulated")
    for m in (source, target):
        m.rtas(0, "ibm,set-xive", MSI, 0, 5)
        m.rtas(0, "ibm,int-off", MSI)
    source.set_irq(MSI, 1)
    target.xics.post_load(source.xics.pre_save())
    target.rtas(0, "ibm,int-on", MSI)
    assert (drain(target, 0) == [MSI]) is delivered
    source.rtas(0, "ibm,int-on", MSI)
    assert drain(source, 0) == [MSI]  # the source machine itself still has it
