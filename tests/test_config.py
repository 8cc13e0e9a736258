"""Option parsing into a MachineConfig (spapr_irq.config): what QEMU accepts, and how it refuses.

Each test checks one behaviour of ``parse_options`` or of the derived fields of ``MachineConfig``.
Refusals are checked against QEMU's own text. The hypothesis tests at the end feed arbitrary input
and check that the only exception is ConfigError, and that ``command_line()`` parses back to the
same configuration.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings, strategies as st

from spapr_irq.config import (COMPAT_LEVELS, LATEST_VERSION, MACHINE_VERSIONS, MachineConfig,
                              parse_options)
from spapr_irq.errors import ConfigError, InputError

# --- helpers ------------------------------------------------------------------------------------


def config_error(options) -> ConfigError:
    """Parse `options`, expecting a refusal; returns the ConfigError."""
    with pytest.raises(ConfigError) as info:
        parse_options(options)
    return info.value


def machine(version: tuple[int, int], *props: str) -> str:
    """The -M option for `version` with extra properties."""
    return "-M " + ",".join((f"pseries-{version[0]}.{version[1]}", *props))


def versions_between(low: tuple[int, int], high: tuple[int, int]) -> list[tuple[int, int]]:
    return [v for v in MACHINE_VERSIONS if low <= v <= high]


def vid(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


#: Fields that command_line() must carry over. cpu_explicit is left out on purpose: command_line()
#: always writes -cpu, so a default CPU comes back as explicit (see the test for that).
ROUND_TRIP_FIELDS = (
    "version", "ic_mode", "ic_mode_explicit", "kernel_irqchip", "kernel_irqchip_from",
    "max_cpu_compat", "cpu", "smp_cpus", "max_cpus", "threads", "accel",
)


def fields(config: MachineConfig) -> dict:
    return {name: getattr(config, name) for name in ROUND_TRIP_FIELDS}


# --- machine types and versions -----------------------------------------------------------------


def test_pseries_alias_is_the_latest_version():
    config = parse_options("-M pseries")
    assert config.version == LATEST_VERSION == (10, 1)
    assert config.machine_type == "pseries-10.1"


def test_no_machine_option_means_latest_pseries():
    assert parse_options("").version == (10, 1)


def test_machine_long_option_spelling_is_accepted():
    assert parse_options("-machine pseries-4.0").version == (4, 0)


def test_machine_type_may_be_given_as_type_property():
    assert parse_options("-M type=pseries-4.0").version == (4, 0)


def test_machine_properties_without_type_use_latest_pseries():
    config = parse_options("-M ic-mode=xics")
    assert config.version == LATEST_VERSION
    assert config.ic_mode == "xics"


@pytest.mark.parametrize("version", MACHINE_VERSIONS, ids=vid)
def test_every_known_machine_version_is_accepted(version):
    config = parse_options(machine(version))
    assert config.version == version
    assert config.machine_type == f"pseries-{vid(version)}"


@pytest.mark.parametrize("version", versions_between((2, 1), (3, 0)), ids=vid)
def test_pseries_3_0_and_older_default_to_legacy(version):
    config = parse_options(machine(version))
    assert config.ic_mode == "legacy"
    assert config.legacy
    assert not config.ic_mode_explicit


@pytest.mark.parametrize("version", [(3, 1), (4, 0)], ids=vid)
def test_pseries_3_1_and_4_0_default_to_xics(version):
    config = parse_options(machine(version))
    assert config.ic_mode == "xics"
    assert not config.legacy
    assert not config.ic_mode_explicit


@pytest.mark.parametrize("version", versions_between((4, 1), LATEST_VERSION), ids=vid)
def test_pseries_4_1_and_newer_default_to_dual(version):
    config = parse_options(machine(version))
    assert config.ic_mode == "dual"
    assert not config.ic_mode_explicit


@pytest.mark.parametrize(
    "version, cpu",
    [
        ((2, 1), "power7_v2.3"), ((2, 7), "power7_v2.3"),
        ((2, 8), "power8_v2.0"), ((3, 0), "power8_v2.0"), ((3, 1), "power8_v2.0"),
        ((4, 0), "power9_v2.2"), ((6, 2), "power9_v2.2"), ((8, 2), "power9_v2.2"),
        ((9, 0), "power10_v2.0"), ((10, 1), "power10_v2.0"),
    ],
    ids=lambda value: vid(value) if isinstance(value, tuple) else value,
)
def test_default_cpu_follows_machine_version(version, cpu):
    config = parse_options(machine(version))
    assert config.cpu == cpu
    assert not config.cpu_explicit


@pytest.mark.parametrize("name", ["q35", "powernv", "pseries-1.0", "pseries-2.0", "pseries-11.0",
                                  "pseries-10", "pseries-10.1.0", "PSERIES"])
def test_unknown_machine_type_is_refused(name):
    error = config_error(["-M", name])
    assert error.message == f"-M {name}: unsupported machine type"
    assert error.hints == ("Use -machine help to list supported machines",)
    assert error.text.endswith("unsupported machine type\nUse -machine help to list supported machines")


@pytest.mark.parametrize("name", ["pseries-04.0", "pseries-10.01"])
def test_machine_version_with_leading_zero_is_refused(name):
    assert config_error(["-M", name]).message == f"-M {name}: unsupported machine type"


# --- ic-mode ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["xics", "xive", "dual"])
def test_ic_mode_value_is_accepted_and_marked_explicit(mode):
    config = parse_options(f"-M pseries,ic-mode={mode}")
    assert config.ic_mode == mode
    assert config.ic_mode_explicit


def test_ic_mode_equal_to_the_default_is_still_explicit():
    config = parse_options("-M pseries-4.0,ic-mode=xics")
    assert config.ic_mode == "xics"
    assert config.ic_mode_explicit


def test_ic_mode_is_accepted_on_pseries_3_1():
    assert parse_options("-M pseries-3.1,ic-mode=xive").ic_mode == "xive"


@pytest.mark.parametrize("value", ["legacy", "XICS", "xive2", "", "on"])
def test_ic_mode_bad_value_is_refused(value):
    error = config_error(f"-M pseries,ic-mode={value}")
    assert 'Bad value for "ic-mode" property' in error.message


@pytest.mark.parametrize("version", [(2, 1), (2, 12), (3, 0)], ids=vid)
def test_ic_mode_on_legacy_machine_is_refused(version):
    error = config_error(machine(version, "ic-mode=xics"))
    assert error.message.endswith("This machine only uses the legacy XICS backend, don't pass ic-mode")


def test_ic_mode_bad_value_on_legacy_machine_gets_the_legacy_refusal():
    error = config_error("-M pseries-3.0,ic-mode=bogus")
    assert error.message.endswith("This machine only uses the legacy XICS backend, don't pass ic-mode")


# --- kernel-irqchip and accelerators ------------------------------------------------------------


def test_kernel_irqchip_unset_is_allowed():
    config = parse_options("-M pseries")
    assert config.kernel_irqchip == "allowed"
    assert config.kernel_irqchip_from is None


@pytest.mark.parametrize("spelling", ["kernel-irqchip", "kernel_irqchip"])
@pytest.mark.parametrize("value", ["on", "off", "split"])
def test_kernel_irqchip_on_machine_is_accepted_in_both_spellings(spelling, value):
    config = parse_options(f"-M pseries,{spelling}={value}")
    assert config.kernel_irqchip == value
    assert config.kernel_irqchip_from == "machine"


@pytest.mark.parametrize("spelling", ["kernel-irqchip", "kernel_irqchip"])
def test_kernel_irqchip_bad_value_is_refused_when_kvm_is_named(spelling):
    error = config_error(f"-M pseries,{spelling}=maybe,accel=kvm")
    assert "Parameter 'kernel-irqchip' does not accept value 'maybe'" in error.message


@pytest.mark.parametrize("spelling", ["kernel-irqchip", "kernel_irqchip"])
def test_kernel_irqchip_bad_value_is_refused_when_the_host_runs_kvm(spelling):
    """No accelerator named: the value is KVM's property, refused only once KVM is chosen."""
    from spapr_irq.errors import MachineError
    from spapr_irq.machine.machine import Machine

    config = parse_options(f"-M pseries,{spelling}=maybe")
    assert (config.kernel_irqchip, config.kernel_irqchip_unparsed) == ("allowed", "maybe")
    with pytest.raises(MachineError) as info:
        Machine.create(config, host="power9-linux-5.10")
    assert info.value.text == "Parameter 'kernel-irqchip' does not accept value 'maybe'"
    assert Machine.create(config, host="tcg").config.kernel_irqchip == "allowed"


def test_accel_kvm_kernel_irqchip_is_taken_from_accel():
    config = parse_options("-accel kvm,kernel-irqchip=on")
    assert config.kernel_irqchip == "on"
    assert config.kernel_irqchip_from == "accel"
    assert config.accel == ("kvm",)


def test_accel_kvm_kernel_irqchip_wins_over_machine():
    config = parse_options("-M pseries,kernel-irqchip=off -accel kvm,kernel-irqchip=on")
    assert config.kernel_irqchip == "on"
    assert config.kernel_irqchip_from == "accel"


def test_accel_kvm_kernel_irqchip_bad_value_is_refused():
    error = config_error("-accel kvm,kernel-irqchip=maybe")
    assert "Parameter 'kernel-irqchip' does not accept value 'maybe'" in error.message


def test_accel_tcg_kernel_irqchip_is_refused():
    error = config_error("-accel tcg,kernel-irqchip=on")
    assert error.message == "-accel tcg,kernel-irqchip=on: Property 'tcg-accel.kernel-irqchip' not found"


def test_machine_kernel_irqchip_with_accel_tcg_is_accepted_without_effect():
    config = parse_options("-M pseries,kernel-irqchip=on -accel tcg")
    assert config.kernel_irqchip == "allowed"
    assert config.kernel_irqchip_from is None
    assert config.accel == ("tcg",)


def test_machine_kernel_irqchip_bad_value_with_accel_tcg_is_accepted():
    assert parse_options("-M pseries,kernel-irqchip=maybe -accel tcg").accel == ("tcg",)


def test_accel_kernel_irqchip_with_underscore_is_refused():
    error = config_error("-accel kvm,kernel_irqchip=on")
    assert error.message == "-accel kvm,kernel_irqchip=on: Property 'kvm-accel.kernel_irqchip' not found"


def test_unknown_accel_property_is_refused():
    assert config_error("-accel kvm,foo=1").message == "-accel kvm,foo=1: Property 'kvm-accel.foo' not found"


def test_enable_kvm_adds_kvm_to_accel():
    assert parse_options("-enable-kvm").accel == ("kvm",)


def test_enable_kvm_with_double_dash_is_accepted():
    assert parse_options("--enable-kvm").accel == ("kvm",)


def test_no_accelerator_means_empty_accel_list():
    assert parse_options("").accel == ()


@pytest.mark.parametrize("options, accel", [
    ("-accel kvm", ("kvm",)),
    ("-accel tcg", ("tcg",)),
    ("-accel accel=kvm", ("kvm",)),
    ("-accel kvm -accel tcg", ("kvm", "tcg")),
    ("-M pseries,accel=kvm:tcg", ("kvm", "tcg")),
])
def test_accelerators_are_listed_in_order(options, accel):
    assert parse_options(options).accel == accel


@pytest.mark.parametrize("options", ["-accel foo", "-M pseries,accel=foo", "-M pseries,accel=kvm:foo"])
def test_unknown_accelerator_is_refused(options):
    assert config_error(options).message == "invalid accelerator foo"


@pytest.mark.parametrize("options", ["-enable-kvm -accel tcg", "-M pseries,accel=kvm -accel kvm"])
def test_accel_option_with_machine_accel_is_refused(options):
    error = config_error(options)
    assert error.message == 'The -accel and "-machine accel=" options are incompatible'


# --- max-cpu-compat and unknown machine properties ----------------------------------------------


@pytest.mark.parametrize("level", COMPAT_LEVELS)
def test_max_cpu_compat_value_is_accepted(level):
    assert parse_options(f"-M pseries,max-cpu-compat={level}").max_cpu_compat == level


def test_max_cpu_compat_unset_is_none():
    assert parse_options("").max_cpu_compat is None


def test_max_cpu_compat_unknown_value_is_refused():
    error = config_error("-M pseries,max-cpu-compat=power42")
    assert error.message.endswith('Invalid compatibility mode "power42"')


def test_unknown_machine_property_is_refused():
    error = config_error("-M pseries,foo=1")
    assert error.message.endswith("Property 'pseries-10.1-machine.foo' not found")


def test_unknown_machine_property_names_the_chosen_version():
    error = config_error("-M pseries-4.0,foo=1")
    assert error.message.endswith("Property 'pseries-4.0-machine.foo' not found")


def test_machine_property_without_value_is_refused():
    assert "Invalid parameter 'foo'" in config_error("-M pseries,foo").message


# --- -cpu ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, model", [
    ("power7", "power7_v2.3"), ("power8", "power8_v2.0"),
    ("power9", "power9_v2.2"), ("power10", "power10_v2.0"),
])
def test_cpu_family_name_means_its_default_revision(name, model):
    config = parse_options(f"-cpu {name}")
    assert config.cpu == model
    assert config.cpu_explicit


@pytest.mark.parametrize("name, model", [
    ("POWER9", "power9_v2.2"), ("Power8", "power8_v2.0"), ("POWER10_V2.0", "power10_v2.0"),
])
def test_cpu_name_is_case_insensitive(name, model):
    assert parse_options(f"-cpu {name}").cpu == model


@pytest.mark.parametrize("name", ["power9_v2.0", "POWER9_v2.0", "power9_v2.2", "power7_v2.3"])
def test_cpu_revision_suffix_is_kept(name):
    assert parse_options(f"-cpu {name}").cpu == name.lower()


def test_cpu_overrides_the_version_default():
    config = parse_options("-M pseries-4.0 -cpu power8")
    assert config.cpu == "power8_v2.0"


@pytest.mark.parametrize("name", ["power11", "power9_v9.9", "POWER6", "", "host_v1.0"])
def test_unknown_cpu_model_is_refused(name):
    assert config_error(["-cpu", name]).message == f"unable to find CPU model '{name}'"


@pytest.mark.parametrize("name", ["host", "HOST"])
def test_host_cpu_is_kept_as_host(name):
    config = parse_options(f"-cpu {name}")
    assert config.cpu == "host"
    assert config.cpu_explicit


# --- power9_capable -----------------------------------------------------------------------------


@pytest.mark.parametrize("options, capable", [
    ("-cpu power7", False),
    ("-cpu power8", False),
    ("-cpu power9", True),
    ("-cpu power9_v2.0", True),
    ("-cpu power10", True),
    ("-M pseries,max-cpu-compat=power8 -cpu power9", False),
    ("-M pseries,max-cpu-compat=power7+ -cpu power10", False),
    ("-M pseries,max-cpu-compat=power9 -cpu power10", True),
    ("-M pseries,max-cpu-compat=power10 -cpu power9", True),
])
def test_power9_capable_depends_on_cpu_and_max_cpu_compat(options, capable):
    assert parse_options(options).power9_capable() is capable


@pytest.mark.parametrize("host_cpu, capable", [("power8", False), ("power9", True), ("power10", True)])
def test_power9_capable_of_host_cpu_uses_the_host(host_cpu, capable):
    assert parse_options("-cpu host").power9_capable(host_cpu) is capable


def test_host_cpu_family_without_a_host_is_refused():
    with pytest.raises(ConfigError, match="unable to find CPU model 'host'"):
        parse_options("-cpu host").power9_capable()


# --- -smp ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version, threads, vsmt", [
    ((4, 1), 1, 8), ((4, 1), 2, 8), ((4, 1), 8, 8),
    ((4, 2), 1, 1), ((4, 2), 2, 2), ((10, 1), 4, 4), ((10, 1), 8, 8),
], ids=str)
def test_vsmt_is_threads_from_pseries_4_2_and_at_least_8_before(version, threads, vsmt):
    config = parse_options(f"{machine(version)} -smp {threads},threads={threads}")
    assert config.vsmt == vsmt


@pytest.mark.parametrize("options, servers", [
    ("-M pseries -smp 4,maxcpus=8,threads=2", 8),
    ("-M pseries-4.1 -smp 4,maxcpus=8,threads=2", 32),
    ("-M pseries-4.1 -smp 1", 8),
    ("-M pseries -smp 1", 1),
])
def test_nr_servers_is_max_cpus_times_vsmt_over_threads(options, servers):
    assert parse_options(options).nr_servers == servers


def test_nr_servers_rounds_up():
    config = MachineConfig(version=(4, 1), max_cpus=1, threads=3)  # 1 * 8 / 3
    assert config.nr_servers == 3


@pytest.mark.parametrize("options, ids", [
    ("-M pseries-4.1 -smp 4,threads=2", [0, 1, 8, 9]),
    ("-M pseries -smp 4,threads=2", [0, 1, 2, 3]),
    ("-M pseries-4.1 -smp 3", [0, 8, 16]),
])
def test_vcpu_id_maps_cpu_index_through_vsmt(options, ids):
    config = parse_options(options)
    assert [config.vcpu_id(i) for i in range(config.smp_cpus)] == ids


@pytest.mark.parametrize("words", [
    ["-smp", "9" * 5000],
    ["-M", "pseries-" + "9" * 5000 + ".0"],
], ids=["smp", "machine"])
def test_overlong_number_is_refused_as_config_error(words):
    config_error(words)


# --- the command line as a whole ----------------------------------------------------------------


def test_unknown_top_level_option_is_refused():
    assert config_error("-foo").message == "-foo: invalid option"


def test_a_bare_word_is_a_disk_image_on_the_default_scsi_bus_as_qemu_reads_it():
    """qemu-system-ppc64 pseries answers "pseries: Could not open 'pseries'": a bare word is the
    -hda image. The model does not open files; the disk needs the spapr-vscsi it would sit on."""
    config = parse_options("-nodefaults disk.img")
    assert config.scsi_buses == 1
    assert ("disk.img", "a disk image (-hda) on the default SCSI bus; the file is not opened "
            "here") in config.ignored


@pytest.mark.parametrize("flag", ["-M", "-machine", "-cpu", "-smp", "-accel"])
def test_option_missing_its_argument_is_refused(flag):
    assert config_error(f"-cpu power9 {flag}").message == f"{flag}: requires an argument"


def test_list_of_words_is_accepted_like_a_string():
    text = "-M pseries-4.2,ic-mode=xive -cpu power9 -smp 4,threads=2 -accel kvm,kernel-irqchip=on"
    assert parse_options(text.split()) == parse_options(text)


def test_empty_options_give_the_defaults():
    assert parse_options("") == parse_options([]) == parse_options(()) == MachineConfig()


def test_options_are_recorded_as_words():
    assert parse_options("-M pseries -cpu power9").options == ("-M", "pseries", "-cpu", "power9")


def test_shell_quotes_are_honoured():
    assert parse_options("-M 'pseries-4.0,ic-mode=xics'").version == (4, 0)


def test_unbalanced_quote_is_refused():
    config_error("-M 'pseries")


@pytest.mark.parametrize("options", [
    "-M pseries,,ic-mode=xics",
    "-M pseries,ic-mode=xi,,cs",
    "-M pseries,,",
    "-smp 4,,threads=2",
    "-accel kvm,,kernel-irqchip=on",
])
def test_doubled_comma_is_refused_without_crashing(options):
    config_error(options)


@pytest.mark.parametrize("options", [
    "-foo", "-M q35", "-M pseries,ic-mode=bad", "-M pseries-3.0,ic-mode=xics",
    "-M pseries,kernel-irqchip=bad,accel=kvm", "-accel tcg,kernel-irqchip=on", "-accel foo",
    "-M pseries,max-cpu-compat=power42", "-M pseries,foo=1", "-cpu power11",
    "-smp 4,maxcpus=2", "-smp 4097", "-smp 3,threads=2", "-smp x", "-cpu", "-M 'x",
])
def test_every_refusal_is_an_input_error(options):
    error = config_error(options)
    assert isinstance(error, InputError)
    assert error.message


def test_refusal_after_valid_options_returns_nothing():
    result = None
    with pytest.raises(ConfigError):
        result = parse_options("-M pseries-4.0,ic-mode=xive -cpu power9 -smp 4 -enable-kvm -foo")
    assert result is None


def test_parsing_keeps_no_state_between_calls():
    config_error("-enable-kvm -M pseries,ic-mode=xics -cpu power11")
    assert parse_options("") == MachineConfig()


def test_config_is_immutable():
    config = parse_options("-cpu power9")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.cpu = "power8_v2.0"  # type: ignore[misc]


# --- command_line() -----------------------------------------------------------------------------


def test_command_line_of_defaults_is_canonical():
    assert parse_options("").command_line() == "-M pseries-10.1 -cpu power10_v2.0 -smp 1"


def test_command_line_spells_every_option():
    config = parse_options("-M pseries-4.2,ic-mode=xive,max-cpu-compat=power9 -cpu POWER10 "
                           "-smp 2,maxcpus=8,threads=2 -accel kvm,kernel-irqchip=off -accel tcg")
    assert config.command_line() == (
        "-M pseries-4.2,ic-mode=xive,max-cpu-compat=power9 -cpu power10_v2.0 "
        "-smp 2,maxcpus=8,threads=2 -accel kvm,kernel-irqchip=off -accel tcg"
    )


def test_command_line_makes_the_default_cpu_explicit():
    # Documented limitation: cpu_explicit does not round trip, command_line() always writes -cpu.
    config = parse_options("-M pseries-4.0")
    again = parse_options(config.command_line())
    assert not config.cpu_explicit
    assert again.cpu_explicit
    assert again.cpu == config.cpu


# --- property tests on bad input ----------------------------------------------------------------

VALID_IC_MODES = {"xics", "xive", "dual"}
FLAGS = ["-M", "-machine", "-cpu", "-smp", "-accel", "-enable-kvm", "--enable-kvm"]


def parses_or_refuses(options) -> None:
    """parse_options either returns a MachineConfig or raises ConfigError, nothing else."""
    try:
        result = parse_options(options)
    except ConfigError as error:
        assert error.message
        return
    assert isinstance(result, MachineConfig)


@given(st.text())
def test_arbitrary_text_parses_or_raises_config_error(text):
    parses_or_refuses(text)


@given(st.text().filter(lambda value: value not in VALID_IC_MODES))
def test_arbitrary_bad_ic_mode_is_refused_as_bad_value(value):
    error = config_error(["-M", "pseries,ic-mode=" + value.replace(",", ",,")])
    assert 'Bad value for "ic-mode" property' in error.message


@given(st.lists(st.text()))
def test_arbitrary_word_lists_parse_or_raise_config_error(words):
    parses_or_refuses(words)


@given(st.lists(st.one_of(st.sampled_from(FLAGS), st.text(max_size=12),
                          st.from_regex(r"[a-z_-]{1,14}=[a-z0-9.:+-]{0,8}", fullmatch=True))))
def test_word_lists_with_real_flags_parse_or_raise_config_error(words):
    parses_or_refuses(words)


# --- round trip through command_line() ----------------------------------------------------------


@st.composite
def valid_options(draw) -> list[str]:
    """Words of a valid configuration: version, ic-mode, kernel-irqchip, cpu, compat, smp, accel."""
    version = draw(st.sampled_from([(2, 7), (3, 0), (3, 1), (4, 1), (4, 2), (9, 0), (10, 1)]))
    props = [f"pseries-{vid(version)}"]
    if version > (3, 0):
        mode = draw(st.sampled_from([None, "xics", "xive", "dual"]))
        if mode:
            props.append(f"ic-mode={mode}")
    machine_irqchip = draw(st.sampled_from([None, "on", "off", "split"]))
    if machine_irqchip:
        spelling = draw(st.sampled_from(["kernel-irqchip", "kernel_irqchip"]))
        props.append(f"{spelling}={machine_irqchip}")
    compat = draw(st.sampled_from([None, *COMPAT_LEVELS]))
    if compat:
        props.append(f"max-cpu-compat={compat}")
    words = ["-M", ",".join(props)]

    cpu = draw(st.sampled_from([None, "power8", "POWER9", "power9_v2.0", "power10", "host"]))
    if cpu:
        words += ["-cpu", cpu]

    threads = draw(st.sampled_from([1, 2, 4, 8]))
    cpus = threads * draw(st.integers(1, 4))
    maxcpus = cpus + threads * draw(st.integers(0, 4))
    smp = [str(cpus)]
    if maxcpus != cpus or draw(st.booleans()):
        smp.append(f"maxcpus={maxcpus}")
    if threads != 1 or draw(st.booleans()):
        smp.append(f"threads={threads}")
    words += ["-smp", ",".join(smp)]

    accel = draw(st.sampled_from([None, "kvm", "tcg", "kvm+tcg", "enable-kvm"]))
    if accel == "enable-kvm":
        words.append("-enable-kvm")
    elif accel:
        for name in accel.split("+"):
            value = name
            if name == "kvm":
                irqchip = draw(st.sampled_from([None, "on", "off", "split"]))
                if irqchip:
                    value += f",kernel-irqchip={irqchip}"
            words += ["-accel", value]
    return words


@settings(max_examples=300)
@given(valid_options())
def test_command_line_round_trips(words):
    config = parse_options(words)
    again = parse_options(config.command_line())
    assert fields(again) == fields(config)
    assert again.command_line() == config.command_line()
