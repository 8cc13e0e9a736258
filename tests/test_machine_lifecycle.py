"""Activation with fallback, CAS validation and switch, reset back to the boot mode, rollback."""

from __future__ import annotations

import errno

import pytest

from conftest import P9, assert_clean, make, refused
from spapr_irq import FaultPlan, Machine, MachineError, StateError, papr
from spapr_irq.errors import strerror

FALLBACK_XIVE = ("kernel_irqchip allowed but unavailable: IRQ_XIVE capability must be present for KVM\n"
                 "Falling back to kernel-irqchip=off")


# --- activation: kernel-irqchip semantics (G2) ---------------------------------------------------------------


def test_allowed_falls_back_to_emulated_xive_with_qemus_warning():
    machine = make(f"-M pseries,ic-mode=xive {P9}", host="power9-linux-4.19")
    assert machine.backend == "emulated"
    assert machine.warnings == [FALLBACK_XIVE]
    assert_clean(machine)


def test_kernel_irqchip_on_without_kvm_xive_stops_a_xive_machine_at_init():
    error = refused(f"-M pseries,ic-mode=xive,kernel-irqchip=on {P9}", host="power9-linux-4.19")
    assert error.text == ("kernel_irqchip requested but unavailable: "
                          "IRQ_XIVE capability must be present for KVM")
    assert error.stage == "init"


def test_kernel_irqchip_on_without_kvm_xive_stops_a_dual_machine_at_cas():
    machine = make(f"-M pseries,kernel-irqchip=on {P9}", host="power9-oldfw-linux-5.4")
    assert machine.backend == "kvm"
    with pytest.raises(MachineError) as info:
        machine.boot("linux-xive")
    assert info.value.stage == "cas"
    assert info.value.text == ("kernel_irqchip requested but unavailable: "
                               "IRQ_XIVE capability must be present for KVM")
    assert machine.runstate == "shutdown"
    assert_clean(machine)


def test_kernel_irqchip_off_never_asks_kvm_for_a_device():
    machine = make(f"-M pseries,kernel-irqchip=off {P9}")
    machine.boot("linux-xive")
    assert machine.backend == "emulated"
    assert not any(call.startswith("create_device") for call in machine.kvm.calls)


def test_allowed_uses_kvm_xive_when_the_host_has_it():
    machine = make(f"-M pseries {P9}")
    machine.boot("linux-xive")
    assert (machine.interrupt_mode, machine.backend) == ("xive", "kvm")
    assert machine.kvm.live_devices() == ["kvm-xive-native"]


def test_xics_connect_defines_the_kernel_rtas_tokens():
    machine = make(f"-M pseries,ic-mode=xics {P9}")
    assert machine.kvm.rtas_tokens == {papr.RTAS_TOKENS[name]: name for name in papr.XICS_RTAS_CALLS}


def test_xics_connect_sets_nr_servers_only_where_the_attribute_exists():
    new = make(f"-M pseries {P9} -smp 2,maxcpus=8", host="power9-linux-5.10")
    assert new.kvm.fds[new.xics.fd].nr_servers == 8
    old = make(f"-M pseries {P9}", host="power9-linux-5.2")
    assert not any(c.startswith("set_attr(") and ", 2, 0x1)" in c for c in old.kvm.calls)


# --- CAS ------------------------------------------------------------------------------------------------------


def test_guest_asking_for_both_interrupt_modes_is_refused():
    machine = make(f"-M pseries {P9}")
    with pytest.raises(MachineError) as info:
        machine.cas(0, papr.ov5_with(23, papr.OV5_XIVE_BOTH))
    assert info.value.text == "guest requested an invalid interrupt mode"
    assert info.value.stage == "cas"
    assert_clean(machine)


def test_guest_asking_for_hash_and_radix_is_refused():
    machine = make(f"-M pseries {P9}")
    with pytest.raises(MachineError, match="guest requested hash and radix MMU, which is invalid."):
        machine.cas(0, papr.ov5_with(24, 0x80))


def test_xive_guest_on_a_xics_machine_stops_at_cas_with_the_hint():
    machine = make(f"-M pseries,ic-mode=xics {P9}")
    with pytest.raises(MachineError) as info:
        machine.cas(0, papr.ov5_with(23, papr.OV5_XIVE_EXPLOIT))
    assert info.value.text == ("Guest requested unavailable interrupt mode (XIVE), try the "
                               "ic-mode=xive or ic-mode=dual machine property")


def test_legacy_guest_on_a_xive_machine_stops_at_cas_with_the_hint():
    error = refused(f"-M pseries,ic-mode=xive {P9}", guest="linux-legacy")
    assert error.stage == "cas"
    assert error.text == ("Guest requested unavailable interrupt mode (XICS), either don't set the "
                          "ic-mode machine property or try ic-mode=xics or ic-mode=dual")


def test_cas_switches_a_dual_machine_to_xive_inside_the_call():
    machine = make(f"-M pseries {P9}")
    xics_fd = machine.xics.fd
    assert machine.cas(0, papr.ov5_with(23, papr.OV5_XIVE_EXPLOIT)) == papr.H_SUCCESS
    assert machine.active is machine.xive and machine.xive.mmio_enabled
    assert xics_fd not in machine.kvm.fds and machine.xics.fd is None
    assert machine.kvm.rtas_tokens == {}
    assert_clean(machine)


def test_cas_response_tree_carries_the_new_controller_node():
    machine = make(f"-M pseries {P9}")
    machine.boot("linux-xive")
    path, node = machine.intc_node()
    assert path == "/interrupt-controller@60302031b0000"
    assert node["compatible"] == "ibm,power-ivpe"
    assert machine.fdt["/"]["ibm,plat-res-int-priorities"] == [7, 0xF8]
    assert papr.ov5_byte(machine.fdt["/chosen"]["ibm,architecture-vec-5"], 23) == 0x40
    assert "ibm,arch-vec-5-platform-support" not in machine.fdt["/chosen"]


def test_boot_tree_advertises_byte_23_and_the_xics_node():
    machine = make(f"-M pseries {P9}")
    assert machine.fdt["/chosen"]["ibm,arch-vec-5-platform-support"][:2] == bytes([23, 0x80])
    path, node = machine.intc_node()
    assert path == "/interrupt-controller"
    assert node["compatible"] == "IBM,ppc-xicp"
    assert node["device_type"] == "PowerPC-External-Interrupt-Presentation"
    assert node["ibm,interrupt-server-ranges"] == [0, 1]


@pytest.mark.parametrize("guest, mode", [("linux-xive", "xive"), ("linux-xive-off", "xics"),
                                         ("linux-legacy", "xics")])
def test_guests_choose_at_cas_on_a_dual_machine(guest, mode):
    machine = make(f"-M pseries {P9}")
    assert machine.boot(guest) == mode
    assert machine.interrupt_mode == mode


def test_xive_off_guest_takes_xive_when_it_is_the_only_mode():
    machine = make(f"-M pseries,ic-mode=xive {P9}")
    assert machine.boot("linux-xive-off") == "xive"


def test_cas_on_a_stopped_machine_is_a_state_error():
    machine = make(f"-M pseries,ic-mode=xive {P9}")
    with pytest.raises(MachineError):
        machine.boot("linux-legacy")
    with pytest.raises(StateError):
        machine.cas(0, bytes(26))


# --- reset ----------------------------------------------------------------------------------------------------


def test_reset_returns_a_dual_machine_to_xics():
    machine = make(f"-M pseries {P9}")
    machine.boot("linux-xive")
    machine.reset()
    assert machine.active is machine.xics and machine.backend == "kvm"
    assert not machine.xive.mmio_enabled and machine.xive.fd is None
    assert machine.ov5_cas == b""
    assert machine.kvm.live_devices() == ["kvm-xive"]
    assert_clean(machine)


def test_reset_without_a_mode_change_keeps_the_kvm_device():
    machine = make(f"-M pseries {P9}")
    machine.boot("linux-legacy")
    fd = machine.xics.fd
    machine.reset()
    assert machine.xics.fd == fd
    assert sum(call == "create_device(XICS)" for call in machine.kvm.calls) == 1


def test_reset_then_cas_can_switch_again_and_again():
    machine = make(f"-M pseries {P9}")
    for guest in ("linux-xive", "linux-legacy", "linux-xive", "linux-xive-off"):
        machine.reset()
        machine.boot(guest)
        assert machine.backend == "kvm"
        assert_clean(machine)


def test_reset_on_a_kernel_without_xics_release_falls_back_to_emulated_xics():
    # Nested L1 on Linux 5.4: the software KVM XICS cannot be re-created once closed (spec 9.3).
    machine = make(f"-M pseries {P9}", host="power9-nested-linux-5.4")
    machine.boot("linux-xive")
    machine.reset()
    assert machine.active is machine.xics and machine.backend == "emulated"
    assert machine.warnings[-1] == ("kernel_irqchip allowed but unavailable: Error on KVM_CREATE_DEVICE "
                                    "for XICS: File exists\nFalling back to kernel-irqchip=off")
    assert machine.kvm.live_devices() == ["kvm-xics"]  # the old device lives on in the kernel
    assert_clean(machine)


def test_reset_clears_the_presenters():
    machine = make(f"-M pseries {P9}", host="tcg")
    machine.xics.icps[0].mfrr = 5
    machine.reset()
    assert machine.xics.icps[0].mfrr == 0xFF
    cam = machine.xive.tctxs[0].os_cam
    assert cam == (1 << 31) | 0x400


# --- rollback at every KVM call of a connect (G3) ------------------------------------------------------------


def _calls_in(action, code: int = errno.ENOMEM) -> int:
    """How many KVM calls `action(plan)` makes that could fail with `code` on their own."""
    plan = FaultPlan()
    plan.fail(code, nth=10**9)
    try:
        action(plan)
    except MachineError:
        pass
    return plan.faults[0].seen


#: Every errno a KVM call may be made to fail with (host.faults).
FAULT_ERRNOS = (errno.ENOMEM, errno.ENXIO, errno.EIO, errno.ENOSPC)


def every_fault(action):
    """One fresh plan per (errno, n) for every KVM call `action(plan)` makes that can fail with
    that errno on its own, failing the n-th: yields (code, nth, plan)."""
    for code in FAULT_ERRNOS:
        for nth in range(1, _calls_in(action, code) + 1):
            plan = FaultPlan()
            plan.fail(code, nth=nth)
            yield code, nth, plan

#: QEMU's text for a connect that failed at each KVM call, in full (the errno text follows).
CONNECT_TEXTS = {
    ("xive", "create_device"): r"XIVE: error creating KVM device",
    ("xive", "mmap"): r"XIVE: unable to set memory mapping",
    ("xive", "enable_cap"): r"XIVE: unable to connect CPU\d+ to KVM device",
    ("xive", "set_attr"): r"KVM_SET_DEVICE_ATTR failed: Group 2 attr 0x[0-9a-f]{16}",
    ("xics", "define_rtas_token"): r"kvmppc_define_rtas_kernel_token: ibm,[a-z-]+",
    ("xics", "create_device"): r"Error on KVM_CREATE_DEVICE for XICS",
    ("xics", "enable_cap"): r"Unable to connect CPU\d+ to kernel XICS",
    ("xics", "set_attr"): r"KVM_SET_DEVICE_ATTR failed: Group 1 attr 0x[0-9a-f]{16}",
}


def assert_connect_text(text: str, controller: str, plan: FaultPlan, prefix: str) -> None:
    """The whole message QEMU prints for the fault that fired, hints included."""
    import re

    from spapr_irq.errors import strerror

    call, code = plan.fired[0]
    pattern = re.escape(prefix) + CONNECT_TEXTS[controller, call] + re.escape(f": {strerror(code)}")
    if code == errno.ENOSPC:
        pattern += r"\nTry -smp maxcpus=N with N < \d+"
    if prefix.startswith("kernel_irqchip allowed"):
        pattern += re.escape("\nFalling back to kernel-irqchip=off")
    assert re.fullmatch(pattern, text), (text, pattern)


def _xive_cas(plan: FaultPlan, options: str, host: str):
    """A machine and the CAS in which its guest asks for XIVE (the connect, not the driver)."""
    machine = make(options, host=host)
    machine.kvm.faults = plan
    return machine, lambda: machine.cas(0, papr.ov5_with(23, papr.OV5_XIVE_EXPLOIT))


def _run_xive_cas(plan: FaultPlan, options: str, host: str) -> None:
    _, run = _xive_cas(plan, options, host)
    run()


#: The XICS disconnect that precedes the XIVE connect at CAS closes the device and undefines the four
#: kernel RTAS tokens; Linux cannot fail those, so every fault-checked call of the CAS is the connect's.
XICS_TEARDOWN_CALLS = 4


def test_xics_disconnect_closes_the_device_then_undefines_the_rtas_tokens():
    machine = make(f"-M pseries {P9}")
    start, fd = len(machine.kvm.calls), machine.xics.fd
    machine.boot("linux-xive")
    assert machine.kvm.calls[start:start + 1 + XICS_TEARDOWN_CALLS] == [
        f"close({fd})", "define_rtas_token(ibm,set-xive, 0x0)", "define_rtas_token(ibm,get-xive, 0x0)",
        "define_rtas_token(ibm,int-on, 0x0)", "define_rtas_token(ibm,int-off, 0x0)"]


def test_xive_connect_at_cas_rolls_back_at_every_kvm_call_and_falls_back():
    options, host = f"-M pseries {P9} -smp 2", "power9-linux-5.10"
    tried = 0
    for code, nth, plan in every_fault(lambda plan: _run_xive_cas(plan, options, host)):
        machine, run = _xive_cas(plan, options, host)
        run()
        tried += 1
        assert machine.interrupt_mode == "xive" and machine.backend == "emulated", (code, nth)
        assert_connect_text(machine.warnings[-1], "xive", plan,
                            "kernel_irqchip allowed but unavailable: ")
        assert machine.kvm.fds == {} and machine.kvm.live_devices() == [], (code, nth)
        assert machine.xive.mappings == [] and machine.xive.kvm_presenters == set()
        assert all(vcpu.device is None for vcpu in machine.kvm.vcpus.values()), (code, nth)
        assert_clean(machine)
    assert tried >= 8  # 2 mmaps, 2 vCPUs (ENOMEM, EIO, ENOSPC), sources in new blocks


def test_xive_connect_at_cas_with_kernel_irqchip_on_stops_cleanly_at_every_kvm_call():
    options, host = f"-M pseries,kernel-irqchip=on {P9} -smp 2", "power9-linux-5.10"
    for _, _, plan in every_fault(lambda plan: _run_xive_cas(plan, options, host)):
        machine, run = _xive_cas(plan, options, host)
        with pytest.raises(MachineError) as info:
            run()
        assert info.value.stage == "cas"
        assert_connect_text(info.value.text, "xive", plan,
                            "kernel_irqchip requested but unavailable: ")
        assert machine.runstate == "shutdown"
        assert_clean(machine)


def _xics_init(plan: FaultPlan, options: str, host: str):
    return Machine.create(options, host=host, faults=plan)


def test_xics_connect_at_init_rolls_back_at_every_kvm_call():
    options, host = f"-M pseries,ic-mode=xics {P9} -smp 2", "power9-linux-5.10"
    for code, _, plan in every_fault(lambda plan: _xics_init(plan, options, host)):
        try:
            machine = _xics_init(plan, options, host)
        except MachineError as exc:
            # Past the connect, creating the vCPUs and their presenters: QEMU exits.
            assert exc.stage == "init"
            if plan.fired[0][0] == "create_vcpu":
                assert exc.text in (f"kvm_init_vcpu: kvm_get_vcpu failed ({vcpu}): "
                                    f"{strerror(code)}" for vcpu in (0, 1))
            else:
                assert_connect_text(exc.text, "xics", plan, "")
            continue
        assert_clean(machine)
        if machine.warnings:
            assert_connect_text(machine.warnings[-1], "xics", plan,
                                "kernel_irqchip allowed but unavailable: ")
            assert machine.backend == "emulated"
            assert machine.kvm.rtas_tokens == {}
            assert machine.kvm.fds == {}


def test_xics_connect_fault_at_each_rtas_token_is_rolled_back_with_qemus_text():
    for nth, name in enumerate(("ibm,set-xive", "ibm,get-xive", "ibm,int-on", "ibm,int-off"), 1):
        plan = FaultPlan()
        plan.fail(errno.ENOMEM, call="define_rtas_token", nth=nth)
        machine = Machine.create(f"-M pseries,ic-mode=xics {P9}", host="power9-linux-5.10",
                                 faults=plan)
        assert machine.warnings == [f"kernel_irqchip allowed but unavailable: "
                                    f"kvmppc_define_rtas_kernel_token: {name}: Cannot allocate "
                                    "memory\nFalling back to kernel-irqchip=off"]
        assert machine.kvm.rtas_tokens == {}


def test_a_token_already_defined_in_kvm_makes_the_xics_connect_fail_with_eexist():
    machine = make(f"-M pseries {P9}")
    machine.boot("linux-xive")  # XICS left KVM, its tokens undefined
    machine.kvm.define_rtas_token("ibm,int-off", papr.RTAS_TOKENS["ibm,set-xive"])
    machine.reset()
    assert machine.warnings[-1] == ("kernel_irqchip allowed but unavailable: "
                                    "kvmppc_define_rtas_kernel_token: ibm,set-xive: File exists\n"
                                    "Falling back to kernel-irqchip=off")
    # The rollback undefines the four names, and token 0 takes the oldest entry of a name: the
    # stray ibm,int-off goes with it.
    assert machine.kvm.rtas_tokens == {} and machine.leaks() == []


def test_xive_vcpu_connect_enospc_carries_the_maxcpus_hint():
    machine = make(f"-M pseries {P9} -smp 2,maxcpus=4")
    machine.kvm.faults.fail(errno.ENOSPC, call="enable_cap")
    machine.boot("linux-xive")
    assert machine.warnings == ["kernel_irqchip allowed but unavailable: XIVE: unable to connect CPU0 "
                                "to KVM device: No space left on device\nTry -smp maxcpus=N with N < 4\n"
                                "Falling back to kernel-irqchip=off"]


def test_info_pic_names_the_irqchip_backend():
    machine = make(f"-M pseries {P9}")
    assert machine.info_pic().endswith("irqchip: in-kernel\n")
    assert make(f"-M pseries {P9}", host="tcg").info_pic().endswith("irqchip: emulated\n")


def test_unregistered_and_unbuilt_hcalls_answer_h_function():
    machine = make(f"-M pseries,ic-mode=xics {P9}")
    assert machine.hcall(0, "H_INT_RESET", 0) == (papr.H_FUNCTION,)
    assert machine.hcall(0, 0x3FC) == (papr.H_FUNCTION,)


def test_failed_kvm_push_of_a_claimed_xics_source_is_reported_and_the_claim_stands():
    machine = make(f"-M pseries,ic-mode=xics {P9}")
    machine.kvm.faults.fail(errno.ENOMEM, call="set_attr")  # 0x1500 is in a new source block
    machine.claim_irq(0x1500)
    assert machine.irq_claimed(0x1500) == {"xics": True}
    assert machine.reports == ["KVM_SET_DEVICE_ATTR failed: Group 1 attr 0x0000000000001500: "
                               "Cannot allocate memory"]


def test_failed_kvm_source_reset_fails_a_xive_claim_and_leaves_it_half_done():
    """spapr_xive_claim_irq sets the EAS before it resets the source in KVM and undoes nothing."""
    machine = make(f"-M pseries,ic-mode=xive {P9}")
    machine.kvm.faults.fail(errno.ENXIO, call="set_attr")  # the source's hardware IPI
    with pytest.raises(MachineError) as info:
        machine.claim_irq(0x1500)
    assert info.value.text == ("KVM_SET_DEVICE_ATTR failed: Group 2 attr 0x0000000000001500: "
                               "No such device or address")
    assert machine.irq_claimed(0x1500) == {"xive": True}
    assert machine.runstate == "running"
    assert [leak.kind for leak in machine.leaks()] == ["irq"]


def test_xics_vcpu_connect_enospc_carries_the_maxcpus_hint():
    plan = FaultPlan()
    plan.fail(errno.ENOSPC, call="enable_cap")
    error = None
    try:
        Machine.create(f"-M pseries,ic-mode=xics,kernel-irqchip=on {P9} -smp 2", faults=plan,
                       host="power9-linux-5.10")
    except MachineError as exc:
        error = exc
    assert error.text == ("Unable to connect CPU0 to kernel XICS: No space left on device\n"
                          "Try -smp maxcpus=N with N < 2")


def test_missing_xics_capability_fails_the_connect_without_other_kvm_calls():
    """A kernel built without CONFIG_KVM_XICS answers 0 for KVM_CAP_IRQ_XICS."""
    from spapr_irq.host.kvm import Kvm
    from spapr_irq.host.uapi import KVM_CAP_IRQ_XICS
    from spapr_irq.intc.base import ConnectError
    from spapr_irq.intc.xics import XicsController

    class KvmWithoutXics(Kvm):
        def check_extension(self, cap):
            answer = super().check_extension(cap)
            return 0 if cap == KVM_CAP_IRQ_XICS else answer

    kvm = KvmWithoutXics(Machine.create(f"-M pseries {P9}").host)
    with pytest.raises(ConnectError) as info:
        XicsController(0x1000, 1).connect_kvm(kvm, 1, 1)
    assert info.value.text == "KVM and IRQ_XICS capability must be present for in-kernel XICS"
    assert kvm.calls == [f"check_extension({KVM_CAP_IRQ_XICS})"]




# --- KVM_RUN failing: the VM stops in internal-error, QEMU does not exit ----------------------------------


def test_an_rtas_call_with_16_arguments_stops_the_vm_with_kvm_run_failed():
    """kvmppc_rtas_hcall refuses 16 or more arguments (EINVAL) once a kernel token exists, before
    looking the token up: KVM_RUN fails, QEMU prints it and stops the VM, which needs a reset."""
    machine = make(f"-M pseries,ic-mode=xics {P9}")
    with pytest.raises(MachineError) as info:
        machine.rtas(0, 0x2999, *range(16))
    assert (info.value.stage, info.value.message) == ("rtas", "error: kvm run failed Invalid argument")
    assert machine.runstate == "internal-error"
    assert machine.kvm.fds and machine.leaks() == []  # nothing torn down: QEMU still runs
    with pytest.raises(StateError):
        machine.cont()
    machine.reset()
    assert machine.runstate == "paused"
    machine.cont()
    assert machine.runstate == "running" and machine.leaks() == []


def test_16_rtas_arguments_go_to_qemu_while_no_kernel_token_is_defined():
    machine = make(f"-M pseries,kernel-irqchip=off {P9}")
    assert machine.rtas(0, "ibm,int-on", *range(16)) == (papr.RTAS_OUT_PARAM_ERROR,)
    assert machine.runstate == "running"
