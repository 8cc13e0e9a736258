"""The Linux XICS driver of a pseries guest (arch/powerpc/sysdev/xics: icp-hv.c, ics-rtas.c,
xics-common.c; spec/linux.md B.3): CPPR 0xff on every CPU, sources routed with ibm,set-xive and
ibm,int-on, IPIs by H_IPI at priority 4, H_XIRR then H_EOI per interrupt.
"""

from __future__ import annotations

from .driver import Driver, Handled

XICS_IPI = 2
XICS_IRQ_SPURIOUS = 0
IPI_PRIORITY = 4
DEFAULT_PRIORITY = 5
LOWEST_PRIORITY = 0xFF


class XicsDriver(Driver):
    """What a Linux pseries guest does with XICS: CPPR 0xff on every CPU, sources routed with
    ibm,set-xive and ibm,int-on, IPIs by H_IPI at priority 4, H_XIRR then H_EOI per interrupt."""

    def __init__(self, machine) -> None:
        self.m = machine
        self.handled: list[Handled] = []
        self.lsi: set[int] = set()  # device lines the driver knows are level-sensitive
        self.devices: dict[int, str] = {}  # irq -> "msi" | "lsi", as requested by drivers
        self.warnings: list[str] = []

    def _hcall(self, vcpu: int, name: str, *args: int) -> tuple[int, ...]:
        answer = self.m.hcall(vcpu, name, *args)
        if answer[0] != 0:
            self.warnings.append(f"{name} returned {answer[0]}")
        return answer

    def _rtas(self, vcpu: int, name: str, *args: int, nret: int = 1) -> tuple[int, ...]:
        answer = self.m.rtas(vcpu, name, *args, nret=nret)
        if answer[0] != 0:
            self.warnings.append(f"{name} returned {answer[0]}")
        return answer

    # -- boot ------------------------------------------------------------------------------------------
    def init(self) -> None:
        """xics_init, then xics_setup_cpu on each CPU: open the CPPR to accept everything."""
        self.online = set(self.m.vcpus)
        for vcpu in self.m.vcpus:
            self._hcall(vcpu, "H_CPPR", LOWEST_PRIORITY)

    def online_cpu(self, vcpu: int) -> None:
        """A hot-plugged CPU coming up (xics_setup_cpu): its CPPR opened."""
        self.online.add(vcpu)
        self._hcall(vcpu, "H_CPPR", LOWEST_PRIORITY)

    def offline_cpu(self, vcpu: int) -> None:
        """Before a CPU is unplugged (xics_migrate_irqs_away): CPPR 0, then every source served
        by it is moved to the boot CPU with get-xive/set-xive."""
        self.online.discard(vcpu)
        self._hcall(vcpu, "H_CPPR", 0)
        target = next(v for v in self.m.vcpus if v != vcpu)
        for irq in self.devices:
            answer = self._rtas(self.m.vcpus[0], "ibm,get-xive", irq, nret=3)
            if answer[0] == 0 and answer[1] == vcpu:
                self._rtas(self.m.vcpus[0], "ibm,set-xive", irq, target, answer[2])

    def shutdown(self) -> None:
        """xics_kexec_teardown_cpu on every CPU: CPPR 0, its MFRR cleared, the IPI flushed."""
        for vcpu in self.m.vcpus:
            self._hcall(vcpu, "H_CPPR", 0)
            self._hcall(vcpu, "H_IPI", vcpu, LOWEST_PRIORITY)
            self._hcall(vcpu, "H_EOI", (0x00 << 24) | XICS_IPI)

    # -- sources (ics-rtas.c) ---------------------------------------------------------------------------
    def map(self, irq: int, lsi: bool = False) -> int:
        """irq_create_mapping (xics_host_map): nothing reaches the platform; the hardware number
        is the vector H_XIRR returns."""
        if lsi:
            self.lsi.add(irq)
        return irq

    def pick_target(self) -> int:
        """xics_get_irq_server for the default affinity: the boot CPU's server."""
        return self.m.vcpus[0]

    def startup(self, irq: int, server: int, priority: int = DEFAULT_PRIORITY, lsi: bool = False
                ) -> None:
        """request_irq: route the source to `server` at `priority`, then int-on."""
        self.devices[irq] = "lsi" if lsi else "msi"
        if lsi:
            self.lsi.add(irq)
        self._rtas(self.m.vcpus[0], "ibm,set-xive", irq, server, priority)
        self._rtas(self.m.vcpus[0], "ibm,int-on", irq)

    def mask(self, irq: int) -> None:
        """ics_rtas_mask_real_irq: int-off, then set-xive to the default server at 0xff."""
        self._rtas(self.m.vcpus[0], "ibm,int-off", irq)
        self._rtas(self.m.vcpus[0], "ibm,set-xive", irq, self.m.vcpus[0], LOWEST_PRIORITY)

    def unmask(self, irq: int, server: int, priority: int = DEFAULT_PRIORITY) -> None:
        """ics_rtas_unmask_irq: set-xive to the server at the priority, then int-on."""
        self._rtas(self.m.vcpus[0], "ibm,set-xive", irq, server, priority)
        self._rtas(self.m.vcpus[0], "ibm,int-on", irq)

    def set_affinity(self, irq: int, server: int) -> None:
        """ics_rtas_set_affinity: read the priority with get-xive, write it back to the server."""
        answer = self._rtas(self.m.vcpus[0], "ibm,get-xive", irq, nret=3)
        if answer[0] == 0:
            self._rtas(self.m.vcpus[0], "ibm,set-xive", irq, server, answer[2])

    # -- IPIs (icp-hv.c) --------------------------------------------------------------------------------
    def send_ipi(self, source: int, target: int) -> None:
        self._hcall(source, "H_IPI", target, IPI_PRIORITY)

    # -- the interrupt path -------------------------------------------------------------------------------
    def handle_one(self, vcpu: int) -> Handled | None:
        """One external exception: H_XIRR, the handler, H_EOI with the CPPR from before."""
        answer = self._hcall(vcpu, "H_XIRR")
        if answer[0] != 0:
            return None
        xirr = answer[1]
        vec = xirr & 0xFFFFFF
        if vec == XICS_IRQ_SPURIOUS:
            return Handled(vcpu, "spurious", 0)
        if vec == XICS_IPI:
            self._hcall(vcpu, "H_IPI", vcpu, LOWEST_PRIORITY)  # icp_hv_ipi_action clears MFRR
            kind = "ipi"
        else:
            kind = self.devices.get(vec, "unexpected")
            if vec in self.lsi:
                self.m.set_irq(vec, 0)  # the device handler acks its device: the line drops
        self._hcall(vcpu, "H_EOI", xirr)  # (popped CPPR << 24) | hwirq; the CPPR is xirr's
        handled = Handled(vcpu, kind, vec)
        self.handled.append(handled)
        return handled

    def handle(self, vcpu: int, limit: int = 10_000) -> list[Handled]:
        """Take interrupts on `vcpu` while its external-interrupt line is raised."""
        out = []
        while self.m.irq_pending(vcpu) and len(out) < limit:
            handled = self.handle_one(vcpu)
            if handled is None:
                break
            out.append(handled)
        return out
