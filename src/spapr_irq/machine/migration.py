"""Saving a machine into a migration stream and loading one on a destination (QEMU's savevm and
the sPAPR post_load path: spapr_post_load, spapr_irq_post_load).

The sections are QEMU's, in QEMU 7.2's order: guest RAM, ``ics``, ``xive-source``,
``spapr-xive``, then per vCPU ``cpu_common``, ``icp/server`` and ``xive-tctx`` (instance id: the
CPU index), the default PHB's ``spapr_pci`` (its MSI blocks), the machine's ``spapr`` with the
``spapr_option_vector_ov5_cas`` and ``spapr_irq_map`` subsections, and last the vCPUs of
hot-plugged cores, in the order they were plugged. Every controller of the mode is
sent, whichever is active. A destination created with ``incoming=True`` has run init and reset and
waits; :meth:`Migration.load` reads the whole stream against the destination's own sections
before changing anything, so a refused stream leaves it as it was.

The guest's kernel (its driver objects) is not in the stream: a model of guest RAM holds only what
the platform reads (event queues). :meth:`Migration.resume_guest` hands the running kernel over.
"""

from __future__ import annotations

from .. import papr
from ..errors import MachineError, StateError
from ..intc.base import ConnectError
from ..memory import PAGE_SIZE
from .vmstate import LoadError, Section, decode, encode

ICS_RECORD = "records:>IBBBB"  # ics/irq: server, priority, saved_priority, status, flags
END_RECORD = "records:>IIIIIIII"  # spapr-xive/end: w0..w7
MSI_DEV = "list:>III"  # spapr_pci msi_devs: config address, first IRQ, count


class Migration:
    """Save and load (part of the Machine)."""

    # -- the destination -----------------------------------------------------------------------------
    def start_incoming(self, cores=(), lsis=()) -> None:
        """Start as QEMU with -incoming for a source that has hot-plugged `cores` (in plug order)
        and devices holding the LSIs `lsis`: the same machine, waiting for the stream
        (:meth:`load`). A refusal raises MachineError with this machine shut down (QEMU exits)."""
        try:
            self.start(incoming=True)
            for core in cores:
                self.hotplug_cpu(core)
            for irq in lsis:  # the same devices: they claimed their lines at realize
                self.claim_irq(irq, lsi=True)
        except MachineError:
            if self.runstate != "shutdown":
                self._shutdown()
            raise

    # -- what this machine sends and expects ------------------------------------------------------------
    def _vmstate_schemas(self) -> dict[tuple[str, int], tuple[int, tuple]]:
        """(section name, instance) -> (version, (fields, subsections)) for this machine."""
        schemas: dict[tuple[str, int], tuple[int, tuple]] = {
            ("ram", 0): (4, ((("pages", "pages", PAGE_SIZE),), {})),
        }
        if self.xics is not None:
            nr = self.xics.ics.nr_irqs
            schemas[("ics", 0)] = (1, ((("nr_irqs", "u32_equal", nr), ("irqs", ICS_RECORD, nr)), {}))
        if self.xive is not None:
            nr, ends = self.xive.nr_irqs, self.xive.nr_ends
            schemas[("xive-source", 0)] = (1, ((("nr_irqs", "u32_equal", nr),
                                                 ("status", "buffer", nr)), {}))
            schemas[("spapr-xive", 0)] = (1, ((("nr_irqs", "u32_equal", nr), ("eat", "u64", nr),
                                                ("endt", END_RECORD, ends)), {}))
        for cpu_index, _vcpu in self.cpu_indices():
            schemas[("cpu_common", cpu_index)] = (1, ((("halted", "u32", 1),
                                                        ("interrupt_request", "u32", 1)), {}))
            if self.xics is not None:
                schemas[("icp/server", cpu_index)] = (1, ((("xirr", "u32", 1),
                                                            ("pending_priority", "u8", 1),
                                                            ("mfrr", "u8", 1)), {}))
            if self.xive is not None:
                schemas[("xive-tctx", cpu_index)] = (1, ((("regs", "buffer", 64),), {}))
        schemas[("spapr_pci", 0)] = (2, ((("msi_devs", MSI_DEV, 0),), {}))
        schemas[("spapr", 0)] = (3, ((("tb", "u64", 1),), {
            "spapr_option_vector_ov5_cas": (("ov5", "vbuffer", 0),),
            "spapr_irq_map": (("irq_map", "buffer", papr.SPAPR_NR_MSIS),),
        }))
        return schemas

    # -- the source ----------------------------------------------------------------------------------------
    def save(self) -> bytes:
        """Migrate out: stop the VM if it runs (an in-kernel XIVE masks its sources and syncs
        its queues), pull each controller's state (pre_save), and write the stream. The source
        stays paused (QEMU's postmigrate; `cont` resumes it)."""
        was_running = self.runstate == "running"
        if was_running:
            self.stop()
        if self.runstate != "paused":
            raise StateError(f"cannot save: the machine is {self.runstate}")
        schemas = self._vmstate_schemas()
        sections = [Section("ram", 0, 4, {"pages": self.memory.pages()})]
        try:
            xics = self.xics.save_state() if self.xics is not None else None
            xive = self.xive.save_state() if self.xive is not None else None
        except ConnectError as exc:  # a pre_save failed: the migration fails, the guest runs on
            self._step("migration", f"save failed: {exc.message}")
            if was_running:
                self.cont()
            raise MachineError(exc.message, exc.hints, stage="save") from None
        if xics is not None:
            sections.append(Section("ics", 0, 1, {"nr_irqs": self.xics.ics.nr_irqs,
                                                   "irqs": xics["ics"]}))
        if xive is not None:
            sections.append(Section("xive-source", 0, 1, {"nr_irqs": self.xive.nr_irqs,
                                                           "status": xive["source"]}))
            sections.append(Section("spapr-xive", 0, 1, {"nr_irqs": self.xive.nr_irqs,
                                                          "eat": xive["eat"],
                                                          "endt": [tuple(e) for e in xive["endt"]]}))
        def cpu_sections(cpu_index: int, vcpu: int) -> list[Section]:
            out = [Section("cpu_common", cpu_index, 1, {"halted": 0, "interrupt_request": 0})]
            if xics is not None:
                xirr, pending, mfrr = xics["icp"][vcpu]
                out.append(Section("icp/server", cpu_index, 1, {
                    "xirr": xirr, "pending_priority": pending, "mfrr": mfrr}))
            if xive is not None:
                out.append(Section("xive-tctx", cpu_index, 1, {"regs": xive["tctx"][vcpu]}))
            return out

        # The vCPUs of -smp register their state at init, a hot-plugged core's when it is
        # plugged: after the machine's own section (hence QEMU 4.1.0's XIVE regression).
        index_of = {vcpu: cpu_index for cpu_index, vcpu in self.cpu_indices()}
        for cpu_index, vcpu in self.cpu_indices():
            if vcpu not in self.hotplug_order:
                sections += cpu_sections(cpu_index, vcpu)
        sections.append(Section("spapr_pci", 0, 2, {"msi_devs": [
            (0, irq, num) for irq, num in sorted(self.msi_blocks.items())]}))
        machine = Section("spapr", 0, 3, {"tb": self._clock})
        if self.ov5_cas:
            machine.subsections["spapr_option_vector_ov5_cas"] = {"ov5": bytes(self.ov5_cas)}
        if not self.msi.empty():
            machine.subsections["spapr_irq_map"] = {"irq_map": bytes(self.msi.used)}
        sections.append(machine)
        for vcpu in self.hotplug_order:
            sections += cpu_sections(index_of[vcpu], vcpu)
        stream = encode(self.config.machine_type, sections,
                        {s.name: schemas[(s.name, s.instance)][1] for s in sections})
        self._step("migration", f"saved {len(sections)} sections ({len(stream)} bytes): "
                   + ", ".join(sorted({s.name for s in sections})))
        return stream

    # -- the destination -------------------------------------------------------------------------------------
    def load(self, stream: bytes) -> None:
        """Migrate in: read and check the whole stream, then apply it, re-derive the active
        controller from the migrated CAS result (pushing its state into KVM when in-kernel), and
        run. A refusal raises MachineError (stage "load") with QEMU's lines and changes nothing."""
        if self.runstate != "inmigrate":
            raise StateError(f"cannot load a migration stream: the machine is {self.runstate} "
                             "(create it with incoming=True)")
        if not isinstance(stream, (bytes, bytearray, memoryview)):
            raise TypeError("a migration stream is bytes")
        try:
            sections = decode(bytes(stream), self.config.machine_type, self._vmstate_schemas())
            plan = self._check_loaded(sections)
        except LoadError as exc:
            self._step("migration", "refused: " + " / ".join(exc.lines))
            raise MachineError(exc.lines[0], exc.lines[1:], stage="load") from None
        self._guarded("load", self._apply_loaded, plan)
        self.runstate = "running"
        self._guarded("load", self._run_state_changed, True)
        self._step("runstate", "running (migration completed)")

    def _check_loaded(self, sections: list[Section]) -> dict:
        """What the stream says, gathered and checked against this machine before any change."""
        by_name: dict[tuple[str, int], Section] = {(s.name, s.instance): s for s in sections}
        pages = by_name[("ram", 0)].fields["pages"] if ("ram", 0) in by_name else {}
        for number in pages:
            if (number + 1) * PAGE_SIZE > self.memory.size:
                raise LoadError(f"Illegal RAM offset {number * PAGE_SIZE:x}")
        machine = by_name.get(("spapr", 0))
        if machine is None:  # QEMU checks nothing here; the model needs the CAS result
            raise LoadError("error while loading state for instance 0x0 of device 'spapr'")
        ov5 = machine.subsections.get("spapr_option_vector_ov5_cas", {}).get("ov5", b"")
        irq_map = machine.subsections.get("spapr_irq_map", {}).get("irq_map")
        blocks = by_name[("spapr_pci", 0)].fields["msi_devs"] if ("spapr_pci", 0) in by_name else []
        used = bytearray(papr.SPAPR_NR_MSIS)
        for _addr, irq, num in blocks:
            first = irq - papr.SPAPR_IRQ_MSI
            if self.mode != "legacy" and not (0 <= first and first + num <= len(used) and num):
                raise LoadError("error while loading state for instance 0x0 of device 'spapr_pci'")
            if self.mode != "legacy":
                used[first:first + num] = b"\x01" * num
        if self.mode != "legacy" and bytes(used) != bytes(irq_map or bytes(len(used))):
            raise LoadError("error while loading state for instance 0x0 of device 'spapr'")
        vcpu_of = dict(self.cpu_indices())
        plan = {"pages": pages, "ov5": ov5, "tb": machine.fields["tb"], "msi": blocks,
                "irq_map": irq_map}
        if ("ics", 0) in by_name:
            plan["xics"] = {"ics": by_name[("ics", 0)].fields["irqs"], "icp": {
                vcpu_of[s.instance]: (s.fields["xirr"], s.fields["pending_priority"], s.fields["mfrr"])
                for s in sections if s.name == "icp/server"}}
        if ("spapr-xive", 0) in by_name or ("xive-source", 0) in by_name:
            if ("spapr-xive", 0) not in by_name or ("xive-source", 0) not in by_name:
                raise LoadError("error while loading state for instance 0x0 of device 'spapr-xive'")
            xive = by_name[("spapr-xive", 0)].fields
            plan["xive"] = {"eat": xive["eat"], "endt": [list(e) for e in xive["endt"]],
                            "source": by_name[("xive-source", 0)].fields["status"],
                            "tctx": {vcpu_of[s.instance]: s.fields["regs"]
                                     for s in sections if s.name == "xive-tctx"}}
        return plan

    def _apply_loaded(self, plan: dict) -> None:
        self.memory.replace_pages(plan["pages"])
        self._clock = plan["tb"]
        # The default PHB's MSIs (spapr_pci and spapr_irq_map): numbers and owners.
        for irq in [n for n, owner in self.irq_owners.items() if owner.startswith("MSI block")]:
            del self.irq_owners[irq]
        self.msi_blocks = {}
        self.msi.used[:] = plan["irq_map"] or bytes(len(self.msi.used))
        for _addr, irq, num in plan["msi"]:
            self.msi_blocks[irq] = num
            for n in range(irq, irq + num):
                self.irq_owners[n] = f"MSI block {irq:#x}"
        if "xics" in plan:
            self.xics.load_state(plan["xics"])
        if "xive" in plan:
            self.xive.load_state(plan["xive"])
        self._step("migration", f"loaded: CAS result {plan['ov5'].hex() or 'empty'}, "
                   f"{len(plan['pages'])} RAM pages, {len(plan['msi'])} MSI blocks")
        # spapr_irq_post_load: the controller the migrated CAS result asks for, then its post_load.
        self.ov5_cas = plan["ov5"]
        self._update_active("post-load")
        self.active.push_loaded_state()
        self.fdt = self._build_fdt(boot=not self.ov5_cas)

    def resume_guest(self, driver, profile=None) -> None:
        """Hand a migrated guest's running kernel (its interrupt driver) to this machine: in QEMU
        it arrives inside guest RAM."""
        if self.runstate != "running":
            raise StateError(f"cannot resume a guest: the machine is {self.runstate}")
        driver.moved_to(self)
        self.driver = driver
        self.guest = profile
