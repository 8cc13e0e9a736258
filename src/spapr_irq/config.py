"""The machine configuration, parsed from QEMU-style options as QEMU spells them.

Accepted: ``-M``/``-machine`` (``pseries`` or ``pseries-X.Y`` with ``ic-mode``, ``kernel-irqchip`` /
``kernel_irqchip``, ``max-cpu-compat``, ``vsmt``, ``accel``), ``-cpu``, ``-smp``, ``-accel`` and
``-enable-kvm``. Every refusal is a :class:`ConfigError` carrying QEMU's own text where QEMU has
one. Parsing builds a new object and never changes an existing one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .errors import ConfigError
from .cmdline import (NO_EFFECT_FLAGS, NO_EFFECT_MACHINE_PROPS, NO_EFFECT_WITH_ARGUMENT,
                      PHB_MODEL, SPAPR_CAPS, VIO_MODELS, device_props, drive_scsi_bus,
                      machine_type_named, parse_reg, split_props, words_of)
from .releases import RELEASES, Release, get_release, machine_type_note, release_for_machine
from .smp import parse_base0, read_smp, topology

# --- Machine versions and CPU models: per QEMU release (releases.py) -----------------------------------

_NEWEST = get_release(None)
#: Every pseries machine version the default release knows, oldest first; the last is "pseries".
MACHINE_VERSIONS: tuple[tuple[int, int], ...] = _NEWEST.machine_versions
LATEST_VERSION = MACHINE_VERSIONS[-1]


def version_name(version: tuple[int, int]) -> str:
    return f"pseries-{version[0]}.{version[1]}"


def default_ic_mode(version: tuple[int, int]) -> str:
    """ic-mode a machine version starts with: legacy up to 3.0, xics for 3.1/4.0, dual from 4.1."""
    if version <= (3, 0):
        return "legacy"
    if version <= (4, 0):
        return "xics"
    return "dual"


def default_cpu(version: tuple[int, int], release: Release = _NEWEST) -> str:
    """-cpu a machine version uses when none is given, in `release`."""
    return release.default_cpu(version)


# --- CPU models and compat levels (target/ppc) -------------------------------------------------------

#: CPU generations in order; the index is what "newer" means.
CPU_FAMILIES: tuple[str, ...] = ("power7", "power8", "power9", "power10")

#: Every -cpu model of every release this model knows (lower case), and its generation.
CPU_MODELS: dict[str, str] = {name: family for release in RELEASES.values()
                              for name, family in release.cpu_models}
#: max-cpu-compat values (target/ppc/compat.c); power6 and power7+ exist but no CPU here is older.
COMPAT_LEVELS: tuple[str, ...] = ("power6", "power7", "power7+", "power8", "power9", "power10")


#: The logical PVR of each compat level (target/ppc/cpu-models.h CPU_POWERPC_LOGICAL_*).
COMPAT_PVRS: dict[str, int] = {"power6": 0x0F000002, "power7": 0x0F000003, "power7+": 0x0F100003,
                               "power8": 0x0F000004, "power9": 0x0F000005, "power10": 0x0F000006}


def compat_rank(level: str) -> float:
    """Order of compat levels against CPU_FAMILIES (power7+ sits between power7 and power8)."""
    return {"power6": -1, "power7": 0, "power7+": 0.5, "power8": 1, "power9": 2, "power10": 3}[level]


def power9_capable(family: str, max_cpu_compat: str | None) -> bool:
    """A CPU generation that supports ISA 3.00, with max-cpu-compat unset or at least power9."""
    if CPU_FAMILIES.index(family) < CPU_FAMILIES.index("power9"):
        return False
    return max_cpu_compat is None or compat_rank(max_cpu_compat) >= 2


# --- The configuration -------------------------------------------------------------------------------

KERNEL_IRQCHIP_VALUES = ("on", "off", "split")
IC_MODES = ("xics", "xive", "dual")
ACCELS = ("kvm", "tcg")


@dataclass(frozen=True)
class MachineConfig:
    """What the user asked for. `kernel_irqchip` is "allowed" when unset.

    `cpu` is a canonical model name or "host" (resolved against the host at machine creation).
    `accel` is the list of accelerators to try in order; empty means the host's natural one.
    """

    version: tuple[int, int] = LATEST_VERSION
    ic_mode: str = "dual"
    ic_mode_explicit: bool = False
    kernel_irqchip: str = "allowed"
    kernel_irqchip_from: str | None = None  # "machine" or "accel"
    max_cpu_compat: str | None = None
    cpu: str = "power10_v2.0"
    cpu_explicit: bool = False
    #: The family alias given to -cpu ("power9"), if one was: under KVM it names the host CPU.
    cpu_alias: str | None = None
    #: -cpu as the user spelled it (QEMU's messages quote it).
    cpu_given: str | None = None
    smp_cpus: int = 1
    max_cpus: int = 1
    threads: int = 1
    #: -M vsmt=N; 0 when not given (QEMU then picks the mode from the machine version).
    vsmt_user: int = 0
    accel: tuple[str, ...] = ()
    #: The QEMU release modeled (releases.py) and the machine type as named ("pseries-2.12-sxxm").
    qemu: str = _NEWEST.version
    #: The machine type that chose the release when none was named (a pseries-rhel type names
    #: RHEL's qemu-kvm); None when the release was named or is the default.
    qemu_chosen_by: str | None = None
    machine_name: str | None = None
    #: Default devices with an interrupt: a serial port (spapr-vty), the default NIC (spapr-vlan)
    #: and the default CD-ROM (spapr-vscsi); -nodefaults, -serial none and -net none remove them.
    serial: int = 1
    nic: bool = True
    cdrom: bool = True
    #: SCSI buses of -drive (and the default CD-ROM): each is a spapr-vscsi made at machine init.
    scsi_buses: int = 1
    #: NICs of -nic / -net nic, by model (a spapr-vlan one is a VIO device).
    nic_models: tuple[str, ...] = ()
    #: -device VIO devices (model, reg or None, option) and extra PHBs (model, index, option).
    devices: tuple[tuple[str, int | None, str], ...] = ()
    #: Options QEMU accepts that change nothing modeled here: (option as given, why).
    ignored: tuple[tuple[str, str], ...] = ()
    #: -append: the guest kernel's command line (xive=off picks the guest's choice).
    append: str | None = None
    #: -M cap-htm: None for the machine's default (on up to pseries-2.11 for a POWER8+ CPU).
    cap_htm: bool | None = None
    #: -M kernel-irqchip=VALUE that is not on/off/split, with no accelerator named: QEMU refuses it
    #: only when KVM is the accelerator that runs (the property belongs to KVM).
    kernel_irqchip_unparsed: str | None = None
    #: Warnings QEMU prints while parsing the options (deprecated -smp zeros in 7.2).
    warnings: tuple[str, ...] = ()
    options: tuple[str, ...] = field(default=(), compare=False)

    # -- derived --------------------------------------------------------------------------------
    @property
    def machine_type(self) -> str:
        return self.machine_name or version_name(self.version)

    @property
    def release(self) -> Release:
        return get_release(self.qemu)

    @property
    def legacy(self) -> bool:
        """pseries-3.0 and older: the legacy XICS backend (0x400 sources, dynamic IRQ numbers)."""
        return self.version <= (3, 0)

    @property
    def vsmt(self) -> int:
        """Virtual SMT mode: -M vsmt if given, else threads per core from pseries-4.2, at least 8
        before."""
        if self.vsmt_user:
            return self.vsmt_user
        return self.threads if self.version >= (4, 2) else max(8, self.threads)

    @property
    def nr_servers(self) -> int:
        """spapr_max_server_number(): interrupt server numbers the controllers must cover."""
        return -(-self.max_cpus * self.vsmt // self.threads)

    def vcpu_id(self, cpu_index: int) -> int:
        """The vCPU id (interrupt server number) of CPU `cpu_index`."""
        return (cpu_index // self.threads) * self.vsmt + cpu_index % self.threads

    def cpu_family(self, host_cpu: str | None = None) -> str:
        if self.cpu == "host":
            if host_cpu is None:
                raise ConfigError("unable to find CPU model 'host'")
            return host_cpu
        return CPU_MODELS[self.cpu]

    def power9_capable(self, host_cpu: str | None = None) -> bool:
        """ppc_type_check_compat(cpu, ISA 3.00, max-cpu-compat): a POWER9+ CPU not capped below."""
        return power9_capable(self.cpu_family(host_cpu), self.max_cpu_compat)

    def command_line(self) -> str:
        """The options in canonical QEMU spelling (what `explain` prints)."""
        props = [self.machine_type]
        if self.ic_mode_explicit:
            props.append(f"ic-mode={self.ic_mode}")
        if self.kernel_irqchip != "allowed" and self.kernel_irqchip_from == "machine":
            props.append(f"kernel-irqchip={self.kernel_irqchip}")
        if self.max_cpu_compat:
            props.append(f"max-cpu-compat={self.max_cpu_compat}")
        if self.vsmt_user:
            props.append(f"vsmt={self.vsmt_user}")
        words = ["-M", ",".join(props), "-cpu", self.cpu]
        smp = str(self.smp_cpus)
        if self.max_cpus != self.smp_cpus:
            smp += f",maxcpus={self.max_cpus}"
        if self.threads != 1:
            smp += f",threads={self.threads}"
        words += ["-smp", smp]
        for accel in self.accel:
            value = accel
            if accel == "kvm" and self.kernel_irqchip_from == "accel":
                value += f",kernel-irqchip={self.kernel_irqchip}"
            words += ["-accel", value]
        return " ".join(words)


# --- Parsing -----------------------------------------------------------------------------------------


def _parse_qapi_int(name: str, text: str, maximum: int, ctype: str) -> int:
    """An unsigned property as QEMU's string visitor reads it: strtoull in base 0 (a minus wraps
    modulo 2**64; beyond 64 bits is not a number), then the range of the C type."""
    value = parse_base0(text)
    if value is None or abs(value) >= 1 << 64:
        raise ConfigError(f"Parameter '{name}' expects integer")
    value %= 1 << 64
    if value > maximum:
        raise ConfigError(f"Parameter '{name}' expects {ctype}")
    return value


def _parse_machine_type(option: str, value: str, release: Release) -> tuple[tuple[int, int], str]:
    """The machine type as named, to (version, canonical name): ``pseries`` is the newest."""
    types = release.machine_types()
    if value in types:
        version = types[value]
        return version, (release.pseries_name if value == "pseries" else value)
    raise ConfigError(
        f"{option}: unsupported machine type",
        ("Use -machine help to list supported machines",),
        note=machine_type_note(value, release),
    )


def _parse_cpu(value: str, release: Release) -> str:
    name = value.lower()
    if name == "host":
        return "host"
    name = dict(release.cpu_aliases).get(name, name)
    if name not in dict(release.cpu_models):
        raise ConfigError(f"unable to find CPU model '{value}'")
    return name


def _onoffsplit(option: str, value: str) -> str:
    if value not in KERNEL_IRQCHIP_VALUES:
        raise ConfigError(f"{option}: Parameter 'kernel-irqchip' does not accept value '{value}'")
    return value


class _Builder:
    """Mutable scratch state while reading options; turned into a frozen MachineConfig at the end."""

    def __init__(self) -> None:
        self.machine: dict[str, str] = {}
        self.machine_order: list[tuple[str, str, str]] = []  # (option text, prop, value)
        self.machine_type: str | None = None
        self.machine_option = "-M pseries"
        self.cpu: str | None = None
        self.cpu_alias: str | None = None
        self.cpu_given: str | None = None
        self.smp: dict[str, int] = {}  # the -smp members given, merged over every -smp
        self.accel: list[str] = []  # from -accel, in order
        self.machine_accel: list[str] | None = None  # from -M accel= (or -enable-kvm); last wins
        self.accel_irqchip: str | None = None
        self.accel_option = ""
        self.defaults = True  # -nodefaults clears it
        self.serial: list[str] = []  # -serial values, in order
        self.nic_none = False  # -net none / -nic none
        self.default_net = True  # any -net, -nic or -netdev clears it (vl.c default_net)
        self.nics: list[str] = []  # NIC models of -nic / -net nic
        self.scsi_buses: set[int] = set()  # SCSI buses of -drive / -cdrom / -hda
        self.devices: list[tuple[str, int | None, str]] = []
        self.ignored: list[tuple[str, str]] = []
        self.append: str | None = None


def _read_machine(b: _Builder, option: str, value: str) -> None:
    for index, prop in enumerate(split_props(value)):
        if index == 0 and "=" not in prop:
            b.machine_type = prop
            b.machine_option = option
            continue
        if "=" not in prop:
            raise ConfigError(f"{option}: Invalid parameter '{prop}'")
        key, val = prop.split("=", 1)
        key = key.replace("_", "-")  # QEMU reads machine keys with '-' for '_'
        if key == "type":
            b.machine_type = val
            b.machine_option = option
            continue
        b.machine_order.append((option, key, val))


def _read_accel(b: _Builder, option: str, value: str) -> None:
    props = split_props(value)
    name = props[0]
    if "=" in name:
        key, name = name.split("=", 1)
        if key != "accel":
            raise ConfigError(f"{option}: Parameter 'accel' is missing")
    if name not in ACCELS:
        raise ConfigError(f"invalid accelerator {name}")
    for prop in props[1:]:
        if "=" not in prop:
            raise ConfigError(f"{option}: Invalid parameter '{prop}'")
        key, val = prop.split("=", 1)
        if key == "kernel-irqchip" and name == "kvm":  # -accel sets QOM properties as spelled
            b.accel_irqchip = _onoffsplit(option, val)
            b.accel_option = option
        else:
            raise ConfigError(f"{option}: Property '{name}-accel.{key}' not found")
    b.accel.append(name)


#: Options that add devices or disks, read for the interrupts they give the machine (cmdline.py).
DEVICE_OPTIONS = frozenset({"-device", "-drive", "-cdrom", "-hda", "-hdb", "-hdc", "-hdd",
                            "-netdev", "-append"})
#: Options read with an argument, and every option of QEMU's this parser knows.
MACHINE_OPTIONS = frozenset({"-M", "-machine", "-cpu", "-smp", "-accel", "-serial", "-net", "-nic"})
QEMU_OPTIONS = (MACHINE_OPTIONS | DEVICE_OPTIONS | frozenset(NO_EFFECT_WITH_ARGUMENT)
                | frozenset(NO_EFFECT_FLAGS) | {"-enable-kvm", "-nodefaults"})


def _read_net(b: _Builder, flag: str, option: str, value: str) -> None:
    """-nic TYPE[,model=M] and -net nic[,model=M] make a NIC (pseries' default model is
    spapr-vlan); -net with a backend type makes only the backend; none makes nothing. Any of
    them clears the default NIC."""
    b.default_net = False
    props = split_props(value)
    kind = props[0]
    if kind == "none":
        b.nic_none = True
        return
    model = next((p.split("=", 1)[1] for p in props[1:] if p.startswith("model=")), "spapr-vlan")
    if flag == "-nic" or kind == "nic":
        b.nics.append(model)
    else:
        b.ignored.append((option, "a network backend (the NIC is -net nic or -device)"))


def _read_device_option(b: _Builder, flag: str, option: str, value: str) -> None:
    if flag == "-append":
        b.append = value
        b.ignored.append((option, "the guest kernel's command line"
                          + ("; xive=off is the guest's choice (use --guest linux-xive-off)"
                             if "xive=off" in value.split() else "")))
        return
    if flag == "-netdev":
        b.default_net = False
        b.ignored.append((option, NO_EFFECT_WITH_ARGUMENT["-netdev"]))
        return
    if flag in ("-cdrom", "-hda", "-hdb", "-hdc", "-hdd"):
        b.scsi_buses.add(0)  # pseries' default block interface is SCSI, bus 0
        return
    if flag == "-drive":
        props = dict(p.split("=", 1) if "=" in p else (p, "on") for p in split_props(value))
        bus = drive_scsi_bus(option, props)
        if bus is None:
            b.ignored.append((option, f"a disk on if={props.get('if')}: no interrupt at start"))
        else:
            b.scsi_buses.add(bus)
        return
    props = device_props(option, value)
    model = props["driver"]
    if model in VIO_MODELS:
        b.devices.append((model, parse_reg(option, props["reg"]) if "reg" in props else None,
                          option))
    elif model == PHB_MODEL:
        index = props.get("index")
        if index is None or not index.isdigit():
            raise NotImplementedError(f"{option}: a PHB without index= is not modeled")
        b.devices.append((model, int(index), option))
    else:
        b.ignored.append((option, _device_reason(model)))


def _device_reason(model: str) -> str:
    if model.endswith("-pci") or model.startswith(("pci-", "vfio-")) or model in (
            "qemu-xhci", "nec-usb-xhci", "pci-ohci", "virtio-scsi-pci"):
        return ("a PCI function on a PHB: it shares the PHB's LSIs and takes MSIs when its "
                "guest driver enables them, none at start")
    if model.endswith("-spapr-cpu-core"):
        return "a cold-plugged CPU core (not modeled: use -smp)"
    if model.startswith(("usb-", "scsi-", "virtio-serial", "virtconsole", "virtserialport")):
        return "a device on a bus whose controller holds the interrupt"
    return "no interrupt of its own in this model"


def release_for(options: str | Sequence[str], qemu: str | None = None) -> Release:
    """The release that reads `options`: `qemu` when named; else the one whose machine types
    include the type the options name, if only a vendor build has it; else the newest."""
    return _release_for_words(words_of(options), qemu)[0]


def _release_for_words(words: list[str], qemu: str | None) -> tuple[Release, str | None]:
    """The release, and the machine type that chose it (None when named or the default)."""
    if qemu is not None:
        return get_release(qemu), None
    named = machine_type_named(words)
    release = release_for_machine(named)
    return release, (named if release.version != _NEWEST.version else None)


def parse_options(options: str | Sequence[str] = "", qemu: str | None = None) -> MachineConfig:
    """Parse QEMU options into a MachineConfig as QEMU release `qemu` would (when None, the
    release :func:`release_for` picks), or raise ConfigError with that release's text."""
    words = words_of(options)
    release, chosen_by = _release_for_words(words, qemu)
    b = _Builder()
    i = 0
    while i < len(words):
        word = words[i]
        flag = word[1:] if word.startswith("--") else word
        if flag == "-enable-kvm":
            b.machine_accel = ["kvm"]  # vl.c: -enable-kvm is -machine accel=kvm
            i += 1
            continue
        if flag == "-nodefaults":
            b.defaults = False
            i += 1
            continue
        if flag in NO_EFFECT_FLAGS:
            b.ignored.append((word, NO_EFFECT_FLAGS[flag]))
            i += 1
            continue
        if not word.startswith("-"):  # a bare word is the first disk image (-hda)
            b.scsi_buses.add(0)
            b.ignored.append((word, "a disk image (-hda) on the default SCSI bus; the file is "
                              "not opened here"))
            i += 1
            continue
        if flag in MACHINE_OPTIONS or flag in NO_EFFECT_WITH_ARGUMENT or flag in DEVICE_OPTIONS:
            if i + 1 >= len(words):
                raise ConfigError(f"{word}: requires an argument")
            value = words[i + 1]
            option = f"{word} {value}"
            if flag in ("-M", "-machine"):
                _read_machine(b, option, value)
            elif flag == "-cpu":
                model, _, features = value.partition(",")
                b.cpu = _parse_cpu(model, release)
                b.cpu_given = model
                b.cpu_alias = model.lower() if model.lower() in dict(release.cpu_aliases) else None
                if features:
                    b.ignored.append((option, f"CPU properties ({features})"))
            elif flag == "-smp":
                b.smp.update(read_smp(option, split_props(value), release))  # smp-opts merge
            elif flag == "-accel":
                _read_accel(b, option, value)
            elif flag == "-serial":
                b.serial.append(value)
            elif flag in ("-net", "-nic"):
                _read_net(b, flag, option, value)
            elif flag in DEVICE_OPTIONS:
                _read_device_option(b, flag, option, value)
            else:
                b.ignored.append((option, NO_EFFECT_WITH_ARGUMENT[flag]))
            i += 2
            continue
        raise ConfigError(f"{word}: invalid option")
    return _build(b, tuple(words), release, chosen_by)


def _build(b: _Builder, words: tuple[str, ...], release: Release,
           chosen_by: str | None = None) -> MachineConfig:
    version, mtype = _parse_machine_type(b.machine_option, b.machine_type or "pseries", release)
    ic_mode = default_ic_mode(version)
    ic_mode_explicit = False
    machine_irqchip: str | None = None
    machine_irqchip_option: tuple[str, str] | None = None
    max_compat: str | None = None
    vsmt_user = 0
    cap_htm: bool | None = None
    # Machine properties are set on the machine object after parsing: QEMU reports their errors
    # without the option as a prefix.
    for option, key, val in b.machine_order:
        if key == "ic-mode":
            if version <= (3, 0):
                raise ConfigError("This machine only uses the legacy XICS backend, don't pass "
                                  "ic-mode")
            if val not in IC_MODES:
                raise ConfigError('Bad value for "ic-mode" property')
            ic_mode, ic_mode_explicit = val, True
        elif key == "kernel-irqchip":
            machine_irqchip_option = (option, val)
        elif key == "max-cpu-compat":
            if val not in COMPAT_LEVELS:
                raise ConfigError(f'Invalid compatibility mode "{val}"')
            max_compat = val
        elif key == "vsmt":  # a uint32 property, read by the QAPI visitor
            vsmt_user = _parse_qapi_int("vsmt", val, 0xFFFFFFFF, "uint32_t")
        elif key == "cap-htm":
            if val not in ("on", "off"):
                raise ConfigError("Parameter 'cap-htm' expects 'on' or 'off'")
            cap_htm = val == "on"
        elif key in NO_EFFECT_MACHINE_PROPS or key in SPAPR_CAPS:
            b.ignored.append((f"{option.split(' ', 1)[0]} {key}={val}",
                              NO_EFFECT_MACHINE_PROPS.get(key, "a spapr capability (cap-htm is "
                                                          "the one modeled)")))
        elif key == "accel":
            names = val.split(":")
            for name in names:
                if name not in ACCELS:
                    raise ConfigError(f"invalid accelerator {name}")
            b.machine_accel = names
        else:
            raise ConfigError(f"Property '{mtype}-machine.{key}' not found")

    if b.accel and b.machine_accel is not None:
        raise ConfigError('The -accel and "-machine accel=" options are incompatible')
    accel = tuple(b.accel) if b.accel else tuple(b.machine_accel or ())
    # -M kernel-irqchip is sugar for the KVM accelerator's property: only parsed when KVM may be
    # used. With TCG alone it has nothing to apply to and any value is accepted without effect.
    # With no accelerator named, which one runs is the host's business: a bad value is kept and
    # refused by the machine only if KVM is chosen.
    irqchip_unparsed = None
    if machine_irqchip_option is not None and release.irq.kernel_irqchip_of == "machine":
        machine_irqchip = _onoffsplit(*machine_irqchip_option)  # 4.2 and older: the machine's
    elif machine_irqchip_option is not None and "kvm" in accel:
        machine_irqchip = _onoffsplit(*machine_irqchip_option)
    elif machine_irqchip_option is not None and not accel:
        if machine_irqchip_option[1] in KERNEL_IRQCHIP_VALUES:
            machine_irqchip = machine_irqchip_option[1]
        else:
            irqchip_unparsed = machine_irqchip_option[1]

    cpu = b.cpu or release.default_cpu(version)
    # No -smp is one CPU; prefer_sockets is set by spapr_machine_6_1_class_options and older.
    smp, warnings = topology(b.smp or {"cpus": 1}, version <= (6, 1), mtype, release.max_cpus,
                             release)

    # -M kernel-irqchip is sugar for the KVM accelerator's property; an explicit -accel kvm value
    # wins. Under TCG the sugar has nothing to apply to and is accepted without effect.
    if b.accel_irqchip is not None:
        irqchip, source = b.accel_irqchip, "accel"
    elif machine_irqchip is not None:
        irqchip, source = machine_irqchip, "machine"
    else:
        irqchip, source = "allowed", None

    # Default devices (vl.c): -nodefaults drops the default serial port, NIC and CD-ROM; each
    # -serial other than "none" is a port (a spapr-vty).
    serial = [v for v in b.serial if v != "none"] if b.serial else (["vc"] if b.defaults else [])
    cdrom = b.defaults  # the default CD-ROM is a SCSI drive on bus 0
    buses = set(b.scsi_buses) | ({0} if cdrom else set())

    return MachineConfig(
        version=version,
        ic_mode=ic_mode,
        ic_mode_explicit=ic_mode_explicit,
        kernel_irqchip=irqchip,
        kernel_irqchip_from=source,
        max_cpu_compat=max_compat,
        vsmt_user=vsmt_user,
        cpu=cpu,
        cpu_explicit=b.cpu is not None,
        cpu_alias=b.cpu_alias,
        cpu_given=b.cpu_given,
        smp_cpus=smp.cpus,
        max_cpus=smp.maxcpus,
        threads=smp.threads,
        accel=accel,
        qemu=release.version,
        qemu_chosen_by=chosen_by,
        machine_name=None if mtype == version_name(version) else mtype,
        serial=len(serial),
        nic=b.defaults and b.default_net and not b.nic_none,
        cdrom=cdrom,
        scsi_buses=max(buses) + 1 if buses else 0,
        nic_models=tuple(b.nics),
        devices=tuple(b.devices),
        ignored=tuple(b.ignored),
        append=b.append,
        cap_htm=cap_htm,
        kernel_irqchip_unparsed=irqchip_unparsed,
        warnings=tuple(warnings),
        options=words,
    )
