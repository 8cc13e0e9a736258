"""The modeled host (spapr_irq.host): presets, what each host's KVM offers, custom host parsing.

Expected values come from spec/linux.md A.1 (capabilities), A.2 and A.6 (which implementation backs
KVM_DEV_TYPE_XICS / KVM_DEV_TYPE_XIVE) and A.5 (device release by kernel version).
"""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from spapr_irq.errors import HostError
from spapr_irq.host.host import PRESETS, Host, parse_host
from spapr_irq.host.kvm import host_capability
from spapr_irq.host.uapi import KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE

ALL_PRESETS = (
    "tcg",
    "power8-linux-4.19",
    "power8-linux-5.10",
    "power9-linux-4.19",
    "power9-linux-5.2",
    "power9-linux-5.10",
    "power10-linux-6.6",
    "power9-nested-linux-5.4",
    "power9-nested-linux-5.10",
    "power10-powervm-linux-6.8",
    "power9-oldfw-linux-5.4",
)
KVM_PRESETS = tuple(name for name in ALL_PRESETS if name != "tcg")

#: Hosts where KVM_CAP_PPC_IRQ_XIVE is 1: PowerNV P9/P10 with XIVE, Linux 5.2+, new OPAL (A.1, A.6).
XIVE_CAP_PRESETS = ("power9-linux-5.2", "power9-linux-5.10", "power10-linux-6.6")

#: KVM_DEV_TYPE_XICS backend per preset (A.2, A.6).
XICS_BACKEND = {
    "power8-linux-4.19": "kvm-xics",
    "power8-linux-5.10": "kvm-xics",
    "power9-linux-4.19": "kvm-xive",
    "power9-linux-5.2": "kvm-xive",
    "power9-linux-5.10": "kvm-xive",
    "power10-linux-6.6": "kvm-xive",
    "power9-nested-linux-5.4": "kvm-xics",
    "power9-nested-linux-5.10": "kvm-xics",
    "power10-powervm-linux-6.8": "kvm-xics",  # KVM in a PowerVM LPAR: no XIVE hardware access
    "power9-oldfw-linux-5.4": "kvm-xive",
}


# --- presets -------------------------------------------------------------------------------------------


def test_preset_names_are_exactly_the_documented_set():
    assert set(PRESETS) == set(ALL_PRESETS)


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_each_preset_is_registered_under_its_own_name(name):
    assert PRESETS[name].name == name


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_a_preset_name_parses_to_that_preset(name):
    assert parse_host(name) is PRESETS[name]


def test_tcg_preset_has_no_kvm():
    assert not PRESETS["tcg"].has_kvm


@pytest.mark.parametrize("name", KVM_PRESETS)
def test_every_other_preset_has_kvm(name):
    assert PRESETS[name].has_kvm


# --- capabilities (A.1) --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", KVM_PRESETS)
def test_irq_xics_capability_is_1_on_every_kvm_host(name):
    assert host_capability(PRESETS[name], KVM_CAP_IRQ_XICS) == 1


def test_irq_xics_capability_is_0_under_tcg():
    assert host_capability(PRESETS["tcg"], KVM_CAP_IRQ_XICS) == 0


def test_capability_numbers_are_the_uapi_values():
    assert (KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE) == (92, 169)


@pytest.mark.parametrize("name", XIVE_CAP_PRESETS)
def test_irq_xive_capability_is_1_on_powernv_xive_hosts_from_5_2(name):
    assert host_capability(PRESETS[name], KVM_CAP_PPC_IRQ_XIVE) == 1


@pytest.mark.parametrize("name", [n for n in ALL_PRESETS if n not in XIVE_CAP_PRESETS])
def test_irq_xive_capability_is_0_elsewhere(name):
    # P8 (no XIVE), P9 4.19 (before 5.2), nested (no HVMODE), old OPAL (no queue-state calls), tcg.
    assert host_capability(PRESETS[name], KVM_CAP_PPC_IRQ_XIVE) == 0


def test_irq_xive_capability_is_0_on_a_xive_off_host():
    assert host_capability(parse_host("kvm:cpu=power9,kernel=5.10,xive=off"), KVM_CAP_PPC_IRQ_XIVE) == 0


# --- which implementation backs KVM_DEV_TYPE_XICS (A.2, A.6) ------------------------------------------


@pytest.mark.parametrize("name", KVM_PRESETS)
def test_xics_device_backend_per_preset(name):
    assert PRESETS[name].xics_device_kind == XICS_BACKEND[name]


def test_xics_device_backend_is_software_xics_on_a_xive_off_host():
    assert parse_host("kvm:cpu=power9,kernel=5.10,xive=off").xics_device_kind == "kvm-xics"


def test_xics_device_backend_is_none_under_tcg():
    assert PRESETS["tcg"].xics_device_kind is None


# --- release semantics (A.5) ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["kvm-xive", "kvm-xive-native"])
@pytest.mark.parametrize("kernel, released", [((4, 19), False), ((5, 1), False), ((5, 2), True),
                                              ((5, 4), True), ((5, 10), True)])
def test_xive_devices_release_from_linux_5_2(kind, kernel, released):
    host = Host(name="h", cpu="power9", kernel=kernel)
    assert host.device_has_release(kind) is released


@pytest.mark.parametrize("kernel, released", [((4, 19), False), ((5, 2), False), ((5, 9), False),
                                              ((5, 10), True), ((6, 6), True)])
def test_software_xics_releases_from_linux_5_10(kernel, released):
    host = Host(name="h", cpu="power8", kernel=kernel)
    assert host.device_has_release("kvm-xics") is released


def test_release_of_an_unknown_device_kind_is_a_value_error():
    with pytest.raises(ValueError):
        PRESETS["power9-linux-5.10"].device_has_release("kvm-mpic")


# --- custom hosts --------------------------------------------------------------------------------------


def test_custom_host_with_cpu_kernel_and_nested():
    host = parse_host("kvm:cpu=power9,kernel=5.2,nested=yes")
    assert (host.accel, host.cpu, host.kernel, host.nested) == ("kvm", "power9", (5, 2, 0), True)


def test_custom_host_defaults_are_bare_metal_xive_on_new_firmware():
    host = parse_host("kvm:cpu=power9,kernel=5.2")
    assert (host.nested, host.xive_off, host.opal_queue_state) == (False, False, True)


def test_custom_host_keeps_the_text_as_its_name():
    assert parse_host("kvm:cpu=power10,kernel=6.6").name == "kvm:cpu=power10,kernel=6.6"


def test_custom_host_nested_no():
    assert parse_host("kvm:cpu=power9,kernel=5.10,nested=no").nested is False


def test_custom_host_xive_off():
    host = parse_host("kvm:cpu=power9,kernel=5.10,xive=off")
    assert host.xive_off and not host.xive_enabled


def test_custom_host_firmware_old_lacks_opal_queue_state():
    host = parse_host("kvm:cpu=power9,kernel=5.4,firmware=old")
    assert host.opal_queue_state is False
    assert host.xics_device_kind == "kvm-xive"
    assert not host.xive_native


def test_custom_host_keys_may_come_in_any_order():
    host = parse_host("kvm:firmware=old,kernel=5.4,cpu=power9")
    assert (host.cpu, host.kernel, host.opal_queue_state) == ("power9", (5, 4, 0), False)


def test_custom_nested_host_has_no_hypervisor_mode():
    host = parse_host("kvm:cpu=power9,kernel=5.10,nested=yes")
    assert not host.hv_mode
    assert host.xics_device_kind == "kvm-xics"


@pytest.mark.parametrize("text, fragment", [
    ("kvm:cpu=power9,kernel=5.2,colour=blue", "unknown key 'colour'"),
    ("kvm:kernel=5.2", "cpu must be"),
    ("kvm:cpu=power11,kernel=5.2", "cpu must be"),
    ("kvm:cpu=power9", "kernel must be a version"),
    ("kvm:cpu=power9,kernel=five", "kernel must be a version"),
    ("kvm:cpu=power9,kernel=5", "kernel must be a version"),
    ("kvm:cpu=power9,kernel=5.2.1.4", "kernel must be a version"),
    ("kvm:cpu=power9,kernel=5.2.", "kernel must be a version"),
    ("kvm:cpu=power9,kernel=3.9", "Linux 3.10 or later"),
    ("kvm:cpu=power9,cpu=power8,kernel=5.2", "'cpu' given twice"),
    ("kvm:cpu=power9,kernel=5.2,kernel=5.10", "'kernel' given twice"),
    ("kvm:cpu=power9,kernel=5.2,nested=maybe", "nested must be yes or no"),
    ("kvm:cpu=power9,kernel=5.2,xive=maybe", "xive must be on or off"),
    ("kvm:cpu=power9,kernel=5.2,firmware=ancient", "firmware must be new or old"),
    ("kvm:cpu=power9,kernel", "expected key=value, got 'kernel'"),
    ("kvm:", "expected key=value"),
    ("power11-linux-7.0", "unknown host 'power11-linux-7.0'"),
    ("POWER9-linux-5.10", "unknown host"),
    ("", "unknown host ''"),
])
def test_a_bad_host_raises_host_error_naming_the_problem(text, fragment):
    with pytest.raises(HostError) as info:
        parse_host(text)
    assert fragment in str(info.value)


def test_unknown_preset_message_lists_the_presets():
    with pytest.raises(HostError) as info:
        parse_host("power11")
    assert all(name in str(info.value) for name in ALL_PRESETS)


# --- property: parse_host never fails with anything but HostError ---------------------------------------

_KEYS = st.sampled_from(["cpu", "kernel", "nested", "xive", "firmware", "colour", "", "CPU"])
_VALUES = st.one_of(
    st.sampled_from(["power8", "power9", "power10", "5.2", "5.10", "3.9", "yes", "no", "on", "off",
                     "true", "old", "new", "", "="]),
    st.text(max_size=8),
)
_CUSTOMISH = st.builds(
    lambda items: "kvm:" + ",".join(items),
    st.lists(st.one_of(st.builds(lambda k, v: f"{k}={v}", _KEYS, _VALUES), st.text(max_size=6)),
             max_size=6),
)


@given(st.one_of(st.text(), _CUSTOMISH, st.sampled_from(ALL_PRESETS)))
def test_parse_host_returns_a_host_or_raises_host_error(text):
    try:
        host = parse_host(text)
    except HostError:
        return
    assert isinstance(host, Host)


def test_old_firmware_hides_kvm_xive_only_from_linux_5_4():
    # The OPAL queue-state gate was posted after the 5.3 merge window.
    assert parse_host("kvm:cpu=power9,kernel=5.2,firmware=old").xive_native
    assert not parse_host("kvm:cpu=power9,kernel=5.4,firmware=old").xive_native


# --- Linux history: stable releases and impossible hosts ------------------------------------------------


def test_custom_host_accepts_a_stable_release():
    assert parse_host("kvm:cpu=power9,kernel=5.3.6").kernel == (5, 3, 6)


@pytest.mark.parametrize("kernel, gated", [("5.2", False), ("5.3", False), ("5.3.5", False),
                                           ("5.3.6", True), ("5.3.18", True), ("5.4", True),
                                           ("5.10", True)])
def test_opal_queue_state_gate_is_in_5_4_and_5_3_6(kernel, gated):
    host = parse_host(f"kvm:cpu=power9,kernel={kernel},firmware=old")
    assert host.xive_native is not gated
    assert host_capability(host, KVM_CAP_PPC_IRQ_XIVE) == int(not gated)


@pytest.mark.parametrize("kernel, fixed", [("5.2", False), ("5.3.15", False), ("5.3.16", True),
                                           ("5.4", False), ("5.4.2", False), ("5.4.3", True),
                                           ("5.5", True)])
def test_xive_slot_is_set_after_vps_from_5_5_5_4_3_and_5_3_16(kernel, fixed):
    assert parse_host(f"kvm:cpu=power9,kernel={kernel}").has("xive-slot-after-vps") is fixed


@pytest.mark.parametrize("text, fragment", [
    ("kvm:cpu=power8,kernel=5.10,nested=yes", "needs a POWER9 or later L1"),
    ("kvm:cpu=power9,kernel=4.19,nested=yes", "nested KVM-HV first appeared in Linux 4.20"),
    ("kvm:cpu=power10,kernel=5.8", "KVM-HV runs guests on POWER10 from Linux 5.9"),
    ("kvm:cpu=power8,kernel=5.10,xive=on", "POWER8 has no XIVE"),
])
def test_a_host_that_cannot_exist_is_refused(text, fragment):
    with pytest.raises(HostError) as info:
        parse_host(text)
    assert fragment in str(info.value)


def test_a_host_built_directly_is_checked_too():
    with pytest.raises(HostError, match="POWER9 or later L1"):
        Host(name="h", cpu="power8", kernel=(5, 10), nested=True)


@pytest.mark.parametrize("text", ["kvm:cpu=power9,kernel=4.20,nested=yes",
                                  "kvm:cpu=power10,kernel=5.9", "kvm:cpu=power8,kernel=5.10,xive=off"])
def test_the_first_possible_hosts_are_accepted(text):
    assert parse_host(text).has_kvm


@given(cpu=st.sampled_from(["power8", "power9", "power10"]),
       kernel=st.tuples(st.integers(3, 6), st.integers(0, 20), st.integers(0, 30)),
       nested=st.booleans(), xive_off=st.booleans(), new_fw=st.booleans())
def test_no_host_before_linux_5_2_has_a_kvm_xive_device(cpu, kernel, nested, xive_off, new_fw):
    try:
        host = Host(name="h", cpu=cpu, kernel=kernel, nested=nested, xive_off=xive_off,
                    opal_queue_state=new_fw)
    except HostError:
        return
    if kernel < (5, 2, 0):
        assert not host.xive_native
        assert host_capability(host, KVM_CAP_PPC_IRQ_XIVE) == 0


@pytest.mark.parametrize("cpu, kernel, kind", [("power9", (4, 11), "kvm-xics"),
                                                ("power9", (4, 12), "kvm-xive")])
def test_xics_on_xive_backs_the_xics_device_from_linux_4_12(cpu, kernel, kind):
    assert Host(name="h", cpu=cpu, kernel=kernel).xics_device_kind == kind


@pytest.mark.parametrize("name, model", [("power8-linux-5.10", "power8_v2.0"),
                                         ("power9-linux-5.10", "power9_v2.2"),
                                         ("power10-linux-6.6", "power10_v2.0"), ("tcg", None)])
def test_each_host_runs_vcpus_with_its_own_cpu_model(name, model):
    assert PRESETS[name].cpu_model == model
