"""Random sequences of boots, CAS, resets and KVM faults keep G1-G3 (hypothesis stateful)."""

from __future__ import annotations

import errno

from hypothesis import HealthCheck, assume, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from spapr_irq import PRESETS, Machine, MachineError, papr, parse_options

HOSTS = sorted(name for name in PRESETS if name != "power8-linux-4.19" and name != "power8-linux-5.10")
ERRNOS = (errno.EIO, errno.EEXIST, errno.ENOSPC, errno.EINVAL, errno.EBUSY)


class MachineLifecycle(RuleBasedStateMachine):
    """A POWER9 pseries machine on a random host, driven through boots and resets."""

    machine: Machine | None = None

    @initialize(
        host=st.sampled_from(HOSTS),
        mode=st.sampled_from(["dual", "xics", "xive"]),
        irqchip=st.sampled_from([None, "on", "off"]),
        smp=st.integers(min_value=1, max_value=3),
    )
    def create(self, host, mode, irqchip, smp):
        options = f"-M pseries,ic-mode={mode}" + (f",kernel-irqchip={irqchip}" if irqchip else "")
        options += f" -cpu power9 -smp {smp}"
        self.irqchip = irqchip or "allowed"
        self.stopped = False
        self.options, self.host = options, host
        machine = Machine(parse_options(options), PRESETS[host])
        try:
            machine.start()
        except MachineError:
            assert machine.runstate == "shutdown" and machine.leaks() == []
            assume(False)  # refused at init: clean, and nothing more to drive
        self.machine = machine
        self.advertised = self.machine.advertised_byte23
        self.node_names = set()

    @precondition(lambda self: self.machine is not None and not self.stopped)
    @rule(nth=st.integers(min_value=1, max_value=12), code=st.sampled_from(ERRNOS))
    def arm_fault(self, nth, code):
        if self.machine.kvm is not None:
            self.machine.kvm.faults.fail(code, nth=nth)

    @precondition(lambda self: self.machine is not None and not self.stopped)
    @rule(guest=st.sampled_from(["linux-xive", "linux-xive-off", "linux-legacy"]))
    def boot(self, guest):
        self._run(lambda: self.machine.boot(guest))

    @precondition(lambda self: self.machine is not None and not self.stopped)
    @rule()
    def reset(self):
        self._run(self.machine.reset)

    @precondition(lambda self: self.machine is not None and self.stopped)
    @rule()
    def start_again(self):
        """QEMU exited; the user starts the same configuration again, on a fresh VM."""
        self.machine = Machine.create(self.options, host=self.host)
        self.stopped = False
        assert self.machine.advertised_byte23 == self.advertised

    def _run(self, action):
        try:
            action()
        except MachineError:
            self.stopped = True
            assert self.machine.runstate == "shutdown"

    @invariant()
    def nothing_leaks(self):
        if self.machine is not None:
            assert self.machine.leaks() == []
            if self.stopped and self.machine.kvm is not None:
                assert self.machine.kvm.fds == {}

    @invariant()
    def exactly_one_active_controller_while_running(self):
        if self.machine is not None and not self.stopped:
            assert self.machine.active in (self.machine.xics, self.machine.xive)
            assert self.machine.active is not None

    @invariant()
    def advertised_mode_never_changes(self):
        if self.machine is not None and not self.stopped:
            assert self.machine.advertised_byte23 == self.advertised

    @invariant()
    def kernel_irqchip_is_honoured(self):
        if self.machine is None or self.stopped or self.machine.kvm is None:
            return
        if self.irqchip == "on":
            assert self.machine.active.in_kernel
        if self.irqchip == "off":
            assert not self.machine.kvm.calls or not any(
                call.startswith("create_device") for call in self.machine.kvm.calls)

    @invariant()
    def active_controller_matches_the_cas_result(self):
        if self.machine is None or self.stopped:
            return
        negotiated = papr.ov5_byte(self.machine.ov5_cas, 23) & papr.OV5_XIVE_EXPLOIT
        expected = self.machine.xive if (negotiated or self.machine.xics is None) else self.machine.xics
        assert self.machine.active is expected


TestMachineLifecycle = MachineLifecycle.TestCase
TestMachineLifecycle.settings = settings(max_examples=150, stateful_step_count=12, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
