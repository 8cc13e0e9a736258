"""Canonical machine states: what two runs must share to behave the same from here on.

:func:`state` walks the machine's objects (controllers, presenters, the KVM devices, the guest's
driver) and keeps their values, leaving out what cannot change what happens next: the trace and
printed texts, call logs and clocks, fault plans, KVM fd numbers (only which devices are open, and
what they hold), and the back-references between objects. Guest RAM counts only while a kernel
runs (its queues live there); a reset leaves RAM as it was, but the next kernel starts afresh.

:func:`guest_view` is the part a guest can see (G1): the modes offered, the CAS result, the
interrupt-controller node and the driver the kernel runs.
"""

from __future__ import annotations

import zlib

from .. import papr

#: Attributes that hold history, texts, caches or back-references, never behaviour.
SKIP = frozenset({
    "trace", "warnings", "reports", "calls", "_clock", "faults", "fired", "_handlers", "hcalls",
    "rtas_calls", "config", "m", "handled", "_order", "_items", "kvm", "memory", "host", "guest",
    "fd", "_next_fd", "timebase", "driver", "fdt", "_vcpu_set", "files",
})

#: Per class: host resources numbered from a pool (hardware IPIs, host queue pages) and the
#: hardware tables indexed by them, which ones a VM gets depending on what it allocated before,
#: like fd numbers; and the XICS-on-XIVE device's event queues, which live in host memory, are
#: provisioned once for the VM's life and are written and read by the host alone (the guest sees
#: XICS), and the scratch copies a save's pre-scan takes of each source (valid only during a
#: save). The guest-facing state (each source's configuration, each vCPU's ICP) is kept.
CLASS_SKIP = {
    "XicsOnXiveDevice": frozenset({"router", "_next_ipi", "_next_qpage", "qmap"}),
    "IrqState": frozenset({"ipi", "saved_scan_prio", "saved_p", "saved_q"}),
    "XiveVcpu": frozenset({"vp_ipi", "queues"}),
}


#: QEMU's copies of what the kernel holds while a controller is in-kernel: they are refreshed
#: from KVM before anything reads them (a save, `info pic`), and XIVE's run-state handler keeps
#: the PQs there while stopped, so between two reads they are a cache, not state.
#: The XIVE ENDs' word 1 (queue index and generation) is the kernel's whenever in-kernel; the
#: PQs and the thread contexts only while the VM runs (stopped, QEMU's copy is the real one).
KVM_CACHES = {
    "xics": {"IcsIrq": frozenset({"server", "priority", "saved_priority", "status"}),
             "ICP": frozenset({"xirr", "pending_priority", "mfrr", "xirr_owned", "output"})},
    "xive": {"XiveRouter": frozenset({"endt-w1"})},
    "xive-running": {"XiveRouter": frozenset({"endt-w1"}), "XiveSource": frozenset({"status"}),
                     "XiveTCTX": frozenset({"regs", "output"})},
}


def _walk(value, seen: dict[int, int], caches: dict = None):
    """A hashable, history-free rendering of `value` (leaving out `caches`, by class)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) > 4096:  # a source status array of the host's XIVE: its digest
            return ("bytes", len(value), zlib.crc32(value), zlib.adler32(value))
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return tuple(_walk(v, seen, caches) for v in value)
    if isinstance(value, (set, frozenset)):
        items = [_walk(v, seen, caches) for v in value]
        try:
            return ("set", tuple(sorted(items)))
        except TypeError:
            return ("set", tuple(sorted(items, key=repr)))
    if isinstance(value, dict):
        items = [(_walk(k, seen, caches), _walk(v, seen, caches)) for k, v in value.items()]
        try:
            return ("dict", tuple(sorted(items)))
        except TypeError:
            return ("dict", tuple(sorted(items, key=repr)))
    key = id(value)
    if key in seen:
        return ("ref", seen[key])
    seen[key] = len(seen)
    fields = getattr(value, "__dict__", None)
    if fields is None:
        slots = getattr(type(value), "__slots__", ())
        fields = {name: getattr(value, name) for name in slots if hasattr(value, name)}
    cls = type(value).__name__
    skip = CLASS_SKIP.get(cls, ())
    cached = caches.get(cls, ()) if caches else ()
    if "endt-w1" in cached:
        fields = dict(fields, endt={idx: (end[0], *end[2:]) for idx, end in fields["endt"].items()})
    return (cls,) + tuple((name, _walk(fields[name], seen, caches)) for name in sorted(fields)
                          if name not in SKIP and name not in skip and name not in cached)


def _kvm(kvm, seen: dict[int, int]):
    """The VM's kernel side without fd numbers: open devices by kind and content, what is still
    in kvm->devices and kvm->arch, mappings by device and page, vCPU attachments, RTAS tokens."""
    if kvm is None:
        return None

    def kind(device):
        return device if isinstance(device, str) or device is None else device.kind

    fds = sorted(((device.kind, _walk(device, seen)) for device in kvm.fds.values()),
                 key=lambda item: (item[0], hash(item[1])))
    return (
        tuple(fds),
        tuple(sorted((d.kind, d.released) for d in kvm.devices)),
        kind(kvm.arch_xics), kind(kvm.arch_xive),
        tuple(sorted((device.kind, pgoff) for (_fd, pgoff), device in kvm.mappings.items())),
        tuple(sorted((vid, v.irq_type, v.server, v.device is not None and v.device.fd in kvm.fds)
                     for vid, v in kvm.vcpus.items())),
        tuple(sorted(kvm._rtas)),
        kvm.irqchip_in_kernel, kvm.smt_mode, kvm.emul_smt_mode,
        kvm._cached_xics_on_xive is not None,
    )


def state(machine, booted: bool, panicked: bool, cores: tuple[int, ...]) -> tuple:
    """The canonical state of a run's machine (hashable; equal states behave the same)."""
    seen: dict[int, int] = {}
    m = machine
    driver = None
    ram = None
    if booted and m.driver is not None:
        driver = _walk(m.driver, seen)
        ram = tuple(sorted((n, zlib.crc32(p), zlib.adler32(p)) for n, p in m.memory._pages.items()))
    chosen = m.fdt.get("/chosen", {})
    return (
        m.host.name, m.runstate, m.mode, m.accel, m.cpu_model,
        m.active.label if m.active is not None else None,
        m.active.backend if m.active is not None else None,
        m.ov5_cas, bool(chosen.get("ibm,arch-vec-5-platform-support")),
        tuple(m.vcpus), tuple(m.hotplug_order), cores, booted, panicked,
        _walk(m.xics, seen, KVM_CACHES["xics"] if m.xics is not None and m.xics.in_kernel
              else None),
        _walk(m.xive, seen, None if m.xive is None or not m.xive.in_kernel else
              KVM_CACHES["xive-running" if m.runstate == "running" else "xive"]),
        _walk(m.msi, seen), tuple(sorted(m.msi_blocks.items())),
        tuple(sorted(m.irq_owners.items())),
        _kvm(m.kvm, seen), driver, ram,
    )


def guest_view(machine, booted: bool) -> tuple | None:
    """What the guest can see (G1), or None once QEMU has exited."""
    m = machine
    if m.runstate in ("shutdown", "init"):
        return None
    chosen = m.fdt.get("/chosen", {})
    offered = chosen.get("ibm,arch-vec-5-platform-support")
    byte23 = None
    if offered:
        pairs = dict(zip(offered[0::2], offered[1::2]))
        byte23 = pairs.get(papr.OV5_INTC_BYTE)
    path, node = m.intc_node()
    node_view = tuple(sorted((k, repr(v)) for k, v in node.items()
                             if k not in ("phandle", "linux,phandle")))
    return (
        ("offered byte 23", byte23),
        ("CAS byte 23", papr.ov5_byte(m.ov5_cas, papr.OV5_INTC_BYTE)),
        ("interrupt-controller", path, node_view),
        ("driver", type(m.driver).__name__ if booted and m.driver is not None else None),
        ("vcpus", tuple(m.vcpus)),
    )


#: What each part of a canonical state is, for saying where two states differ.
PARTS = ("host", "run state", "interrupt mode", "accelerator", "CPU model", "active controller",
         "backend", "CAS result", "firmware", "vCPUs", "hot-plug order", "cores", "kernel booted",
         "kernel panicked", "QEMU's XICS", "QEMU's XIVE", "MSI bitmap", "MSI blocks",
         "IRQ owners", "KVM", "guest driver", "guest RAM", "fault injected")


def differences(a: tuple, b: tuple) -> list[str]:
    """The parts in which two canonical states differ; for KVM, which device or table."""
    out = []
    for index, (x, y) in enumerate(zip(a, b)):
        if x == y:
            continue
        if PARTS[index] != "KVM" or x is None or y is None:
            out.append(PARTS[index])
            continue
        names = ("open devices", "kvm->devices", "kvm->arch.xics", "kvm->arch.xive",
                 "mappings", "vCPU attachments", "RTAS tokens", "irqchip flag", "SMT mode",
                 "emulated SMT mode", "cached XICS-on-XIVE device")
        for name, p, q in zip(names, x, y):
            if p == q:
                continue
            if name == "open devices" and len(p) == len(q):
                kinds = sorted({d[0] for d, e in zip(p, q) if d != e})
                out.append("the state of KVM device " + ", ".join(kinds))
            else:
                out.append(f"KVM {name}")
    return out
