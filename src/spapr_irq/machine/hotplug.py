"""CPU hot-plug: ``device_add``/``device_del`` of a spapr-cpu-core (hw/ppc/spapr.c
spapr_core_pre_plug/plug/unplug_request, hw/ppc/spapr_cpu_core.c).

A core's threads get CPU indices core_id + thread and vCPU ids (core_id / threads) * vsmt +
thread. Plugging creates a presenter on every controller of the mode (connected to the in-kernel
device when there is one; a vCPU QEMU parked at an earlier unplug is still connected and is
skipped) and resets it. Unplugging destroys the presenters; the KVM vCPU is parked, not closed.
The guest's side (bringing the CPU online) is the guest driver's business.
"""

from __future__ import annotations

from .. import papr
from ..errors import MachineError, StateError
from ..intc.base import ConnectError


class CpuHotplug:
    """device_add / device_del of CPU cores (part of the Machine)."""

    def _core_vcpus(self, core_id: int) -> list[int]:
        threads, vsmt = self.config.threads, self.config.vsmt
        return [(core_id // threads) * vsmt + thread for thread in range(threads)]

    def _check_core_id(self, core_id) -> None:
        if not isinstance(core_id, int) or isinstance(core_id, bool):
            raise TypeError("a core id is an int")
        if self.runstate not in ("running", "paused", "inmigrate"):
            raise StateError(f"cannot plug or unplug a CPU: the machine is {self.runstate}")

    def hotplug_cpu(self, core_id: int) -> list[int]:
        """device_add <cpu>-spapr-cpu-core,core-id=N; returns the new vCPU ids. Refused with
        QEMU's text past maxcpus, off a core boundary, or onto a populated core."""
        self._check_core_id(core_id)
        config = self.config
        if config.version < (2, 7):
            raise MachineError("CPU hotplug not supported for this machine", stage="hotplug")
        if core_id % config.threads:
            raise MachineError(f"invalid core id {core_id}", stage="hotplug")
        if not 0 <= core_id < config.max_cpus:
            raise MachineError(f"core id {core_id} out of range", stage="hotplug")
        ids = self._core_vcpus(core_id)
        if any(vcpu in self._vcpu_set for vcpu in ids):
            raise MachineError(f"core {core_id} already populated", stage="hotplug")
        plugged = []
        try:
            for vcpu in ids:
                self._plug_vcpu(vcpu)
                plugged.append(vcpu)
                for intc in self._controllers():  # spapr_cpu_reset: spapr_irq_cpu_intc_reset
                    self._reported(intc.cpu_intc_reset, vcpu)
        except (MachineError, ConnectError) as exc:
            # spapr_core_realize fails: the threads made so far go again (their KVM vCPUs are
            # parked), and device_add reports the error; the machine runs on.
            for vcpu in plugged:
                self._unplug_vcpu(vcpu)
            if isinstance(exc, ConnectError):
                raise MachineError(exc.message, exc.hints, stage="hotplug") from None
            if exc.message.startswith("kvm_init_vcpu"):
                # the new vCPU thread calls kvm_init_vcpu with error_fatal: QEMU exits
                exc.stage = "hotplug"
                self._fatal(exc)
            raise
        self.hotplug_order.extend(ids)
        self._step("hotplug", f"core {core_id}: vCPU(s) {ids} plugged")
        self._hotplug_event()
        return ids

    def _hotplug_event(self) -> None:
        """spapr_hotplug_req_event: an RTAS event is queued and its interrupt pulsed, on the
        hot-plug source if the guest negotiated OV5_HP_EVT at CAS, else on EPOW."""
        if self.runstate == "inmigrate":  # cold-plugged before the stream, as -device is
            return
        if papr.ov5_byte(self.ov5_cas, papr.OV5_HP_EVT_BYTE) & papr.OV5_HP_EVT:
            irq = papr.SPAPR_IRQ_HOTPLUG
        else:
            irq = next(d.irq for d in self.devices if d.name == "EPOW")
        self.set_irq(irq, 1)
        self._step("hotplug", f"event interrupt {irq:#x} pulsed")

    def unplug_cpu(self, core_id: int) -> list[int]:
        """device_del of the core: the presenters go, the KVM vCPUs are parked for a re-plug."""
        self._check_core_id(core_id)
        ids = self._core_vcpus(core_id)
        if not any(vcpu in self._vcpu_set for vcpu in ids):
            raise MachineError(f"Unable to find CPU core with core-id: {core_id}", stage="hotplug")
        if core_id == 0:
            raise MachineError("Boot CPU core may not be unplugged", stage="hotplug")
        for vcpu in ids:
            self._unplug_vcpu(vcpu)
        self._step("hotplug", f"core {core_id}: vCPU(s) {ids} unplugged (KVM vCPUs parked)")
        self._hotplug_event()
        return ids

    def _unplug_vcpu(self, vcpu: int) -> None:
        for intc in self._controllers():
            intc.cpu_intc_destroy(vcpu)
        self.vcpus.remove(vcpu)
        self._vcpu_set.discard(vcpu)
        if vcpu in self.hotplug_order:
            self.hotplug_order.remove(vcpu)
