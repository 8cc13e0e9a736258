"""The eleven H_INT_* hypercalls of the sPAPR XIVE, through the machine, on both backends.

spec/qemu.md 6.5 (with 6.1 and 6.3): every call answers H_FUNCTION until the guest negotiated XIVE
at CAS; then each checks its flags, LISN, priority, target and queue arguments in QEMU's order,
the first failing check deciding the answer. Under the in-kernel XIVE (kernel-irqchip=on) QEMU
still makes every check and then programs KVM; a KVM refusal is reported (error_report_err) and
answers H_HARDWARE. Most tests run on the bare negotiated state: CAS asked for XIVE, no guest
driver, so nothing but the machine's default sources (IPIs 0-1, EPOW 0x1000, HOTPLUG 0x1001,
VIO 0x1100-0x1101, PHB LSIs 0x1200-0x1203) is claimed and no queue is configured.
"""

from __future__ import annotations

import errno as E
import re

import pytest

from conftest import P9, assert_clean
from spapr_irq import FaultPlan, Machine, MachineError, papr
from spapr_irq.host.uapi import KVM_DEV_XIVE_GRP_EQ_CONFIG, KVM_DEV_XIVE_GRP_SOURCE_SYNC
from spapr_irq.machine.machine import RAM_SIZE
from spapr_irq.arch.xive import EAS_MASKED, EAS_VALID, XIVE_ESB_OFF, end_reset_value

H_SUCCESS, H_HARDWARE, H_FUNCTION, H_PARAMETER = 0, -1, -2, -4
H_P2, H_P3, H_P4, H_P5 = -55, -56, -57, -58
MINUS_ONE = (1 << 64) - 1

IRQCHIPS = ("off", "on")
BACKEND = {"off": "emulated", "on": "kvm"}

#: Flag bits (PPC numbering, bit 63 = 0x1).
SRC_H_INT_ESB, SRC_LSI = 0x8, 0x4
SET_EISN, MASK = 0x2, 0x1
ALWAYS_NOTIFY = DEBUG = ESB_STORE = 0x1

IPI, MSI, MSI2, LSI = 0x0, 0x1000, 0x1001, 0x1200  # claimed at machine init
UNCLAIMED, UNKNOWN = 0x1300, papr.XIVE_NR_IRQS  # in range but never claimed; past nr_irqs
ABSENT_VCPU = 2  # -smp 2: vCPU ids 0 and 1
QPAGE = 0x0010_0000  # a 64K-aligned page of guest RAM
OUTSIDE_RAM = RAM_SIZE  # aligned for every queue size, just past the end of RAM
PRIO = 6  # the one priority a Linux guest uses on QEMU

VC_BASE = papr.SPAPR_XIVE_VC_BASE
END_BASE = VC_BASE + (papr.XIVE_NR_IRQS << 17)  # END ESB region after the 2-page source ESBs
TM_BASE = papr.SPAPR_XIVE_TM_BASE
TM_PAGE = 1 << 16

#: Plausible arguments of each call, used where only the answer to "may I call it" matters.
CALLS = {
    "H_INT_GET_SOURCE_INFO": (0, MSI),
    "H_INT_SET_SOURCE_CONFIG": (0, MSI, 0, PRIO, 0),
    "H_INT_GET_SOURCE_CONFIG": (0, MSI),
    "H_INT_GET_QUEUE_INFO": (0, 0, PRIO),
    "H_INT_SET_QUEUE_CONFIG": (ALWAYS_NOTIFY, 0, PRIO, QPAGE, 16),
    "H_INT_GET_QUEUE_CONFIG": (0, 0, PRIO),
    "H_INT_SET_OS_REPORTING_LINE": (0, QPAGE),
    "H_INT_GET_OS_REPORTING_LINE": (0, 0, QPAGE),
    "H_INT_ESB": (0, MSI, 0x800, 0),
    "H_INT_SYNC": (0, MSI),
    "H_INT_RESET": (0,),
}


def xive_machine(irqchip: str, mode: str = "xive", faults: FaultPlan | None = None) -> Machine:
    machine = Machine.create(f"-M pseries,ic-mode={mode},kernel-irqchip={irqchip} {P9} -smp 2",
                             host="power9-linux-5.10", faults=faults)
    assert machine.backend == BACKEND[irqchip]
    return machine


def negotiated(irqchip: str, faults: FaultPlan | None = None) -> Machine:
    """XIVE negotiated at CAS with no guest driver behind it: only the machine's own sources."""
    machine = xive_machine(irqchip, faults=faults)
    assert machine.cas(0, papr.ov5_with(papr.OV5_INTC_BYTE, papr.OV5_XIVE_EXPLOIT)) == H_SUCCESS
    assert (machine.interrupt_mode, machine.backend) == ("xive", BACKEND[irqchip])
    return machine


@pytest.fixture(params=IRQCHIPS)
def machine(request) -> Machine:
    return negotiated(request.param)


def kernel(machine: Machine):
    """The KVM XIVE device's state (KernelXive) of an in-kernel machine."""
    return machine.kvm.fds[machine.xive.fd].state


def end_index(target: int, priority: int) -> int:
    return (target << 3) + priority


def esb_pages(lisn: int) -> tuple[int, int]:
    """(trigger page, management page) of a source: 2 x 64K pages per source from vc_base."""
    trigger = VC_BASE + (lisn << 17)
    return trigger, trigger + (1 << 16)


def set_attr_calls(machine: Machine) -> list[str]:
    return [call for call in machine.kvm.calls if call.startswith("set_attr(")]


def attr_report(group: int, attr: int, error: str) -> re.Pattern:
    """QEMU's kvm_device_access() text, whatever the zero padding of the attribute."""
    return re.compile(rf"KVM_SET_DEVICE_ATTR failed: Group {group} attr 0x0*{attr:x}: {error}$")


def report_matches(machine: Machine, pattern: re.Pattern) -> bool:
    return any(pattern.match(line) for line in machine.xive.reports)


def configure_queue(machine: Machine, target: int = 1, priority: int = PRIO,
                    qpage: int = QPAGE) -> None:
    assert machine.hcall(0, "H_INT_SET_QUEUE_CONFIG", ALWAYS_NOTIFY, target, priority, qpage,
                         16) == (H_SUCCESS,)


def route(machine: Machine, lisn: int, target: int = 1, priority: int = PRIO, eisn: int = 0x42):
    configure_queue(machine, target, priority)
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", SET_EISN, lisn, target, priority,
                         eisn) == (H_SUCCESS,)


def fire_and_eoi(machine: Machine, lisn: int, count: int) -> None:
    """`count` events from an MSI at PQ=00, each followed by its load-EOI (H_INT_ESB)."""
    for _ in range(count):
        machine.set_irq(lisn, 1)
        assert machine.hcall(0, "H_INT_ESB", 0, lisn, 0x000, 0) == (H_SUCCESS, 0)


# ==========================================================================================================
# Negotiation: nothing before XIVE was chosen at CAS
# ==========================================================================================================


@pytest.mark.parametrize("irqchip", IRQCHIPS)
def test_every_xive_hcall_is_h_function_before_cas(irqchip):
    """A XIVE-only machine before CAS: every H_INT_* call answers H_FUNCTION and changes nothing."""
    machine = xive_machine(irqchip)
    eat, endt = dict(machine.xive.state.eat), dict(machine.xive.state.endt)
    for call, args in CALLS.items():
        assert machine.hcall(0, call, *args) == (H_FUNCTION,), call
    assert (machine.xive.state.eat, machine.xive.state.endt) == (eat, endt)
    assert machine.xive.reports == []
    assert_clean(machine)


@pytest.mark.parametrize("irqchip", IRQCHIPS)
def test_every_xive_hcall_is_h_function_after_a_guest_chose_xics_on_a_dual_machine(irqchip):
    """ic-mode=dual with a legacy guest: the XIVE hcalls are registered but answer H_FUNCTION."""
    machine = xive_machine(irqchip, mode="dual")
    assert machine.boot("linux-legacy") == "xics"
    assert machine.interrupt_mode == "xics"
    for call, args in CALLS.items():
        assert machine.hcalls.lookup(papr.HCALLS[call]).owner is machine.xive
        assert machine.hcall(0, call, *args) == (H_FUNCTION,), call
    assert_clean(machine)


@pytest.mark.parametrize("irqchip", IRQCHIPS)
def test_xive_hcalls_answer_h_function_again_after_a_machine_reset(irqchip):
    """A reset clears the CAS result: the calls that worked after CAS answer H_FUNCTION again."""
    machine = negotiated(irqchip)
    assert machine.hcall(0, "H_INT_SYNC", 0, MSI) == (H_SUCCESS,)
    machine.reset()
    for call, args in CALLS.items():
        assert machine.hcall(0, call, *args) == (H_FUNCTION,), call
    assert_clean(machine)


def test_a_xics_only_machine_registers_no_xive_hcall():
    """ic-mode=xics: no XIVE exists, the H_INT_* numbers are unregistered and answer H_FUNCTION."""
    machine = xive_machine("off", mode="xics")
    machine.boot("linux-xive")
    for call, args in CALLS.items():
        assert machine.hcalls.lookup(papr.HCALLS[call]) is None
        assert machine.hcall(0, call, *args) == (H_FUNCTION,), call


@pytest.mark.parametrize("call", ["H_INT_SET_OS_REPORTING_LINE", "H_INT_GET_OS_REPORTING_LINE"])
@pytest.mark.parametrize("args", [(), (0, QPAGE), (1, 0, QPAGE), (MINUS_ONE, MINUS_ONE, MINUS_ONE)])
def test_os_reporting_line_calls_are_h_function_even_after_cas(machine, call, args):
    """QEMU does not implement the reporting line: H_FUNCTION whatever the arguments."""
    assert machine.hcall(0, call, *args) == (H_FUNCTION,)
    assert machine.xive.reports == []


def test_a_booted_linux_guest_negotiates_xive_and_its_hcalls_succeed():
    """The full path: a Linux guest boots, negotiates XIVE and sets up its queues without error."""
    for irqchip in IRQCHIPS:
        machine = xive_machine(irqchip)
        assert machine.boot("linux-xive") == "xive"
        assert machine.driver.warnings == [] and machine.xive.reports == []
        for vcpu in machine.vcpus:
            assert machine.hcall(0, "H_INT_GET_QUEUE_INFO", 0, vcpu, PRIO)[2] == 16
        assert_clean(machine)


# ==========================================================================================================
# Hypercall numbers
# ==========================================================================================================


def test_xive_hcall_numbers_are_the_spec_table():
    """spec/qemu.md 6.5: H_INT_GET_SOURCE_INFO 0x3A8 up to H_INT_RESET 0x3D0, four apart."""
    spec = {
        "H_INT_GET_SOURCE_INFO": 0x3A8, "H_INT_SET_SOURCE_CONFIG": 0x3AC,
        "H_INT_GET_SOURCE_CONFIG": 0x3B0, "H_INT_GET_QUEUE_INFO": 0x3B4,
        "H_INT_SET_QUEUE_CONFIG": 0x3B8, "H_INT_GET_QUEUE_CONFIG": 0x3BC,
        "H_INT_SET_OS_REPORTING_LINE": 0x3C0, "H_INT_GET_OS_REPORTING_LINE": 0x3C4,
        "H_INT_ESB": 0x3C8, "H_INT_SYNC": 0x3CC, "H_INT_RESET": 0x3D0,
    }
    assert papr.XIVE_HCALLS == tuple(spec)
    assert {name: papr.HCALLS[name] for name in papr.XIVE_HCALLS} == spec
    assert [papr.HCALLS[name] for name in papr.XIVE_HCALLS] == list(range(0x3A8, 0x3D4, 4))
    assert all(papr.HCALL_NAMES[number] == name for name, number in spec.items())


@pytest.mark.parametrize("irqchip", IRQCHIPS)
def test_a_xive_machine_registers_the_eleven_numbers_to_the_xive(irqchip):
    """Each of the eleven numbers dispatches to the XIVE controller; by number = by name."""
    machine = negotiated(irqchip)
    for name in papr.XIVE_HCALLS:
        entry = machine.hcalls.lookup(papr.HCALLS[name])
        assert (entry.name, entry.owner) == (name, machine.xive)
    assert machine.hcall(0, 0x3A8, 0, LSI) == machine.hcall(0, "H_INT_GET_SOURCE_INFO", 0, LSI)


# ==========================================================================================================
# Checks, in QEMU's order
# ==========================================================================================================

#: Each call with bad flags AND every other argument bad too: the flags check comes first.
BAD_FLAGS = [
    ("H_INT_GET_SOURCE_INFO", (1, UNKNOWN)),
    ("H_INT_GET_SOURCE_INFO", (1 << 63, UNCLAIMED)),
    ("H_INT_SET_SOURCE_CONFIG", (0x4, UNKNOWN, ABSENT_VCPU, 7, 0)),
    ("H_INT_SET_SOURCE_CONFIG", (1 << 63 | SET_EISN, UNCLAIMED, ABSENT_VCPU, 0xFF, 0)),
    ("H_INT_GET_SOURCE_CONFIG", (1, UNKNOWN)),
    ("H_INT_GET_QUEUE_INFO", (1, ABSENT_VCPU, 7)),
    ("H_INT_SET_QUEUE_CONFIG", (0x2, ABSENT_VCPU, 7, QPAGE + 1, 13)),
    ("H_INT_SET_QUEUE_CONFIG", (1 << 63 | ALWAYS_NOTIFY, ABSENT_VCPU, 7, QPAGE, 16)),
    ("H_INT_GET_QUEUE_CONFIG", (0x2, ABSENT_VCPU, 7)),
    ("H_INT_ESB", (0x2, UNKNOWN, 1 << 20, 0)),
    ("H_INT_ESB", (1 << 63 | ESB_STORE, UNCLAIMED, 0, 0)),
    ("H_INT_SYNC", (1, UNKNOWN)),
    ("H_INT_RESET", (1,)),
    ("H_INT_RESET", (1 << 63,)),
]


@pytest.mark.parametrize("call, args", BAD_FLAGS, ids=[f"{c}-{a[0]:#x}" for c, a in BAD_FLAGS])
def test_bad_flags_are_h_parameter_before_any_other_check(machine, call, args):
    """Reserved flag bits answer H_PARAMETER even when the LISN, target or priority is bad too."""
    eat, endt = dict(machine.xive.state.eat), {k: list(v) for k, v in machine.xive.state.endt.items()}
    assert machine.hcall(0, call, *args) == (H_PARAMETER,)
    assert machine.xive.state.eat == eat and machine.xive.state.endt == endt
    assert machine.xive.reports == []  # QEMU logs nothing for bad flags


#: The calls that take a LISN, with arguments whose later checks would fail too.
LISN_CALLS = [
    ("H_INT_GET_SOURCE_INFO", lambda lisn: (0, lisn)),
    ("H_INT_SET_SOURCE_CONFIG", lambda lisn: (0, lisn, ABSENT_VCPU, 7, 0)),
    ("H_INT_GET_SOURCE_CONFIG", lambda lisn: (0, lisn)),
    ("H_INT_ESB", lambda lisn: (0, lisn, 1 << 20, 0)),
    ("H_INT_SYNC", lambda lisn: (0, lisn)),
]
LISN_IDS = [call for call, _ in LISN_CALLS]


@pytest.mark.parametrize("call, args", LISN_CALLS, ids=LISN_IDS)
@pytest.mark.parametrize("lisn", [UNKNOWN, UNKNOWN + 1, 1 << 32, MINUS_ONE])
def test_a_lisn_past_nr_irqs_is_h_p2_reported_as_unknown(machine, call, args, lisn):
    """lisn >= nr_irqs (0x2000): H_P2 before the priority/target/offset checks, QEMU's log line."""
    assert machine.hcall(0, call, *args(lisn)) == (H_P2,)
    assert len(machine.xive.reports) == 1
    assert re.fullmatch(r"XIVE: Unknown LISN (0x)?0*([0-9a-f]+)", machine.xive.reports[0])
    assert int(machine.xive.reports[0].rsplit(" ", 1)[1], 16) == lisn


@pytest.mark.parametrize("call, args", LISN_CALLS, ids=LISN_IDS)
@pytest.mark.parametrize("lisn", [UNCLAIMED, 0x1FFF, 0x2], ids=["msi-range", "last", "ipi-range"])
def test_an_unclaimed_lisn_is_h_p2_reported_as_invalid(machine, call, args, lisn):
    """A LISN in range whose EAS is not valid (never claimed): H_P2 and "Invalid LISN"."""
    assert machine.hcall(0, call, *args(lisn)) == (H_P2,)
    assert len(machine.xive.reports) == 1
    assert re.fullmatch(r"XIVE: Invalid LISN (0x)?0*([0-9a-f]+)", machine.xive.reports[0])
    assert int(machine.xive.reports[0].rsplit(" ", 1)[1], 16) == lisn


@pytest.mark.parametrize("call, args", LISN_CALLS, ids=LISN_IDS)
def test_a_freed_lisn_is_h_p2_again(machine, call, args):
    """spapr_irq_free clears EAS_VALID: the LISN answers H_P2 as if never claimed."""
    machine.claim_irq(0x1500)
    assert machine.hcall(0, "H_INT_GET_SOURCE_INFO", 0, 0x1500)[0] == H_SUCCESS
    machine.free_irq(0x1500)
    assert machine.hcall(0, call, *args(0x1500)) == (H_P2,)
    assert machine.xive.reports[-1].startswith("XIVE: Invalid LISN ")


# -- H_INT_SET_SOURCE_CONFIG: priority, then target ---------------------------------------------------


@pytest.mark.parametrize("priority", [7, 8, 0x80, 0xFE])
@pytest.mark.parametrize("target", [0, ABSENT_VCPU])
def test_set_source_config_reserved_priority_is_h_p4_before_the_target(machine, priority, target):
    """Priorities from hv_prio (7) up, but 0xff, are reserved: H_P4 even with an absent target."""
    eas = machine.xive.state.eas(MSI)
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", 0, MSI, target, priority, 0) == (H_P4,)
    assert machine.xive.reports == [f"XIVE: priority {priority} is reserved"]
    assert machine.xive.state.eas(MSI) == eas


@pytest.mark.parametrize("target", [ABSENT_VCPU, 0x400, (1 << 32) + ABSENT_VCPU])
def test_set_source_config_absent_target_is_h_p3(machine, target):
    """A target that is no vCPU id: H_P3, the EAS untouched and nothing asked of KVM."""
    eas, calls = machine.xive.state.eas(MSI), len(machine.kvm.calls)
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", SET_EISN, MSI, target, PRIO, 9) == (H_P3,)
    assert machine.xive.state.eas(MSI) == eas
    assert len(machine.kvm.calls) == calls


def test_set_source_config_priority_0xff_resets_the_eas_whatever_the_target(machine):
    """Priority 0xff is checked before the target: the EAS becomes VALID|MASKED, H_SUCCESS."""
    route(machine, MSI, eisn=0x77)
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", SET_EISN, MSI, ABSENT_VCPU, 0xFF,
                         0x55) == (H_SUCCESS,)
    assert machine.xive.state.eas(MSI) == EAS_VALID | EAS_MASKED
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI)[2:] == (0xFF, 0)


# -- the queue calls: priority (H_P3), then target (H_P2) ----------------------------------------------

QUEUE_CALLS = [
    ("H_INT_GET_QUEUE_INFO", lambda target, priority: (0, target, priority)),
    ("H_INT_SET_QUEUE_CONFIG", lambda target, priority: (ALWAYS_NOTIFY, target, priority,
                                                         QPAGE + 1, 13)),
    ("H_INT_GET_QUEUE_CONFIG", lambda target, priority: (DEBUG, target, priority)),
]
QUEUE_IDS = [call for call, _ in QUEUE_CALLS]


@pytest.mark.parametrize("call, args", QUEUE_CALLS, ids=QUEUE_IDS)
@pytest.mark.parametrize("priority", [7, 8, 0xFF])
@pytest.mark.parametrize("target", [0, ABSENT_VCPU])
def test_queue_call_reserved_priority_is_h_p3_before_the_target(machine, call, args, priority,
                                                                target):
    """A reserved priority (0xff included) answers H_P3 and is logged, whatever the target."""
    assert machine.hcall(0, call, *args(target, priority)) == (H_P3,)
    assert machine.xive.reports == [f"XIVE: priority {priority} is reserved"]


@pytest.mark.parametrize("call, args", QUEUE_CALLS, ids=QUEUE_IDS)
@pytest.mark.parametrize("target", [ABSENT_VCPU, 0x400, MINUS_ONE])
def test_queue_call_absent_target_is_h_p2_before_the_queue_arguments(machine, call, args, target):
    """An absent vCPU answers H_P2, before SET_QUEUE_CONFIG looks at its (bad) page and size."""
    assert machine.hcall(0, call, *args(target, PRIO)) == (H_P2,)
    assert machine.xive.reports == []


# -- H_INT_SET_QUEUE_CONFIG: size, alignment, RAM -----------------------------------------------------


@pytest.mark.parametrize("qsize", [1, 11, 13, 15, 17, 20, 22, 25, 64, MINUS_ONE])
def test_set_queue_config_unsupported_size_is_h_p5(machine, qsize):
    """Sizes other than 0, 12, 16, 21 and 24 answer H_P5 (spec 6.5), logged, END untouched."""
    before = machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", DEBUG, 1, PRIO)
    assert machine.hcall(0, "H_INT_SET_QUEUE_CONFIG", ALWAYS_NOTIFY, 1, PRIO, QPAGE,
                         qsize) == (H_P5,)
    assert machine.xive.reports == [f"XIVE: invalid EQ size {qsize:x}"]
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", DEBUG, 1, PRIO) == before


@pytest.mark.parametrize("qsize, qpage", [(12, QPAGE + 0x800), (16, QPAGE + 0x1000),
                                          (21, QPAGE), (24, 0x0120_0000), (16, 4)])
def test_set_queue_config_misaligned_page_is_h_p4(machine, qsize, qpage):
    """The queue page must be aligned to its size: H_P4 with QEMU's message."""
    assert machine.hcall(0, "H_INT_SET_QUEUE_CONFIG", ALWAYS_NOTIFY, 1, PRIO, qpage,
                         qsize) == (H_P4,)
    assert machine.xive.reports == [f"XIVE: EQ @{qpage:#x} is not naturally aligned with "
                                    f"{1 << qsize:x}"]
    assert machine.hcall(0, "H_INT_GET_QUEUE_INFO", 0, 1, PRIO)[2] == 0


@pytest.mark.parametrize("qsize", [12, 16, 21, 24])
@pytest.mark.parametrize("qpage", [OUTSIDE_RAM, 1 << 40])
def test_set_queue_config_page_outside_guest_ram_is_h_p4(machine, qsize, qpage):
    """An aligned page the guest has no RAM at cannot be mapped: H_P4, "failed to map EQ"."""
    assert machine.hcall(0, "H_INT_SET_QUEUE_CONFIG", ALWAYS_NOTIFY, 1, PRIO, qpage,
                         qsize) == (H_P4,)
    assert machine.xive.reports == [f"XIVE: failed to map EQ @{qpage:#x}"]


def test_set_queue_config_alignment_is_checked_before_the_mapping(machine):
    """A page both misaligned and outside RAM is refused for its alignment (the first check)."""
    qpage = OUTSIDE_RAM + 0x100
    assert machine.hcall(0, "H_INT_SET_QUEUE_CONFIG", 0, 1, PRIO, qpage, 16) == (H_P4,)
    assert machine.xive.reports == [f"XIVE: EQ @{qpage:#x} is not naturally aligned with 10000"]


@pytest.mark.parametrize("irqchip", IRQCHIPS)
def test_refused_queue_configurations_never_reach_kvm(irqchip):
    """QEMU validates before programming the kernel: refused calls make no KVM call at all."""
    machine = negotiated(irqchip)
    calls = len(machine.kvm.calls)
    for args in [(2, 1, PRIO, QPAGE, 16), (1, 1, 7, QPAGE, 16), (1, ABSENT_VCPU, PRIO, QPAGE, 16),
                 (1, 1, PRIO, QPAGE, 13), (1, 1, PRIO, QPAGE + 1, 16), (1, 1, PRIO, OUTSIDE_RAM, 16)]:
        assert machine.hcall(0, "H_INT_SET_QUEUE_CONFIG", *args)[0] != H_SUCCESS, args
    assert len(machine.kvm.calls) == calls


# -- H_INT_ESB: offset ----------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [(1 << 17) + 1, 1 << 18, MINUS_ONE])
@pytest.mark.parametrize("flags", [0, ESB_STORE])
def test_esb_offset_beyond_the_esb_size_is_h_p3(machine, offset, flags):
    """offset > 1 << esb_shift (2^17, two 64K pages) answers H_P3 and touches no PQ."""
    pq = machine.hcall(0, "H_INT_ESB", 0, MSI, 0x800, 0)
    assert machine.hcall(0, "H_INT_ESB", flags, MSI, offset, 0) == (H_P3,)
    assert machine.hcall(0, "H_INT_ESB", 0, MSI, 0x800, 0) == pq


def test_esb_offset_up_to_the_esb_size_is_accepted(machine):
    """The bound is inclusive, as in QEMU (offset > 1 << esb_shift): 2^17 passes the check."""
    assert machine.hcall(0, "H_INT_ESB", 0, MSI, 0xFFFF, 0)[0] == H_SUCCESS
    assert machine.hcall(0, "H_INT_ESB", 0, MSI, 1 << 17, 0)[0] == H_SUCCESS


def test_emulated_esb_access_past_the_esb_region_is_h_hardware():
    """Emulated, QEMU accesses vc_base + management page + offset: from the last source, an
    offset of 2^17 falls outside the ESB MMIO and answers H_HARDWARE with QEMU's message."""
    machine = negotiated("off")
    last = papr.XIVE_NR_IRQS - 1
    machine.claim_irq(last)
    _, mgmt = esb_pages(last)
    assert machine.hcall(0, "H_INT_ESB", 0, last, 1 << 17, 0) == (H_HARDWARE,)
    assert machine.xive.reports == [f"XIVE: failed to access ESB @{mgmt + (1 << 17):#x}"]
    assert machine.hcall(0, "H_INT_ESB", 0, last, 0x800, 0) == (H_SUCCESS, XIVE_ESB_OFF)


def test_esb_bad_lisn_is_reported_before_a_bad_offset(machine):
    """H_P2 for an unclaimed LISN wins over H_P3 for a bad offset."""
    assert machine.hcall(0, "H_INT_ESB", 0, UNCLAIMED, 1 << 20, 0) == (H_P2,)


# -- H_INT_RESET ----------------------------------------------------------------------------------------


def test_reset_with_flags_is_h_parameter_and_resets_nothing(machine):
    """H_INT_RESET with any flag: H_PARAMETER, the configured queue and routing stay."""
    route(machine, MSI)
    resets = kernel(machine).resets if machine.backend == "kvm" else None
    assert machine.hcall(0, "H_INT_RESET", 1) == (H_PARAMETER,)
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI) == (H_SUCCESS, 1, PRIO, 0x42)
    assert machine.hcall(0, "H_INT_GET_QUEUE_INFO", 0, 1, PRIO)[2] == 16
    if resets is not None:
        assert kernel(machine).resets == resets


# ==========================================================================================================
# Results
# ==========================================================================================================


@pytest.mark.parametrize("lisn", [IPI, 1, MSI, MSI2, 0x1100, 0x1101])
def test_get_source_info_of_an_msi_gives_its_two_esb_pages(machine, lisn):
    """MSI: no flags, R5 = management page (trigger + 64K), R6 = trigger page, R7 = shift 16."""
    trigger, mgmt = esb_pages(lisn)
    assert machine.hcall(0, "H_INT_GET_SOURCE_INFO", 0, lisn) == (H_SUCCESS, 0, mgmt, trigger, 16)


@pytest.mark.parametrize("lisn", [LSI, LSI + 1, LSI + 3])
def test_get_source_info_of_an_lsi_forces_h_int_esb(machine, lisn):
    """LSI: flags H_INT_ESB | LSI and both pages -1, so the guest EOIs through H_INT_ESB."""
    assert machine.hcall(0, "H_INT_GET_SOURCE_INFO", 0, lisn) == (
        H_SUCCESS, SRC_H_INT_ESB | SRC_LSI, MINUS_ONE, MINUS_ONE, 16)


def test_a_lisn_claimed_later_is_described_too(machine):
    """Sources claimed after CAS (an MSI block, an LSI) answer like the machine's own."""
    first = machine.msi_alloc(2)
    machine.claim_irq(0x1400, lsi=True)
    trigger, mgmt = esb_pages(first + 1)
    assert machine.hcall(0, "H_INT_GET_SOURCE_INFO", 0, first + 1) == (H_SUCCESS, 0, mgmt,
                                                                        trigger, 16)
    assert machine.hcall(0, "H_INT_GET_SOURCE_INFO", 0, 0x1400)[1] == SRC_H_INT_ESB | SRC_LSI


def test_the_pages_get_source_info_gives_are_the_sources_esb_mmio(machine):
    """A load on the returned management page reads the PQ; a store on the trigger page fires."""
    _, mgmt, trigger, _ = machine.hcall(0, "H_INT_GET_SOURCE_INFO", 0, MSI)[1:]
    assert machine.mmio_read(0, mgmt + 0x800, 8) == XIVE_ESB_OFF  # claimed sources start off
    assert machine.mmio_read(0, mgmt + 0xC00, 8) == XIVE_ESB_OFF  # SET_PQ_00 returns the old PQ
    machine.mmio_write(0, trigger, 8, 0)
    assert machine.mmio_read(0, mgmt + 0x800, 8) == 0b10
    assert machine.hcall(0, "H_INT_ESB", 0, MSI, 0x800, 0) == (H_SUCCESS, 0b10)


def test_set_source_config_then_get_source_config_round_trips(machine):
    """Target, priority and EISN set on a configured queue read back unchanged."""
    for target, priority, eisn in [(1, PRIO, 0x1234), (0, 5, 0x7FFF_FFFF), (1, 0, 1)]:
        configure_queue(machine, target, priority)
        assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", SET_EISN, MSI, target, priority,
                             eisn) == (H_SUCCESS,)
        assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI) == (H_SUCCESS, target,
                                                                        priority, eisn)
    assert_clean(machine)


def test_set_source_config_keeps_the_eisn_without_set_eisn_and_truncates_it_to_31_bits(machine):
    """Without SET_EISN the EISN stays; with it only the low 31 bits are kept."""
    route(machine, MSI, eisn=0xFFFF_FFFF)
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI)[3] == 0x7FFF_FFFF
    configure_queue(machine, 0, 4)
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", 0, MSI, 0, 4, 0x99) == (H_SUCCESS,)
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI) == (H_SUCCESS, 0, 4, 0x7FFF_FFFF)


def test_set_source_config_mask_flag_masks_and_its_absence_unmasks(machine):
    """MASK keeps the routing but GET reports priority 0xff; a call without MASK unmasks."""
    configure_queue(machine, 1, PRIO)
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", MASK | SET_EISN, MSI, 1, PRIO,
                         0x42) == (H_SUCCESS,)
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI) == (H_SUCCESS, 1, 0xFF, 0x42)
    assert machine.xive.state.eas(MSI) & EAS_MASKED
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", 0, MSI, 1, PRIO, 0) == (H_SUCCESS,)
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI) == (H_SUCCESS, 1, PRIO, 0x42)
    if machine.backend == "kvm":
        assert kernel(machine).config[MSI] == (1, PRIO, 0x42)


def test_set_source_config_priority_0xff_masks_without_telling_kvm(machine):
    """0xff resets the EAS to VALID|MASKED and drops the EISN; QEMU skips the KVM update there
    (spec 9.12), so the kernel keeps routing the source."""
    route(machine, MSI, eisn=0x42)
    calls = len(machine.kvm.calls)
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", 0, MSI, 1, 0xFF, 0) == (H_SUCCESS,)
    assert machine.xive.state.eas(MSI) == EAS_VALID | EAS_MASKED
    rc, _, priority, eisn = machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI)
    assert (rc, priority, eisn) == (H_SUCCESS, 0xFF, 0)
    assert len(machine.kvm.calls) == calls
    if machine.backend == "kvm":
        assert kernel(machine).config[MSI] == (1, PRIO, 0x42)


def test_get_source_config_reads_target_and_priority_from_the_end(machine):
    """Target and priority come from the END's NVT and priority words: a fresh, unrouted source
    reads END 0's reset value (NVT 0 -> target 0 - 0x400 as a 32-bit number, masked -> 0xff)."""
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI) == (H_SUCCESS, 0xFFFF_FC00, 0xFF, 0)


def test_get_queue_info_gives_the_end_esb_page_and_the_queue_size(machine):
    """R4 = end_base + 2^18 * END index, R5 = 0 until a queue is set, then its size."""
    for target in (0, 1):
        for priority in (0, PRIO):
            page = END_BASE + (1 << 18) * end_index(target, priority)
            assert machine.hcall(0, "H_INT_GET_QUEUE_INFO", 0, target, priority) == (
                H_SUCCESS, page, 0)
    configure_queue(machine, 1, PRIO)
    assert machine.hcall(0, "H_INT_GET_QUEUE_INFO", 0, 1, PRIO) == (
        H_SUCCESS, END_BASE + (1 << 18) * end_index(1, PRIO), 16)


def test_set_queue_config_then_get_queue_config_round_trips(machine):
    """ALWAYS_NOTIFY, page and size read back; with DEBUG also generation 1 (at 1 << 62) and
    index 0 of a fresh queue."""
    configure_queue(machine, 1, PRIO, QPAGE)
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", 0, 1, PRIO) == (
        H_SUCCESS, ALWAYS_NOTIFY, QPAGE, 16, 0)
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", DEBUG, 1, PRIO) == (
        H_SUCCESS, ALWAYS_NOTIFY | 1 << 62, QPAGE, 16, 0)
    # the other vCPU's queue at that priority, and this vCPU's other priorities, are untouched
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", 0, 0, PRIO) == (H_SUCCESS, 0, 0, 0, 0)
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", 0, 1, 5) == (H_SUCCESS, 0, 0, 0, 0)
    assert_clean(machine)


def test_get_queue_config_reports_the_index_and_generation_of_queued_events(machine):
    """Events routed to a queue advance its index; a wrap toggles the generation to 0."""
    route(machine, MSI, 1, PRIO, eisn=0x42)
    assert machine.hcall(0, "H_INT_ESB", 0, MSI, 0xC00, 0) == (H_SUCCESS, XIVE_ESB_OFF)
    fire_and_eoi(machine, MSI, 5)
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", DEBUG, 1, PRIO) == (
        H_SUCCESS, ALWAYS_NOTIFY | 1 << 62, QPAGE, 16, 5)
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", 0, 1, PRIO) == (  # no DEBUG: no index
        H_SUCCESS, ALWAYS_NOTIFY, QPAGE, 16, 0)
    entries = [machine.memory.read_be(QPAGE + 4 * i, 4) for i in range(6)]
    assert entries == [1 << 31 | 0x42] * 5 + [0]
    fire_and_eoi(machine, MSI, (1 << 16) // 4 - 5 + 2)  # 16384 entries: wrap, then two more
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", DEBUG, 1, PRIO) == (
        H_SUCCESS, ALWAYS_NOTIFY, QPAGE, 16, 2)
    assert machine.memory.read_be(QPAGE, 4) == 0x42  # generation 0 written after the wrap


def test_queued_events_raise_the_target_vcpus_line(machine):
    """With the vCPU's CPPR opened (TIMA store), a routed event raises its line, not the other's."""
    route(machine, MSI, 1, PRIO)
    machine.hcall(0, "H_INT_ESB", 0, MSI, 0xC00, 0)
    for vcpu in machine.vcpus:
        machine.mmio_write(vcpu, TM_BASE + 2 * TM_PAGE + 0x11, 1, 0xFF)
    machine.set_irq(MSI, 1)
    assert machine.irq_pending(1) and not machine.irq_pending(0)


@pytest.mark.parametrize("qpage", [QPAGE, QPAGE + 1, OUTSIDE_RAM])
@pytest.mark.parametrize("flags", [0, ALWAYS_NOTIFY])
def test_set_queue_config_size_0_resets_the_queue(machine, qpage, flags):
    """qsize 0 resets the END (queueing off, notify off) whatever the page: no alignment or RAM
    check, H_SUCCESS, and GET_QUEUE_CONFIG/INFO read zeros."""
    route(machine, MSI, 1, PRIO)
    assert machine.hcall(0, "H_INT_SET_QUEUE_CONFIG", flags, 1, PRIO, qpage, 0) == (H_SUCCESS,)
    assert machine.xive.state.end(end_index(1, PRIO)) == end_reset_value()
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", DEBUG, 1, PRIO) == (H_SUCCESS, 0, 0, 0, 0)
    assert machine.hcall(0, "H_INT_GET_QUEUE_INFO", 0, 1, PRIO)[2] == 0
    assert machine.xive.reports == []
    if machine.backend == "kvm":
        assert end_index(1, PRIO) not in kernel(machine).queues


def test_h_int_reset_leaves_qemus_tables_and_resets_the_kernels(machine):
    """H_INT_RESET: QEMU's device_cold_reset() of the sPAPR XIVE reaches no reset method (its
    tables are reset by a qemu_register_reset handler), so the EAT, ENDT and PQs stay as they
    are; in KVM, KVM_DEV_XIVE_RESET masks every routed source and drops every queue."""
    route(machine, MSI, 1, PRIO, eisn=0x42)
    route(machine, IPI, 0, 5, eisn=0x10)
    eat = dict(machine.xive.state.eat)
    endt = {idx: list(end) for idx, end in machine.xive.state.endt.items()}
    status = bytes(machine.xive.state.source.status)
    resets = kernel(machine).resets if machine.backend == "kvm" else 0
    assert machine.hcall(0, "H_INT_RESET", 0) == (H_SUCCESS,)
    assert machine.xive.state.eat == eat and machine.xive.state.endt == endt
    assert bytes(machine.xive.state.source.status) == status
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI)[1:] == (1, PRIO, 0x42)
    if machine.backend == "kvm":
        assert kernel(machine).resets == resets + 1
        assert kernel(machine).queues == {}
        assert kernel(machine).config[MSI][1] == 0xFF


@pytest.mark.parametrize("lisn", [IPI, MSI, LSI])
def test_h_int_sync_of_a_claimed_source_succeeds(machine, lisn):
    """H_INT_SYNC: a no-op when emulated, KVM_DEV_XIVE_GRP_SOURCE_SYNC in the kernel."""
    calls = set_attr_calls(machine)
    assert machine.hcall(0, "H_INT_SYNC", 0, lisn) == (H_SUCCESS,)
    new = set_attr_calls(machine)[len(calls):]
    if machine.backend == "kvm":
        assert new == [f"set_attr({machine.xive.fd}, {KVM_DEV_XIVE_GRP_SOURCE_SYNC}, {lisn:#x})"]
    else:
        assert new == []


# -- H_INT_ESB behaves like the management page ---------------------------------------------------------

#: (offset, store?) operations on a management page, QEMU's ESB special offsets.
ESB_SEQUENCE = [(0x800, False), (0xC00, False), (0x800, False), (0x000, True), (0x800, False),
                (0x000, True), (0x800, False), (0x000, False), (0x800, False), (0x000, False),
                (0xF00, False), (0xD00, False), (0xE00, False), (0x800, False), (0xC00, True),
                (0x800, False), (0xD00, True), (0x800, False), (0xE00, True), (0xC08, False)]


def test_h_int_esb_loads_and_stores_behave_like_the_esb_mmio(machine):
    """The same operations by H_INT_ESB on one MSI and by MMIO on its twin read the same values:
    GET returns PQ, SET_PQ_xx the old PQ, load-EOI 0/1, a store -1 (and the MMIO store nothing)."""
    _, mgmt = esb_pages(MSI2)
    for offset, store in ESB_SEQUENCE:
        if store:
            assert machine.hcall(0, "H_INT_ESB", ESB_STORE, MSI, offset, 0) == (H_SUCCESS, MINUS_ONE)
            machine.mmio_write(0, mgmt + offset, 8, 0)
        else:
            by_hcall = machine.hcall(0, "H_INT_ESB", 0, MSI, offset, 0)
            assert by_hcall == (H_SUCCESS, machine.mmio_read(0, mgmt + offset, 8)), hex(offset)


@pytest.mark.parametrize("pq", [0b00, 0b01, 0b10, 0b11])
def test_h_int_esb_set_pq_returns_the_old_pq_and_get_reads_the_new(machine, pq):
    """SET_PQ_xx (0xC00 + xx << 8) returns the previous PQ; GET (0x800) then reads xx."""
    assert machine.hcall(0, "H_INT_ESB", 0, MSI, 0xC00 + (pq << 8), 0) == (H_SUCCESS, XIVE_ESB_OFF)
    assert machine.hcall(0, "H_INT_ESB", 0, MSI, 0x800, 0) == (H_SUCCESS, pq)


def test_h_int_esb_eoi_of_an_lsi_with_the_level_down(machine):
    """An LSI's load-EOI by H_INT_ESB (the guest's only way) clears PQ and returns 0."""
    machine.hcall(0, "H_INT_ESB", 0, LSI, 0xC00, 0)
    machine.set_irq(LSI, 1)
    assert machine.hcall(0, "H_INT_ESB", 0, LSI, 0x800, 0) == (H_SUCCESS, 0b10)
    machine.set_irq(LSI, 0)
    assert machine.hcall(0, "H_INT_ESB", 0, LSI, 0x000, 0) == (H_SUCCESS, 0)
    assert machine.hcall(0, "H_INT_ESB", 0, LSI, 0x800, 0) == (H_SUCCESS, 0b00)


def test_h_int_esb_eoi_of_an_lsi_still_asserted_re_triggers_it(machine):
    """With the level held, the EOI re-triggers (PQ back to 10). Emulated, the load returns 1
    (a notification was forwarded); in KVM QEMU does SET_PQ_00 plus a trigger and returns 0."""
    machine.hcall(0, "H_INT_ESB", 0, LSI, 0xC00, 0)
    machine.set_irq(LSI, 1)
    rc, value = machine.hcall(0, "H_INT_ESB", 0, LSI, 0x000, 0)
    assert (rc, value) == (H_SUCCESS, 0 if machine.backend == "kvm" else 1)
    assert machine.hcall(0, "H_INT_ESB", 0, LSI, 0x800, 0) == (H_SUCCESS, 0b10)


# ==========================================================================================================
# Where the backends differ: the kernel takes 64K always-notify queues only
# ==========================================================================================================


@pytest.mark.parametrize("qsize, qpage", [(12, QPAGE), (21, 0x0020_0000), (24, 0x0100_0000)])
def test_queue_sizes_other_than_64k_work_emulated_but_kvm_refuses_them(qsize, qpage):
    """Emulated XIVE takes 4K, 2M and 16M queues; KVM only 64K (EINVAL): QEMU reports the
    failed KVM_SET_DEVICE_ATTR, answers H_HARDWARE and keeps its END as it was."""
    emulated = negotiated("off")
    assert emulated.hcall(0, "H_INT_SET_QUEUE_CONFIG", ALWAYS_NOTIFY, 1, PRIO, qpage,
                          qsize) == (H_SUCCESS,)
    assert emulated.hcall(0, "H_INT_GET_QUEUE_CONFIG", 0, 1, PRIO) == (
        H_SUCCESS, ALWAYS_NOTIFY, qpage, qsize, 0)

    kvm = negotiated("on")
    configure_queue(kvm, 1, PRIO, QPAGE)
    end = list(kvm.xive.state.end(end_index(1, PRIO)))
    assert kvm.hcall(0, "H_INT_SET_QUEUE_CONFIG", ALWAYS_NOTIFY, 1, PRIO, qpage,
                     qsize) == (H_HARDWARE,)
    assert len(kvm.xive.reports) == 1
    assert report_matches(kvm, attr_report(KVM_DEV_XIVE_GRP_EQ_CONFIG, end_index(1, PRIO),
                                           "Invalid argument"))
    assert kvm.xive.state.end(end_index(1, PRIO)) == end
    assert kvm.hcall(0, "H_INT_GET_QUEUE_CONFIG", 0, 1, PRIO) == (
        H_SUCCESS, ALWAYS_NOTIFY, QPAGE, 16, 0)
    assert_clean(emulated)
    assert_clean(kvm)


def test_a_queue_without_always_notify_works_emulated_but_kvm_refuses_it():
    """Without ALWAYS_NOTIFY the END would coalesce through its ESn: emulated accepts it, KVM
    does not support END ESBs (flags must be ALWAYS_NOTIFY, EINVAL) -> H_HARDWARE."""
    emulated = negotiated("off")
    assert emulated.hcall(0, "H_INT_SET_QUEUE_CONFIG", 0, 1, PRIO, QPAGE, 16) == (H_SUCCESS,)
    assert emulated.hcall(0, "H_INT_GET_QUEUE_CONFIG", 0, 1, PRIO) == (H_SUCCESS, 0, QPAGE, 16, 0)
    kvm = negotiated("on")
    assert kvm.hcall(0, "H_INT_SET_QUEUE_CONFIG", 0, 1, PRIO, QPAGE, 16) == (H_HARDWARE,)
    assert report_matches(kvm, attr_report(KVM_DEV_XIVE_GRP_EQ_CONFIG, end_index(1, PRIO),
                                           "Invalid argument"))
    assert kvm.hcall(0, "H_INT_GET_QUEUE_CONFIG", 0, 1, PRIO) == (H_SUCCESS, 0, 0, 0, 0)


def test_routing_to_a_priority_without_any_queue_is_refused_by_kvm_only():
    """Emulated QEMU records any routing; KVM needs a queue at that priority on some vCPU
    (kvmppc_xive_select_target: EBUSY) -> H_HARDWARE and QEMU's EAS unchanged."""
    emulated = negotiated("off")
    assert emulated.hcall(0, "H_INT_SET_SOURCE_CONFIG", SET_EISN, MSI, 1, PRIO, 7) == (H_SUCCESS,)
    kvm = negotiated("on")
    eas = kvm.xive.state.eas(MSI)
    assert kvm.hcall(0, "H_INT_SET_SOURCE_CONFIG", SET_EISN, MSI, 1, PRIO, 7) == (H_HARDWARE,)
    assert report_matches(kvm, attr_report(3, MSI, "Device or resource busy"))
    assert kvm.xive.state.eas(MSI) == eas


# ==========================================================================================================
# KVM failures: H_HARDWARE, reported, QEMU's state as QEMU leaves it
# ==========================================================================================================


def faulty() -> tuple[Machine, FaultPlan]:
    plan = FaultPlan()
    return negotiated("on", faults=plan), plan


def test_kvm_failure_in_set_source_config_leaves_the_eas_unchanged():
    """SOURCE_CONFIG refused: H_HARDWARE, QEMU's kvm_device_access text, EAS and kernel config
    as before the call."""
    machine, plan = faulty()
    route(machine, MSI, 1, PRIO, eisn=0x42)
    configure_queue(machine, 0, 5)
    eas, config = machine.xive.state.eas(MSI), kernel(machine).config[MSI]
    plan.fail(E.ENXIO, call="set_attr")  # xive_native_configure_irq failed in the firmware
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", SET_EISN, MSI, 0, 5, 0x99) == (H_HARDWARE,)
    assert plan.fired == [("set_attr", E.ENXIO)]
    assert report_matches(machine, attr_report(3, MSI, "No such device or address"))
    assert machine.xive.state.eas(MSI) == eas
    assert kernel(machine).config[MSI] == config
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, MSI) == (H_SUCCESS, 1, PRIO, 0x42)
    assert_clean(machine)


def test_kvm_failure_in_set_queue_config_leaves_the_end_unchanged():
    """EQ_CONFIG refused: H_HARDWARE, reported, QEMU's END and the kernel queue as before."""
    machine, plan = faulty()
    configure_queue(machine, 1, PRIO, QPAGE)
    end = list(machine.xive.state.end(end_index(1, PRIO)))
    plan.fail(E.EIO, call="set_attr")
    assert machine.hcall(0, "H_INT_SET_QUEUE_CONFIG", ALWAYS_NOTIFY, 1, PRIO, QPAGE + (1 << 16),
                         16) == (H_HARDWARE,)
    assert report_matches(machine, attr_report(KVM_DEV_XIVE_GRP_EQ_CONFIG, end_index(1, PRIO),
                                               "Input/output error"))
    assert machine.xive.state.end(end_index(1, PRIO)) == end
    assert kernel(machine).queues[end_index(1, PRIO)].qaddr == QPAGE
    # a reset (qsize 0) refused the same way keeps the queue too
    plan.fail(E.EIO, call="set_attr")
    assert machine.hcall(0, "H_INT_SET_QUEUE_CONFIG", 0, 1, PRIO, 0, 0) == (H_HARDWARE,)
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", 0, 1, PRIO) == (
        H_SUCCESS, ALWAYS_NOTIFY, QPAGE, 16, 0)
    assert_clean(machine)


def test_kvm_sync_and_reset_cannot_fail_on_their_own():
    """SOURCE_SYNC of a valid source and KVM_DEV_XIVE_RESET always succeed in Linux: no fault is
    delivered to them, and the hcalls answer H_SUCCESS."""
    machine, plan = faulty()
    plan.fail(E.EIO, call="set_attr")
    assert machine.hcall(0, "H_INT_SYNC", 0, MSI) == (H_SUCCESS,)
    assert machine.hcall(0, "H_INT_RESET", 0) == (H_SUCCESS,)
    assert plan.fired == [] and plan.armed


def test_kvm_failure_reading_a_queue_is_h_hardware():
    """GET_QUEUE_CONFIG refreshes index and generation from KVM first: a refused get answers
    H_HARDWARE with QEMU's kvm_device_access text."""
    machine, plan = faulty()
    configure_queue(machine, 1, PRIO)
    plan.fail(E.EIO, call="get_attr")
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", DEBUG, 1, PRIO) == (H_HARDWARE,)
    assert any(re.match(rf"KVM_GET_DEVICE_ATTR failed: Group {KVM_DEV_XIVE_GRP_EQ_CONFIG} "
                        rf"attr 0x0*{end_index(1, PRIO):x}: Input/output error$", line)
               for line in machine.xive.reports), machine.xive.reports
    assert machine.hcall(0, "H_INT_GET_QUEUE_CONFIG", DEBUG, 1, PRIO) == (
        H_SUCCESS, ALWAYS_NOTIFY | 1 << 62, QPAGE, 16, 0)


@pytest.mark.parametrize("call, args", [
    ("H_INT_SET_SOURCE_CONFIG", (SET_EISN, MSI, 1, PRIO, 1)),
    ("H_INT_SET_QUEUE_CONFIG", (ALWAYS_NOTIFY, 1, PRIO, QPAGE, 16)),
    ("H_INT_SYNC", (0, MSI)),
    ("H_INT_RESET", (0,)),
])
def test_the_emulated_xive_makes_no_kvm_call_for_any_hcall(call, args):
    """kernel-irqchip=off: the hcalls are served by QEMU alone, KVM is never asked."""
    machine = negotiated("off")
    configure_queue(machine, 1, PRIO)
    calls = len(machine.kvm.calls)
    assert machine.hcall(0, call, *args) == (H_SUCCESS,)
    assert len(machine.kvm.calls) == calls


# ==========================================================================================================
# The mapped pages under KVM: what the kernel does not back kills QEMU (SIGBUS)
# ==========================================================================================================


@pytest.mark.parametrize("page", [0, 1, 3], ids=["hw", "hv", "user"])
@pytest.mark.parametrize("write", [False, True], ids=["load", "store"])
def test_a_tima_page_kvm_does_not_map_is_a_fatal_sigbus(page, write):
    """KVM backs only the OS page (2) of the TIMA: an access to the HW, HV or user page SIGBUSes
    QEMU, which stops; nothing stays in KVM."""
    machine = negotiated("on")
    addr = TM_BASE + page * TM_PAGE + 0x10
    with pytest.raises(MachineError) as info:
        if write:
            machine.mmio_write(0, addr, 4, 0)
        else:
            machine.mmio_read(0, addr, 4)
    assert info.value.stage == "mmio"
    assert info.value.text == ("QEMU received SIGBUS on the KVM XIVE TIMA mapping: "
                               f"TIMA page {page} is not mapped by KVM")
    assert machine.runstate == "shutdown"
    assert_clean(machine)


@pytest.mark.parametrize("page", [0, 1, 3], ids=["hw", "hv", "user"])
def test_the_same_tima_access_emulated_is_no_error(page):
    """Emulated, QEMU serves every TIMA page itself: the machine keeps running."""
    machine = negotiated("off")
    machine.mmio_read(0, TM_BASE + page * TM_PAGE + 0x10, 4)
    assert machine.runstate == "running"
    assert_clean(machine)


def test_the_os_tima_page_works_under_kvm():
    """The OS page is the kernel's: CPPR store then ACK load answer without any error."""
    machine = negotiated("on")
    machine.mmio_write(1, TM_BASE + 2 * TM_PAGE + 0x11, 1, 0xFF)
    assert machine.mmio_read(1, TM_BASE + 2 * TM_PAGE + 0x810, 2) == 0x00FF
    assert machine.runstate == "running"


def test_an_esb_page_of_an_unclaimed_source_is_a_fatal_sigbus_under_kvm():
    """The kernel backs ESB pages of its valid sources only: a load on another SIGBUSes QEMU."""
    machine = negotiated("on")
    _, mgmt = esb_pages(UNCLAIMED)
    with pytest.raises(MachineError) as info:
        machine.mmio_read(0, mgmt + 0x800, 8)
    assert info.value.stage == "mmio"
    assert info.value.text.startswith("QEMU received SIGBUS on the KVM XIVE ESB mapping: ")
    assert machine.runstate == "shutdown"
    assert_clean(machine)


@pytest.mark.parametrize("irqchip", ["off", "on"])
def test_priority_and_target_are_narrowed_as_qemu_types_them(irqchip):
    """QEMU takes the priority as a uint8_t and the target as a uint32_t: 0x106 is priority 6,
    2^32 + 1 is vCPU 1; 0xff is tested on the full register first (0x1ff is priority 0xff)."""
    machine = Machine.create(f"-M pseries,ic-mode=xive,kernel-irqchip={irqchip} -cpu power9 -smp 2",
                             host="power9-linux-5.10")
    machine.boot("linux-xive")
    lisn = machine.driver.ipis[0].lisn
    assert machine.hcall(0, "H_INT_SET_SOURCE_CONFIG", 0x2, lisn, (1 << 32) + 1, 0x106, 0x42) == (0,)
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, lisn)[:4] == (0, 1, 6, 0x42)
    assert machine.hcall(0, "H_INT_GET_QUEUE_INFO", 0, (1 << 32) + 1, 0x106)[0] == 0
    assert machine.hcall(0, "H_INT_SET_QUEUE_CONFIG", 0, 1, 0x1FF, 0, 0) == (papr.H_P3,)


# --- QEMU's MMIO sizes, unassigned addresses, and its claims ------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 4])
def test_emulated_esb_takes_8_byte_accesses_only(size):
    """xive_source_esb_ops (QEMU 7.2): .valid 8..8. Any other size is a decode error: a load
    reads 0 and nothing changes; a store is dropped."""
    machine = negotiated("off")
    trigger, mgmt = esb_pages(MSI)
    machine.xive.state.source.set_pq(MSI, 0b00)
    assert machine.mmio_read(0, mgmt + 0xD00, size) == 0  # SET_PQ_01 refused
    machine.mmio_write(0, trigger, size, 0)  # a trigger refused
    assert machine.xive.state.source.pq(MSI) == 0b00
    assert machine.mmio_read(0, mgmt + 0xD00, 8) == 0b00  # the 8-byte access goes through
    assert machine.xive.state.source.pq(MSI) == 0b01


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_an_unassigned_address_reads_0(size):
    """QEMU 7.2 has no transaction-failed hook for ppc: an unassigned load reads 0 (8.1 raises a
    machine check on POWER9 and POWER10)."""
    machine = negotiated("off")
    assert machine.mmio_read(0, 0x1234_0000, size) == 0


def test_the_xive_pages_of_a_xics_guest_are_unassigned():
    machine = Machine.create(f"-M pseries,kernel-irqchip=off {P9} -smp 2", host="tcg")
    machine.boot("linux-legacy")  # XICS: the XIVE MMIO regions stay disabled
    trigger, mgmt = esb_pages(MSI)
    assert machine.mmio_read(0, mgmt + 0x800, 8) == 0
    assert machine.mmio_read(0, TM_BASE + 2 * TM_PAGE + 0x810, 2) == 0


@pytest.mark.parametrize("irqchip", IRQCHIPS)
def test_a_claim_after_a_free_keeps_the_old_target_and_eisn(irqchip):
    """spapr_xive_claim_irq ORs VALID|MASKED into the EAS a free left (only VALID cleared), and
    never clears an LSI bit: a number reused as an MSI keeps both."""
    machine = negotiated(irqchip)
    machine.claim_irq(0x1500, lsi=True)
    route(machine, 0x1500, 1, PRIO, eisn=0x77)
    routed = machine.xive.state.eas(0x1500)
    machine.free_irq(0x1500)
    assert machine.xive.state.eas(0x1500) == routed & ~EAS_VALID
    machine.claim_irq(0x1500, lsi=False)
    assert machine.xive.state.eas(0x1500) == routed | EAS_VALID | EAS_MASKED
    assert 0x1500 in machine.xive.state.source.lsi
    assert machine.hcall(0, "H_INT_GET_SOURCE_CONFIG", 0, 0x1500) == (H_SUCCESS, 1, 0xFF, 0x77)
