"""Whatever a XIVE guest throws at the platform, the model answers as the platform does.

Random loads and stores over the ESB and TIMA regions and random H_INT_* arguments: the emulated
XIVE refuses bad accesses (all-ones loads, ignored stores) and bad hcalls (an error code), and never
raises. Under KVM a TIMA page or ESB page the kernel does not map SIGBUSes QEMU, which the model
turns into a clean fatal stop that leaves nothing behind in KVM.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spapr_irq import Machine, MachineError
from spapr_irq import papr

from conftest import assert_clean, booted_xive as booted

XIVE_HCALLS = sorted(papr.XIVE_HCALLS)
SIZES = st.sampled_from([1, 2, 4, 8])
REG = st.integers(0, (1 << 64) - 1)
SMALL = st.integers(0, 0x2100)


def offsets(machine: Machine):
    """Addresses in the TIMA (any page, any offset) and in the ESB pages of the first sources."""
    xive = machine.xive
    tima = st.integers(0, 4 * papr.XIVE_TM_PAGE_SIZE - 1).map(lambda o: xive.tm_base + o)
    esb = st.integers(0, (0x20 << papr.XIVE_ESB_SHIFT) - 1).map(lambda o: xive.vc_base + o)
    return st.one_of(tima, esb)


SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(data=st.data())
def test_emulated_xive_mmio_never_raises_and_loads_fit_their_size(data):
    """Any load or store on the emulated ESB/TIMA is served or refused, never an exception."""
    machine = booted("off")
    for _ in range(20):
        addr = data.draw(offsets(machine))
        size = data.draw(SIZES)
        vcpu = data.draw(st.sampled_from(machine.vcpus))
        if data.draw(st.booleans()):
            value = machine.mmio_read(vcpu, addr, size)
            assert 0 <= value < 1 << (8 * size)
        else:
            machine.mmio_write(vcpu, addr, size, data.draw(REG))
    assert machine.runstate == "running"
    assert machine.leaks() == []


@SETTINGS
@given(data=st.data())
def test_kvm_xive_mmio_serves_or_stops_cleanly(data):
    """Under KVM an access is served, or SIGBUS stops the machine with nothing left in KVM."""
    machine = booted("on")
    for _ in range(20):
        addr = data.draw(offsets(machine))
        size = data.draw(SIZES)
        try:
            if data.draw(st.booleans()):
                assert 0 <= machine.mmio_read(0, addr, size) < 1 << (8 * size)
            else:
                machine.mmio_write(0, addr, size, data.draw(REG))
        except MachineError as exc:
            assert exc.stage == "mmio" and "SIGBUS" in exc.message
            assert_clean(machine)
            return
    assert machine.leaks() == []


@pytest.mark.parametrize("irqchip", ["off", "on"])
@SETTINGS
@given(data=st.data())
def test_any_h_int_arguments_get_a_return_code_never_an_exception(irqchip, data):
    """Random flags, LISNs, targets, priorities, pages and sizes: an rc from PAPR's list."""
    machine = booted(irqchip)
    codes = {papr.H_SUCCESS, papr.H_PARAMETER, papr.H_P2, papr.H_P3, papr.H_P4, papr.H_P5,
             papr.H_FUNCTION, papr.H_HARDWARE}
    for _ in range(15):
        call = data.draw(st.sampled_from(XIVE_HCALLS))
        args = data.draw(st.lists(st.one_of(SMALL, REG), min_size=0, max_size=6))
        answer = machine.hcall(data.draw(st.sampled_from(machine.vcpus)), call, *args)
        assert answer[0] in codes, (call, args, answer)
        assert all(0 <= v < 1 << 64 for v in answer[1:])
    assert machine.runstate == "running"
    assert machine.leaks() == []


@pytest.mark.parametrize("irqchip", ["off", "on"])
def test_h_int_esb_past_the_management_page_reaches_the_next_source(irqchip):
    """Offsets up to 2^17 are taken: a store 64K past the management page is a trigger on the
    next source's trigger page (QEMU adds the offset to the page address, emulated or mapped)."""
    machine = booted(irqchip)
    first, second = machine.driver.ipis[0].lisn, machine.driver.ipis[1].lisn
    assert second == first + 1
    assert machine.hcall(0, "H_INT_ESB", 1, first, 1 << 16, 0)[0] == papr.H_SUCCESS
    assert [(h.vcpu, h.kind) for h in machine.driver.drain()] == [(1, "ipi")]
    assert machine.hcall(0, "H_INT_ESB", 0, first, (1 << papr.XIVE_ESB_SHIFT) + 8, 0)[0] == papr.H_P3


def test_h_int_esb_onto_a_page_kvm_does_not_map_stops_the_machine():
    """Past the last source the kernel knows, the mapped access SIGBUSes QEMU: a clean stop."""
    machine = booted("on")
    last = machine.xive.state.valid_lisns()[-1]
    with pytest.raises(MachineError, match="SIGBUS") as info:
        machine.hcall(0, "H_INT_ESB", 0, last, 1 << papr.XIVE_ESB_SHIFT, 0)
    assert info.value.stage == "hcall"
    assert_clean(machine)
