"""A libvirt domain read the way libvirt builds the ppc64 command line (--domain FILE.xml)."""

from __future__ import annotations

import pytest

from spapr_irq.cli import main
from spapr_irq.config import parse_options
from spapr_irq.domain import domain_words
from spapr_irq.errors import InputError

DOMAIN = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>f40</name>
  <vcpu placement='static' current='2'>8</vcpu>
  <os><type arch='ppc64le' machine='pseries-7.2'>hvm</type></os>
  <features><htm state='off'/><nested-hv state='on'/><hpt resizing='enabled'/>
    <ioapic driver='qemu'/></features>
  <cpu mode='host-model'><model fallback='forbid'>power9</model>
    <topology sockets='8' cores='1' threads='1'/></cpu>
  <qemu:commandline><qemu:arg value='-machine'/><qemu:arg value='ic-mode=xics'/></qemu:commandline>
</domain>"""


def test_the_domain_becomes_libvirts_command_line():
    words, notes = domain_words(DOMAIN)
    assert words == ["-machine", "pseries-7.2,cap-htm=off,cap-nested-hv=on,resize-hpt=enabled,"
                     "max-cpu-compat=power9", "-accel", "kvm", "-cpu", "host", "-smp",
                     "2,maxcpus=8,sockets=8,cores=1,threads=1", "-machine", "ic-mode=xics"]
    assert notes == [("<ioapic>", "an x86 feature: libvirt refuses it for ppc64")]
    config = parse_options(words)
    assert (config.ic_mode, config.max_cpu_compat, config.smp_cpus, config.max_cpus) == \
        ("xics", "power9", 2, 8)


def test_host_passthrough_is_cpu_host_and_a_custom_model_is_named():
    base = "<domain type='{t}'><os><type arch='ppc64le' machine='pseries'/></os>{cpu}</domain>"
    words, _ = domain_words(base.format(t="kvm", cpu="<cpu mode='host-passthrough'/>"))
    assert words[-2:] == ["-cpu", "host"]
    words, _ = domain_words(base.format(t="qemu", cpu="<cpu mode='custom'><model>POWER9</model>"
                                                      "</cpu>"))
    assert ["-accel", "tcg", "-cpu", "POWER9"] == words[2:]


@pytest.mark.parametrize("text, message", [
    ("<domain", "not a libvirt domain"),
    ("<network/>", "the root element is <network>"),
    ("<domain><os><type arch='x86_64'/></os></domain>", "not a ppc64 domain"),
    ("<domain><os><type arch='ppc64le'/></os><features><cfpc/></features></domain>",
     "<cfpc> needs value="),
])
def test_a_domain_the_model_cannot_read_is_bad_input(text, message):
    with pytest.raises(InputError) as info:
        domain_words(text)
    assert message in info.value.text


def test_resolve_takes_a_domain_file(tmp_path, capsys):
    path = tmp_path / "f40.xml"
    path.write_text(DOMAIN)
    assert main(["resolve", "--domain", str(path), "--host", "power10-linux-6.6"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("XICS in-kernel (KVM)")
    assert "note: <ioapic> in the domain" in captured.err
