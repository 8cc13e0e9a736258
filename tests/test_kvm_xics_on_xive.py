"""XICS-on-XIVE (spapr_irq.host.xics_on_xive, Linux book3s_xive.c): KVM_DEV_TYPE_XICS on a POWER9
PowerNV host, driven directly through its VM: sources set by attribute, the XICS hypercalls, the
RTAS calls, KVM_IRQ_LINE and ONE_REG ICP_STATE. Each test states one rule of the kernel code."""

from __future__ import annotations

import errno as E

import pytest

from spapr_irq.errors import KvmError
from spapr_irq.host.host import parse_host
from spapr_irq.host.kvm import Kvm
from spapr_irq.host.uapi import (KVM_CAP_IRQ_XICS, KVM_CAP_PPC_SMT, KVM_DEV_TYPE_XICS,
                                 KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_GRP_SOURCES,
                                 KVM_DEV_XICS_NR_SERVERS, KVM_INTERRUPT_SET,
                                 KVM_INTERRUPT_SET_LEVEL, KVM_INTERRUPT_UNSET,
                                 KVM_REG_PPC_ICP_STATE, KVM_XICS_LEVEL_SENSITIVE, KVM_XICS_MASKED,
                                 KVM_XICS_PENDING, KVM_XICS_PRESENTED, KVM_XICS_PRIORITY_SHIFT,
                                 KVM_XICS_QUEUED)
from spapr_irq.host.device import prio_from_guest
from spapr_irq.papr import H_PARAMETER, H_SUCCESS

MSI, LSI, OTHER = 0x1100, 0x1200, 0x1101
IPI = 2


class Guest:
    """A VM with a XICS-on-XIVE device and vCPUs 0 and 1 connected as servers 0 and 1."""

    def __init__(self, host: str = "power9-linux-5.10", vcpus=(0, 1)) -> None:
        self.kvm = Kvm(parse_host(host))
        self.fd = self.kvm.create_device(KVM_DEV_TYPE_XICS)
        self.device = self.kvm.fds[self.fd]
        assert self.device.kind == "kvm-xive"
        for vcpu in vcpus:
            self.kvm.create_vcpu(vcpu)
            self.kvm.enable_cap(vcpu, KVM_CAP_IRQ_XICS, self.fd, vcpu)

    def source(self, irq: int, server: int = 0, priority: int = 5, flags: int = 0) -> None:
        self.kvm.set_attr(self.fd, KVM_DEV_XICS_GRP_SOURCES, irq,
                          server | priority << KVM_XICS_PRIORITY_SHIFT | flags)

    def hcall(self, vcpu: int, name: str, *args: int) -> tuple[int, ...]:
        registers = list(args) + [0] * (9 - len(args))
        return self.kvm.hcall(vcpu, name, registers)

    def rtas(self, name: str, *args: int, nret: int = 1) -> tuple[int, ...]:
        return self.kvm.rtas(0x2000 + {"ibm,set-xive": 10, "ibm,get-xive": 11, "ibm,int-off": 12,
                                       "ibm,int-on": 13}[name], list(args), nret)

    def define_tokens(self) -> None:
        for name, token in (("ibm,set-xive", 0x200A), ("ibm,get-xive", 0x200B),
                            ("ibm,int-off", 0x200C), ("ibm,int-on", 0x200D)):
            self.kvm.define_rtas_token(name, token)

    def pending(self, vcpu: int) -> bool:
        return self.kvm.xics_output(vcpu)

    def take(self, vcpu: int) -> list[int]:
        """What the vCPU is handed, H_XIRR then H_EOI, until its line drops."""
        got = []
        while self.pending(vcpu):
            xirr = self.hcall(vcpu, "H_XIRR")[1]
            got.append(xirr & 0xFFFFFF)
            if xirr & 0xFFFFFF == IPI:
                self.hcall(vcpu, "H_IPI", vcpu, 0xFF)
            self.hcall(vcpu, "H_EOI", xirr)
        return got


@pytest.fixture
def guest() -> Guest:
    g = Guest()
    for vcpu in (0, 1):
        g.hcall(vcpu, "H_CPPR", 0xFF)
    return g


# --- priorities ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("given, kept", [(0, 0), (5, 5), (6, 6), (7, 6), (0x40, 6), (0xFE, 6),
                                         (0xFF, 0xFF), (0x105, 5)])
def test_priorities_map_to_a_queue_0_to_6_or_masked(given, kept):
    assert prio_from_guest(given) == kept


def test_the_cppr_the_guest_reads_back_is_the_mapped_one(guest):
    guest.hcall(0, "H_CPPR", 7)
    assert guest.hcall(0, "H_IPOLL", 0)[1] >> 24 == 6
    assert guest.kvm.get_one_reg(0, KVM_REG_PPC_ICP_STATE) >> 56 == 6


def test_a_fresh_vcpu_accepts_nothing_until_its_cppr_is_opened():
    g = Guest()
    g.source(MSI)
    g.kvm.irq_line(MSI, KVM_INTERRUPT_SET)
    assert not g.pending(0)
    g.hcall(0, "H_CPPR", 0xFF)
    assert g.take(0) == [MSI]


# --- sources --------------------------------------------------------------------------------------------------


def test_a_source_set_with_an_unknown_server_is_accepted_and_left_untargeted(guest):
    guest.source(MSI, server=7)
    state = guest.device.sources[MSI]
    assert state.valid and state.act_priority == 0xFF and state.guest_priority == 5
    guest.kvm.irq_line(MSI, KVM_INTERRUPT_SET)
    assert not guest.pending(0) and not guest.pending(1)


@pytest.mark.parametrize("irq", [0, 15, 1 << 20])
def test_a_source_outside_16_to_2_to_the_20_is_enoent(guest, irq):
    with pytest.raises(KvmError) as info:
        guest.source(irq)
    assert info.value.errno == E.ENOENT


def test_a_source_set_masked_keeps_its_priority_as_the_saved_one(guest):
    guest.source(MSI, priority=5, flags=KVM_XICS_MASKED)
    word = guest.kvm.get_attr(guest.fd, KVM_DEV_XICS_GRP_SOURCES, MSI)
    assert word == 0 | 5 << KVM_XICS_PRIORITY_SHIFT | KVM_XICS_MASKED


def test_a_source_set_pending_is_resent(guest):
    guest.source(MSI, flags=KVM_XICS_PENDING)
    assert guest.take(0) == [MSI]


def test_a_source_set_presented_waits_for_its_eoi(guest):
    """xive_set_source: PRESENTED alone restores P: a new trigger only sets Q until the EOI."""
    guest.source(MSI, flags=KVM_XICS_PRESENTED)
    guest.kvm.irq_line(MSI, KVM_INTERRUPT_SET)
    assert guest.take(0) == []
    guest.hcall(0, "H_EOI", 0xFF << 24 | MSI)  # the EOI finds Q and triggers again
    assert guest.take(0) == [MSI]


def test_pending_overrides_presented_when_a_source_is_set(guest):
    """`if (val & KVM_XICS_PRESENTED && !(val & KVM_XICS_PENDING))`: pending wins, so the
    source is resent at once instead of waiting for an EOI."""
    guest.source(MSI, flags=KVM_XICS_PRESENTED | KVM_XICS_PENDING)
    assert guest.take(0) == [MSI]


def test_an_lsi_set_pending_is_asserted(guest):
    guest.source(LSI, flags=KVM_XICS_LEVEL_SENSITIVE | KVM_XICS_PENDING)
    assert guest.device.sources[LSI].lsi and guest.device.sources[LSI].asserted


def test_reading_a_source_still_in_a_queue_reports_it_pending(guest):
    guest.source(MSI)
    guest.hcall(0, "H_CPPR", 5)  # the MSI waits in its queue behind the CPPR
    guest.kvm.irq_line(MSI, KVM_INTERRUPT_SET)
    word = guest.kvm.get_attr(guest.fd, KVM_DEV_XICS_GRP_SOURCES, MSI)
    assert word & KVM_XICS_PENDING and word & KVM_XICS_PRESENTED
    assert not word & KVM_XICS_QUEUED


def test_a_save_captures_every_source_at_its_first_read_and_unmasks_them_after(guest):
    """kvmppc_xive_save_scan runs once per save, at the first read: a source that fires after
    it is reported as it was then; the next save scans again."""
    guest.source(MSI)
    guest.source(OTHER)
    guest.hcall(0, "H_CPPR", 5)  # whatever fires waits in server 0's queue
    guest.kvm.get_attr(guest.fd, KVM_DEV_XICS_GRP_SOURCES, MSI)
    assert guest.device.saved_src_count == 1
    guest.kvm.irq_line(OTHER, KVM_INTERRUPT_SET)  # unmasked again by the scan: it fires
    word = guest.kvm.get_attr(guest.fd, KVM_DEV_XICS_GRP_SOURCES, OTHER)
    assert not word & (KVM_XICS_PRESENTED | KVM_XICS_PENDING)  # as it was at the scan
    assert guest.device.saved_src_count == 0  # the last read ends the save
    guest.kvm.get_attr(guest.fd, KVM_DEV_XICS_GRP_SOURCES, MSI)
    word = guest.kvm.get_attr(guest.fd, KVM_DEV_XICS_GRP_SOURCES, OTHER)
    assert word & KVM_XICS_PRESENTED and word & KVM_XICS_PENDING
    guest.hcall(0, "H_CPPR", 0xFF)
    assert guest.take(0) == [OTHER]


def test_nr_servers_after_the_vp_block_is_ebusy(guest):
    with pytest.raises(KvmError) as info:
        guest.kvm.set_attr(guest.fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS, 8)
    assert info.value.errno == E.EBUSY


@pytest.mark.parametrize("value, errno", [(0, E.EINVAL), (16385, E.EINVAL)])
def test_nr_servers_out_of_range_is_einval(value, errno):
    g = Guest(vcpus=())
    with pytest.raises(KvmError) as info:
        g.kvm.set_attr(g.fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS, value)
    assert info.value.errno == errno


def test_nr_servers_above_max_vcpus_is_clamped():
    g = Guest(vcpus=())
    g.kvm.set_attr(g.fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS, 16384)
    assert g.device.nr_servers == 2048


# --- KVM_IRQ_LINE ---------------------------------------------------------------------------------------------


def test_msi_set_triggers_and_unset_does_nothing(guest):
    guest.source(MSI)
    guest.kvm.irq_line(MSI, KVM_INTERRUPT_UNSET)
    assert not guest.pending(0)
    guest.kvm.irq_line(MSI, KVM_INTERRUPT_SET)
    assert guest.take(0) == [MSI]


def test_an_asserted_lsi_is_triggered_again_by_its_eoi(guest):
    guest.source(LSI, flags=KVM_XICS_LEVEL_SENSITIVE)
    guest.kvm.irq_line(LSI, KVM_INTERRUPT_SET_LEVEL)
    xirr = guest.hcall(0, "H_XIRR")[1]
    guest.hcall(0, "H_EOI", xirr)
    assert guest.pending(0)  # still asserted
    xirr = guest.hcall(0, "H_XIRR")[1]
    guest.kvm.irq_line(LSI, KVM_INTERRUPT_UNSET)
    guest.hcall(0, "H_EOI", xirr)
    assert not guest.pending(0)


def test_irq_line_on_an_unknown_source_is_no_error(guest):
    assert guest.kvm.irq_line(0x1F00, KVM_INTERRUPT_SET) == 0  # the handler's EINVAL goes nowhere
    assert not guest.pending(0) and not guest.pending(1)


# --- hypercalls -----------------------------------------------------------------------------------------------


def test_h_xirr_with_nothing_pending_keeps_the_cppr(guest):
    guest.hcall(0, "H_CPPR", 5)
    assert guest.hcall(0, "H_XIRR") == (H_SUCCESS, 5 << 24)
    assert guest.hcall(0, "H_IPOLL", 0)[1] >> 24 == 5


def test_h_eoi_of_0_and_of_the_ipi_succeed(guest):
    assert guest.hcall(0, "H_EOI", 0xFF << 24) == (H_SUCCESS,)
    assert guest.hcall(0, "H_EOI", 0xFF << 24 | IPI) == (H_SUCCESS,)


def test_h_eoi_of_a_source_in_no_block_is_h_parameter_after_its_cppr(guest):
    guest.hcall(0, "H_CPPR", 3)
    assert guest.hcall(0, "H_EOI", 0xFF << 24 | 0x5000) == (H_PARAMETER,)
    assert guest.hcall(0, "H_IPOLL", 0)[1] >> 24 == 0xFF


def test_h_eoi_of_an_unset_source_of_a_known_block_succeeds(guest):
    guest.source(MSI)
    assert guest.hcall(0, "H_EOI", 0xFF << 24 | OTHER) == (H_SUCCESS,)


def test_h_ipi_to_an_unknown_server_is_h_parameter(guest):
    assert guest.hcall(0, "H_IPI", 9, 4) == (H_PARAMETER,)


def test_an_ipi_at_the_mfrr_is_synthesized_at_h_xirr(guest):
    guest.hcall(1, "H_IPI", 0, 4)
    assert guest.hcall(0, "H_XIRR") == (H_SUCCESS, 0xFF << 24 | IPI)
    assert guest.hcall(0, "H_IPOLL", 0)[1] >> 24 == 4  # the CPPR is now the MFRR


def test_h_ipoll_of_another_server_leaves_the_callers_registers(guest):
    """xive_vm_h_ipoll writes r4 of the polled vCPU, not the caller's (the caller keeps its r4
    and r5); polling its own server writes only r4."""
    guest.hcall(1, "H_IPI", 0, 4)
    assert guest.hcall(0, "H_IPOLL", 0, 0x33) == (H_SUCCESS, 0xFF << 24 | IPI, 0x33)
    assert guest.hcall(1, "H_IPOLL", 0, 0x33) == (H_SUCCESS, 0, 0x33)


def test_h_ipoll_of_an_unknown_server_is_h_parameter(guest):
    assert guest.hcall(0, "H_IPOLL", 9) == (H_PARAMETER,)


@pytest.mark.parametrize("mfrr", [0x104, 1 << 40])
def test_h_ipi_keeps_the_low_byte_but_compares_the_whole_register(guest, mfrr):
    """xive_vm_h_ipi: xc->mfrr = mfrr (a u8), then `if (mfrr < xc->cppr)` on the unsigned long."""
    assert guest.hcall(1, "H_IPI", 0, mfrr) == (H_SUCCESS,)
    assert guest.device.xcs[0].mfrr == mfrr & 0xFF
    assert not guest.pending(0)


def test_queues_are_scanned_most_favoured_first(guest):
    guest.define_tokens()
    guest.source(MSI, priority=5)
    guest.source(OTHER, priority=2)
    guest.kvm.irq_line(MSI, KVM_INTERRUPT_SET)
    guest.kvm.irq_line(OTHER, KVM_INTERRUPT_SET)
    assert guest.take(0) == [OTHER, MSI]


def test_an_mfrr_at_least_as_favoured_wins_and_leaves_the_entry_queued(guest):
    guest.source(MSI, priority=4)
    guest.kvm.irq_line(MSI, KVM_INTERRUPT_SET)
    guest.hcall(1, "H_IPI", 0, 4)
    assert guest.take(0) == [IPI, MSI]


def test_a_queued_interrupt_is_delivered_though_masked_and_its_eoi_forgets_p(guest):
    guest.define_tokens()
    guest.source(MSI)
    guest.kvm.irq_line(MSI, KVM_INTERRUPT_SET)
    assert guest.rtas("ibm,int-off", MSI) == (0,)
    assert guest.take(0) == [MSI]
    assert not guest.device.sources[MSI].old_p
    guest.rtas("ibm,int-on", MSI)
    assert guest.take(0) == []


def test_a_more_favoured_cppr_resends_an_entry_moved_to_another_server(guest):
    """scan_for_rerouted_irqs: the entry becomes a dummy and the source is resent to its new
    server; without the H_CPPR the old server would take it. The old server's notification
    stays raised, and finds only the dummy: a spurious XIRR."""
    guest.define_tokens()
    guest.source(MSI, server=0, priority=5)
    guest.hcall(0, "H_CPPR", 5)  # the MSI waits in server 0's queue
    guest.kvm.irq_line(MSI, KVM_INTERRUPT_SET)
    assert guest.rtas("ibm,set-xive", MSI, 1, 5) == (0,)
    guest.hcall(0, "H_CPPR", 4)
    guest.hcall(0, "H_CPPR", 0xFF)
    assert guest.take(0) == [0] and guest.take(1) == [MSI]


def test_h_cppr_less_favoured_pushes_the_pending_mfrr_to_the_hardware(guest):
    guest.hcall(0, "H_CPPR", 3)
    guest.hcall(1, "H_IPI", 0, 4)  # not below the CPPR: no hardware IPI sent
    assert not guest.pending(0)
    guest.hcall(0, "H_CPPR", 0xFF)
    assert guest.take(0) == [IPI]


# --- RTAS -----------------------------------------------------------------------------------------------------


def test_int_on_of_a_source_never_targeted_is_minus_3(guest):
    guest.define_tokens()
    guest.source(MSI, server=0, priority=0xFF)
    assert guest.rtas("ibm,int-on", MSI) == (-3,)


def test_set_xive_masked_to_an_unknown_server_of_an_untargeted_source_is_0(guest):
    guest.define_tokens()
    guest.source(MSI, priority=0xFF)
    assert guest.rtas("ibm,set-xive", MSI, 9, 0xFF) == (0,)


def test_set_xive_masked_to_an_unknown_server_of_a_targeted_source_is_minus_3_but_masks(guest):
    guest.define_tokens()
    guest.source(MSI)
    assert guest.rtas("ibm,set-xive", MSI, 9, 0xFF) == (-3,)
    assert guest.device.sources[MSI].guest_priority == 0xFF


def test_set_xive_to_an_unknown_server_is_minus_3_but_unmasks(guest):
    guest.define_tokens()
    guest.source(MSI, priority=0xFF)
    assert guest.rtas("ibm,set-xive", MSI, 9, 5) == (-3,)
    state = guest.device.sources[MSI]
    assert (state.guest_priority, state.saved_priority, state.act_priority) == (5, 5, 0xFF)


def test_set_xive_provisions_the_queues_before_looking_the_source_up(guest):
    """kvmppc_xive_set_xive: xive_check_provisioning comes first, so even an unknown source
    gives every vCPU a queue for the priority."""
    guest.define_tokens()
    assert not guest.device.qmap & 1 << 3
    assert guest.rtas("ibm,set-xive", 0x5000, 0, 3) == (-3,)
    assert guest.device.qmap & 1 << 3
    assert all(xc.queues[3].qpage is not None for xc in guest.device.xcs.values())


def _fill(guest, server: int, prio: int) -> None:
    queue = guest.device.xcs[server].queues[prio]
    queue.count = queue.msk + 1 - 2  # XIVE_Q_GAP entries kept free: full


def test_a_full_queue_sends_the_source_to_another_vcpus(guest):
    """kvmppc_xive_select_target: the asked server if its queue has room, else any vCPU's."""
    guest.define_tokens()
    guest.source(MSI, priority=0xFF)
    guest.source(OTHER, priority=5)  # provisions priority 5
    _fill(guest, 0, 5)
    assert guest.rtas("ibm,set-xive", MSI, 0, 5) == (0,)
    assert guest.device.sources[MSI].act_server == 1
    assert guest.rtas("ibm,get-xive", MSI, nret=3) == (0, 1, 5)


def test_no_queue_with_room_is_minus_3_and_leaves_the_route(guest):
    guest.define_tokens()
    guest.source(MSI, priority=0xFF)
    guest.source(OTHER, priority=5)
    _fill(guest, 0, 5)
    _fill(guest, 1, 5)
    assert guest.rtas("ibm,set-xive", MSI, 0, 5) == (-3,)  # -EBUSY
    assert guest.device.sources[MSI].act_priority == 0xFF


def test_a_source_moved_away_is_released_from_its_old_queue_once_that_is_seen_empty(guest):
    """xive_inc_q_pending: the old queue keeps its reservation until a scan finds it empty."""
    guest.define_tokens()
    guest.source(MSI, server=0, priority=5)
    old = guest.device.xcs[0].queues[5]
    assert old.count == 1
    assert guest.rtas("ibm,set-xive", MSI, 1, 5) == (0,)
    assert (old.count, old.pending_count) == (1, 1)
    guest.source(OTHER, server=0, priority=5)
    guest.kvm.irq_line(OTHER, KVM_INTERRUPT_SET)
    assert guest.take(0) == [OTHER]  # the scan after the EOI finds queue 5 empty
    assert (old.count, old.pending_count) == (1, 0)  # OTHER's reservation is left


def test_get_xive_reports_the_routed_server_and_the_guests_priority(guest):
    guest.define_tokens()
    guest.source(MSI)
    guest.rtas("ibm,set-xive", MSI, 1, 7)
    assert guest.rtas("ibm,get-xive", MSI, nret=3) == (0, 1, 7)
    assert guest.device.sources[MSI].act_priority == 6


def test_a_second_int_off_loses_the_saved_priority(guest):
    guest.define_tokens()
    guest.source(MSI)
    guest.rtas("ibm,int-off", MSI)
    guest.rtas("ibm,int-off", MSI)
    assert guest.rtas("ibm,int-on", MSI) == (0,)
    assert guest.device.sources[MSI].guest_priority == 0xFF  # still masked


def test_rtas_on_a_source_in_no_block_is_minus_3(guest):
    guest.define_tokens()
    assert guest.rtas("ibm,get-xive", 0x5000, nret=3) == (-3,)


def test_set_xive_with_a_priority_on_a_slot_never_set_up_is_not_modelled(guest):
    guest.define_tokens()
    guest.source(MSI)
    with pytest.raises(NotImplementedError, match="hardware interrupt 0"):
        guest.rtas("ibm,set-xive", OTHER, 0, 5)


# --- ONE_REG ICP_STATE ----------------------------------------------------------------------------------------


def test_icp_state_reads_no_xisr_and_ppri_0xff(guest):
    guest.source(MSI)
    guest.kvm.irq_line(MSI, KVM_INTERRUPT_SET)
    state = guest.kvm.get_one_reg(0, KVM_REG_PPC_ICP_STATE)
    assert state == 0xFF << 56 | 0xFF << 24 | 0xFF << 16


def test_icp_state_written_is_taken_as_given(guest):
    word = 0x07 << 56 | 0x1234 << 32 | 0xFF << 24 | 0x00 << 16
    guest.kvm.set_one_reg(0, KVM_REG_PPC_ICP_STATE, word)
    xc = guest.device.xcs[0]
    assert (xc.cppr, xc.mfrr, xc.delayed_irq) == (7, 0xFF, 0x1234)


def test_an_xisr_written_before_its_source_is_resent_when_the_source_is_set(guest):
    guest.kvm.set_one_reg(0, KVM_REG_PPC_ICP_STATE, 0xFF << 56 | MSI << 32 | 0xFF << 24)
    assert guest.device.delayed_irqs == 1
    guest.source(MSI)
    assert guest.device.delayed_irqs == 0
    assert guest.take(0) == [MSI]


def test_an_mfrr_written_below_the_cppr_is_signalled(guest):
    guest.kvm.set_one_reg(0, KVM_REG_PPC_ICP_STATE, 0xFF << 56 | 4 << 24)
    assert guest.take(0) == [IPI]


# --- vCPU connect, by release ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["kvm:cpu=power9,kernel=4.19", "kvm:cpu=power9,kernel=5.4",
                                  "kvm:cpu=power9,kernel=5.10"])
def test_a_server_already_connected_is_eexist(host):
    g = Guest(host, vcpus=(0,))
    g.kvm.create_vcpu(1)
    with pytest.raises(KvmError) as info:
        g.kvm.enable_cap(1, KVM_CAP_IRQ_XICS, g.fd, 0)
    assert info.value.errno == E.EEXIST


@pytest.mark.parametrize("host, ok", [("kvm:cpu=power9,kernel=4.18", False),
                                      ("kvm:cpu=power9,kernel=4.19", True),
                                      ("kvm:cpu=power9,kernel=5.10", True)])
def test_a_server_beyond_max_vcpus_needs_the_packed_ids_of_4_19(host, ok):
    """Server 2048 in VSMT 8: before 4.19 the bound is KVM_MAX_VCPUS itself."""
    g = Guest(host, vcpus=())
    g.kvm.enable_vm_cap(KVM_CAP_PPC_SMT, 8)
    g.kvm.create_vcpu(7)  # any vCPU fd: the connect checks the server number given
    if ok:
        g.kvm.enable_cap(7, KVM_CAP_IRQ_XICS, g.fd, 2048)
    else:
        with pytest.raises(KvmError) as info:
            g.kvm.enable_cap(7, KVM_CAP_IRQ_XICS, g.fd, 2048)
        assert info.value.errno == E.EINVAL


@pytest.mark.parametrize("host, eexist", [("kvm:cpu=power9,kernel=5.3", False),
                                          ("kvm:cpu=power9,kernel=5.4", True)])
def test_from_5_4_two_servers_packing_onto_one_vp_are_eexist(host, eexist):
    """In VSMT 2 servers 1 and 2048 both pack onto VP 1 (both under the bound of 4096). 5.4
    checks that the VP is not already in use; before, only the server number was compared,
    and both vCPUs got the same VP."""
    g = Guest(host, vcpus=())
    g.kvm.enable_vm_cap(KVM_CAP_PPC_SMT, 2)
    g.kvm.create_vcpu(1)
    g.kvm.enable_cap(1, KVM_CAP_IRQ_XICS, g.fd, 1)
    g.kvm.create_vcpu(2)
    if eexist:
        with pytest.raises(KvmError) as info:
            g.kvm.enable_cap(2, KVM_CAP_IRQ_XICS, g.fd, 2048)
        assert info.value.errno == E.EEXIST
    else:
        g.kvm.enable_cap(2, KVM_CAP_IRQ_XICS, g.fd, 2048)
        assert g.device.xcs[1].vp_id == g.device.xcs[2048].vp_id


@pytest.mark.parametrize("host, ok", [("kvm:cpu=power9,kernel=5.5", True),
                                      ("kvm:cpu=power9,kernel=5.10", False)])
def test_the_packed_id_check_of_5_10(host, ok):
    """5.5-5.9 bound the raw server by nr_servers * the SMT mode (2392 < 300 * 8); 5.10 the
    packed one (2392 packs to 348 in VSMT 8, beyond 300)."""
    g = Guest(host, vcpus=())
    g.kvm.enable_vm_cap(KVM_CAP_PPC_SMT, 8)
    g.kvm.set_attr(g.fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS, 300)
    g.kvm.create_vcpu(0)
    if ok:
        g.kvm.enable_cap(0, KVM_CAP_IRQ_XICS, g.fd, 2392)
    else:
        with pytest.raises(KvmError) as info:
            g.kvm.enable_cap(0, KVM_CAP_IRQ_XICS, g.fd, 2392)
        assert info.value.errno == E.EINVAL
