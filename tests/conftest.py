"""Shared helpers: build machines and assert the idle invariants after each case."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from spapr_irq import Machine, MachineError

# CI runs every property test on the same examples (derandomized, no example database), so main
# never turns red by chance; a local run draws new examples each time and remembers failures.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")

P9 = "-cpu power9"


def make(options: str = P9, host: str = "power9-linux-5.10", **kw) -> Machine:
    return Machine.create(options, host=host, **kw)


def refused(options: str, host: str = "power9-linux-5.10", guest: str | None = None) -> MachineError:
    """Create (and boot `guest`), expecting the machine to stop; returns the error."""
    with pytest.raises(MachineError) as info:
        machine = Machine.create(options, host=host)
        if guest:
            machine.boot(guest)
    return info.value


def assert_clean(machine: Machine) -> None:
    """G3 idle state: nothing leaked, and a stopped machine holds nothing in KVM."""
    assert machine.leaks() == []
    if machine.runstate == "shutdown" and machine.kvm is not None:
        assert machine.kvm.fds == {}
        assert machine.kvm.rtas_tokens == {}
        assert not machine.kvm.irqchip_in_kernel


def booted_xive(irqchip: str, faults=None) -> Machine:
    """A 2-vCPU POWER9 XIVE machine on a 5.10 host, its Linux guest booted in XIVE mode."""
    machine = Machine.create(f"-M pseries,ic-mode=xive,kernel-irqchip={irqchip} -cpu power9 -smp 2",
                             host="power9-linux-5.10", faults=faults)
    assert machine.boot("linux-xive") == "xive"
    assert machine.backend == ("emulated" if irqchip == "off" else "kvm")
    return machine


def migrate_xive(source: Machine, target: Machine) -> None:
    """QEMU's path for a XIVE guest: stop both, the source's vmstate into the target with the
    guest's RAM (the event queues live there) and the guest's own state, continue both."""
    import copy

    source.stop()
    target.stop()
    state = source.xive.pre_save()
    target.memory._pages = copy.deepcopy(source.memory._pages)
    target.xive.post_load(state)
    target.driver = copy.deepcopy(source.driver, memo={id(source): target})
    target.cont()
    source.cont()
