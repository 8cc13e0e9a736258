"""The modeled KVM device ABI (spapr_irq.host.kvm) against spec/linux.md A.1-A.6.

Devices are created, closed, attached to vCPUs and programmed through a ``Kvm(PRESETS[name])``;
errno values are those the spec gives for each ioctl. The fault plan and the call log, which the
rest of the model uses to exercise error paths, are covered at the end.
"""

from __future__ import annotations

import errno as E

import pytest

from spapr_irq.errors import KvmError
from spapr_irq.host.host import PRESETS, parse_host
from spapr_irq.host.kvm import STALE_SLOT, Kvm, host_capability
from spapr_irq.host.xics import XicsDevice
from spapr_irq.host.xics_on_xive import XicsOnXiveDevice
from spapr_irq.host.uapi import (
    KERNEL_RTAS_CALLS,
    KVM_CAP_IRQ_XICS,
    KVM_CAP_PPC_IRQ_XIVE,
    KVM_CAP_PPC_RTAS,
    KVM_CAP_PPC_SMT,
    KVM_DEV_TYPE_XICS,
    KVM_DEV_TYPE_XIVE,
    KVM_DEV_XICS_GRP_CTRL,
    KVM_DEV_XICS_GRP_SOURCES,
    KVM_DEV_XICS_NR_SERVERS,
    KVM_DEV_XIVE_GRP_CTRL,
    KVM_DEV_XIVE_GRP_SOURCE,
    KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
    KVM_DEV_XIVE_GRP_SOURCE_SYNC,
    KVM_DEV_XIVE_NR_SERVERS,
    KVM_MAX_VCPU_IDS,
    KVM_XICS_MASKED,
    KVM_XICS_PRIORITY_SHIFT,
    KVM_REG_PPC_ICP_STATE,
    KVM_REG_PPC_VP_STATE,
    KVM_XIVE_ESB_PAGE_OFFSET,
    KVM_XIVE_LEVEL_ASSERTED,
    KVM_XIVE_LEVEL_SENSITIVE,
    KVM_XIVE_TIMA_PAGE_OFFSET,
    KVMPPC_XIVE_NR_IRQS,
)

KVM_PRESETS = [name for name, host in PRESETS.items() if host.has_kvm]
#: PowerNV P9/P10 hosts where KVM_DEV_TYPE_XIVE is registered (A.2, A.6).
XIVE_NATIVE_PRESETS = ["power9-linux-5.2", "power9-linux-5.10", "power10-linux-6.6"]
NO_XIVE_NATIVE_PRESETS = [name for name in KVM_PRESETS if name not in XIVE_NATIVE_PRESETS]


def kvm_on(name: str) -> Kvm:
    return Kvm(PRESETS[name] if name in PRESETS else parse_host(name))


def fails(code: int, fn, *args) -> KvmError:
    """Call fn(*args), expecting KvmError with errno `code`."""
    with pytest.raises(KvmError) as info:
        fn(*args)
    assert info.value.errno == code, f"expected {E.errorcode[code]}, got {E.errorcode.get(info.value.errno)}"
    return info.value


def connected(name: str, type_id: int = KVM_DEV_TYPE_XICS, vcpu_id: int = 0):
    """A Kvm with one device of `type_id` and vCPU `vcpu_id` attached to it as server `vcpu_id`."""
    kvm = kvm_on(name)
    fd = kvm.create_device(type_id)
    kvm.create_vcpu(vcpu_id)
    cap = KVM_CAP_IRQ_XICS if type_id == KVM_DEV_TYPE_XICS else KVM_CAP_PPC_IRQ_XIVE
    kvm.enable_cap(vcpu_id, cap, fd, vcpu_id)
    return kvm, fd


# --- construction and capabilities ---------------------------------------------------------------------


def test_kvm_on_the_tcg_host_is_a_value_error():
    with pytest.raises(ValueError):
        Kvm(PRESETS["tcg"])


@pytest.mark.parametrize("name", KVM_PRESETS)
def test_check_extension_on_the_vm_fd_answers_the_host_capabilities(name):
    kvm = kvm_on(name)
    for cap in (KVM_CAP_PPC_RTAS, KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE):
        assert kvm.check_extension(cap) == host_capability(PRESETS[name], cap)


# --- create_device: XICS (A.2, A.3, A.5) -----------------------------------------------------------------


@pytest.mark.parametrize("name", KVM_PRESETS)
def test_create_xics_device_returns_an_open_fd(name):
    kvm = kvm_on(name)
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    assert kvm.fds[fd].kind == PRESETS[name].xics_device_kind
    assert kvm.live_devices() == [PRESETS[name].xics_device_kind]


@pytest.mark.parametrize("name", KVM_PRESETS)
def test_second_xics_create_while_the_first_is_open_is_eexist(name):
    kvm = kvm_on(name)
    kvm.create_device(KVM_DEV_TYPE_XICS)
    fails(E.EEXIST, kvm.create_device, KVM_DEV_TYPE_XICS)
    assert len(kvm.fds) == 1


#: create X, close fd, create X again (A.5 matrix): True = second create succeeds.
RECREATE_AFTER_CLOSE = {
    "power8-linux-4.19": False,  # software XICS, < 5.10
    "power8-linux-5.10": True,  # software XICS with release
    "power9-linux-4.19": False,  # XICS-on-XIVE, < 5.2
    "power9-linux-5.2": True,  # XICS-on-XIVE with release
    "power9-linux-5.10": True,
    "power10-linux-6.6": True,
    "power9-nested-linux-5.4": False,  # software XICS in an L1, < 5.10
    "power9-nested-linux-5.10": True,
    "power10-powervm-linux-6.8": True,  # software XICS with release, in a PowerVM LPAR
    "power9-oldfw-linux-5.4": True,  # XICS-on-XIVE on 5.4: release exists
}


@pytest.mark.parametrize("name", KVM_PRESETS)
def test_xics_create_close_create_follows_the_release_matrix(name):
    kvm = kvm_on(name)
    kvm.close(kvm.create_device(KVM_DEV_TYPE_XICS))
    if RECREATE_AFTER_CLOSE[name]:
        fd = kvm.create_device(KVM_DEV_TYPE_XICS)
        assert fd in kvm.fds
    else:
        fails(E.EEXIST, kvm.create_device, KVM_DEV_TYPE_XICS)


def test_recreate_matrix_covers_every_kvm_preset():
    assert set(RECREATE_AFTER_CLOSE) == set(KVM_PRESETS)


def test_xics_create_close_create_on_a_xive_off_host_before_5_10_is_eexist():
    kvm = kvm_on("kvm:cpu=power9,kernel=5.4,xive=off")
    kvm.close(kvm.create_device(KVM_DEV_TYPE_XICS))
    fails(E.EEXIST, kvm.create_device, KVM_DEV_TYPE_XICS)


def test_create_of_an_unregistered_device_type_is_enodev():
    fails(E.ENODEV, kvm_on("power9-linux-5.10").create_device, 1)  # KVM_DEV_TYPE_FSL_MPIC_20


# --- create_device: XIVE native (A.2, A.4, A.6) ----------------------------------------------------------


@pytest.mark.parametrize("name", NO_XIVE_NATIVE_PRESETS)
def test_create_xive_device_is_enodev_where_it_is_not_registered(name):
    kvm = kvm_on(name)
    fails(E.ENODEV, kvm.create_device, KVM_DEV_TYPE_XIVE)
    assert kvm.fds == {} and kvm.live_devices() == []


def test_create_xive_device_is_enodev_on_a_xive_off_host():
    fails(E.ENODEV, kvm_on("kvm:cpu=power9,kernel=5.10,xive=off").create_device, KVM_DEV_TYPE_XIVE)


@pytest.mark.parametrize("name", XIVE_NATIVE_PRESETS)
def test_create_xive_device_succeeds_on_powernv_p9_from_5_2(name):
    kvm = kvm_on(name)
    fd = kvm.create_device(KVM_DEV_TYPE_XIVE)
    assert kvm.fds[fd].kind == "kvm-xive-native"


@pytest.mark.parametrize("name", XIVE_NATIVE_PRESETS)
def test_xive_native_while_xics_on_xive_is_open_is_eexist(name):
    kvm = kvm_on(name)
    kvm.create_device(KVM_DEV_TYPE_XICS)
    fails(E.EEXIST, kvm.create_device, KVM_DEV_TYPE_XIVE)


@pytest.mark.parametrize("name", XIVE_NATIVE_PRESETS)
def test_xics_on_xive_while_xive_native_is_open_is_eexist(name):
    kvm = kvm_on(name)
    kvm.create_device(KVM_DEV_TYPE_XIVE)
    fails(E.EEXIST, kvm.create_device, KVM_DEV_TYPE_XICS)


@pytest.mark.parametrize("name", XIVE_NATIVE_PRESETS)
def test_closing_xive_native_frees_the_shared_slot_for_xics_on_xive(name):
    kvm = kvm_on(name)
    kvm.close(kvm.create_device(KVM_DEV_TYPE_XIVE))
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    assert kvm.fds[fd].kind == "kvm-xive"


# --- close: release vs. no release (A.5) -----------------------------------------------------------------

#: (preset, device type) pairs whose device has a 'release' method.
RELEASING = [
    ("power9-linux-5.2", KVM_DEV_TYPE_XICS),
    ("power9-linux-5.2", KVM_DEV_TYPE_XIVE),
    ("power9-oldfw-linux-5.4", KVM_DEV_TYPE_XICS),
    ("power8-linux-5.10", KVM_DEV_TYPE_XICS),
    ("power9-nested-linux-5.10", KVM_DEV_TYPE_XICS),
    ("power10-linux-6.6", KVM_DEV_TYPE_XIVE),
]
#: Presets whose KVM_DEV_TYPE_XICS device has no 'release' method.
NOT_RELEASING = ["power8-linux-4.19", "power9-linux-4.19", "power9-nested-linux-5.4"]


@pytest.mark.parametrize("name, type_id", RELEASING)
def test_close_on_a_release_kernel_detaches_the_vcpus(name, type_id):
    kvm, fd = connected(name, type_id)
    kvm.create_vcpu(1)
    cap = KVM_CAP_IRQ_XICS if type_id == KVM_DEV_TYPE_XICS else KVM_CAP_PPC_IRQ_XIVE
    kvm.enable_cap(1, cap, fd, 1)
    kvm.close(fd)
    assert [vcpu.irq_type for vcpu in kvm.vcpus.values()] == [None, None]


@pytest.mark.parametrize("name, type_id", RELEASING)
def test_close_on_a_release_kernel_frees_the_device_and_its_slot(name, type_id):
    kvm, fd = connected(name, type_id)
    kvm.close(fd)
    assert kvm.live_devices() == []
    assert kvm.arch_xics is None and kvm.arch_xive is None
    kvm.create_device(type_id)


@pytest.mark.parametrize("name, type_id", RELEASING)
def test_a_vcpu_detached_by_release_can_connect_to_a_new_device(name, type_id):
    kvm, fd = connected(name, type_id)
    kvm.close(fd)
    new_fd = kvm.create_device(type_id)
    cap = KVM_CAP_IRQ_XICS if type_id == KVM_DEV_TYPE_XICS else KVM_CAP_PPC_IRQ_XIVE
    kvm.enable_cap(0, cap, new_fd, 0)
    assert kvm.vcpus[0].device is kvm.fds[new_fd]


def test_closing_a_mapped_xive_native_fd_releases_it_at_the_last_munmap():
    kvm, fd = connected("power9-linux-5.10", KVM_DEV_TYPE_XIVE)
    device = kvm.fds[fd]
    kvm.mmap(fd, KVM_XIVE_TIMA_PAGE_OFFSET, 4)
    kvm.mmap(fd, KVM_XIVE_ESB_PAGE_OFFSET, 2)
    kvm.close(fd)
    assert kvm.live_devices() == ["kvm-xive-native"] and kvm.vcpus[0].device is device
    fails(E.EEXIST, kvm.create_device, KVM_DEV_TYPE_XIVE)  # the mapping keeps the slot
    kvm.munmap(fd, KVM_XIVE_TIMA_PAGE_OFFSET)
    assert kvm.live_devices() == ["kvm-xive-native"]
    kvm.munmap(fd, KVM_XIVE_ESB_PAGE_OFFSET)
    assert kvm.live_devices() == [] and device.mappings == set()
    assert kvm.vcpus[0].device is None
    kvm.create_device(KVM_DEV_TYPE_XIVE)


def test_munmap_before_close_releases_at_the_close():
    kvm, fd = connected("power9-linux-5.10", KVM_DEV_TYPE_XIVE)
    kvm.mmap(fd, KVM_XIVE_TIMA_PAGE_OFFSET, 4)
    kvm.munmap(fd, KVM_XIVE_TIMA_PAGE_OFFSET)
    assert kvm.live_devices() == ["kvm-xive-native"]
    kvm.close(fd)
    assert kvm.live_devices() == []


@pytest.mark.parametrize("name", NOT_RELEASING)
def test_close_on_a_no_release_kernel_keeps_the_device_live(name):
    kvm, fd = connected(name)
    kvm.close(fd)
    assert fd not in kvm.fds
    assert kvm.live_devices() == [PRESETS[name].xics_device_kind]


@pytest.mark.parametrize("name", NOT_RELEASING)
def test_close_on_a_no_release_kernel_leaves_the_vcpus_attached(name):
    kvm, fd = connected(name)
    kvm.close(fd)
    assert kvm.vcpus[0].irq_type == PRESETS[name].xics_device_kind


@pytest.mark.parametrize("name", NOT_RELEASING)
def test_vcpu_left_attached_by_a_no_release_close_gets_ebusy_on_a_new_device(name):
    kvm, fd = connected(name)
    kvm.close(fd)
    # No host offers a second device type next to a non-releasing one (the slot stays taken, and
    # KVM_DEV_TYPE_XIVE needs 5.2, where XICS-on-XIVE already releases), so the new device is made
    # directly, as a fresh kernel object would be, and given an fd.
    new_fd = 99
    device_class = XicsOnXiveDevice if PRESETS[name].xics_device_kind == "kvm-xive" else XicsDevice
    kvm.fds[new_fd] = device_class(kvm, new_fd)
    fails(E.EBUSY, kvm.enable_cap, 0, KVM_CAP_IRQ_XICS, new_fd, 0)


def test_close_of_an_unknown_fd_is_ebadf():
    fails(E.EBADF, kvm_on("power9-linux-5.10").close, 1234)


# --- enable_cap: vCPU connection (A.3, A.4) -------------------------------------------------------------


@pytest.mark.parametrize("name", KVM_PRESETS)
def test_enable_cap_attaches_the_vcpu_presenter(name):
    kvm, fd = connected(name)
    assert kvm.vcpus[0].irq_type == PRESETS[name].xics_device_kind
    assert kvm.vcpus[0].server == 0


@pytest.mark.parametrize("name", ["power8-linux-4.19", "power9-linux-5.10", "power9-nested-linux-5.10"])
def test_connecting_a_xics_vcpu_twice_is_ebusy(name):
    kvm, fd = connected(name)
    fails(E.EBUSY, kvm.enable_cap, 0, KVM_CAP_IRQ_XICS, fd, 0)


def test_connecting_a_xive_vcpu_twice_is_ebusy():
    kvm, fd = connected("power9-linux-5.10", KVM_DEV_TYPE_XIVE)
    fails(E.EBUSY, kvm.enable_cap, 0, KVM_CAP_PPC_IRQ_XIVE, fd, 0)


def test_xics_cap_with_a_xive_native_fd_is_eperm():
    kvm = kvm_on("power9-linux-5.10")
    fd = kvm.create_device(KVM_DEV_TYPE_XIVE)
    kvm.create_vcpu(0)
    fails(E.EPERM, kvm.enable_cap, 0, KVM_CAP_IRQ_XICS, fd, 0)
    assert kvm.vcpus[0].irq_type is None


def test_xive_cap_before_linux_5_2_is_an_unknown_capability():
    kvm = kvm_on("power9-linux-4.19")
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    kvm.create_vcpu(0)
    fails(E.EINVAL, kvm.enable_cap, 0, KVM_CAP_PPC_IRQ_XIVE, fd, 0)


@pytest.mark.parametrize("name", ["power9-linux-5.10", "power9-linux-5.2", "power9-nested-linux-5.10"])
def test_xive_cap_with_a_xics_fd_on_a_xive_enabled_host_is_eperm(name):
    kvm = kvm_on(name)
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    kvm.create_vcpu(0)
    fails(E.EPERM, kvm.enable_cap, 0, KVM_CAP_PPC_IRQ_XIVE, fd, 0)


@pytest.mark.parametrize("name", ["power8-linux-5.10", "kvm:cpu=power8,kernel=5.10",
                                  "kvm:cpu=power9,kernel=5.10,xive=off"])
def test_xive_cap_without_xive_enabled_is_enxio_before_the_device_type_check(name):
    # A.4: kvm_vcpu_ioctl_enable_cap tests !xive_enabled() (-ENXIO) before the device (-EPERM);
    # such hosts have no XIVE device, so a XICS fd is the only one to pass.
    kvm = kvm_on(name)
    assert not kvm.host.xive_enabled
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    kvm.create_vcpu(0)
    fails(E.ENXIO, kvm.enable_cap, 0, KVM_CAP_PPC_IRQ_XIVE, fd, 0)


def test_enable_cap_for_an_unknown_vcpu_is_ebadf():
    kvm = kvm_on("power9-linux-5.10")
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    fails(E.EBADF, kvm.enable_cap, 7, KVM_CAP_IRQ_XICS, fd, 7)


def test_enable_cap_with_an_unknown_device_fd_is_ebadf():
    kvm = kvm_on("power9-linux-5.10")
    kvm.create_vcpu(0)
    fails(E.EBADF, kvm.enable_cap, 0, KVM_CAP_IRQ_XICS, 1234, 0)


def test_enable_cap_with_a_closed_device_fd_is_ebadf():
    kvm = kvm_on("power9-linux-5.10")
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    kvm.close(fd)
    kvm.create_vcpu(0)
    fails(E.EBADF, kvm.enable_cap, 0, KVM_CAP_IRQ_XICS, fd, 0)


# --- NR_SERVERS (A.3, A.4) -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, present", [
    ("power9-linux-5.10", True),
    ("power10-linux-6.6", True),
    ("power9-linux-5.2", False),  # before 5.5
    ("power9-oldfw-linux-5.4", False),  # before 5.5
    ("power8-linux-5.10", False),  # software XICS never has it
    ("power9-nested-linux-5.10", False),  # software XICS
    ("power8-linux-4.19", False),
])
def test_xics_nr_servers_attr_exists_only_on_xics_on_xive_from_5_5(name, present):
    kvm = kvm_on(name)
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    assert kvm.has_attr(fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS) is present


@pytest.mark.parametrize("name, present", [
    ("power9-linux-5.10", True),
    ("power10-linux-6.6", True),
    ("power9-linux-5.2", False),
])
def test_xive_nr_servers_attr_exists_from_5_5(name, present):
    kvm = kvm_on(name)
    fd = kvm.create_device(KVM_DEV_TYPE_XIVE)
    assert kvm.has_attr(fd, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS) is present


@pytest.mark.parametrize("name", ["power8-linux-5.10", "power9-nested-linux-5.10"])
def test_setting_nr_servers_on_the_software_xics_is_enxio(name):
    kvm = kvm_on(name)
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    fails(E.ENXIO, kvm.set_attr, fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS, 8)


def test_setting_xics_nr_servers_before_5_5_is_enxio():
    kvm = kvm_on("power9-linux-5.2")
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    fails(E.ENXIO, kvm.set_attr, fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS, 8)


#: (device type, group, attr) of NR_SERVERS on both XIVE-backed devices.
NR_SERVERS = [
    (KVM_DEV_TYPE_XICS, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS),
    (KVM_DEV_TYPE_XIVE, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS),
]


@pytest.mark.parametrize("type_id, group, attr", NR_SERVERS)
def test_nr_servers_zero_is_einval(type_id, group, attr):
    kvm = kvm_on("power9-linux-5.10")
    fd = kvm.create_device(type_id)
    fails(E.EINVAL, kvm.set_attr, fd, group, attr, 0)


@pytest.mark.parametrize("type_id, group, attr", NR_SERVERS)
def test_nr_servers_after_a_vcpu_connected_is_ebusy(type_id, group, attr):
    kvm, fd = connected("power9-linux-5.10", type_id)
    fails(E.EBUSY, kvm.set_attr, fd, group, attr, 8)


@pytest.mark.parametrize("type_id, group, attr", NR_SERVERS)
def test_nr_servers_bounds_the_server_numbers_a_vcpu_may_connect_as(type_id, group, attr):
    kvm = kvm_on("power9-linux-5.10")
    fd = kvm.create_device(type_id)
    kvm.set_attr(fd, group, attr, 4)
    kvm.create_vcpu(4)
    cap = KVM_CAP_IRQ_XICS if type_id == KVM_DEV_TYPE_XICS else KVM_CAP_PPC_IRQ_XIVE
    fails(E.EINVAL, kvm.enable_cap, 4, cap, fd, 4)


# --- XICS sources (A.3) -----------------------------------------------------------------------------------

XICS_HOSTS = ["power8-linux-5.10", "power9-linux-5.10"]  # software XICS and XICS-on-XIVE


def _masked_source_word(server: int = 0) -> int:
    return (0xFF << KVM_XICS_PRIORITY_SHIFT) | KVM_XICS_MASKED | server


@pytest.mark.parametrize("name", XICS_HOSTS)
@pytest.mark.parametrize("attr", [0, 2, 15])
def test_xics_source_below_16_is_enoent(name, attr):
    kvm = kvm_on(name)
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    fails(E.ENOENT, kvm.set_attr, fd, KVM_DEV_XICS_GRP_SOURCES, attr, _masked_source_word())


@pytest.mark.parametrize("name", XICS_HOSTS)
def test_xics_source_at_nr_irqs_is_enoent(name):
    kvm = kvm_on(name)
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    fails(E.ENOENT, kvm.set_attr, fd, KVM_DEV_XICS_GRP_SOURCES, 1 << 20, _masked_source_word())


@pytest.mark.parametrize("name", XICS_HOSTS)
def test_xics_get_of_a_never_set_source_is_enoent(name):
    kvm = kvm_on(name)
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    fails(E.ENOENT, kvm.get_attr, fd, KVM_DEV_XICS_GRP_SOURCES, 4096)


def test_xics_on_xive_takes_a_source_to_an_unknown_server_and_leaves_it_untargeted():
    kvm, fd = connected("power9-linux-5.10")
    kvm.set_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 4096, (5 << KVM_XICS_PRIORITY_SHIFT) | 3)
    assert kvm.fds[fd].sources[4096].act_priority == 0xFF


@pytest.mark.parametrize("name", XICS_HOSTS)
def test_xics_source_set_then_get_returns_the_word(name):
    kvm, fd = connected(name)
    word = (5 << KVM_XICS_PRIORITY_SHIFT) | 0  # priority 5 to server 0
    kvm.set_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 4096, word)
    assert kvm.get_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 4096) == word


def test_xics_source_with_a_priority_to_an_unknown_server_is_einval():
    kvm, fd = connected("power8-linux-5.10")
    fails(E.EINVAL, kvm.set_attr, fd, KVM_DEV_XICS_GRP_SOURCES, 4096, (5 << KVM_XICS_PRIORITY_SHIFT) | 3)


def test_xics_has_attr_for_sources_in_range_only():
    kvm = kvm_on("power8-linux-5.10")
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    assert kvm.has_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 16)
    assert not kvm.has_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 15)


def test_xics_masked_source_with_a_priority_to_an_unknown_server_is_einval():
    kvm, fd = connected("power8-linux-5.10")
    word = (5 << KVM_XICS_PRIORITY_SHIFT) | KVM_XICS_MASKED | 3  # saved priority 5, server 3 unknown
    fails(E.EINVAL, kvm.set_attr, fd, KVM_DEV_XICS_GRP_SOURCES, 4096, word)


def test_xics_source_destination_is_the_server_number_given_at_connect():
    kvm = kvm_on("power8-linux-5.10")
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    kvm.create_vcpu(0)
    kvm.enable_cap(0, KVM_CAP_IRQ_XICS, fd, 8)  # vCPU 0 serves interrupt server 8
    word = (5 << KVM_XICS_PRIORITY_SHIFT) | 8
    kvm.set_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 4096, word)
    assert kvm.get_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 4096) == word


# --- XIVE sources and mmap (A.4) ------------------------------------------------------------------------


def xive_fd():
    kvm = kvm_on("power9-linux-5.10")
    return kvm, kvm.create_device(KVM_DEV_TYPE_XIVE)


@pytest.mark.parametrize("attr", [KVMPPC_XIVE_NR_IRQS, KVMPPC_XIVE_NR_IRQS + 1, 1 << 40])
def test_xive_source_number_out_of_range_is_e2big(attr):
    kvm, fd = xive_fd()
    fails(E.E2BIG, kvm.set_attr, fd, KVM_DEV_XIVE_GRP_SOURCE, attr, 0)


def test_xive_nr_irqs_is_2_to_the_20():
    assert KVMPPC_XIVE_NR_IRQS == 1 << 20


@pytest.mark.parametrize("attr", [0, 4096, KVMPPC_XIVE_NR_IRQS - 1])
def test_xive_source_number_in_range_is_accepted(attr):
    kvm, fd = xive_fd()
    kvm.set_attr(fd, KVM_DEV_XIVE_GRP_SOURCE, attr, KVM_XIVE_LEVEL_SENSITIVE)
    assert kvm.fds[fd].sources[attr] == KVM_XIVE_LEVEL_SENSITIVE


@pytest.mark.parametrize("pgoff, npages", [
    (KVM_XIVE_TIMA_PAGE_OFFSET, 1),
    (KVM_XIVE_TIMA_PAGE_OFFSET, 4),
    (KVM_XIVE_ESB_PAGE_OFFSET, 2),
    (KVM_XIVE_ESB_PAGE_OFFSET, KVMPPC_XIVE_NR_IRQS * 2),
])
def test_xive_mmap_at_the_tima_and_esb_offsets_is_accepted(pgoff, npages):
    kvm, fd = xive_fd()
    kvm.mmap(fd, pgoff, npages)
    assert pgoff in kvm.fds[fd].mappings


@pytest.mark.parametrize("pgoff, npages", [
    (KVM_XIVE_TIMA_PAGE_OFFSET, 5),  # TIMA is at most 4 pages
    (1, 1), (2, 1), (3, 1), (5, 1), (8, 1),  # no other offset
    (KVM_XIVE_ESB_PAGE_OFFSET, KVMPPC_XIVE_NR_IRQS * 2 + 1),
])
def test_xive_mmap_anywhere_else_is_einval(pgoff, npages):
    kvm, fd = xive_fd()
    fails(E.EINVAL, kvm.mmap, fd, pgoff, npages)
    assert kvm.fds[fd].mappings == set()


def test_xive_mmap_offsets_are_the_uapi_values():
    assert (KVM_XIVE_TIMA_PAGE_OFFSET, KVM_XIVE_ESB_PAGE_OFFSET) == (0, 4)


# --- RTAS tokens (A.3) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ibm,set-xive", "ibm,get-xive", "ibm,int-off", "ibm,int-on"])
def test_rtas_token_for_a_kernel_call_can_be_defined(name):
    kvm = kvm_on("power9-linux-5.10")
    kvm.define_rtas_token(name, 0x2001)
    assert kvm.rtas_tokens == {0x2001: name}


def test_rtas_kernel_calls_are_the_four_xics_calls():
    assert set(KERNEL_RTAS_CALLS) == {"ibm,set-xive", "ibm,get-xive", "ibm,int-off", "ibm,int-on"}


def test_rtas_token_for_an_unknown_name_is_enoent():
    kvm = kvm_on("power9-linux-5.10")
    fails(E.ENOENT, kvm.define_rtas_token, "ibm,os-term", 0x2001)
    assert kvm.rtas_tokens == {}


def test_rtas_defining_the_same_token_twice_is_eexist():
    kvm = kvm_on("power9-linux-5.10")
    kvm.define_rtas_token("ibm,set-xive", 0x2001)
    fails(E.EEXIST, kvm.define_rtas_token, "ibm,set-xive", 0x2001)
    assert kvm.rtas_tokens == {0x2001: "ibm,set-xive"}


def test_rtas_a_name_may_be_defined_at_a_second_token():
    kvm = kvm_on("power9-linux-5.10")
    kvm.define_rtas_token("ibm,set-xive", 0x2001)
    kvm.define_rtas_token("ibm,set-xive", 0x2009)
    assert kvm.rtas_tokens == {0x2001: "ibm,set-xive", 0x2009: "ibm,set-xive"}


def test_rtas_token_0_removes_only_the_oldest_definition_of_the_name():
    kvm = kvm_on("power9-linux-5.10")
    kvm.define_rtas_token("ibm,set-xive", 0x2001)
    kvm.define_rtas_token("ibm,int-on", 0x2002)
    kvm.define_rtas_token("ibm,set-xive", 0x2009)
    kvm.define_rtas_token("ibm,set-xive", 0)
    assert kvm.rtas_tokens == {0x2002: "ibm,int-on", 0x2009: "ibm,set-xive"}
    kvm.define_rtas_token("ibm,set-xive", 0)
    assert kvm.rtas_tokens == {0x2002: "ibm,int-on"}


def test_rtas_token_0_undefines_the_name():
    kvm = kvm_on("power9-linux-5.10")
    kvm.define_rtas_token("ibm,int-on", 0x2001)
    kvm.define_rtas_token("ibm,int-on", 0)
    assert kvm.rtas_tokens == {}
    kvm.define_rtas_token("ibm,int-on", 0x2002)
    assert kvm.rtas_tokens == {0x2002: "ibm,int-on"}


def test_rtas_undefining_an_undefined_name_is_not_an_error():
    kvm = kvm_on("power9-linux-5.10")
    kvm.define_rtas_token("ibm,int-off", 0)
    assert kvm.rtas_tokens == {}


def test_rtas_defining_a_token_already_used_by_another_name_is_eexist():
    kvm = kvm_on("power9-linux-5.10")
    kvm.define_rtas_token("ibm,set-xive", 0x2001)
    fails(E.EEXIST, kvm.define_rtas_token, "ibm,get-xive", 0x2001)


# --- FaultPlan and the call log ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
def test_fault_nth_fails_the_kth_call_that_can_fail_that_way(k):
    kvm = kvm_on("power9-linux-5.10")
    kvm.faults.fail(E.ENOMEM, nth=k)
    for vcpu_id in range(k - 1):
        kvm.check_extension(KVM_CAP_IRQ_XICS)  # cannot run out of memory: not counted
        kvm.create_vcpu(vcpu_id)
    error = fails(E.ENOMEM, kvm.create_vcpu, 10)
    assert error.call == "create_vcpu" and 10 not in kvm.vcpus


@pytest.mark.parametrize("call, errno", [
    ("check_extension", E.EIO),  # never fails on its own
    ("create_device", E.EEXIST),  # follows from the state, never injected
    ("enable_cap", E.EBUSY),
    ("set_attr", E.EINVAL),
    ("irq_line", E.ENXIO),
    ("create_vcpu", E.EIO),
    (None, E.EEXIST),
    (None, E.EPERM),
])
def test_a_fault_linux_cannot_meet_there_is_refused(call, errno):
    with pytest.raises(ValueError, match="cannot fail with"):
        kvm_on("power9-linux-5.10").faults.fail(errno, call=call)


def test_a_fault_on_an_unknown_call_is_refused():
    with pytest.raises(ValueError, match="unknown KVM call"):
        kvm_on("power9-linux-5.10").faults.fail(E.ENOMEM, call="create_devices")


def test_failed_create_device_leaves_no_fd_and_no_slot_taken():
    kvm = kvm_on("power9-linux-5.10")
    kvm.faults.fail(E.ENOMEM, call="create_device")
    fails(E.ENOMEM, kvm.create_device, KVM_DEV_TYPE_XICS)
    assert kvm.fds == {} and kvm.live_devices() == []
    assert kvm.arch_xics is None and kvm.arch_xive is None
    kvm.create_device(KVM_DEV_TYPE_XICS)  # the slot is free


@pytest.mark.parametrize("host, type_id, errno, stale", [
    ("kvm:cpu=power9,kernel=5.2", KVM_DEV_TYPE_XIVE, E.ENXIO, True),
    ("kvm:cpu=power9,kernel=5.4.2", KVM_DEV_TYPE_XIVE, E.ENXIO, True),
    ("kvm:cpu=power9,kernel=5.3.16", KVM_DEV_TYPE_XIVE, E.ENXIO, False),
    ("kvm:cpu=power9,kernel=5.4.3", KVM_DEV_TYPE_XIVE, E.ENXIO, False),
    ("kvm:cpu=power9,kernel=5.2", KVM_DEV_TYPE_XICS, E.ENOMEM, True),
    ("kvm:cpu=power9,kernel=4.19", KVM_DEV_TYPE_XICS, E.ENOMEM, True),
    ("kvm:cpu=power9,kernel=5.10", KVM_DEV_TYPE_XICS, E.ENOMEM, False),
    ("kvm:cpu=power9,kernel=5.10", KVM_DEV_TYPE_XIVE, E.ENOMEM, False),
])
def test_a_create_failing_at_its_vp_block_keeps_the_xive_slot_until_linux_5_5(host, type_id, errno, stale):
    kvm = kvm_on(host)
    kvm.faults.fail(errno, call="create_device")
    fails(errno, kvm.create_device, type_id)
    assert kvm.fds == {}
    assert (kvm.arch_xive is STALE_SLOT) is stale
    if stale:
        fails(E.EEXIST, kvm.create_device, KVM_DEV_TYPE_XICS)
        if kvm.host.xive_native:
            fails(E.EEXIST, kvm.create_device, KVM_DEV_TYPE_XIVE)
    else:
        kvm.create_device(type_id)


@pytest.mark.parametrize("host, type_id", [("power9-linux-5.10", KVM_DEV_TYPE_XICS),
                                           ("power9-linux-5.10", KVM_DEV_TYPE_XIVE),
                                           ("power8-linux-5.10", KVM_DEV_TYPE_XICS),
                                           ("kvm:cpu=power9,kernel=5.2", KVM_DEV_TYPE_XICS)])
def test_a_create_on_a_taken_slot_can_still_run_out_of_memory_and_leaves_the_device(host, type_id):
    """kvm_ioctl_create_device allocates the kvm_device before ops->create sees the slot."""
    kvm, fd = connected(host, type_id)
    kvm.set_attr(fd, *((KVM_DEV_XICS_GRP_SOURCES, 4096, 5 << KVM_XICS_PRIORITY_SHIFT)
                       if type_id == KVM_DEV_TYPE_XICS else (KVM_DEV_XIVE_GRP_SOURCE, 4096, 0)))
    kvm.faults.fail(E.ENOMEM, call="create_device")
    fails(E.ENOMEM, kvm.create_device, type_id)
    assert kvm.faults.fired == [("create_device", E.ENOMEM)]
    assert list(kvm.fds) == [fd]
    if type_id == KVM_DEV_TYPE_XICS:  # not zeroed: the create never reached the device
        assert kvm.get_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 4096) == 5 << KVM_XICS_PRIORITY_SHIFT


def test_a_vcpu_id_beyond_the_limit_is_einval_before_any_allocation():
    kvm = kvm_on("power9-linux-5.10")
    kvm.faults.fail(E.ENOMEM, call="create_vcpu")
    fails(E.EINVAL, kvm.create_vcpu, KVM_MAX_VCPU_IDS)
    assert kvm.faults.armed and kvm.faults.fired == []


def test_a_vcpu_allocation_fails_before_the_vcore_checks():
    """kvmppc_core_vcpu_create_hv looks at the vcore after the vCPU was allocated: a colliding
    id can still run out of memory first."""
    kvm = kvm_on("power9-linux-5.10")
    kvm.enable_vm_cap(KVM_CAP_PPC_SMT, 2)
    kvm.create_vcpu(1)
    fails(E.EINVAL, kvm.create_vcpu, 2048)  # in VSMT 2, 2048 packs onto vCPU 1's vcore
    kvm.faults.fail(E.ENOMEM, call="create_vcpu")
    fails(E.ENOMEM, kvm.create_vcpu, 2048)
    assert kvm.faults.fired == [("create_vcpu", E.ENOMEM)]


@pytest.mark.parametrize("host, type_id", [("power9-linux-5.10", KVM_DEV_TYPE_XICS),
                                           ("power9-linux-5.10", KVM_DEV_TYPE_XIVE),
                                           ("kvm:cpu=power9,kernel=5.2", KVM_DEV_TYPE_XICS),
                                           ("power8-linux-5.10", KVM_DEV_TYPE_XICS)])
def test_a_connect_refused_by_its_checks_meets_no_injected_fault(host, type_id):
    """EEXIST (the server, or its VP, already connected) comes before the vCPU's allocation
    and the firmware, so an armed fault stays armed."""
    kvm, fd = connected(host, type_id)
    kvm.create_vcpu(1)
    errno = E.ENOMEM
    kvm.faults.fail(errno, call="enable_cap")
    cap = KVM_CAP_IRQ_XICS if type_id == KVM_DEV_TYPE_XICS else KVM_CAP_PPC_IRQ_XIVE
    fails(E.EEXIST, kvm.enable_cap, 1, cap, fd, 0)
    assert kvm.faults.armed and kvm.faults.fired == []
    fails(errno, kvm.enable_cap, 1, cap, fd, 1)
    assert kvm.faults.fired == [("enable_cap", errno)]


def test_xive_native_create_fails_at_its_vp_block_only_before_5_5():
    kvm = kvm_on("power9-linux-5.10")  # the VP block comes with the first vCPU from 5.5
    kvm.faults.fail(E.ENXIO, call="create_device")
    kvm.create_device(KVM_DEV_TYPE_XIVE)
    assert kvm.faults.armed and kvm.faults.fired == []


@pytest.mark.parametrize("host, zeroed", [("kvm:cpu=power9,kernel=5.2", True),
                                          ("kvm:cpu=power9,kernel=5.4.2", True),
                                          ("kvm:cpu=power9,kernel=5.4.3", False),
                                          ("kvm:cpu=power9,kernel=4.19", False),
                                          ("kvm:cpu=power9,kernel=5.10", False)])
def test_a_second_xics_create_zeroes_the_live_xics_on_xive_device_on_5_2_to_5_4(host, zeroed):
    kvm, fd = connected(host)
    kvm.set_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 4096, 5 << KVM_XICS_PRIORITY_SHIFT)
    fails(E.EEXIST, kvm.create_device, KVM_DEV_TYPE_XICS)
    if zeroed:
        fails(E.ENOENT, kvm.get_attr, fd, KVM_DEV_XICS_GRP_SOURCES, 4096)
    else:
        assert kvm.get_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 4096) == 5 << KVM_XICS_PRIORITY_SHIFT


@pytest.mark.parametrize("errno, busy", [(E.ENOSPC, False), (E.ENOMEM, True), (E.EIO, True)])
@pytest.mark.parametrize("type_id, group, attr", [
    (KVM_DEV_TYPE_XICS, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS),
    (KVM_DEV_TYPE_XIVE, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS),
])
def test_a_vcpu_connect_failing_after_the_vp_block_leaves_nr_servers_busy(errno, busy, type_id, group, attr):
    kvm = kvm_on("power9-linux-5.10")
    fd = kvm.create_device(type_id)
    kvm.create_vcpu(0)
    cap = KVM_CAP_IRQ_XICS if type_id == KVM_DEV_TYPE_XICS else KVM_CAP_PPC_IRQ_XIVE
    kvm.faults.fail(errno, call="enable_cap")
    fails(errno, kvm.enable_cap, 0, cap, fd, 0)
    assert kvm.vcpus[0].irq_type is None and kvm.fds[fd].vcpus == set()
    if busy:
        fails(E.EBUSY, kvm.set_attr, fd, group, attr, 8)
    else:
        kvm.set_attr(fd, group, attr, 8)


def test_no_vp_block_to_fail_before_linux_5_5():
    kvm = kvm_on("power9-linux-4.19")
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    kvm.create_vcpu(0)
    kvm.faults.fail(E.ENOSPC, call="enable_cap")
    kvm.enable_cap(0, KVM_CAP_IRQ_XICS, fd, 0)  # ENOSPC is not possible there: it does not fire
    assert kvm.faults.armed


def test_failed_enable_cap_leaves_the_vcpu_unattached():
    kvm = kvm_on("power8-linux-5.10")
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    kvm.create_vcpu(0)
    kvm.faults.fail(E.ENOMEM, call="enable_cap")
    fails(E.ENOMEM, kvm.enable_cap, 0, KVM_CAP_IRQ_XICS, fd, 0)
    assert kvm.vcpus[0].irq_type is None and kvm.fds[fd].vcpus == set()
    kvm.enable_cap(0, KVM_CAP_IRQ_XICS, fd, 0)


def test_failed_set_attr_leaves_no_source_block():
    kvm, fd = connected("power8-linux-5.10")
    kvm.faults.fail(E.ENOMEM, call="set_attr")
    fails(E.ENOMEM, kvm.set_attr, fd, KVM_DEV_XICS_GRP_SOURCES, 4096, _masked_source_word())
    fails(E.ENOENT, kvm.get_attr, fd, KVM_DEV_XICS_GRP_SOURCES, 4096)
    assert kvm.fds[fd].state.blocks == set()


def test_a_source_in_an_existing_block_cannot_run_out_of_memory_on_the_software_xics():
    kvm, fd = connected("power8-linux-5.10")
    kvm.set_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 4096, _masked_source_word())
    kvm.faults.fail(E.ENOMEM, call="set_attr")
    kvm.set_attr(fd, KVM_DEV_XICS_GRP_SOURCES, 4097, _masked_source_word())
    assert kvm.faults.armed


def test_failed_rtas_define_leaves_no_token():
    kvm = kvm_on("power9-linux-5.10")
    kvm.faults.fail(E.ENOMEM, call="define_rtas_token")
    fails(E.ENOMEM, kvm.define_rtas_token, "ibm,set-xive", 0x2001)
    assert kvm.rtas_tokens == {}


def test_fault_for_a_named_call_skips_other_calls():
    kvm = kvm_on("power9-linux-5.10")
    kvm.faults.fail(E.ENOMEM, call="create_device")
    kvm.define_rtas_token("ibm,int-on", 0x2001)
    kvm.create_vcpu(0)
    fails(E.ENOMEM, kvm.create_device, KVM_DEV_TYPE_XICS)


def test_fault_for_a_named_call_counts_only_that_call():
    kvm = kvm_on("power9-linux-5.10")
    kvm.faults.fail(E.ENOMEM, call="create_vcpu", nth=2)
    kvm.create_vcpu(0)
    kvm.define_rtas_token("ibm,int-on", 0x2001)
    kvm.create_device(KVM_DEV_TYPE_XICS)
    fails(E.ENOMEM, kvm.create_vcpu, 1)


def test_a_fault_fires_once():
    kvm = kvm_on("power9-linux-5.10")
    kvm.faults.fail(E.ENOMEM, call="create_device")
    fails(E.ENOMEM, kvm.create_device, KVM_DEV_TYPE_XICS)
    assert not kvm.faults.armed and kvm.faults.fired == [("create_device", E.ENOMEM)]
    kvm.create_device(KVM_DEV_TYPE_XICS)


def test_fault_nth_counts_from_1():
    with pytest.raises(ValueError):
        kvm_on("power9-linux-5.10").faults.fail(E.ENOMEM, nth=0)


def test_cleared_faults_do_not_fire():
    kvm = kvm_on("power9-linux-5.10")
    kvm.faults.fail(E.ENOMEM)
    kvm.faults.clear()
    kvm.create_device(KVM_DEV_TYPE_XICS)


def test_two_armed_faults_each_fire_at_their_own_nth_call():
    kvm = kvm_on("power9-linux-5.10")
    kvm.faults.fail(E.ENOMEM, nth=1)
    kvm.faults.fail(E.ENOMEM, nth=2)
    fails(E.ENOMEM, kvm.create_vcpu, 0)
    fails(E.ENOMEM, kvm.create_vcpu, 0)
    kvm.create_vcpu(0)


def test_calls_log_every_call_in_order_including_failed_ones():
    kvm = kvm_on("power9-linux-5.10")
    kvm.check_extension(KVM_CAP_PPC_IRQ_XIVE)
    fd = kvm.create_device(KVM_DEV_TYPE_XIVE)
    kvm.create_vcpu(0)
    kvm.enable_cap(0, KVM_CAP_PPC_IRQ_XIVE, fd, 0)
    kvm.faults.fail(E.ENXIO, call="set_attr")
    fails(E.ENXIO, kvm.set_attr, fd, KVM_DEV_XIVE_GRP_SOURCE, 0x10, 0)
    kvm.define_rtas_token("ibm,int-on", 0x2001)
    kvm.close(fd)
    assert kvm.calls == [
        "check_extension(169)",
        "create_device(XIVE)",
        "create_vcpu(0)",
        f"enable_cap(vcpu 0, 169, {fd}, 0)",
        f"set_attr({fd}, 2, 0x10)",
        "define_rtas_token(ibm,int-on, 0x2001)",
        f"close({fd})",
    ]


# --- vCPU ids, the SMT mode and duplicate servers ---------------------------------------------------------


@pytest.mark.parametrize("name, smt", [("power9-linux-5.10", 1), ("power8-linux-5.10", 8)])
def test_a_new_vm_reports_its_smt_mode(name, smt):
    assert kvm_on(name).check_extension(KVM_CAP_PPC_SMT) == smt


def test_power9_emulates_the_smt_mode_set_before_any_vcpu():
    kvm = kvm_on("power9-linux-5.10")
    kvm.enable_vm_cap(KVM_CAP_PPC_SMT, 8)
    assert kvm.check_extension(KVM_CAP_PPC_SMT) == 8 and kvm.emul_smt_mode == 8


@pytest.mark.parametrize("mode", [0, 3, 16])
def test_an_smt_mode_that_is_not_a_power_of_two_up_to_8_is_einval(mode):
    fails(E.EINVAL, kvm_on("power9-linux-5.10").enable_vm_cap, KVM_CAP_PPC_SMT, mode)


def test_the_smt_mode_after_a_vcpu_is_ebusy():
    kvm = kvm_on("power9-linux-5.10")
    kvm.create_vcpu(0)
    fails(E.EBUSY, kvm.enable_vm_cap, KVM_CAP_PPC_SMT, 8)


@pytest.mark.parametrize("mode, vcpu_id, ok", [(1, 2047, True), (1, 2048, False),
                                               (8, 2392, True), (8, 16383, True)])
def test_power9_vcpu_ids_are_bounded_by_max_vcpus_times_the_smt_mode(mode, vcpu_id, ok):
    kvm = kvm_on("power9-linux-5.10")
    if mode > 1:
        kvm.enable_vm_cap(KVM_CAP_PPC_SMT, mode)
    if ok:
        kvm.create_vcpu(vcpu_id)
    else:
        fails(E.EINVAL, kvm.create_vcpu, vcpu_id)


def test_power9_vcpu_ids_packing_onto_one_vcore_collide():
    kvm = kvm_on("power9-linux-5.10")
    kvm.enable_vm_cap(KVM_CAP_PPC_SMT, 2)
    kvm.create_vcpu(1)
    fails(E.EINVAL, kvm.create_vcpu, 2048)  # block 4 of stride 2: 2048 packs to vcore 1
    kvm.create_vcpu(2049)  # packs to 2


@pytest.mark.parametrize("name", ["power8-linux-5.10", "power9-linux-4.19", "power9-linux-5.10"])
def test_a_second_vcpu_on_the_same_server_is_eexist(name):
    kvm = kvm_on(name)
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    kvm.create_vcpu(0)
    kvm.create_vcpu(1)
    kvm.enable_cap(0, KVM_CAP_IRQ_XICS, fd, 5)
    fails(E.EEXIST, kvm.enable_cap, 1, KVM_CAP_IRQ_XICS, fd, 5)
    assert kvm.vcpus[1].irq_type is None


def test_a_second_vcpu_on_the_same_server_of_the_xive_device_is_eexist():
    kvm = kvm_on("power9-linux-5.10")
    fd = kvm.create_device(KVM_DEV_TYPE_XIVE)
    kvm.create_vcpu(0)
    kvm.create_vcpu(1)
    kvm.enable_cap(0, KVM_CAP_PPC_IRQ_XIVE, fd, 3)
    fails(E.EEXIST, kvm.enable_cap, 1, KVM_CAP_PPC_IRQ_XIVE, fd, 3)


def test_the_software_xics_takes_any_server_number():
    kvm = kvm_on("power8-linux-5.10")
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    kvm.create_vcpu(0)
    kvm.enable_cap(0, KVM_CAP_IRQ_XICS, fd, 0xFFFF_FFF0)


@pytest.mark.parametrize("name", ["power9-linux-4.19", "power9-linux-5.10"])
def test_packed_server_numbers_beyond_max_vcpus_connect_in_vsmt_8(name):
    """pseries-4.1 (VSMT 8) with 300 vCPUs: servers up to 2392 pack below KVM_MAX_VCPUS."""
    kvm = kvm_on(name)
    kvm.enable_vm_cap(KVM_CAP_PPC_SMT, 8)
    fd = kvm.create_device(KVM_DEV_TYPE_XICS)
    if kvm.host.nr_servers_attr:
        kvm.set_attr(fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS, 2400)
    for server in range(0, 2400, 8):
        kvm.create_vcpu(server)
        kvm.enable_cap(server, KVM_CAP_IRQ_XICS, fd, server)
    assert len(kvm.fds[fd].vcpus) == 300


# --- ONE_REG, KVM_IRQ_LINE, RTAS in the kernel --------------------------------------------------------------


@pytest.mark.parametrize("reg", [KVM_REG_PPC_ICP_STATE, KVM_REG_PPC_VP_STATE])
def test_one_reg_on_a_vcpu_not_connected_is_enxio(reg):
    kvm = kvm_on("power9-linux-5.10")
    kvm.create_vcpu(0)
    fails(E.ENXIO, kvm.get_one_reg, 0, reg)
    fails(E.ENXIO, kvm.set_one_reg, 0, reg, 0)


def test_vp_state_of_a_xics_on_xive_vcpu_is_eperm():
    kvm, _ = connected("power9-linux-5.10")
    fails(E.EPERM, kvm.get_one_reg, 0, KVM_REG_PPC_VP_STATE)


def test_vp_state_on_a_host_without_xive_is_enxio():
    kvm, _ = connected("power8-linux-5.10")
    fails(E.ENXIO, kvm.get_one_reg, 0, KVM_REG_PPC_VP_STATE)


def test_vp_state_read_can_fail_in_the_firmware():
    kvm, _ = connected("power9-linux-5.10", KVM_DEV_TYPE_XIVE)
    kvm.faults.fail(E.EIO, call="get_one_reg")
    fails(E.EIO, kvm.get_one_reg, 0, KVM_REG_PPC_VP_STATE)


@pytest.mark.parametrize("name", ["power8-linux-5.10", "power9-linux-5.10"])
@pytest.mark.parametrize("irq", [0x1000, 0x5000, 3])
def test_irq_line_on_an_unknown_source_returns_0(name, irq):
    kvm, _ = connected(name)
    kvm.irq_line(irq, 0xFFFFFFFF)  # no error: the status goes only to KVM_IRQ_LINE_STATUS


def test_irq_line_without_an_irqchip_is_enxio():
    fails(E.ENXIO, kvm_on("power9-linux-5.10").irq_line, 0x1000, 1)


@pytest.mark.parametrize("name", ["power8-linux-5.10", "power9-linux-5.10"])
def test_an_rtas_call_with_16_arguments_fails_kvm_run_once_a_token_is_defined(name):
    kvm, _ = connected(name)
    assert kvm.rtas(0x2001, [0] * 16, 1) is None  # no token yet: userspace handles it
    kvm.define_rtas_token("ibm,int-on", 0x2001)
    error = fails(E.EINVAL, kvm.rtas, 0x2999, [0] * 16, 1)  # before the token lookup
    assert error.call == "run"
    assert kvm.rtas(0x2001, [0] * 15, 1) == (-3,)  # a wrong nargs is status -3 in the handler


# --- XIVE native sources ----------------------------------------------------------------------------------


@pytest.mark.parametrize("group", [KVM_DEV_XIVE_GRP_SOURCE_CONFIG, KVM_DEV_XIVE_GRP_SOURCE_SYNC])
def test_xive_source_in_a_block_never_made_is_enoent_and_unset_in_a_made_block_einval(group):
    kvm, fd = connected("power9-linux-5.10", KVM_DEV_TYPE_XIVE)
    fails(E.ENOENT, kvm.set_attr, fd, group, 0x1000, 0)
    kvm.set_attr(fd, KVM_DEV_XIVE_GRP_SOURCE, 0x1001, 0)
    fails(E.EINVAL, kvm.set_attr, fd, group, 0x1000, 0)


def test_xive_source_flags_are_only_ever_set():
    kvm, fd = xive_fd()
    kvm.set_attr(fd, KVM_DEV_XIVE_GRP_SOURCE, 0x20, KVM_XIVE_LEVEL_SENSITIVE | KVM_XIVE_LEVEL_ASSERTED)
    kvm.set_attr(fd, KVM_DEV_XIVE_GRP_SOURCE, 0x20, 0)
    assert kvm.fds[fd].sources[0x20] == KVM_XIVE_LEVEL_SENSITIVE | KVM_XIVE_LEVEL_ASSERTED


def test_xive_source_asserted_without_lsi_is_ignored():
    kvm, fd = xive_fd()
    kvm.set_attr(fd, KVM_DEV_XIVE_GRP_SOURCE, 0x20, KVM_XIVE_LEVEL_ASSERTED)
    assert kvm.fds[fd].sources[0x20] == 0


def test_xive_source_without_its_hardware_ipi_keeps_its_block():
    kvm, fd = xive_fd()
    kvm.faults.fail(E.ENXIO, call="set_attr")
    fails(E.ENXIO, kvm.set_attr, fd, KVM_DEV_XIVE_GRP_SOURCE, 0x1000, 0)
    fails(E.EINVAL, kvm.set_attr, fd, KVM_DEV_XIVE_GRP_SOURCE_SYNC, 0x1000, 0)
