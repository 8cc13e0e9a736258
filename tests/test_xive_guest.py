"""The Linux sPAPR XIVE driver against both backends (spec/linux.md B.2).

Boot order of the hcalls, the one priority and the 64K queues, the CPPR opened with a TIMA store,
IPIs through their ESB, masking by PQ with Linux's saved and stale P, LSIs through H_INT_ESB, the
queue's generation bit across a wrap, and the kexec teardown ending in H_INT_RESET.
"""

from __future__ import annotations

import pytest

from spapr_irq import Machine
from spapr_irq.devices import Event, Workload
from spapr_irq.guest.linux_xive import IPI_EISN, XIVE_BAD_IRQ, XIVE_SRC_H_INT_ESB, XiveDriver
from spapr_irq.arch.xive import EAS_VALID, XIVE_ESB_OFF, XIVE_ESB_PENDING, XIVE_ESB_RESET

BACKENDS = ["off", "on"]


def machine_for(irqchip: str, log: list | None = None) -> Machine:
    machine = Machine.create(f"-M pseries,ic-mode=xive,kernel-irqchip={irqchip} -cpu power9 -smp 2",
                             host="power9-linux-5.10")
    if log is not None:
        hcall = machine.hcall

        def logged(vcpu, call, *args):
            answer = hcall(vcpu, call, *args)
            log.append((vcpu, call, answer[0]))
            return answer
        machine.hcall = logged
    assert machine.boot("linux-xive") == "xive"
    return machine


def pq(machine: Machine, lisn: int) -> int:
    """The source's PQ bits as the guest reads them (H_INT_ESB GET on the management page)."""
    answer = machine.hcall(0, "H_INT_ESB", 0, lisn, 0x800, 0)
    assert answer[0] == 0
    return answer[1]


def handled(machine: Machine) -> list[tuple[int, str, int]]:
    return [(h.vcpu, h.kind, h.irq) for h in machine.driver.drain() if h.kind != "spurious"]


@pytest.fixture(params=BACKENDS, ids=["emulated", "kvm"])
def machine(request):
    m = machine_for(request.param)
    yield m
    assert m.driver.warnings == []
    assert m.leaks() == []


@pytest.mark.parametrize("irqchip", BACKENDS)
def test_boot_configures_each_cpu_queue_then_its_ipi_without_h_int_reset(irqchip):
    """setup_queue (queue info, queue config) then the IPI (source info, source config) per CPU."""
    log = []
    machine = machine_for(irqchip, log)
    per_cpu = ["H_INT_GET_QUEUE_INFO", "H_INT_SET_QUEUE_CONFIG", "H_INT_GET_SOURCE_INFO",
               "H_INT_SET_SOURCE_CONFIG"]
    # Then the platform's interrupts: EPOW mapped and routed, the four VIO devices mapped, the
    # console's vty routed, the hot-plug source mapped and routed.
    platform = ["H_INT_GET_SOURCE_INFO", "H_INT_SET_SOURCE_CONFIG"] + ["H_INT_GET_SOURCE_INFO"] * 4 \
        + ["H_INT_SET_SOURCE_CONFIG", "H_INT_GET_SOURCE_INFO", "H_INT_SET_SOURCE_CONFIG"]
    assert [call for _, call, _ in log] == per_cpu * 2 + platform
    assert all(rc == 0 for _, _, rc in log)
    assert [vcpu for vcpu, call, _ in log if call.endswith("QUEUE_CONFIG")] == [0, 1]
    assert sorted(machine.driver.ipis) == [0, 1] and machine.driver.warnings == []


def test_driver_uses_priority_6_and_64k_queues(machine):
    """plat-res-int-priorities (7, 0xf8) leaves 6; ibm,xive-eq-sizes offers only 16."""
    driver = machine.driver
    assert (driver.priority, driver.qshift) == (6, 16)
    for vcpu in machine.vcpus:
        rc, flags, qpage, qshift, *_ = machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", 0, vcpu, 6)
        assert (rc, flags & 1, qpage, qshift) == (0, 1, driver.queues[(vcpu, 6)].qpage, 16)


def test_every_cpu_opens_its_cppr_to_0xff_by_a_tima_store(machine):
    """xive_setup_cpu: the OS ring's CPPR reads 0xff on every vCPU after boot."""
    os_ring_word0 = machine.driver.tima + 0x10
    for vcpu in machine.vcpus:
        word0 = machine.mmio_read(vcpu, os_ring_word0, 4)
        assert (word0 >> 16) & 0xFF == 0xFF


def test_each_cpu_has_its_own_ipi_routed_to_itself(machine):
    """One IPI LISN per CPU from ibm,xive-lisn-ranges, EISN IPI_EISN, at the driver's priority."""
    ipis = machine.driver.ipis
    assert sorted(ipis) == machine.vcpus
    for vcpu, source in ipis.items():
        rc, target, priority, eisn = machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, source.lisn)[:4]
        assert (rc, target, priority, eisn) == (0, vcpu, 6, IPI_EISN)


def test_ipi_is_a_store_to_the_target_trigger_page_and_is_handled_once(machine):
    """xive_cause_ipi: handled once on the target, its source back at PQ=00."""
    machine.driver.send_ipi(0, 1)
    assert machine.irq_pending(1) and not machine.irq_pending(0)
    assert handled(machine) == [(1, "ipi", machine.driver.ipis[1].lisn)]
    assert pq(machine, machine.driver.ipis[1].lisn) == XIVE_ESB_RESET


def test_msi_fired_again_before_its_eoi_is_handled_twice(machine):
    """The second trigger sets Q; the EOI (SET_PQ_00) returns Q and the driver re-triggers."""
    irq = Workload(machine).source("msi", 1, 6)
    machine.set_irq(irq, 1)
    machine.set_irq(irq, 1)
    assert handled(machine) == [(1, "msi", irq)] * 2
    assert pq(machine, irq) == XIVE_ESB_RESET


def test_msi_fired_three_times_before_its_eoi_is_handled_twice(machine):
    """Q holds one more event: a third trigger at PQ=11 coalesces."""
    irq = Workload(machine).source("msi", 0, 6)
    for _ in range(3):
        machine.set_irq(irq, 1)
    assert handled(machine) == [(0, "msi", irq)] * 2


def test_msi_fired_while_masked_is_dropped(machine):
    """Masking is PQ=01: a trigger leaves it there and nothing reaches a queue."""
    irq = Workload(machine).source("msi", 0, 6)
    machine.driver.mask(irq)
    machine.set_irq(irq, 1)
    assert pq(machine, irq) == XIVE_ESB_OFF
    assert handled(machine) == []
    machine.driver.unmask(irq, 0, 6)
    assert handled(machine) == []


def test_event_handled_while_masked_gets_no_eoi_and_unmask_reopens_the_source(machine):
    """xive_irq_eoi on a disabled IRQ leaves PQ=01 (stale P); unmask loads SET_PQ_00."""
    irq = Workload(machine).source("msi", 1, 6)
    machine.set_irq(irq, 1)
    machine.driver.mask(irq)
    assert machine.driver.sources[irq].saved_p
    assert handled(machine) == [(1, "msi", irq)]
    assert pq(machine, irq) == XIVE_ESB_OFF
    machine.driver.unmask(irq, 1, 6)
    assert pq(machine, irq) == XIVE_ESB_RESET
    machine.set_irq(irq, 1)
    assert handled(machine) == [(1, "msi", irq)]


def test_unmask_before_the_event_is_handled_restores_p_and_the_eoi_clears_it(machine):
    """A P saved at mask time comes back as SET_PQ_10, so the in-flight event is EOIed once."""
    irq = Workload(machine).source("msi", 0, 6)
    machine.set_irq(irq, 1)
    machine.driver.mask(irq)
    machine.driver.unmask(irq, 0, 6)
    assert pq(machine, irq) == XIVE_ESB_PENDING
    assert handled(machine) == [(0, "msi", irq)]
    assert pq(machine, irq) == XIVE_ESB_RESET


def test_unbalanced_enable_is_refused_and_touches_no_esb():
    """enable_irq on an enabled IRQ warns and does nothing: PQ=10 of an in-flight event stays."""
    machine = machine_for("on")
    irq = Workload(machine).source("msi", 0, 6)
    machine.set_irq(irq, 1)
    machine.driver.unmask(irq, 0, 6)
    assert machine.driver.warnings == [f"Unbalanced enable for IRQ {irq}"]
    assert pq(machine, irq) == XIVE_ESB_PENDING
    assert handled(machine) == [(0, "msi", irq)]


def test_affinity_change_of_a_masked_irq_is_routed_at_once(machine):
    """xive_irq_set_affinity configures the source whatever its mask: masking is the PQ's."""
    irq = Workload(machine).source("msi", 0, 6)
    machine.driver.mask(irq)
    machine.driver.set_affinity(irq, 1)
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, irq)[:3] == (0, 1, 6)
    machine.driver.unmask(irq, 1, 6)
    machine.set_irq(irq, 1)
    assert handled(machine) == [(1, "msi", irq)]


def test_lsi_goes_through_h_int_esb_and_is_handled_once_per_assertion(machine):
    """QEMU gives LSIs the H_INT_ESB flag: EOI is an H_INT_ESB load, re-triggering a held level."""
    irq = Workload(machine).source("lsi", 1, 6)
    assert machine.driver.sources[irq].flags & XIVE_SRC_H_INT_ESB
    machine.set_irq(irq, 1)
    assert handled(machine) == [(1, "lsi", irq)]
    assert not any(machine.irq_pending(v) for v in machine.vcpus)
    machine.set_irq(irq, 1)
    assert handled(machine) == [(1, "lsi", irq)]


def test_device_priorities_get_their_own_queue_and_are_taken_most_favoured_first(machine):
    """A second priority gets its own queue; a drain takes priority 3 before 6."""
    work = Workload(machine)
    low = work.source("msi", 0, 6)
    high = work.source("msi", 0, 3)
    assert (0, 3) in machine.driver.queues
    machine.set_irq(low, 1)
    machine.set_irq(high, 1)
    assert handled(machine) == [(0, "msi", high), (0, "msi", low)]


def test_guest_follows_the_generation_bit_across_a_queue_wrap(machine):
    """16384 entries in a 64K queue: past the wrap the toggle flips and no event is lost."""
    irq = Workload(machine).source("msi", 1, 6)
    queue = machine.driver.queues[(1, 6)]
    count = (queue.msk + 1) + 3
    for _ in range(count):
        machine.set_irq(irq, 1)
        assert handled(machine) == [(1, "msi", irq)]
    assert (queue.idx, queue.toggle) == (3, 1)
    rc, flags, _, _, index = machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", 1, 1, 6)[:5]  # DEBUG
    # the END writes generation 1 on its first lap (the guest's toggle starts at 0) and 0 on the
    # second; QEMU reports it at LSB bit 62 of the flags
    assert (rc, flags >> 62 & 1, index) == (0, 0, 3)


def test_an_entry_with_xive_bad_irq_is_dropped(machine):
    """A source unrouted with EISN XIVE_BAD_IRQ leaves nothing the driver would hand out."""
    irq = Workload(machine).source("msi", 0, 6)
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", 0x2, irq, 0, 6, XIVE_BAD_IRQ)[0] == 0
    machine.set_irq(irq, 1)
    assert handled(machine) == []
    assert not machine.irq_pending(0)


@pytest.mark.parametrize("irqchip", BACKENDS)
def test_kexec_teardown_ends_in_h_int_reset_and_the_next_kernel_runs(irqchip):
    """xive_teardown_cpu on every CPU then H_INT_RESET; a new kernel sets XIVE up again."""
    log = []
    machine = machine_for(irqchip, log)
    work = Workload(machine)
    msi = work.source("msi", 1, 6)
    del log[:]
    machine.driver.shutdown()
    calls = [call for _, call, _ in log]
    assert calls[-1] == "H_INT_RESET" and calls.count("H_INT_RESET") == 1
    assert calls.count("H_INT_SET_QUEUE_CONFIG") == 2
    assert all(rc == 0 for _, _, rc in log)
    # QEMU's tables survive H_INT_RESET (only KVM's are reset), but the queue the MSI was routed
    # to was disabled by the teardown, so an old device firing into it is dropped.
    assert machine.xive.state.eas(msi) & EAS_VALID
    machine.set_irq(msi, 1)
    machine.driver = XiveDriver(machine)
    machine.driver.init()
    work = Workload(machine)
    assert work.run([Event("msi", 0), Event("ipi", 1, source=0)]) == \
        [h for h in machine.driver.handled]
    got = [(h.vcpu, h.kind) for h in machine.driver.handled]
    assert sorted(got) == [(0, "msi"), (1, "ipi")]
    assert machine.driver.warnings == []


def test_a_workload_is_handled_the_same_emulated_and_in_kernel():
    """The guest-visible result of the same events is identical on both backends."""
    events = [Event("msi", 0, 6), Event("lsi", 1, 3), Event("ipi", 1, source=0), Event("msi", 1, 5),
              Event("msi", 0, 6), Event("ipi", 0, source=1), Event("lsi", 0, 6)]
    results = {}
    for irqchip in BACKENDS:
        machine = machine_for(irqchip)
        results[irqchip] = Workload(machine).run(events, drain_each=False)
        assert machine.driver.warnings == []
    assert results["off"] == results["on"]
    assert len([h for h in results["off"] if h.kind != "spurious"]) == len(events)


def test_guest_memory_zero_clears_partial_and_whole_pages():
    """memset of a queue page: bytes read back as zero, whole pages are released."""
    from spapr_irq.memory import PAGE_SIZE, GuestMemory
    memory = GuestMemory(4 * PAGE_SIZE)
    memory.write(PAGE_SIZE - 4, b"\xff" * (PAGE_SIZE + 8))
    memory.zero(PAGE_SIZE - 2, PAGE_SIZE + 4)
    assert memory.read(PAGE_SIZE - 4, PAGE_SIZE + 8) == b"\xff\xff" + bytes(PAGE_SIZE + 4) + b"\xff\xff"
    memory.write(2 * PAGE_SIZE, b"\x01")
    memory.zero(2 * PAGE_SIZE, PAGE_SIZE)
    assert 2 not in memory._pages and memory.read(2 * PAGE_SIZE, 1) == b"\x00"
    with pytest.raises(ValueError):
        memory.zero(3 * PAGE_SIZE, PAGE_SIZE + 1)


def test_booted_linux_numbers_its_irqs_as_linux_6_1_does(machine):
    """The EISN is the Linux irq number: the IPIs share 16, then EPOW (17), each /vdevice in
    address order as the VIO bus maps it (18-21), the hot-plug source last (22) -- as
    /sys/kernel/irq of a Linux 6.1 guest on QEMU 7.2 shows them."""
    eisns = {lisn: source.eisn for lisn, source in machine.driver.sources.items()}
    assert eisns == {0: 0x10, 1: 0x10, 0x1000: 0x11, 0x1100: 0x12, 0x1101: 0x13, 0x1102: 0x14,
                     0x1103: 0x15, 0x1001: 0x16}
    routed = sorted(lisn for lisn, source in machine.driver.sources.items() if not source.masked)
    assert routed == [0, 1, 0x1000, 0x1001, 0x1100]  # the IPIs, RAS_EPOW, RAS_HOTPLUG, hvc_console
