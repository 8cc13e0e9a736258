"""Machine.leaks() finds each kind of thing a transition can leave behind (G3).

Every test makes one leak on purpose, the way QEMU makes it where QEMU does (a XICS connect failing
at NR_SERVERS, an MSI claim half done), or by hand where only a bug in the model could, and sees
leaks() report it under its kind. A machine that did nothing wrong reports nothing.
"""

from __future__ import annotations

import errno

import pytest

from spapr_irq import Machine, MachineError, papr
from spapr_irq.host.uapi import KVM_CAP_PPC_IRQ_XIVE, KVM_DEV_TYPE_XIVE, KVM_XIVE_TIMA_PAGE_OFFSET

P9 = "-cpu power9 -smp 2"


def kinds(machine: Machine) -> set[str]:
    return {leak.kind for leak in machine.leaks()}


def dual_after_xive_cas(irqchip: str = "on") -> Machine:
    machine = Machine.create(f"-M pseries,kernel-irqchip={irqchip} {P9}", host="power9-linux-5.10")
    machine.boot("linux-xive")
    return machine


def test_a_fresh_machine_and_one_after_cas_leak_nothing():
    machine = Machine.create(f"-M pseries {P9}", host="power9-linux-5.10")
    assert machine.leaks() == []
    machine.boot("linux-xive")
    machine.reset()
    assert machine.leaks() == []


def test_a_xics_connect_failing_at_nr_servers_leaks_its_fd():
    """QEMU keeps the new XICS fd only after NR_SERVERS: pseries-4.1 (VSMT 8) with 4096 possible
    vCPUs asks for 32768 servers, which KVM refuses; the device stays open, owned by no one."""
    machine = Machine.create("-M pseries-4.1,ic-mode=xics -cpu host -smp 1,maxcpus=4096",
                             host="power9-linux-5.10")
    assert machine.backend == "emulated"
    assert machine.warnings == ["kernel_irqchip allowed but unavailable: KVM_SET_DEVICE_ATTR failed: "
                                "Group 2 attr 0x0000000000000001: Invalid argument\n"
                                "Falling back to kernel-irqchip=off"]
    [leak] = machine.leaks()
    assert leak.kind == "kvm-fd" and str(leak) == (
        f"KVM device fd {next(iter(machine.kvm.fds))} open with no controller owning it")


def test_an_inactive_controller_holding_its_kvm_device_is_a_leak():
    machine = Machine.create(f"-M pseries {P9}", host="power9-nested-linux-5.10")
    machine.boot("linux-xive")  # XIVE emulated: no KVM XIVE device in a nested hypervisor
    machine.xics.connect_kvm(machine.kvm, machine.config.nr_servers, machine.config.max_cpus)
    assert "inactive XICS still has KVM fd" in str(machine.leaks()[0])
    assert {"kvm-fd"} <= kinds(machine)


def test_an_rtas_token_with_no_in_kernel_xics_is_a_leak():
    machine = dual_after_xive_cas()
    machine.kvm.define_rtas_token("ibm,int-on", 0x2100)
    assert kinds(machine) == {"rtas-token"}
    assert "ibm,int-on (0x2100)" in str(machine.leaks()[0])


def test_an_rtas_token_beside_the_in_kernel_xics_ones_is_a_leak():
    machine = Machine.create(f"-M pseries,ic-mode=xics {P9}", host="power9-linux-5.10")
    assert machine.leaks() == []
    machine.kvm.define_rtas_token("ibm,get-xive", 0x2100)
    assert kinds(machine) == {"rtas-token"}


def test_a_missing_hcall_registration_is_a_leak():
    machine = Machine.create(f"-M pseries {P9}", host="tcg")
    del machine.hcalls.entries[papr.HCALLS["H_EOI"]]
    assert kinds(machine) == {"registration"}
    assert str(machine.leaks()[0]) == "hcall H_EOI of XICS is not registered"


def test_an_rtas_call_registered_to_the_wrong_controller_is_a_leak():
    machine = Machine.create(f"-M pseries {P9}", host="tcg")
    machine.rtas_calls.entries[papr.RTAS_TOKENS["ibm,int-on"]].owner = machine.xive
    assert kinds(machine) == {"registration"}


def test_a_kvm_mapping_no_controller_owns_is_a_leak():
    machine = dual_after_xive_cas()
    machine.xive.mappings.remove(KVM_XIVE_TIMA_PAGE_OFFSET)  # QEMU forgot it, KVM did not
    assert kinds(machine) == {"mapping"}


def test_the_mmio_of_an_inactive_xive_is_a_leak():
    machine = dual_after_xive_cas("off")
    machine.reset()
    machine.xive.mmio_enabled = True
    assert kinds(machine) == {"mapping"}
    assert str(machine.leaks()[0]) == "inactive XIVE still has its MMIO regions enabled"


def test_a_vcpu_connected_to_a_device_no_controller_owns_is_a_leak():
    machine = Machine.create(f"-M pseries,kernel-irqchip=off {P9}", host="power9-linux-5.10")
    fd = machine.kvm.create_device(KVM_DEV_TYPE_XIVE)
    machine.kvm.enable_cap(0, KVM_CAP_PPC_IRQ_XIVE, fd, 0)
    assert kinds(machine) == {"kvm-fd", "vcpu"}
    assert "vCPU 0 is connected to KVM device fd" in str(machine.leaks()[1])


def test_presenters_counted_as_connected_by_an_emulated_controller_are_a_leak():
    machine = Machine.create(f"-M pseries,kernel-irqchip=off {P9}", host="power9-linux-5.10")
    machine.xive.kvm_presenters.add(0)
    assert kinds(machine) == {"vcpu"}


def test_an_msi_claim_failing_half_way_leaves_the_number_allocated():
    """rtas_ibm_change_msi frees the numbers claimed before the failing one and the bitmap block,
    but not the half-claimed number itself: claimed in both controllers, owned by no device."""
    machine = dual_after_xive_cas()
    machine.kvm.faults.fail(errno.ENXIO, call="set_attr")  # the XIVE source's hardware IPI
    with pytest.raises(MachineError) as info:
        machine.msi_alloc(1)
    assert info.value.stage == "claim"
    assert machine.reports[-1] == ("Can't allocate MSIs for device 0: KVM_SET_DEVICE_ATTR failed: "
                                   "Group 2 attr 0x0000000000001300: No such device or address")
    [leak] = machine.leaks()
    assert leak.kind == "irq"
    assert str(leak) == "IRQ 0x1300 claimed in XICS and XIVE with no device owning it"
    with pytest.raises(MachineError, match="IRQ 4864 is not free"):  # the next device fails too
        machine.msi_alloc(1)


def test_a_number_claimed_in_one_controller_only_is_a_leak():
    machine = Machine.create(f"-M pseries {P9}", host="tcg")
    machine.claim_irq(0x1500)
    machine.xive.free(0x1500)
    assert kinds(machine) == {"irq"}
    assert str(machine.leaks()[0]) == "IRQ 0x1500 claimed in XICS only"


def test_an_msi_bit_with_no_block_is_a_leak():
    machine = Machine.create(f"-M pseries {P9}", host="tcg")
    machine.msi.used[5] = 1
    assert kinds(machine) == {"irq"}


def test_the_kernel_irqchip_flag_disagreeing_is_a_leak():
    machine = Machine.create(f"-M pseries {P9}", host="power9-linux-5.10")
    machine.kvm.irqchip_in_kernel = False
    assert kinds(machine) == {"irqchip"}


def test_after_qemu_exits_only_the_kernel_side_is_checked():
    machine = Machine.create(f"-M pseries,ic-mode=xive,kernel-irqchip=on {P9}",
                             host="power9-linux-5.10")
    machine.kvm.faults.fail(errno.ENOMEM, call="create_vcpu")
    with pytest.raises(MachineError):
        machine.cas(0, papr.ov5_with(23, 0))  # XICS asked of a XIVE-only machine: QEMU exits
    assert machine.runstate == "shutdown" and machine.leaks() == []
