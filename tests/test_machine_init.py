"""Machine init: the checks of spapr_irq_init in order, controller creation, registration, IRQs."""

from __future__ import annotations

import errno

import pytest

from conftest import P9, assert_clean, make, refused
from spapr_irq import FaultPlan, Machine, MachineError, papr
from spapr_irq.machine.dispatch import DispatchTable


# --- the init checks, in QEMU's order ---------------------------------------------------------------------


def test_split_irqchip_under_kvm_is_refused():
    error = refused(f"-M pseries,kernel-irqchip=split {P9}")
    assert error.text == "kernel_irqchip split mode not supported on pseries"
    assert error.stage == "init"


def test_split_irqchip_under_tcg_is_accepted_and_emulated():
    machine = make(f"-M pseries,kernel-irqchip=split {P9}", host="tcg")
    assert machine.backend == "emulated"


def test_dual_on_a_power8_cpu_is_silently_xics():
    machine = make("-M pseries,ic-mode=dual -cpu power8", host="power8-linux-5.10")
    assert machine.mode == "xics"
    assert machine.xive is None
    assert machine.advertised_mode == "xics"
    assert machine.warnings == []


def test_dual_capped_by_max_cpu_compat_power8_is_silently_xics():
    machine = make(f"-M pseries,ic-mode=dual,max-cpu-compat=power8 {P9}")
    assert machine.mode == "xics"
    assert machine.advertised_byte23 == papr.OV5_XIVE_LEGACY


def test_xive_on_a_power8_cpu_is_refused():
    error = refused("-M pseries,ic-mode=xive -cpu power8")
    assert error.text == "XIVE-only machines require a POWER9 CPU"


def test_xive_capped_by_max_cpu_compat_is_refused():
    error = refused(f"-M pseries,ic-mode=xive,max-cpu-compat=power8 {P9}", host="tcg")
    assert error.text == "XIVE-only machines require a POWER9 CPU"


def test_power10_cpu_counts_as_power9_capable():
    machine = make("-M pseries -cpu power10", host="power10-linux-6.6")
    assert machine.advertised_mode == "dual"


BROKEN = (
    "KVM is incompatible with ic-mode=dual,kernel-irqchip=on\n"
    "This can happen with an old KVM or in a KVM nested guest.\n"
    "Try without kernel-irqchip or with kernel-irqchip=off."
)


@pytest.mark.parametrize("host", ["power9-linux-4.19", "power9-nested-linux-5.4"])
def test_dual_with_kernel_irqchip_on_is_refused_where_kvm_xics_cannot_be_recreated(host):
    error = refused(f"-M pseries,ic-mode=dual,kernel-irqchip=on {P9}", host=host)
    assert error.text == BROKEN
    assert error.stage == "init"


@pytest.mark.parametrize("host", ["power9-linux-5.2", "power9-oldfw-linux-5.4",
                                  "power9-nested-linux-5.10", "power9-linux-5.10"])
def test_dual_with_kernel_irqchip_on_passes_the_probe_where_kvm_xics_is_released(host):
    machine = make(f"-M pseries,ic-mode=dual,kernel-irqchip=on {P9}", host=host)
    assert machine.active is machine.xics and machine.backend == "kvm"
    assert_clean(machine)


def test_broken_disconnect_probe_is_create_close_create():
    machine = make(f"-M pseries,kernel-irqchip=on {P9}", host="power9-linux-5.10")
    start = machine.kvm.calls.index("create_device(XICS)")
    assert machine.kvm.calls[start:start + 4] == ["create_device(XICS)", "close(20)",
                                                  "create_device(XICS)", "close(21)"]


def test_broken_disconnect_probe_only_runs_for_dual_with_kernel_irqchip_on():
    for options in (f"-M pseries {P9}", f"-M pseries,ic-mode=xics,kernel-irqchip=on {P9}",
                    f"-M pseries,kernel-irqchip=off {P9}"):
        machine = make(options, host="power9-linux-4.19")
        assert not any(step.step == "probe" for step in machine.trace), options


def test_broken_disconnect_probe_is_skipped_when_dual_became_xics():
    machine = make(f"-M pseries,ic-mode=dual,kernel-irqchip=on,max-cpu-compat=power8 {P9}",
                   host="power9-linux-4.19")
    assert machine.mode == "xics" and machine.backend == "kvm"
    assert not any(step.step == "probe" for step in machine.trace)


def test_a_failed_init_check_leaves_nothing_in_kvm():
    machine = Machine(*_config_host(f"-M pseries,kernel-irqchip=on {P9}", "power9-linux-4.19"))
    with pytest.raises(MachineError):
        machine.start()
    assert machine.runstate == "shutdown"
    assert machine.kvm.fds == {}
    assert_clean(machine)


def _config_host(options, host):
    from spapr_irq import parse_host, parse_options

    return parse_options(options), parse_host(host)


# --- host and accelerator -------------------------------------------------------------------------------------


REGISTER_SYNC = 'Register sync failed... If you\'re using kvm-hv.ko, only "-cpu host" is possible'


@pytest.mark.parametrize("cpu, host", [("power10", "power9-linux-5.10"),
                                       ("power8", "power9-linux-5.10"),
                                       ("power8", "power10-linux-6.6"),
                                       ("power9_v2.0", "power9-linux-5.10"),
                                       ("power9", "power8-linux-5.10")])
def test_kvm_hv_runs_only_the_hosts_own_cpu_model(cpu, host):
    machine = Machine(*_config_host(f"-M pseries -cpu {cpu}", host))
    with pytest.raises(MachineError) as info:
        machine.start()
    assert info.value.text == "kvm_init_vcpu: kvm_arch_init_vcpu failed (0): Invalid argument"
    assert machine.reports == [REGISTER_SYNC] and info.value.stage == "init"
    assert_clean(machine)


@pytest.mark.parametrize("cpu", ["power9", "POWER9", "Power9", "power9_v2.2", "host"])
def test_the_hosts_family_alias_and_own_model_run_under_kvm(cpu):
    machine = make(f"-M pseries -cpu {cpu}", host="power9-linux-5.10")
    assert machine.cpu_family == "power9" and machine.backend == "kvm"


def test_an_older_mode_on_a_newer_kvm_host_is_max_cpu_compat():
    machine = make("-M pseries,max-cpu-compat=power8 -cpu host", host="power10-linux-6.6")
    assert machine.mode == "xics" and machine.backend == "kvm"


@pytest.mark.parametrize("cpu, compat, pvr", [("power8", "power9", "0x0f000005"),
                                              ("power7", "power8", "0x0f000004"),
                                              ("power9", "power10", "0x0f000006")])
def test_max_cpu_compat_newer_than_the_cpu_stops_at_the_first_reset(cpu, compat, pvr):
    """Seen on QEMU 7.2 under TCG: the message, and exit status 1."""
    error = refused(f"-M pseries,max-cpu-compat={compat} -cpu {cpu}", host="tcg")
    assert error.text == f"Compatibility PVR {pvr} not valid for CPU"


def test_cpu_host_takes_the_host_generation():
    assert make("-cpu host", host="power8-linux-5.10").mode == "xics"
    assert make("-cpu host", host="power9-linux-5.10").mode == "dual"


def test_cpu_host_is_refused_under_tcg():
    assert refused("-cpu host", host="tcg").text == "unable to find CPU model 'host'"


def test_accel_kvm_on_a_host_without_kvm_is_refused():
    error = refused(f"-accel kvm {P9}", host="tcg")
    assert error.message == "-accel kvm: failed to initialize kvm: No such file or directory"


def test_accel_list_falls_back_to_the_next_accelerator():
    machine = make(f"-accel kvm -accel tcg {P9}", host="tcg")
    assert machine.accel == "tcg"


def test_accel_tcg_on_a_kvm_host_emulates_everything():
    machine = make(f"-accel tcg {P9}", host="power9-linux-5.10")
    assert machine.kvm is None and machine.backend == "emulated"


def test_kernel_irqchip_on_given_with_machine_has_no_effect_under_tcg():
    machine = make(f"-M pseries,kernel-irqchip=on {P9}", host="tcg")
    assert machine.backend == "emulated"
    assert machine.warnings == []


# --- controllers and registration ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode, xics, xive", [("dual", True, True), ("xics", True, False),
                                              ("xive", False, True)])
def test_mode_creates_the_controllers_it_needs(mode, xics, xive):
    machine = make(f"-M pseries,ic-mode={mode} {P9}")
    assert (machine.xics is not None, machine.xive is not None) == (xics, xive)


def test_dual_registers_every_hcall_and_rtas_call_once():
    machine = make(f"-M pseries {P9}")
    assert sorted(machine.hcalls.names()) == sorted(papr.XICS_HCALLS + papr.XIVE_HCALLS)
    assert sorted(machine.rtas_calls.names()) == sorted(papr.XICS_RTAS_CALLS)


def test_reset_and_cas_do_not_register_again():
    machine = make(f"-M pseries {P9}")
    before = (len(machine.hcalls.entries), len(machine.rtas_calls.entries))
    machine.boot("linux-xive")
    machine.reset()
    machine.boot("linux-legacy")
    assert (len(machine.hcalls.entries), len(machine.rtas_calls.entries)) == before


def test_a_second_registration_of_an_hcall_is_refused():
    table = DispatchTable("hcall")
    owner = make(f"-M pseries {P9}").xics
    table.register("H_EOI", 0x64, owner)
    with pytest.raises(MachineError, match="registered twice"):
        table.register("H_EOI", 0x64, owner)


def test_xive_only_machine_starts_in_xive():
    machine = make(f"-M pseries,ic-mode=xive {P9}")
    assert machine.active is machine.xive and machine.backend == "kvm"
    assert machine.xive.mmio_enabled


def test_dual_machine_starts_in_xics_with_the_kvm_device_created_at_init():
    machine = make(f"-M pseries {P9}")
    assert machine.active is machine.xics
    assert machine.kvm.live_devices() == ["kvm-xive"]
    assert not machine.xive.mmio_enabled


def test_xive_claims_one_ipi_per_server():
    machine = make(f"-M pseries {P9} -smp 2,maxcpus=4")
    assert machine.xive.state.valid_lisns()[:4] == [0, 1, 2, 3]
    assert not machine.xive.is_claimed(4)


def test_vcpu_ids_follow_vsmt():
    machine = make(f"-M pseries {P9} -smp 4,threads=2", host="tcg")
    assert machine.vcpus == [0, 1, 2, 3]
    old = make(f"-M pseries-4.1 {P9} -smp 4,threads=2", host="tcg")
    assert old.vcpus == [0, 1, 8, 9]


# --- IRQ numbers ---------------------------------------------------------------------------------------------

#: QEMU 7.2 `info pic` of -M pseries with its defaults: EPOW, hot-plug, vty, nvram, the default
#: NIC (spapr-vlan), the vscsi of the default CD-ROM, the PHB's four LSIs.
DEFAULT_IRQS = {0x1000: False, 0x1001: False, 0x1100: False, 0x1101: False, 0x1102: False,
                0x1103: False, 0x1200: True, 0x1201: True, 0x1202: True, 0x1203: True}


def test_default_devices_claim_qemus_numbers_in_both_controllers():
    machine = make(f"-M pseries {P9}")
    assert machine.xics.ics.allocated() == sorted(DEFAULT_IRQS)
    for irq, lsi in DEFAULT_IRQS.items():
        assert machine.irq_claimed(irq) == {"xics": True, "xive": True}
        assert machine.xics.ics.source(irq).lsi == lsi
        assert (irq in machine.xive.state.source.lsi) == lsi


def test_legacy_machine_allocates_first_fit_in_0x400_sources():
    machine = make("-M pseries-3.0 -cpu power8", host="tcg")
    assert machine.mode == "legacy"
    assert machine.xics.ics.nr_irqs == 0x400
    assert machine.xics.ics.allocated() == list(range(0x1000, 0x100A))


@pytest.mark.parametrize("options, devices", [
    # As QEMU 7.2's `info pic` shows them (-serial none drops the vty).
    ("-M pseries -serial none", {0x1000: "EPOW", 0x1001: "HOTPLUG", 0x1100: "VIO spapr-nvram",
                                 0x1101: "VIO spapr-vlan", 0x1102: "VIO spapr-vscsi"}),
    ("-M pseries -nodefaults", {0x1000: "EPOW", 0x1001: "HOTPLUG", 0x1100: "VIO spapr-nvram"}),
    ("-M pseries -net none", {0x1000: "EPOW", 0x1001: "HOTPLUG", 0x1100: "VIO spapr-vty",
                              0x1101: "VIO spapr-nvram", 0x1102: "VIO spapr-vscsi"}),
    ("-M pseries -nic none -serial none", {0x1000: "EPOW", 0x1001: "HOTPLUG",
                                           0x1100: "VIO spapr-nvram", 0x1101: "VIO spapr-vscsi"}),
    ("-M pseries -serial null -serial stdio", {0x1000: "EPOW", 0x1001: "HOTPLUG",
                                               0x1100: "VIO spapr-vty", 0x1101: "VIO spapr-vty",
                                               0x1102: "VIO spapr-nvram", 0x1103: "VIO spapr-vlan",
                                               0x1104: "VIO spapr-vscsi"}),
    # Legacy: first fit in creation order, the PHB's LSIs between the NVRAM and the NIC.
    ("-M pseries-2.12", {0x1000: "EPOW", 0x1001: "HOTPLUG", 0x1002: "VIO spapr-vty",
                         0x1003: "VIO spapr-nvram", 0x1008: "VIO spapr-vlan",
                         0x1009: "VIO spapr-vscsi"}),
    ("-M pseries-2.12 -serial none", {0x1000: "EPOW", 0x1001: "HOTPLUG", 0x1002: "VIO spapr-nvram",
                                      0x1007: "VIO spapr-vlan", 0x1008: "VIO spapr-vscsi"}),
    # pseries-2.7 and older have no hot-plug event source: every number moves down by one.
    ("-M pseries-2.7", {0x1000: "EPOW", 0x1001: "VIO spapr-vty", 0x1002: "VIO spapr-nvram",
                        0x1007: "VIO spapr-vlan", 0x1008: "VIO spapr-vscsi"}),
    ("-M pseries-2.1 -serial none", {0x1000: "EPOW", 0x1001: "VIO spapr-nvram",
                                     0x1006: "VIO spapr-vlan", 0x1007: "VIO spapr-vscsi"}),
])
def test_default_devices_follow_the_machine_version_and_the_default_options(options, devices):
    machine = make(options + " -cpu power7", host="tcg")
    owners = {irq: name for irq, name in machine.irq_owners.items() if not name.startswith("PHB")}
    assert owners == devices
    lsis = sorted(irq for irq, name in machine.irq_owners.items() if name.startswith("PHB"))
    assert len(lsis) == 4 and all(machine.xics.ics.source(irq).lsi for irq in lsis)
    assert machine.leaks() == []


def test_legacy_phb_lsis_come_after_the_nvram():
    machine = make("-M pseries-2.7 -cpu power7", host="tcg")
    assert [irq for irq, name in machine.irq_owners.items() if name.startswith("PHB")] == \
        [0x1003, 0x1004, 0x1005, 0x1006]


def test_claiming_a_claimed_irq_is_refused_and_changes_nothing():
    machine = make(f"-M pseries {P9}")
    with pytest.raises(MachineError) as info:
        machine.claim_irq(0x1000)
    assert info.value.message == "IRQ 4096 is not free"
    assert machine.irq_claimed(0x1000) == {"xics": True, "xive": True}


def test_claim_outside_the_external_range_is_refused():
    machine = make(f"-M pseries {P9}")
    with pytest.raises(MachineError, match="outside the external range"):
        machine.claim_irq(0x2000)


def test_claim_and_free_keep_both_controllers_in_step():
    machine = make(f"-M pseries {P9}")
    machine.claim_irq(0x1500, lsi=True)
    assert machine.irq_claimed(0x1500) == {"xics": True, "xive": True}
    machine.free_irq(0x1500)
    assert machine.irq_claimed(0x1500) == {"xics": False, "xive": False}


def test_claim_under_in_kernel_xics_pushes_the_source_to_kvm():
    machine = make(f"-M pseries {P9}")
    machine.claim_irq(0x1500, lsi=True)
    word = machine.kvm.get_attr(machine.xics.fd, 1, 0x1500)  # KVM_DEV_XICS_GRP_SOURCES
    assert word == (0xFF << 32) | (1 << 40) | (1 << 41)  # priority 0xff, LEVEL_SENSITIVE, MASKED


def test_msi_allocation_without_align_starts_even():
    machine = make(f"-M pseries {P9}")
    first = machine.msi_alloc(1, align=False)
    second = machine.msi_alloc(1, align=False)
    assert (first, second) == (0x1300, 0x1302)


def test_msi_allocation_with_align_true_is_not_aligned_qemu_quirk():
    machine = make(f"-M pseries {P9}")
    assert machine.msi_alloc(1, align=True) == 0x1300
    assert machine.msi_alloc(3, align=True) == 0x1301


def test_msi_allocation_exhausted_is_refused():
    machine = make(f"-M pseries {P9}")
    machine.msi_alloc(0xD00, align=True)
    with pytest.raises(MachineError, match="can't find a free 1-IRQ block"):
        machine.msi_alloc(1, align=True)


def test_reset_frees_the_phbs_msis():
    machine = make(f"-M pseries {P9}")
    irq = machine.msi_alloc(4, align=False)
    machine.reset()
    assert machine.msi.empty()
    assert machine.irq_claimed(irq) == {"xics": False, "xive": False}


# --- findings of the review against spec/qemu.md ------------------------------------------------------


def test_xive_ipis_overlapping_the_external_range_stop_init_with_qemus_text():
    # pseries-4.1 has vsmt 8: 600 vCPUs need 4800 IPIs, so IPI 0x1000 collides with EPOW.
    machine = Machine(*_config_host("-M pseries-4.1 -cpu power9 -smp 1,maxcpus=600",
                                    "power9-linux-5.10"))
    with pytest.raises(MachineError) as info:
        machine.start()
    assert info.value.text == "IRQ 4096 is not free"
    assert machine.runstate == "shutdown"
    assert_clean(machine)


def test_split_is_refused_on_legacy_machines_too():
    error = refused("-M pseries-3.0,kernel-irqchip=split -cpu power8", host="power8-linux-5.10")
    assert error.text == "kernel_irqchip split mode not supported on pseries"


def test_default_cpu_under_kvm_is_the_host_cpu():
    machine = make("-M pseries", host="power9-linux-5.10")
    assert (machine.cpu_model, machine.cpu_family) == ("host", "power9")
    assert machine.advertised_mode == "dual"


def test_default_cpu_under_tcg_is_the_machine_default():
    assert make("-M pseries", host="tcg").cpu_model == "power10_v2.0"
    assert make("-M pseries-4.0", host="tcg").cpu_model == "power9_v2.2"


def test_freed_xics_source_reads_zero_until_the_next_reset():
    machine = make(f"-M pseries {P9}", host="tcg")
    irq = machine.msi_alloc(1)
    machine.msi_free(irq)
    source = machine.xics.ics.source(irq)
    assert (source.priority, source.saved_priority, source.flags) == (0, 0, 0)
    machine.reset()
    assert (source.priority, source.saved_priority) == (0xFF, 0xFF)


def test_split_is_checked_before_the_power9_checks_under_kvm():
    """spapr_irq_init refuses split before spapr_irq_check looks at the CPU."""
    error = refused("-M pseries,ic-mode=xive,kernel-irqchip=split -cpu power8",
                    host="power8-linux-5.10")
    assert error.text == "kernel_irqchip split mode not supported on pseries"


@pytest.mark.parametrize("host, fault, broken", [("power9-linux-4.19", None, True),
                                                  ("power9-linux-5.10", errno.ENOMEM, False)])
def test_broken_disconnect_counts_only_eexist_on_the_second_create(host, fault, broken):
    """xics_kvm_has_broken_disconnect returns errno == EEXIST: a device that outlives its fd
    (4.19) is broken; another failure of the second create (ENOMEM) is not a disconnect problem,
    and the connect that follows reports what it meets."""
    plan = FaultPlan()
    if fault:
        plan.fail(fault, call="create_device", nth=2)
    machine = Machine(*_config_host(f"-M pseries,kernel-irqchip=on {P9}", host), faults=plan)
    try:
        machine.start()
    except MachineError as exc:
        assert broken and exc.message == "KVM is incompatible with ic-mode=dual,kernel-irqchip=on"
    else:
        assert not broken and plan.fired == [("create_device", errno.ENOMEM)]
    probe = [s.detail for s in machine.trace if s.step == "probe"]
    assert len(probe) == 1 and probe[0].endswith(
        "broken disconnect" if broken else "not a disconnect problem")


@pytest.mark.parametrize("host", ["power9-linux-4.19", "power9-linux-5.10"])
def test_300_vcpus_in_vsmt_8_connect_to_the_kernel_xics(host):
    """pseries-4.1 spaces vCPU ids by 8 (up to 2392): QEMU sets KVM's SMT mode to 8 first, and
    the kernel packs those ids below KVM_MAX_VCPUS."""
    machine = make("-M pseries-4.1,ic-mode=xics -cpu power9 -smp 300", host=host)
    assert machine.backend == "kvm" and machine.warnings == []
    assert max(machine.vcpus) == 2392 and machine.kvm.emul_smt_mode == 8
    assert_clean(machine)


def test_vcpu_ids_beyond_max_vcpus_in_vsmt_1_stop_qemu_at_vcpu_creation():
    """pseries-4.2+ with one thread per core: ids are 0..N-1, and KVM creates none past 2047."""
    error = refused("-M pseries,ic-mode=xics -cpu power9 -smp 2049", host="power9-linux-5.10")
    assert error.text == "kvm_init_vcpu: kvm_get_vcpu failed (2048): Invalid argument"


def test_legacy_msis_are_allocated_first_fit_from_source_0():
    """spapr_irq_find: no MSI bitmap on pseries-3.0 and older; MSI-X blocks take the first free
    numbers, MSI blocks are aligned to their size."""
    machine = make("-M pseries-3.0 -cpu power8", host="tcg")
    assert machine.msi_alloc(1) == 0x100A  # the 10 default sources come first
    assert machine.msi_alloc(4, align=True) == 0x100C  # 0x100B is free but not 4-aligned
    assert machine.msi_alloc(1) == 0x100B  # unaligned: the first free number
    assert machine.msi_alloc(3) == 0x1010
    machine.msi_free(0x1010)
    assert machine.msi_alloc(2, align=True) == 0x1010
    assert machine.leaks() == []


def test_legacy_msi_alignment_takes_powers_of_two_up_to_32():
    machine = make("-M pseries-3.0 -cpu power8", host="tcg")
    with pytest.raises(MachineError, match="1, 2, 4, 8, 16 or 32 IRQs, not 3"):
        machine.msi_alloc(3, align=True)


def test_legacy_msis_run_out_at_0x400_sources():
    machine = make("-M pseries-3.0 -cpu power8", host="tcg")
    with pytest.raises(MachineError) as info:
        machine.msi_alloc(0x400 - 9)
    assert info.value.text == "can't find a free 1015-IRQ block"
    assert machine.msi_alloc(0x400 - 10) == 0x100A
