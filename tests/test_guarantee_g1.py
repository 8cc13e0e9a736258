"""G1, predictable guest: what the guest can see depends on the configuration only, never the host.

For every configuration of a grid and every host preset, the advertised byte 23, the mode the guest
gets at CAS and the interrupt-controller node are the same on every host where the machine runs; a
host may only change the backend or refuse to run.
"""

from __future__ import annotations

import itertools

import pytest

from spapr_irq import PRESETS, parse_options
from spapr_irq.explore import resolve
from spapr_irq.machine.machine import Machine
from spapr_irq.errors import MachineError

VERSIONS = ("pseries-3.0", "pseries-4.0", "pseries-4.2", "pseries")
MODES = (None, "xics", "xive", "dual")
IRQCHIPS = (None, "on", "off")
CPUS = ("power8", "power9", "power10")
COMPATS = (None, "power8", "power9")


def configurations():
    for version, mode, irqchip, cpu, compat in itertools.product(VERSIONS, MODES, IRQCHIPS, CPUS,
                                                                  COMPATS):
        if version == "pseries-3.0" and mode:
            continue  # refused while parsing; covered by the config tests
        props = [version] + [f"ic-mode={mode}"] * bool(mode) + \
            [f"kernel-irqchip={irqchip}"] * bool(irqchip) + [f"max-cpu-compat={compat}"] * bool(compat)
        yield f"-M {','.join(props)} -cpu {cpu} -smp 2"


def _guest_view(options: str, host: str, guest: str):
    """What the guest sees, or None when this host refuses to run the machine."""
    machine = Machine(parse_options(options), PRESETS[host])
    try:
        machine.start()
    except MachineError:
        return None
    advertised = machine.advertised_byte23
    try:
        mode = machine.boot(guest)
    except MachineError as exc:
        if exc.stage == "cas" and "kernel_irqchip requested" in exc.message:
            return advertised, "refused by host at CAS"
        return advertised, exc.message
    return advertised, mode, machine.intc_node()


@pytest.mark.parametrize("guest", ["linux-xive", "linux-xive-off", "linux-legacy"])
def test_g1_guest_view_is_the_same_on_every_host_that_runs_the_machine(guest):
    checked = 0
    for options in configurations():
        views = {}
        for host in PRESETS:
            view = _guest_view(options, host, guest)
            if view is not None and view[1] != "refused by host at CAS":
                views[host] = view
        distinct = {repr(view) for view in views.values()}
        assert len(distinct) <= 1, (options, views)
        checked += bool(views)
    assert checked > 200


def test_g1_advertised_mode_never_names_host_capabilities():
    # The rejected 2019 patch would have offered xics instead of dual on hosts without KVM XIVE.
    for host in ("power9-linux-4.19", "power9-nested-linux-5.4", "power9-oldfw-linux-5.4"):
        assert resolve("-M pseries -cpu power9", host, "linux-xive").advertised == "dual"
