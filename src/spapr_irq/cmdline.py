"""A QEMU command line as people paste it: from a libvirt log, a shell script or a CI harness.

:func:`words_of` finds the options in a pasted line (the environment assignments and the program
name libvirt logs before them, backslash continuations, a leading ``--``). The options that add
devices are read as QEMU reads them where they give the machine interrupts: ``-device`` of a VIO
model (spapr-vty, spapr-vlan, spapr-vscsi, with libvirt's ``reg``) or of a second PHB, ``-drive`` /
``-cdrom`` on the default SCSI bus (each SCSI bus is a spapr-vscsi), ``-nic`` / ``-net nic``
(a NIC whose model is spapr-vlan is a VIO device). Every other option QEMU knows is accepted and
listed with the reason it changes nothing here; an option QEMU does not know is its error.
"""

from __future__ import annotations

import json
import re
import shlex

from .errors import ConfigError, InputError

#: VIO models with an interrupt, and their device-tree node names (spapr_vio.c dt_name).
VIO_MODELS = {"spapr-vty": "vty", "spapr-vlan": "l-lan", "spapr-vscsi": "v-scsi"}
PHB_MODEL = "spapr-pci-host-bridge"

#: Options QEMU takes with an argument that change nothing this model covers, and why.
NO_EFFECT_WITH_ARGUMENT = {
    "-m": "guest RAM size", "-name": "the guest's name", "-uuid": "the guest's UUID",
    "-vga": "display", "-display": "display", "-vnc": "display", "-spice": "display",
    "-kernel": "the guest kernel (the guest profile stands for it)", "-initrd": "the guest's initrd",
    "-chardev": "a character backend", "-mon": "a monitor", "-monitor": "a monitor",
    "-qmp": "a monitor", "-msg": "message format", "-overcommit": "host memory and CPU overcommit",
    "-sandbox": "seccomp sandbox", "-rtc": "the clock", "-boot": "boot order",
    "-object": "a backend object (memory, secrets, iothreads, RNG)",
    "-blockdev": "a block backend", "-netdev": "a network backend (the NIC is the -device)",
    "-fsdev": "a filesystem backend", "-audiodev": "an audio backend", "-pidfile": "a pid file",
    "-D": "the log file", "-d": "log items", "-trace": "trace events", "-k": "the keyboard map",
    "-L": "the firmware directory", "-bios": "the firmware", "-prom-env": "firmware variables",
    "-add-fd": "a file descriptor set", "-numa": "NUMA topology",
    "-mem-path": "the RAM backing file", "-watchdog-action": "the watchdog",
    "-incoming": "an incoming migration (use `spapr-irq migrate` for one)",
    "-loadvm": "a snapshot to load", "-parallel": "a parallel port",
    "-global": "a device property default",
}
NO_EFFECT_FLAGS = {
    "-S": "start paused", "-nographic": "display", "-no-reboot": "reboot behaviour",
    "-no-shutdown": "shutdown behaviour", "-no-user-config": "the default config files",
    "-snapshot": "disk snapshots", "-daemonize": "process behaviour",
    "-mem-prealloc": "RAM preallocation", "-usb": "the USB controller (PCI, no interrupt at start)",
    "-full-screen": "display", "-no-fd-bootchk": "boot behaviour",
}
#: Machine properties libvirt and users set that change nothing this model covers.
NO_EFFECT_MACHINE_PROPS = {
    "usb": "the USB controller", "dump-guest-core": "core dumps", "mem-merge": "KSM",
    "memory-backend": "the RAM backend", "graphics": "firmware graphics",
    "resize-hpt": "HPT resizing", "kvm-type": "KVM-HV or KVM-PR (the host decides here)",
    "suppress-vmdesc": "the migration stream's description", "nvdimm": "NVDIMMs",
    "x-vof": "the firmware", "rtas-base": "the RTAS location", "nvdimm-persistence": "NVDIMMs",
}
#: spapr capabilities (spapr_caps.c): accepted; only cap-htm is modeled (its TCG refusal).
SPAPR_CAPS = ("cap-vsx", "cap-dfp", "cap-cfpc", "cap-sbbc", "cap-ibs", "cap-hpt-max-page-size",
              "cap-nested-hv", "cap-large-decr", "cap-ccf-assist", "cap-fwnmi",
              "cap-rpt-invalidate", "cap-ail-mode-3", "cap-nested-papr")

_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")
_PROGRAM = re.compile(r"(^|/)(qemu-system-ppc(64)?|qemu-kvm|qemu)$")


def words_of(options) -> list[str]:
    """The option words of a pasted command line: a string is split as a shell would (a
    backslash-newline continues the line); leading VAR=value words and the program (any path
    ending in qemu-system-ppc64, qemu-system-ppc, qemu-kvm or qemu), and a leading ``--``, are
    dropped."""
    if isinstance(options, str):
        text = options.replace("\\\r\n", " ").replace("\\\n", " ")
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise ConfigError(f"cannot split the options: {exc}") from None
    elif isinstance(options, (list, tuple)):
        words = list(options)
        if not all(isinstance(w, str) for w in words):
            raise ConfigError("options must be strings")
    else:
        raise ConfigError(f"options are a string or a list of strings, not {options!r}")
    i = 0
    while i < len(words) and _ENV.fullmatch(words[i]) and not words[i].startswith("-"):
        i += 1
    if i < len(words) and _PROGRAM.search(words[i]):
        i += 1
    elif i:
        raise ConfigError(f"{words[0]}: an environment assignment is not a QEMU option (paste "
                          "the program after it)")
    if i < len(words) and words[i] == "--":
        i += 1
    return words[i:]


def machine_type_named(words: list[str]) -> str | None:
    """The machine type the option words name (-M/-machine, a first bare property or type=; the
    last one wins, as QEMU merges -machine options), or None."""
    named = None
    for flag, value in zip(words, words[1:]):
        if flag.lstrip("-") not in ("M", "machine") or not flag.startswith("-"):
            continue
        for index, prop in enumerate(split_props(value)):
            if index == 0 and "=" not in prop:
                named = prop
            elif prop.startswith("type="):
                named = prop[5:]
    return named


def read_file_line(text: str) -> str:
    """The QEMU command line in a file: a libvirt ``/var/log/libvirt/qemu/NAME.log`` (the last
    line that runs QEMU) or a shell script (its backslash continuations joined)."""
    joined = re.sub(r"\\\r?\n", " ", text)
    candidates = [line for line in joined.splitlines()
                  if re.search(r"(^|[\s/])(qemu-system-ppc(64)?|qemu-kvm)(\s|$)", line)]
    if not candidates:
        raise InputError("no QEMU command line in the file (no qemu-system-ppc64 or qemu-kvm)")
    return candidates[-1].strip()


def split_props(text: str) -> list[str]:
    """QemuOpts splitting: commas separate, a doubled comma is a literal comma."""
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == ",":
            if i + 1 < len(text) and text[i + 1] == ",":
                current.append(",")
                i += 2
                continue
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts



def device_props(option: str, value: str) -> dict[str, str]:
    """-device VALUE as QEMU reads it: JSON (libvirt 7.x and later) or key=value pairs; the
    model is the first bare word or `driver`."""
    if value.lstrip().startswith("{"):
        try:
            data = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"{option}: JSON parse error, {exc.msg}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{option}: Invalid parameter type, expected: object")
        return {str(k): (json.dumps(v) if isinstance(v, (dict, list)) else str(v))
                for k, v in data.items()}
    props: dict[str, str] = {}
    for index, prop in enumerate(split_props(value)):
        if "=" not in prop:
            if index == 0:
                props["driver"] = prop
                continue
            props[prop] = "on"  # a bare flag is "on"
            continue
        key, val = prop.split("=", 1)
        props[key] = val
    if "driver" not in props:
        raise ConfigError(f"{option}: Parameter 'driver' is missing")
    return props


def parse_reg(option: str, text: str) -> int:
    """A VIO `reg` property: a uint32 in C notation (libvirt writes 0x30000000)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise ConfigError(f"{option}: Parameter 'reg' expects uint32_t") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise ConfigError(f"{option}: Parameter 'reg' expects uint32_t")
    return value


def drive_scsi_bus(option: str, props: dict[str, str]) -> int | None:
    """The SCSI bus a -drive puts a disk on (pseries' default interface is scsi), or None."""
    interface = props.get("if", "scsi")
    if interface != "scsi":
        return None
    bus = props.get("bus", "0")
    if not bus.isdigit():
        raise ConfigError(f"{option}: Parameter 'bus' expects a number")
    return int(bus)
