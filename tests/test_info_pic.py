"""`info pic` as QEMU 7.2 prints it, against the outputs of a real QEMU 7.2.22 booting Linux 6.1
(tests/data/qemu-7.2/qemu-MODE-pre.txt before CAS, -post.txt after the guest booted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spapr_irq.config import parse_options
from spapr_irq.host.host import parse_host
from spapr_irq.machine.machine import Machine
from spapr_irq.monitor import normalize_info_pic

DATA = Path(__file__).parent / "data" / "qemu-7.2"
BASE = "-cpu POWER9 -smp 2 -m 1G -vga none -nographic"
CASES = {"xics": ("ic-mode=xics", "linux-xive"), "xive": ("ic-mode=xive", "linux-xive"),
         "dual": ("ic-mode=dual", "linux-xive"), "dual-xiveoff": ("ic-mode=dual", "linux-xive-off")}


def machine(props: str, options: str = BASE, qemu: str = "7.2") -> Machine:
    m = Machine(parse_options(f"-M pseries,{props} {options}", qemu=qemu), parse_host("tcg"))
    m.start()
    return m


@pytest.mark.parametrize("name", CASES)
def test_normalized_info_pic_equals_real_qemu_7_2_before_cas_and_after_boot(name):
    props, guest = CASES[name]
    m = machine(props)
    assert m.info_pic(normalize=True) == normalize_info_pic((DATA / f"qemu-{name}-pre.txt").read_text())
    m.boot(guest)
    assert m.info_pic(normalize=True) == normalize_info_pic((DATA / f"qemu-{name}-post.txt").read_text())


def test_xics_info_pic_before_cas_is_byte_for_byte_qemus_but_the_ics_pointer():
    real = (DATA / "qemu-xics-pre.txt").read_text().splitlines()
    mine = machine("ic-mode=xics").info_pic().splitlines()
    assert len(mine) == len(real)
    for a, b in zip(mine, real):
        if a.startswith("ICS"):
            assert a.split()[:2] == b.split()[:2] and a.split()[2].startswith("0x")
        else:
            assert a == b


def test_xive_info_pic_before_cas_is_byte_for_byte_qemus():
    """No pointer in sPAPR XIVE's text: every byte is QEMU's, trailing blanks included."""
    assert machine("ic-mode=xive").info_pic() == (DATA / "qemu-xive-pre.txt").read_text()


def test_xics_cpu_lines_are_numbered_by_cpu_index_not_vcpu_id():
    """pseries-4.1 spaces vCPU ids by 8 (vsmt): QEMU prints CPU 1 for the second vCPU (id 8)."""
    m = Machine(parse_options("-M pseries-4.1,ic-mode=xics -cpu POWER9 -smp 2", qemu="7.2"),
                parse_host("tcg"))
    m.start()
    assert m.vcpus == [0, 8]
    cpus = [line.split()[1] for line in m.info_pic().splitlines() if line.startswith("CPU ")]
    assert cpus == ["0", "1"]


def test_xics_owner_pointer_shows_the_ics_while_a_source_is_presented():
    m = machine("ic-mode=xics")
    m.boot("linux-xive")
    m.set_irq(0x1000, 1)  # EPOW, routed by the guest at priority 5
    line = next(line for line in m.info_pic().splitlines() if "XIRR=ff001000" in line)
    ics = next(line for line in m.info_pic().splitlines() if line.startswith("ICS"))
    assert f"({ics.split()[2]})" in line
    assert "((nil))" in m.info_pic().splitlines()[1]


def test_xive_unmasked_source_shows_its_end_and_queue_window():
    m = machine("ic-mode=xive")
    m.boot("linux-xive")
    ipi = next(line for line in m.info_pic().splitlines() if line.startswith("  00000001 "))
    target, rest = ipi.split("00000010 ", 1)[1].split("/", 1)
    assert target.strip() == "1" and rest.startswith("6")
    assert "/16384 @" in ipi and ipi.endswith(" ]") and " ^" in ipi


@pytest.mark.parametrize("line, normal", [
    ("CPU 3 XIRR=05001000 (0x55c5c5ae6800) PP=05 MFRR=ff", "CPU 3 XIRR=05****** (<ptr>) PP=** MFRR=**"),
    ("ICS 1000..1fff 0x55c5c5ae6800", "ICS 1000..1fff <ptr>"),
    ("  1000 MSI 05 01", "  1000 MSI 05 **"),
    ("  1101 MSI ff 00", "  1101 MSI ff 00"),
    ("CPU[0000]:   OS    80   ff  02    ff   ff  00  ff   06  80000400",
     "CPU[0000]:   OS    **   ff  **    ff   ff  00  ff   **  80000400"),
    ("  00001101 MSI -Q  M 00000000 ", "  00001101 MSI -Q  M 00000000"),
    ("  00000000 MSI P-    00000010   0/6    192/16384 @32b0000 ^1 [ 80000010 ^00000000 ]",
     "  00000000 MSI ***   00000010   */6      */16384 @<qaddr> ^* [ queue ]"),
    ("irqchip: emulated", "irqchip: emulated"),
])
def test_normalization_replaces_pointers_and_run_time_values_only(line, normal):
    assert normalize_info_pic(line) == normal
