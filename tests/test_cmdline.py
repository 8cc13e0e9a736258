"""Command lines as people paste them: libvirt logs, scripts, CI harnesses. What QEMU reads for
interrupts is applied (VIO devices and their addresses, SCSI buses, NICs, PHBs), everything else
it knows is accepted and listed with the reason, and what it does not know is its error."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from spapr_irq import Machine, MachineError
from spapr_irq.cmdline import read_file_line
from spapr_irq.config import parse_options
from spapr_irq.errors import ConfigError, InputError
from spapr_irq.machine.irq import default_devices, vio_reg_to_irq

LIBVIRT_LOG = r"""2026-11-30 10:02:11.123+0000: starting up libvirt version: 9.0.0, qemu version: 7.2.0
LC_ALL=C \
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin \
HOME=/var/lib/libvirt/qemu/domain-3-fedora \
XDG_CACHE_HOME=/var/lib/libvirt/qemu/domain-3-fedora/.cache \
/usr/bin/qemu-system-ppc64 \
-name guest=fedora,debug-threads=on \
-S \
-object '{"qom-type":"secret","id":"masterKey0","format":"raw","file":"/var/lib/libvirt/qemu/domain-3-fedora/master-key.aes"}' \
-machine pseries-7.2,usb=off,dump-guest-core=off,memory-backend=ppc_spapr.ram \
-accel kvm \
-cpu POWER9 \
-m 4096 \
-object '{"qom-type":"memory-backend-ram","id":"ppc_spapr.ram","size":4294967296}' \
-overcommit mem-lock=off \
-smp 4,sockets=4,cores=1,threads=1 \
-uuid 5c7e4d1e-7a5e-4b8f-9d38-5f0c8e1d2a3b \
-no-user-config \
-nodefaults \
-chardev socket,id=charmonitor,fd=30,server=on,wait=off \
-mon chardev=charmonitor,id=monitor,mode=control \
-rtc base=utc \
-no-shutdown \
-boot strict=on \
-device '{"driver":"qemu-xhci","p2":15,"p3":15,"id":"usb","bus":"pci.0","addr":"0x2"}' \
-device '{"driver":"virtio-scsi-pci","id":"scsi0","bus":"pci.0","addr":"0x3"}' \
-blockdev '{"driver":"file","filename":"/var/lib/libvirt/images/fedora.qcow2","node-name":"libvirt-1-storage"}' \
-device '{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x4","drive":"libvirt-1-format","id":"virtio-disk0","bootindex":1}' \
-netdev '{"type":"tap","fd":"32","vhost":true,"vhostfd":"34","id":"hostnet0"}' \
-device '{"driver":"virtio-net-pci","netdev":"hostnet0","id":"net0","mac":"52:54:00:11:22:33","bus":"pci.0","addr":"0x1"}' \
-chardev pty,id=charserial0 \
-device '{"driver":"spapr-vty","chardev":"charserial0","id":"serial0","reg":805306368}' \
-audiodev '{"id":"audio1","driver":"none"}' \
-device '{"driver":"virtio-balloon-pci","id":"balloon0","bus":"pci.0","addr":"0x5"}' \
-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny \
-msg timestamp=on
2026-11-30 10:02:11.456+0000: Domain id=3 is tainted: host-cpu
"""

KATA = ("/usr/bin/qemu-system-ppc64 -name sandbox-4a1b -uuid 1b2c3d4e-0000-4000-8000-000000000001 "
        "-machine pseries,accel=kvm,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,"
        "cap-large-decr=off,cap-ccf-assist=off -cpu host,pmu=off -qmp unix:fd=3,server=on,"
        "wait=off -m 2048M,slots=10,maxmem=8G -device virtio-serial-pci,disable-modern=false,"
        "id=serial0 -device virtconsole,chardev=charconsole0,id=console0 -chardev socket,"
        "id=charconsole0,path=/run/vc/vm/console.sock,server=on,wait=off -device "
        "virtio-blk-pci,disable-modern=false,drive=image-1,scsi=off,config-wce=off -device "
        "virtio-net-pci,disable-modern=false,netdev=network-0,mac=02:42:ac:11:00:02 -netdev "
        "tap,id=network-0,vhost=on,fds=4 -rtc base=utc,driftfix=slew,clock=host -global "
        "kvm-pit.lost_tick_policy=discard -vga none -no-user-config -nodefaults -nographic "
        "--no-reboot -object memory-backend-ram,id=dimm1,size=2048M -numa node,memdev=dimm1 "
        "-kernel /usr/share/kata-containers/vmlinux.container -append "
        "\"tsc=reliable no_timer_check rcupdate.rcu_expedited=1 console=hvc0 quiet\" "
        "-pidfile /run/vc/vm/pid -smp 1,cores=1,threads=1,sockets=8,maxcpus=8")

COREOS = r"""qemu-system-ppc64 \
  -machine pseries,kvm-type=HV,ic-mode=xics \
  -m 2048 -smp 2 -cpu host -accel kvm \
  -nographic -no-reboot \
  -drive if=none,id=disk,file=/var/tmp/coreos.qcow2 \
  -device virtio-blk-pci,drive=disk \
  -netdev user,id=eth0 -device virtio-net-pci,netdev=eth0
"""


def test_a_libvirt_log_is_read_from_its_last_command_line():
    config = parse_options(read_file_line(LIBVIRT_LOG))
    assert (config.machine_type, config.smp_cpus, config.accel) == ("pseries-7.2", 4, ("kvm",))
    assert (config.serial, config.nic, config.scsi_buses) == (0, False, 0)
    assert config.devices[0][:2] == ("spapr-vty", 0x30000000)
    ignored = dict(config.ignored)
    assert "memory-backend" in " ".join(ignored) and "-msg timestamp=on" in ignored
    assert any(option.startswith('-device {"driver":"virtio-net-pci"') for option in ignored)


def test_libvirts_console_vty_takes_its_address_and_the_libvirt_irq():
    devices = default_devices(parse_options(read_file_line(LIBVIRT_LOG)))
    vty = next(d for d in devices if d.name == "VIO spapr-vty")
    assert (vty.node, vty.irq) == ("/vdevice/vty@30000000", 0x11F0)


def test_the_libvirt_guest_resolves_on_a_power9_host():
    machine = Machine.create(read_file_line(LIBVIRT_LOG), host="power9-linux-5.10")
    machine.boot("linux-xive")
    assert (machine.interrupt_mode, machine.backend) == ("xive", "kvm")


def test_katas_arguments_resolve_and_list_what_they_ignore():
    config = parse_options(KATA)
    assert (config.nic, config.serial, config.max_cpus) == (False, 0, 8)
    ignored = dict(config.ignored)
    assert "-machine cap-cfpc=broken" in ignored and "-global kvm-pit.lost_tick_policy=discard" \
        in ignored
    machine = Machine.create(KATA, host="power9-nested-linux-5.10")
    machine.boot("linux-xive")
    assert (machine.interrupt_mode, machine.backend) == ("xive", "emulated")


def test_coreos_assemblers_script_line_with_continuations():
    config = parse_options(read_file_line(COREOS))
    assert (config.ic_mode, config.smp_cpus, config.scsi_buses) == ("xics", 2, 1)  # the CD-ROM
    assert any("if=none" in option for option, _ in config.ignored)
    machine = Machine.create(config, host="power9-nested-linux-5.10")
    machine.boot("linux-xive")
    assert (machine.interrupt_mode, machine.backend) == ("xics", "kvm")


@pytest.mark.parametrize("words", [
    ["qemu-system-ppc64", "-M", "pseries"], ["--", "-M", "pseries"],
    ["/usr/libexec/qemu-kvm", "-M", "pseries"], ["LC_ALL=C", "qemu-system-ppc64", "-M", "pseries"],
])
def test_the_program_name_and_a_leading_double_dash_are_not_options(words):
    assert parse_options(words).machine_type == parse_options("-M pseries").machine_type


def test_an_environment_word_without_the_program_is_refused():
    with pytest.raises(ConfigError) as info:
        parse_options(["LC_ALL=C", "-M", "pseries"])
    assert "an environment assignment is not a QEMU option" in info.value.text


def test_a_file_without_a_qemu_command_line_is_refused():
    with pytest.raises(InputError):
        read_file_line("#!/bin/sh\necho hello\n")


@pytest.mark.parametrize("reg, irq", [(0x71000000, 0x1100), (0x71000003, 0x1103),
                                      (0x30000000, 0x11F0), (0x30001000, 0x11F1),
                                      (0x2000, 0x1102), (0x1000, 0x1101)])
def test_a_vio_address_maps_to_its_irq_as_spapr_vio_does(reg, irq):
    assert vio_reg_to_irq(reg) == irq


def test_vio_devices_take_the_next_free_address_after_the_machines_own():
    devices = default_devices(parse_options("-nodefaults -device spapr-vlan -device spapr-vscsi"))
    assert [(d.node, d.irq) for d in devices if d.name.startswith("VIO")] == [
        ("/vdevice/nvram@71000000", 0x1100), ("/vdevice/l-lan@71000001", 0x1101),
        ("/vdevice/v-scsi@71000002", 0x1102)]


def test_two_devices_at_one_address_is_qemus_refusal():
    """Checked against QEMU 7.2: -device spapr-vlan,reg=0x71000000 meets the default serial
    port's spapr-vty, the first VIO device made."""
    with pytest.raises(MachineError) as info:
        Machine.create("-device spapr-vlan,reg=0x71000000", host="tcg")
    assert info.value.text == ("-device spapr-vlan,reg=0x71000000: spapr-vlan and spapr-vty "
                               "devices conflict at address 0x71000000")


def test_a_vio_irq_already_claimed_is_the_devices_error_with_its_option():
    """Checked against QEMU 7.2: reg=0x2000 maps to 0x1102, the auto-addressed spapr-vlan's."""
    options = ("-nodefaults -serial null -device spapr-vlan "
               "-device spapr-vscsi,id=scsi0,reg=0x00002000")
    with pytest.raises(MachineError) as info:
        Machine.create(options, host="tcg")
    assert info.value.text == "-device spapr-vscsi,id=scsi0,reg=0x00002000: IRQ 4354 is not free"


def test_each_scsi_bus_is_a_spapr_vscsi_and_the_default_cdrom_is_bus_0():
    assert parse_options("").scsi_buses == 1
    assert parse_options("-nodefaults").scsi_buses == 0
    assert parse_options("-drive if=scsi,bus=1,media=cdrom").scsi_buses == 2
    assert parse_options("-nodefaults -cdrom x.iso").scsi_buses == 1
    assert parse_options("-nodefaults -drive if=virtio,file=x").scsi_buses == 0


def test_nics_come_from_nic_and_net_nic_and_any_network_option_drops_the_default():
    assert parse_options("").nic
    for options in ("-netdev user,id=n0", "-nic user,model=virtio-net-pci", "-net user"):
        assert not parse_options(options).nic
    config = parse_options("-nic user,model=spapr-vlan -net nic")
    assert config.nic_models == ("spapr-vlan", "spapr-vlan")
    vlans = [d for d in default_devices(config) if d.name == "VIO spapr-vlan"]
    assert len(vlans) == 2


def test_a_second_phb_claims_its_four_lsis():
    devices = default_devices(parse_options("-device spapr-pci-host-bridge,index=1"))
    assert [d.irq for d in devices if d.name.startswith("PHB1")] == [0x1204, 0x1205, 0x1206, 0x1207]


def test_append_with_xive_off_says_it_is_the_guests_choice():
    config = parse_options(["-append", "console=hvc0 xive=off"])
    assert config.append == "console=hvc0 xive=off"
    assert "xive=off is the guest's choice" in dict(config.ignored)["-append console=hvc0 xive=off"]


@pytest.mark.parametrize("options, message", [
    ("-device {bad json", "JSON parse error"),
    ("-device spapr-vty,reg=zz", "Parameter 'reg' expects uint32_t"),
    ("-device id=x", "Parameter 'driver' is missing"),
    ("-drive if=scsi,bus=x", "Parameter 'bus' expects a number"),
    ("-frobnicate", "-frobnicate: invalid option"),
])
def test_a_malformed_device_option_is_refused_as_qemu_words_it(options, message):
    with pytest.raises(ConfigError) as info:
        parse_options(options.split(" ", 1) if options.startswith("-device {") else options)
    assert message in info.value.text


@given(st.lists(st.text(min_size=1, max_size=12), max_size=6))
def test_any_words_parse_or_are_refused_cleanly(words):
    try:
        parse_options(words)
    except (InputError, NotImplementedError):
        pass


def test_cpu_properties_after_the_model_are_accepted_and_listed():
    config = parse_options("-cpu POWER9,pmu=off")
    assert config.cpu == "power9_v2.2"
    assert ("-cpu POWER9,pmu=off", "CPU properties (pmu=off)") in config.ignored
