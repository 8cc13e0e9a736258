"""A guest moved around (hypothesis stateful): workloads, CPU hot-plug and unplug, resets,
stop/cont and migrations to random POWER9 hosts, emulated or in-kernel, interleaved. The guest
must see one consistent machine throughout: the same interrupt mode, every interrupt it is sent
handled exactly once, and nothing left behind (G1, G3, G5)."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from spapr_irq import Event, Machine, Workload

#: Hosts whose CPU a POWER9 guest runs on: TCG, and POWER9 KVMs with and without KVM XIVE,
#: nested (software XICS) and with old firmware.
HOSTS = ["tcg", "power9-linux-5.10", "power9-linux-4.19", "power9-nested-linux-5.10",
         "power9-oldfw-linux-5.4"]
MAX_CORES = 4


def options(mode: str, host: str) -> str:
    return (f"-M pseries,ic-mode={mode} -cpu {'power9' if host == 'tcg' else 'host'} "
            f"-smp 1,maxcpus={MAX_CORES}")


class GuestMoves(RuleBasedStateMachine):
    machine: Machine

    @initialize(mode=st.sampled_from(["xics", "xive", "dual"]),
                guest=st.sampled_from(["linux-xive", "linux-xive-off"]),
                host=st.sampled_from(HOSTS))
    def boot(self, mode, guest, host):
        self.mode, self.guest, self.host = mode, guest, host
        self.machine = Machine.create(options(mode, host), host=host)
        self.lsi = 0x1FFF  # a level-sensitive device of the machine: claimed on every host
        self.machine.claim_irq(self.lsi, lsi=True)
        self._start_guest()
        self.expected_mode = self.machine.interrupt_mode
        self.cores: set[int] = set()  # hot-plugged cores, each online in the guest
        self.migrations = 0

    def _start_guest(self) -> None:
        self.machine.boot(self.guest)
        self.machine.driver.drain()
        self.machine.driver.startup(self.lsi, 0, 5, lsi=True)  # its driver's request_irq

    # -- the guest's life ------------------------------------------------------------------------------
    @rule(data=st.data())
    def workload(self, data):
        vcpus = sorted(self.machine.vcpus)
        events = data.draw(st.lists(st.one_of(
            st.builds(Event, st.just("msi"), st.sampled_from(vcpus), st.integers(4, 6)),
            st.builds(lambda to, frm: Event("ipi", to, source=frm), st.sampled_from(vcpus),
                      st.sampled_from(vcpus))), max_size=5))
        handled = Workload(self.machine).run(events, drain_each=True)  # IPIs to one CPU coalesce
        assert Counter((h.vcpu, h.kind) for h in handled) == Counter((e.vcpu, e.kind) for e in events)

    @rule()
    def device_line(self):
        """The LSI device raises its line; the guest's handler lowers it."""
        self.machine.set_irq(self.lsi, 1)
        assert self.machine.driver.drain() == [(0, "lsi", self.lsi)]

    @precondition(lambda self: len(self.cores) < MAX_CORES - 1)
    @rule(data=st.data())
    def hotplug(self, data):
        core = data.draw(st.sampled_from(sorted(set(range(1, MAX_CORES)) - self.cores)))
        vcpu, = self.machine.hotplug_cpu(core)
        self.machine.driver.drain()  # the hot-plug event
        self.machine.driver.online_cpu(vcpu)
        self.cores.add(core)

    @precondition(lambda self: self.cores)
    @rule(data=st.data())
    def unplug(self, data):
        core = data.draw(st.sampled_from(sorted(self.cores)))
        self.machine.driver.offline_cpu(core)
        self.machine.unplug_cpu(core)
        self.machine.driver.drain()
        self.cores.discard(core)

    @rule()
    def reboot(self):
        """system_reset, then the same guest boots again (CAS again)."""
        self.machine.reset()
        self._start_guest()

    @rule()
    def stop_and_cont(self):
        self.machine.stop()
        self.machine.cont()

    @rule(host=st.sampled_from(HOSTS))
    def migrate(self, host):
        source = self.machine
        stream = source.save()
        target = Machine.create(options(self.mode, host), host=host, incoming=True)
        target.claim_irq(self.lsi, lsi=True)  # the same devices
        for core in sorted(self.cores):  # and the same cores
            target.hotplug_cpu(core)
        target.load(stream)
        target.resume_guest(source.driver, source.guest)
        self.machine, self.host = target, host
        self.migrations += 1
        event(f"migrated {self.mode} ({self.expected_mode}) to {target.backend}")

    # -- what the guest must always see ------------------------------------------------------------------
    @invariant()
    def one_consistent_machine(self):
        machine = self.machine
        assert machine.runstate == "running"
        assert machine.interrupt_mode == self.expected_mode
        assert sorted(machine.vcpus) == [0, *sorted(self.cores)]
        assert machine.leaks() == []


TestGuestMoves = GuestMoves.TestCase
TestGuestMoves.settings = settings(max_examples=120, stateful_step_count=15, deadline=None,
                                   suppress_health_check=[HealthCheck.too_slow])
