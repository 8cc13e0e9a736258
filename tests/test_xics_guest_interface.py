"""The XICS guest interface through the machine: hcalls, RTAS, lines, the emulated-XICS guard,
on the three backends: QEMU's emulation, the kernel's software XICS (a POWER9 host booted
xive=off) and XICS-on-XIVE (a POWER9 PowerNV host). Where they differ the test says how."""

from __future__ import annotations

import pytest

from spapr_irq import Machine, MachineError, papr
from spapr_irq.devices import Event, Workload
from spapr_irq.guest.driver import Handled

H_SUCCESS, H_HARDWARE, H_PARAMETER, H_FUNCTION = 0, -1, -4, -2
#: backend -> (kernel-irqchip, host, the kind of the KVM device)
BACKENDS = {
    "emulated": ("off", "power9-linux-5.10", None),
    "kvm-xics": ("on", "kvm:cpu=power9,kernel=5.10,xive=off", "kvm-xics"),
    "kvm-xive": ("on", "power9-linux-5.10", "kvm-xive"),
}
KERNEL = ["kvm-xics", "kvm-xive"]


def xics_machine(backend: str, smp: int = 2) -> Machine:
    irqchip, host, kind = BACKENDS[backend]
    machine = Machine.create(f"-M pseries,ic-mode=xics,kernel-irqchip={irqchip} "
                             f"-cpu power9 -smp {smp}", host=host)
    assert machine.backend == ("emulated" if kind is None else "kvm")
    if kind:
        assert machine.kvm.fds[machine.xics.fd].kind == kind
    return machine


@pytest.fixture(params=sorted(BACKENDS))
def machine(request) -> Machine:
    machine = xics_machine(request.param)
    machine.backend_name = request.param
    for vcpu in machine.vcpus:
        machine.hcall(vcpu, "H_CPPR", 0xFF)
    return machine


# --- hcalls ---------------------------------------------------------------------------------------------


def test_h_cppr_and_h_ipoll_report_the_cppr(machine):
    """XICS-on-XIVE keeps the CPPR as the queue priority it maps to (0x40 -> 6), and its H_IPOLL
    writes r4 only: r5 keeps what the guest passed."""
    assert machine.hcall(0, "H_CPPR", 0x40) == (H_SUCCESS,)
    if machine.backend_name == "kvm-xive":
        assert machine.hcall(0, "H_IPOLL", 0, 0x77) == (H_SUCCESS, 6 << 24, 0x77)
    else:
        assert machine.hcall(1, "H_IPOLL", 0) == (H_SUCCESS, 0x40 << 24, 0xFF)


def test_h_ipi_presents_an_ipi_and_raises_the_line(machine):
    assert machine.hcall(0, "H_IPI", 1, 4) == (H_SUCCESS,)
    assert machine.irq_pending(1) and not machine.irq_pending(0)
    assert machine.hcall(1, "H_XIRR") == (H_SUCCESS, (0xFF << 24) | 2)
    assert not machine.irq_pending(1)


def test_h_ipi_to_an_unknown_server_is_h_parameter(machine):
    assert machine.hcall(0, "H_IPI", 7, 4) == (H_PARAMETER,)


def test_h_ipoll_of_an_unknown_server_is_h_parameter(machine):
    assert machine.hcall(0, "H_IPOLL", 99) == (H_PARAMETER,)


def test_h_xirr_x_returns_a_time_base_too(machine):
    rc, xirr, timebase = machine.hcall(0, "H_XIRR_X")
    assert (rc, xirr) == (H_SUCCESS, 0xFF << 24)
    assert timebase > 0


def test_h_eoi_restores_cppr(machine):
    machine.hcall(0, "H_IPI", 0, 4)
    rc, xirr = machine.hcall(0, "H_XIRR")
    assert machine.hcall(0, "H_IPOLL", 0)[1] >> 24 == 4
    machine.hcall(0, "H_IPI", 0, 0xFF)
    assert machine.hcall(0, "H_EOI", xirr) == (H_SUCCESS,)
    assert machine.hcall(0, "H_IPOLL", 0)[1] == 0xFF << 24


def test_hcall_registers_are_truncated_to_the_field_width(machine):
    machine.hcall(0, "H_CPPR", 0x1_05)
    assert machine.hcall(0, "H_IPOLL", 0)[1] >> 24 == 0x05


def test_hcall_with_too_many_arguments_is_refused(machine):
    with pytest.raises(MachineError, match="at most 9 arguments"):
        machine.hcall(0, "H_CPPR", *range(10))


def test_hcall_argument_too_wide_for_a_register_is_refused(machine):
    with pytest.raises(MachineError, match="64-bit register"):
        machine.hcall(0, "H_CPPR", 1 << 64)


def test_unknown_hcall_number_is_h_function(machine):
    assert machine.hcall(0, 0x1234) == (H_FUNCTION,)


def test_hcall_from_an_unknown_vcpu_is_refused(machine):
    with pytest.raises(MachineError, match="no vCPU 5"):
        machine.hcall(5, "H_XIRR")


# --- RTAS -----------------------------------------------------------------------------------------------


def test_set_xive_then_get_xive(machine):
    assert machine.rtas(0, "ibm,set-xive", 0x1100, 1, 5) == (0,)
    assert machine.rtas(0, "ibm,get-xive", 0x1100, nret=3) == (0, 1, 5)


@pytest.mark.parametrize("call, args, nret", [
    ("ibm,set-xive", (0x1100, 0), 1), ("ibm,set-xive", (0x1100, 0, 5), 2),
    ("ibm,get-xive", (0x1100,), 1), ("ibm,int-off", (0x1100, 0), 1), ("ibm,int-on", (), 1),
])
def test_rtas_wrong_argument_counts_are_parameter_errors(machine, call, args, nret):
    assert machine.rtas(0, call, *args, nret=nret) == (papr.RTAS_OUT_PARAM_ERROR,)


@pytest.mark.parametrize("args", [(0x0FFF, 0, 5), (0x1100, 9, 5)],
                         ids=["irq-outside-ics", "unknown-server"])
def test_set_xive_with_a_bad_irq_or_server_is_a_parameter_error(machine, args):
    assert machine.rtas(0, "ibm,set-xive", *args) == (papr.RTAS_OUT_PARAM_ERROR,)


def test_set_xive_priority_above_0xff_is_refused_by_qemu():
    machine = xics_machine("emulated")
    assert machine.rtas(0, "ibm,set-xive", 0x1100, 0, 0x100) == (papr.RTAS_OUT_PARAM_ERROR,)


def test_int_off_masks_and_int_on_restores_the_priority(machine):
    machine.rtas(0, "ibm,set-xive", 0x1100, 0, 5)
    assert machine.rtas(0, "ibm,int-off", 0x1100) == (0,)
    assert machine.rtas(0, "ibm,get-xive", 0x1100, nret=3) == (0, 0, 0xFF)
    assert machine.rtas(0, "ibm,int-on", 0x1100) == (0,)
    assert machine.rtas(0, "ibm,get-xive", 0x1100, nret=3) == (0, 0, 5)


def test_masked_msi_fires_once_unmasked(machine):
    machine.rtas(0, "ibm,set-xive", 0x1100, 1, 5)
    machine.rtas(0, "ibm,int-off", 0x1100)
    machine.set_irq(0x1100, 1)
    assert not machine.irq_pending(1)
    machine.rtas(0, "ibm,int-on", 0x1100)
    assert machine.irq_pending(1)
    assert machine.hcall(1, "H_XIRR") == (H_SUCCESS, (0xFF << 24) | 0x1100)


def test_lsi_line_refires_while_asserted(machine):
    machine.rtas(0, "ibm,set-xive", 0x1200, 0, 5)
    machine.set_irq(0x1200, 1)
    rc, xirr = machine.hcall(0, "H_XIRR")
    assert xirr & 0xFFFFFF == 0x1200
    machine.hcall(0, "H_EOI", xirr)
    assert machine.irq_pending(0)
    rc, xirr = machine.hcall(0, "H_XIRR")
    machine.set_irq(0x1200, 0)
    machine.hcall(0, "H_EOI", xirr)
    assert not machine.irq_pending(0)


def test_set_irq_of_an_unclaimed_number_is_refused(machine):
    with pytest.raises(MachineError, match="not claimed"):
        machine.set_irq(0x1500, 1)


@pytest.mark.parametrize("backend", KERNEL)
def test_in_kernel_rtas_is_served_by_the_kernel_tokens(backend):
    machine = xics_machine(backend)
    assert machine.rtas(0, "ibm,set-xive", 0x1100, 1, 5) == (0,)
    word = machine.kvm.get_attr(machine.xics.fd, 1, 0x1100)  # KVM_DEV_XICS_GRP_SOURCES
    assert (word & 0xFFFFFFFF, (word >> 32) & 0xFF) == (1, 5)
    assert machine.xics.ics.source(0x1100).priority == 0xFF  # QEMU's copy is not touched
    machine.xics.synchronize_state()
    assert machine.xics.ics.source(0x1100).priority == 5


# --- the emulated-XICS guard ------------------------------------------------------------------------------


def guarded_machine() -> Machine:
    """A dual machine whose guest negotiated XIVE: QEMU's XICS handlers must refuse."""
    machine = Machine.create("-M pseries,kernel-irqchip=off -cpu power9 -smp 2", host="tcg")
    machine.boot("linux-xive")
    return machine


@pytest.mark.parametrize("call, args", [("H_CPPR", (0xFF,)), ("H_IPI", (0, 4)), ("H_EOI", (0,)),
                                        ("H_IPOLL", (0,)), ("H_XIRR", ()), ("H_XIRR_X", ())])
def test_xics_hcalls_answer_h_hardware_once_xive_was_negotiated(call, args):
    assert guarded_machine().hcall(0, call, *args) == (H_HARDWARE,)


@pytest.mark.parametrize("call, args, nret", [("ibm,set-xive", (0x1100, 0, 5), 1),
                                              ("ibm,get-xive", (0x1100,), 3),
                                              ("ibm,int-off", (0x1100,), 1),
                                              ("ibm,int-on", (0x1100,), 1)])
def test_xics_rtas_calls_answer_hardware_error_once_xive_was_negotiated(call, args, nret):
    assert guarded_machine().rtas(0, call, *args, nret=nret) == (papr.RTAS_OUT_HW_ERROR,)


def test_h_xirr_accepts_before_the_guard_qemu_quirk():
    machine = guarded_machine()
    machine.xics.icps[0].xirr = 0x05 << 24
    machine.hcall(0, "H_XIRR")
    assert machine.xics.icps[0].cppr == 0xFF  # the accept happened, then H_HARDWARE


def test_qemu_xics_handlers_refuse_while_an_in_kernel_irqchip_exists():
    machine = Machine.create("-M pseries,kernel-irqchip=on -cpu power9", host="power9-linux-5.10")
    machine.boot("linux-xive")  # XIVE in KVM; the vCPU is no longer attached to a KVM XICS
    assert machine.hcall(0, "H_CPPR", 0xFF) == (H_HARDWARE,)


# --- the Linux driver and the workload ---------------------------------------------------------------------


def booted(backend: str, smp: int = 2) -> Machine:
    machine = xics_machine(backend, smp)
    assert machine.boot("linux-xive") == "xics"
    return machine


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_boot_opens_every_cpus_cppr(backend):
    machine = booted(backend)
    for vcpu in machine.vcpus:
        assert machine.hcall(vcpu, "H_IPOLL", vcpu)[1] >> 24 == 0xFF


@pytest.mark.parametrize("backend, first", [("emulated", "lsi"), ("kvm-xics", "lsi"),
                                            ("kvm-xive", "ipi")])
def test_workload_handles_ipis_msis_and_lsis_in_priority_order(backend, first):
    """Most favoured first, except that XICS-on-XIVE can hand out an IPI before a more favoured
    device interrupt: the MFRR's notification arrives at priority 0, so the ACK shows only that,
    and H_XIRR finds the IPI before it learns of the rest (test_xics_divergences.py)."""
    machine = booted(backend)
    workload = Workload(machine)
    handled = workload.run([Event("msi", 0, 6), Event("lsi", 0, 3), Event("ipi", 0, source=1),
                            Event("msi", 1, 5)])
    kinds = [(h.vcpu, h.kind) for h in handled]
    second = "ipi" if first == "lsi" else "lsi"
    assert kinds == [(0, first), (0, second), (0, "msi"), (1, "msi")]
    assert machine.driver.warnings == []
    assert not any(machine.irq_pending(v) for v in machine.vcpus)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_workload_ipi_to_self(backend):
    machine = booted(backend)
    handled = Workload(machine).run([Event("ipi", 1, source=1)])
    assert handled == [Handled(1, "ipi", 2)]


def test_workload_needs_a_booted_xics_guest():
    machine = xics_machine("emulated")
    with pytest.raises(Exception, match="boot a guest"):
        Workload(machine)
