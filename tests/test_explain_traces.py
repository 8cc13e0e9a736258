"""Golden traces: the steps the machine records, with the rule of each, on six paths (fallback,
refusal at init, refusal at CAS, CAS switch, reset switch, rollback). ``explain`` prints these
steps, so a step dropped, a rule changed or a switch recorded before it happened shows here."""

from __future__ import annotations

import errno

import pytest

from spapr_irq import PRESETS, Machine, MachineError, parse_options
from spapr_irq.cli import main

DEVICES = ("claimed EPOW 0x1000, HOTPLUG 0x1001, VIO spapr-vty 0x1100, VIO spapr-nvram 0x1101, "
           "PHB LSI A 0x1200, PHB LSI B 0x1201, PHB LSI C 0x1202, PHB LSI D 0x1203, "
                "VIO spapr-vlan 0x1102, VIO spapr-vscsi 0x1103")


def trace(machine: Machine, start: int = 0) -> list[tuple]:
    return [(s.step, s.rule, s.detail) for s in machine.trace[start:]]


def test_fallback_to_emulated_xive_on_a_kvm_without_it():
    machine = Machine.create("-M pseries,ic-mode=xive -cpu power9", host="power9-linux-4.19")
    assert trace(machine) == [
        ("config", None, "pseries-10.1, ic-mode=xive, kernel-irqchip=allowed, -cpu power9_v2.2, "
                         "1 vCPU(s), maxcpus 1; QEMU 10.1"),
        ("accelerator", None, "kvm on host power9-linux-4.19 (POWER9 host, Linux 4.19)"),
        ("cpu", None, "-cpu power9: under KVM the host's family alias names the host CPU "
                      "(power9_v2.2)"),
        ("cpu", "power9-capable", "POWER9: POWER9-capable"),
        ("check", "split", "split: not split"),
        ("check", "dual-becomes-xics", "dual-becomes-xics: POWER9-capable"),
        ("check", "xive-needs-power9", "xive-needs-power9: ic-mode=xive on a POWER9-capable CPU"),
        ("check", "broken-disconnect", "broken-disconnect: probe not needed (only for KVM with "
                                       "ic-mode=dual,kernel-irqchip=on)"),
        ("create", "create-controllers", "sPAPR XIVE (0x2000 sources, 8 ENDs, 1 IPIs claimed)"),
        ("register", None, "XIVE: 11 hcalls"),
        ("active", "initial-active", "XIVE is active until CAS"),
        ("connect", "rollback", "KVM XIVE failed and was rolled back: IRQ_XIVE capability must be "
                                "present for KVM"),
        ("warning", None, "kernel_irqchip allowed but unavailable: IRQ_XIVE capability must be "
                          "present for KVM\nFalling back to kernel-irqchip=off"),
        ("backend", "kernel-irqchip-allowed", "XIVE emulated (fallback)"),
        ("vcpus", None, "1 vCPU(s), ids [0]"),
        ("devices", None, DEVICES),
        ("reset", None, "devices reset, CAS state cleared"),
        ("active", "reset-boot-mode", "XIVE stays active (emulated)"),
        ("advertise", "advertise", "ibm,arch-vec-5-platform-support byte 23 = 0x40 (xive)"),
    ]


def test_refusal_at_init_of_a_xive_machine_on_a_power8():
    machine = Machine(parse_options("-M pseries,ic-mode=xive -cpu power8"),
                      PRESETS["power8-linux-5.10"])
    with pytest.raises(MachineError):
        machine.start()
    assert trace(machine) == [
        ("config", None, "pseries-10.1, ic-mode=xive, kernel-irqchip=allowed, -cpu power8_v2.0, "
                         "1 vCPU(s), maxcpus 1; QEMU 10.1"),
        ("accelerator", None, "kvm on host power8-linux-5.10 (POWER8 host, Linux 5.10)"),
        ("cpu", None, "-cpu power8: under KVM the host's family alias names the host CPU "
                      "(power8_v2.0)"),
        ("vsmt", None, "KVM's VSMT mode set to 1 (vCPU ids spaced by 1)"),
        ("cpu", "power9-capable", "POWER8: not POWER9-capable"),
        ("check", "split", "split: not split"),
        ("check", "dual-becomes-xics", "dual-becomes-xics: ic-mode=xive"),
        ("check", "xive-needs-power9", "xive-needs-power9: refused"),
        ("error", None, "XIVE-only machines require a POWER9 CPU"),
    ]


def test_refusal_at_cas_of_a_guest_without_xive_on_a_xive_only_machine():
    machine = Machine.create("-M pseries,ic-mode=xive -cpu power9", host="power9-linux-5.10")
    start = len(machine.trace)
    with pytest.raises(MachineError):
        machine.boot("linux-legacy")
    refusal = ("Guest requested unavailable interrupt mode (XICS), either don't set the ic-mode "
               "machine property or try ic-mode=xics or ic-mode=dual")
    assert trace(machine, start) == [
        ("cas", "cas-invalid", "guest asks for XICS (byte 23 = 0x00)"),
        ("cas", "cas-unavailable", "ic-mode=xive has no XICS"),
        ("error", None, refusal),
    ]


def test_switch_at_cas_closes_the_kvm_xics_then_connects_the_kvm_xive():
    machine = Machine.create("-M pseries -cpu power9", host="power9-linux-5.10")
    start = len(machine.trace)
    machine.boot("linux-xive")
    assert trace(machine, start) == [
        ("cas", "cas-invalid", "guest asks for XIVE (byte 23 = 0x40)"),
        ("cas", "cas-unavailable", "ic-mode=dual has XIVE"),
        ("deactivate", "cas-switch", "XICS (its KVM device closed)"),
        ("backend", "kernel-irqchip-allowed", "XIVE in-kernel (KVM kvm-xive-native device, fd 21)"),
        ("switch", "cas-switch", "XICS -> XIVE: XIVE active (kvm)"),
    ]


def test_switch_at_reset_back_to_xics():
    machine = Machine.create("-M pseries -cpu power9", host="power9-linux-5.10")
    machine.boot("linux-xive")
    start = len(machine.trace)
    machine.reset()
    assert trace(machine, start) == [
        ("reset", None, "devices reset, CAS state cleared"),
        ("deactivate", "reset-boot-mode", "XIVE (its KVM device closed)"),
        ("backend", "kernel-irqchip-allowed", "XICS in-kernel (KVM kvm-xive device, fd 22)"),
        ("switch", "reset-boot-mode", "XIVE -> XICS: XICS active (kvm)"),
        ("advertise", "advertise", "ibm,arch-vec-5-platform-support byte 23 = 0x80 (dual)"),
    ]


def test_rollback_of_a_kvm_xive_connect_failing_at_the_second_vcpu():
    machine = Machine.create("-M pseries -cpu power9 -smp 2", host="power9-linux-5.10")
    start = len(machine.trace)
    machine.kvm.faults.fail(errno.EIO, call="enable_cap", nth=2)
    machine.boot("linux-xive")
    failure = "XIVE: unable to connect CPU1 to KVM device: Input/output error"
    assert trace(machine, start) == [
        ("cas", "cas-invalid", "guest asks for XIVE (byte 23 = 0x40)"),
        ("cas", "cas-unavailable", "ic-mode=dual has XIVE"),
        ("deactivate", "cas-switch", "XICS (its KVM device closed)"),
        ("connect", "rollback", f"KVM XIVE failed and was rolled back: {failure}"),
        ("warning", None, f"kernel_irqchip allowed but unavailable: {failure}\n"
                          "Falling back to kernel-irqchip=off"),
        ("backend", "kernel-irqchip-allowed", "XIVE emulated (fallback)"),
        ("switch", "cas-switch", "XICS -> XIVE: XIVE active (emulated)"),
    ]


def test_no_switch_is_recorded_when_the_new_controller_cannot_be_activated():
    machine = Machine.create("-M pseries,kernel-irqchip=on -cpu power9", host="power9-oldfw-linux-5.4")
    start = len(machine.trace)
    with pytest.raises(MachineError):
        machine.boot("linux-xive")
    steps = [(step, rule) for step, rule, _ in trace(machine, start)]
    assert steps == [("cas", "cas-invalid"), ("cas", "cas-unavailable"),
                     ("deactivate", "cas-switch"), ("connect", "rollback"),
                     ("backend", "kernel-irqchip-on"), ("error", None)]


def test_explain_prints_each_step_with_its_rule_and_guarantee(capsys):
    assert main(["explain", "-M", "pseries,ic-mode=xive", "-cpu", "power9", "--host",
                 "power9-linux-4.19", "--guest", "linux-xive"]) == 0
    out = capsys.readouterr().out
    assert ("12. connect: KVM XIVE failed and was rolled back: IRQ_XIVE capability must be present "
            "for KVM\n             rule rollback (G3)\n") in out
    assert " 7. check: xive-needs-power9: ic-mode=xive on a POWER9-capable CPU\n" in out
