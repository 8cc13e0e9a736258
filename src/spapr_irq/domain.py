"""A libvirt domain (``--domain FILE.xml``) read the way libvirt turns it into a QEMU command line
for ppc64 (qemuBuildMachineCommandLine, qemuBuildCpuCommandLine, qemuBuildSmpCommandLine).

What reaches the interrupt controller: the machine type, ``<cpu>`` (``host-passthrough`` is
``-cpu host``; ``host-model`` is ``-cpu host`` with ``max-cpu-compat`` from its ``<model>``, which is
how libvirt expresses a compat mode on ppc64), ``<vcpu>`` and its ``current`` (``-smp
current,maxcpus=N``, with ``<topology>``), the pseries ``<features>`` libvirt maps to machine
properties (htm, nested-hv, ccf-assist, cfpc, sbbc, ibs, hpt resizing and page size), the domain
type (kvm or qemu), and the ``<qemu:commandline>`` arguments, through which ic-mode is given (libvirt
has no element for it). ``<ioapic driver=...>`` is an x86 feature libvirt refuses for ppc64; it is
reported, not applied.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .errors import InputError

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
#: <features> children libvirt maps to pseries capabilities: element -> (property, attribute).
CAP_FEATURES = {"htm": ("cap-htm", "state"), "nested-hv": ("cap-nested-hv", "state"),
                "ccf-assist": ("cap-ccf-assist", "state"), "cfpc": ("cap-cfpc", "value"),
                "sbbc": ("cap-sbbc", "value"), "ibs": ("cap-ibs", "value")}


def domain_words(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The QEMU options of a libvirt domain, and what the model does not apply, with why."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"not a libvirt domain: {exc}") from None
    if root.tag != "domain":
        raise InputError(f"not a libvirt domain: the root element is <{root.tag}>")
    notes: list[tuple[str, str]] = []
    os_type = root.find("os/type")
    if os_type is None or os_type.get("arch", "ppc64le") not in ("ppc64", "ppc64le"):
        raise InputError("not a ppc64 domain (<os><type arch='ppc64le'>)")
    machine = os_type.get("machine", "pseries")
    props = [machine]
    kind = root.get("type", "kvm")
    words: list[str] = []
    features = root.find("features")
    if features is not None:
        for child in features:
            if child.tag in CAP_FEATURES:
                prop, attr = CAP_FEATURES[child.tag]
                value = child.get(attr)
                if value is None:
                    raise InputError(f"<{child.tag}> needs {attr}=")
                props.append(f"{prop}={value}")
            elif child.tag == "hpt":
                if child.get("resizing"):
                    props.append(f"resize-hpt={child.get('resizing')}")
                page = child.find("maxpagesize")
                if page is not None and page.text:
                    props.append(f"cap-hpt-max-page-size={page.text}{page.get('unit', 'KiB')[0]}")
            elif child.tag == "ioapic":
                notes.append(("<ioapic>", "an x86 feature: libvirt refuses it for ppc64"))
            else:
                notes.append((f"<{child.tag}>", "no interrupt controller part"))
    words += ["-machine", ",".join(props)]
    words += ["-accel", "kvm" if kind == "kvm" else "tcg"]
    cpu = root.find("cpu")
    mode = cpu.get("mode", "custom") if cpu is not None else None
    if mode in ("host-passthrough", "host-model"):
        words += ["-cpu", "host"]
        model = cpu.find("model")
        if mode == "host-model" and model is not None and model.text:
            words[words.index("-machine") + 1] += f",max-cpu-compat={model.text.strip().lower()}"
    elif mode == "custom" and cpu.find("model") is not None:
        words += ["-cpu", cpu.find("model").text.strip()]
    vcpu = root.find("vcpu")
    if vcpu is not None and vcpu.text:
        maximum = vcpu.text.strip()
        current = vcpu.get("current", maximum)
        smp = f"{current},maxcpus={maximum}"
        topology = cpu.find("topology") if cpu is not None else None
        if topology is not None:
            smp += "".join(f",{key}={topology.get(key)}" for key in ("sockets", "cores", "threads")
                           if topology.get(key))
        words += ["-smp", smp]
    for arg in root.findall(f"{{{QEMU_NS}}}commandline/{{{QEMU_NS}}}arg"):
        value = arg.get("value")
        if value is not None:
            words.append(value)
    return words, notes
