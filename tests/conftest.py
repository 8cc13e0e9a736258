"""Shared helpers: build machines and assert the idle invariants after each case."""

from __future__ import annotations

import pytest

from spapr_irq import Machine, MachineError

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
