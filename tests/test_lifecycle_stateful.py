"""Random sequences of boots, CAS, resets and KVM faults keep G1-G3 (hypothesis stateful).

A machine may stop only for a reason its configuration allows, and each stop is named here: at
init (a XIVE-only machine on a POWER8, dual with kernel-irqchip=on on a KVM that cannot destroy its
XICS device, kernel-irqchip=on without the KVM XIVE device), at CAS (a guest without XIVE on a
XIVE-only machine), or in any KVM connect under kernel-irqchip=on (a missing capability, or an
injected fault). Nothing else may stop it.
"""

from __future__ import annotations

import errno

from hypothesis import HealthCheck, assume, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from spapr_irq import PRESETS, Machine, MachineError, StateError, papr, parse_options

HOSTS = sorted(PRESETS)
#: The errnos a KVM call can fail with on its own (host.faults).
ERRNOS = (errno.ENOMEM, errno.ENXIO, errno.EIO, errno.ENOSPC)
NO_KVM_XIVE = "kernel_irqchip requested but unavailable: IRQ_XIVE capability must be present for KVM"
XICS_UNAVAILABLE = ("Guest requested unavailable interrupt mode (XICS), either don't set the ic-mode "
                    "machine property or try ic-mode=xics or ic-mode=dual")


class MachineLifecycle(RuleBasedStateMachine):
    """A pseries machine on a random host, driven through boots and resets."""

    machine: Machine | None = None

    @initialize(
        host=st.sampled_from(HOSTS),
        mode=st.sampled_from(["dual", "xics", "xive"]),
        irqchip=st.sampled_from([None, "on", "off"]),  # None: kernel-irqchip not given (allowed)
        smp=st.integers(min_value=1, max_value=3),
    )
    def create(self, host, mode, irqchip, smp):
        options = f"-M pseries,ic-mode={mode}" + (f",kernel-irqchip={irqchip}" if irqchip else "")
        options += f" -cpu {'host' if PRESETS[host].has_kvm else 'power9'} -smp {smp}"
        self.mode, self.irqchip = mode, irqchip or "allowed"
        self.stopped = False
        self.options, self.host = options, host
        machine = Machine(parse_options(options), PRESETS[host])
        try:
            machine.start()
        except MachineError as exc:
            assert machine.runstate == "shutdown" and machine.leaks() == []
            assert self._refused_at_init(machine, exc), exc.text
            assume(False)  # refused at init, for a named reason: nothing more to drive
        self.machine = machine
        self.advertised = self.machine.advertised_byte23

    def _refused_at_init(self, machine: Machine, exc: MachineError) -> bool:
        host = PRESETS[self.host]
        if exc.text == "XIVE-only machines require a POWER9 CPU":
            return self.mode == "xive" and not machine.power9_capable
        if exc.message == "KVM is incompatible with ic-mode=dual,kernel-irqchip=on":
            return self.mode == "dual" and self.irqchip == "on" and host.has_kvm
        if exc.text == NO_KVM_XIVE:
            return self.mode == "xive" and self.irqchip == "on" and not host.xive_native
        return False

    @precondition(lambda self: self.machine is not None and not self.stopped)
    @rule(nth=st.integers(min_value=1, max_value=12), code=st.sampled_from(ERRNOS))
    def arm_fault(self, nth, code):
        if self.machine.kvm is not None:
            self.machine.kvm.faults.fail(code, nth=nth)

    @precondition(lambda self: self.machine is not None and not self.stopped)
    @rule(guest=st.sampled_from(["linux-xive", "linux-xive-off", "linux-legacy"]))
    def boot(self, guest):
        """From firmware after a reset; otherwise a kexec into the mode negotiated before, which
        a kernel without XIVE cannot run (it panics; the machine runs on, awaiting a reset)."""
        negotiated_xive = papr.ov5_byte(self.machine.ov5_cas, 23) & papr.OV5_XIVE_EXPLOIT
        try:
            self._run(lambda: self.machine.boot(guest), guest)
        except StateError as exc:
            assert guest == "linux-legacy" and negotiated_xive, exc
            assert "XICS: Cannot find a Presentation Controller !" in str(exc)

    @precondition(lambda self: self.machine is not None and not self.stopped)
    @rule()
    def reset(self):
        self._run(self.machine.reset, None)

    @precondition(lambda self: self.machine is not None and self.stopped)
    @rule()
    def start_again(self):
        """QEMU exited; the user starts the same configuration again, on a fresh VM."""
        self.machine = Machine.create(self.options, host=self.host)
        self.stopped = False
        assert self.machine.advertised_byte23 == self.advertised

    def _run(self, action, guest):
        kvm = self.machine.kvm
        fired = len(kvm.faults.fired) if kvm is not None else 0
        try:
            action()
        except MachineError as exc:
            self.stopped = True
            assert self.machine.runstate == "shutdown"
            faulted = kvm is not None and len(kvm.faults.fired) > fired
            assert self._legitimate_stop(exc, guest, faulted), exc.text

    def _legitimate_stop(self, exc: MachineError, guest, faulted: bool) -> bool:
        if exc.text == XICS_UNAVAILABLE:  # only a guest without XIVE asks for XICS there
            return exc.stage == "cas" and self.mode == "xive" and guest == "linux-legacy"
        if exc.message.startswith("kernel_irqchip requested but unavailable: "):
            if self.irqchip != "on":
                return False
            return faulted or exc.text == NO_KVM_XIVE and not PRESETS[self.host].xive_native
        return False

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
            assert not any(call.startswith("create_device") for call in self.machine.kvm.calls)

    @invariant()
    def active_controller_matches_the_cas_result(self):
        if self.machine is None or self.stopped:
            return
        negotiated = papr.ov5_byte(self.machine.ov5_cas, 23) & papr.OV5_XIVE_EXPLOIT
        expected = self.machine.xive if (negotiated or self.machine.xics is None) else self.machine.xics
        assert self.machine.active is expected


TestMachineLifecycle = MachineLifecycle.TestCase
TestMachineLifecycle.settings = settings(max_examples=150, stateful_step_count=12, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.filter_too_much])
