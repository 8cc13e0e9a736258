"""Mutation check: change the model in small ways and see that the test suite notices each change.

Each mutant is one textual edit of one source file, standing for a rule the tests must pin. For
every mutant the package is copied, the edit applied, and the suite run on the copy (derandomized,
stopping at the first failure); a mutant the suite does not fail is reported as surviving.

    python tools/mutants.py            # every mutant, two at a time
    python tools/mutants.py -k leaks   # the mutants whose name contains "leaks"

Exit status 0 when every mutant is killed, 1 when one survives, 2 when an edit no longer applies.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # inside src/spapr_irq
    old: str
    new: str


MUTANTS = [
    # -- leaks(), by kind ------------------------------------------------------------------------------
    Mutant("leaks-return-nothing", "machine/leaks.py",
           "        leaks: list[Leak] = []\n        intcs = self._controllers()",
           "        return []\n        leaks: list[Leak] = []\n        intcs = self._controllers()"),
    Mutant("leaks-without-rtas-tokens", "machine/leaks.py",
           "            if extra or not xics_kernel:", "            if False:"),
    Mutant("leaks-without-unowned-fds", "machine/leaks.py",
           "            if fd not in owners:", "            if False:"),
    Mutant("leaks-without-mappings", "machine/leaks.py",
           "            if xive is None or fd != xive.fd or pgoff not in xive.mappings:",
           "            if False:"),
    Mutant("leaks-without-registrations", "machine/leaks.py",
           "            self._registration_leaks(leaks)\n", ""),
    Mutant("leaks-without-vcpus", "machine/leaks.py",
           "            if owner is None or owner is not self.active:", "            if False:"),
    Mutant("leaks-without-irqs", "machine/leaks.py",
           "            self._irq_leaks(leaks)\n", ""),
    # -- init order and the probe ------------------------------------------------------------------------
    Mutant("split-after-the-power9-checks", "releases.py",
           '    init_checks: tuple[str, ...] = ("split", "dual-becomes-xics", "xive-needs-power9",\n'
           '                                    "broken-disconnect")',
           '    init_checks: tuple[str, ...] = ("dual-becomes-xics", "xive-needs-power9", "split",\n'
           '                                    "broken-disconnect")'),
    Mutant("probe-counts-any-error-as-broken", "machine/controllers.py",
           "            broken = exc.errno == E.EEXIST", "            broken = True"),
    # -- QEMU's state word -----------------------------------------------------------------------------
    Mutant("masked-msi-that-fired-not-pending-in-kvm", "intc/xics_kvm.py",
           "pending = status & (XICS_STATUS_ASSERTED if source.lsi else XICS_STATUS_MASKED_PENDING)",
           "pending = status & (XICS_STATUS_ASSERTED if source.lsi else 0)"),
    # -- the explain trace -------------------------------------------------------------------------------
    Mutant("trace-drops-the-rollback-step", "machine/controllers.py",
           '                self._step("connect", f"KVM {intc.label} failed and was rolled back: '
           '{exc.message}",\n                           "rollback")',
           "                pass"),
    Mutant("trace-drops-a-rule", "machine/controllers.py",
           '''self._step("backend", f"{intc.label} emulated (fallback)", rule)''',
           '''self._step("backend", f"{intc.label} emulated (fallback)")'''),
    Mutant("trace-skips-a-passing-check", "machine/controllers.py",
           '            self._step("check", f"{rule}: {outcome.detail}", rule)',
           '            if rule != "xive-needs-power9":\n'
           '                self._step("check", f"{rule}: {outcome.detail}", rule)'),
    Mutant("cas-refusal-without-its-rule", "machine/cas.py",
           '            self._step("cas", f"ic-mode={self.mode} has no XICS", "cas-unavailable")',
           '            self._step("cas", f"ic-mode={self.mode} has no XICS")'),
    Mutant("switch-recorded-before-the-switch", "machine/controllers.py",
           "        self._set_active(wanted)\n        self._step(\"switch\"",
           "        self._step(\"switch\", \"\", why_rule)\n        self._set_active(wanted)\n"
           "        self._step(\"switch\""),
    # -- QEMU's texts ------------------------------------------------------------------------------------
    Mutant("reworded-memory-mapping", "intc/xive_kvm.py",
           '"XIVE: unable to set memory mapping', '"XIVE: cannot set the memory mapping'),
    Mutant("reworded-restore-state", "intc/xics_kvm.py",
           "Unable to restore KVM interrupt controller state", "Cannot restore KVM interrupt state"),
    Mutant("reworded-creating-device", "intc/xive_kvm.py",
           "XIVE: error creating KVM device", "XIVE: cannot create the KVM device"),
    Mutant("reworded-kvm-irq-line", "intc/xics_kvm.py", 'f"kvm_irq_line: ', 'f"KVM_IRQ_LINE: '),
    Mutant("reworded-kvm-init-vcpu", "machine/machine.py",
           'f"kvm_init_vcpu: kvm_get_vcpu failed', 'f"kvm_init_vcpu: create failed'),
    # -- Linux: XICS-on-XIVE and the devices --------------------------------------------------------------
    Mutant("xics-on-xive-refuses-unknown-server", "host/xics_on_xive.py",
           '                pass  # "leave it alone and masked"', "                raise"),
    Mutant("xics-on-xive-icp-reports-ppri-0", "host/xics_on_xive.py",
           "IcpStateWord(xc.cppr, 0, xc.mfrr, 0xFF)", "IcpStateWord(xc.cppr, 0, xc.mfrr, 0)"),
    Mutant("xics-on-xive-int-on-untargeted-succeeds", "host/xics_on_xive.py",
           '            return -E.EINVAL  # "int_on on untargetted interrupt"',
           "            return 0"),
    Mutant("priority-7-kept", "host/device.py",
           "    return priority if priority < 6 or priority == 0xFF else 6",
           "    return priority if priority < 8 or priority == 0xFF else 6"),
    Mutant("irq-line-reports-einval", "host/kvm.py",
           "        if isinstance(device, KvmDevice):\n            device.set_irq(irq, level)",
           "        if isinstance(device, KvmDevice) and device.set_irq(irq, level):\n"
           "            raise KvmError(\"irq_line\", E.EINVAL)"),
    Mutant("duplicate-server-accepted", "host/xics.py",
           "        if server in self.state.icps:\n            raise DeviceErrno(E.EEXIST)",
           "        if False:\n            raise DeviceErrno(E.EEXIST)"),
    Mutant("undefine-removes-every-definition", "host/kvm.py",
           "                    del self._rtas[index]\n                    break",
           "                    del self._rtas[index]"),
    Mutant("no-stale-xive-slot", "host/kvm.py",
           "                self.arch_xive = STALE_SLOT", "                pass"),
    Mutant("mapping-does-not-hold-the-device", "host/kvm.py",
           "        device.files += 1\n        self.mappings", "        self.mappings"),
    Mutant("xive-native-clears-lsi", "host/xive_native.py",
           "        if flags & KVM_XIVE_LEVEL_SENSITIVE:\n            self.lsi.add(srcno)",
           "        self.lsi.discard(srcno)\n        if flags & KVM_XIVE_LEVEL_SENSITIVE:\n"
           "            self.lsi.add(srcno)"),
    # -- QEMU's claims and resets ------------------------------------------------------------------------
    Mutant("xics-claim-keeps-priority-0", "intc/xics.py",
           "            source.priority = source.saved_priority = 0xFF\n", ""),
    Mutant("xive-claim-overwrites-the-eas", "arch/xive.py",
           "        self.eat[lisn] = self.eat.get(lisn, 0) | EAS_VALID | EAS_MASKED",
           "        self.eat[lisn] = EAS_VALID | EAS_MASKED"),
    Mutant("xics-connect-stores-the-fd-early", "intc/xics_kvm.py",
           "            if nr_servers and has_attr(kvm, fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS):",
           "            self.fd = fd\n"
           "            if nr_servers and has_attr(kvm, fd, KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS):"),
    Mutant("h-int-reset-resets-qemus-tables", "intc/xive.py",
           "        # device_cold_reset() of the sPAPR XIVE:",
           "        self.state.reset_tables()\n        # device_cold_reset() of the sPAPR XIVE:"),
    Mutant("esb-any-size", "intc/xive.py", "        if size != 8:\n            return 0\n", ""),
    Mutant("unassigned-reads-all-ones", "machine/dispatch.py",
           "                raise self._sigbus(exc, \"mmio\") from None\n        return 0",
           "                raise self._sigbus(exc, \"mmio\") from None\n        return (1 << (8 * size)) - 1"),
    Mutant("kvm-hv-runs-any-cpu", "machine/machine.py",
           '        if self.accel != "kvm" or self.cpu_model in ("host", self.host.cpu_model):',
           "        if True:"),
    # -- spapr_set_vsmt_mode ---------------------------------------------------------------------------
    Mutant("vsmt-refusal-always-fatal", "machine/machine.py",
           "            if kvm_smt >= threads and vsmt % kvm_smt == 0:",
           "            if False:"),
    Mutant("vsmt-refusal-ignores-threads", "machine/machine.py",
           "            if kvm_smt >= threads and vsmt % kvm_smt == 0:",
           "            if vsmt % kvm_smt == 0:"),
    Mutant("vsmt-user-keeps-the-default-hint", "machine/machine.py",
           "            hints = [] if config.vsmt_user else [", "            hints = [] if False else ["),
    Mutant("vsmt-power-of-2-unchecked", "machine/machine.py",
           "        if threads & (threads - 1):", "        if False:"),
    Mutant("tcg-smt-on-any-cpu", "machine/machine.py",
           '            if (CPU_FAMILIES.index(self.cpu_family) < CPU_FAMILIES.index("power8")',
           '            if (False'),
    Mutant("kvm-smt-possible-power8-all-modes-even-when-old", "host/kvm.py",
           '        if not host.has("smt-mode"):\n            return 0\n', ""),
    # -- the review's second round: fault points, H_IPI, -smp ---------------------------------------
    Mutant("h-ipi-compares-the-low-byte", "host/xics_on_xive_hcalls.py",
           "        if mfrr < target.cppr:", "        if target.mfrr < target.cppr:"),
    Mutant("taken-slot-cannot-run-out-of-memory", "host/kvm.py",
           "        possible = {E.ENOMEM} | ({E.ENXIO}", "        possible = set() if taken else {E.ENOMEM} | ({E.ENXIO}"),
    Mutant("vcpu-fault-after-the-vcore-checks", "host/kvm.py",
           '        if fault:  # the vCPU\'s allocation comes before the vcore checks\n'
           '            raise KvmError("create_vcpu", fault)\n', ""),
    Mutant("connect-fault-before-its-checks", "host/device.py",
           "        if self._early_check(server):\n            return set()\n", ""),
    Mutant("smp-always-cores-first", "config.py",
           "version <= (6, 1), mtype, release.max_cpus,", "False, mtype, release.max_cpus,"),
    Mutant("smp-threads-check-at-parse-time", "smp.py",
           "    return Topology(cpus, sockets, cores, threads, maxcpus)",
           "    if cpus % threads:\n"
           "        raise ConfigError(f\"smp_cpus ({cpus}) must be multiple of threads ({threads})\")\n"
           "    return Topology(cpus, sockets, cores, threads, maxcpus)"),
    Mutant("presented-wins-over-pending", "host/xics_on_xive.py",
           "        state.old_p = word.presented and not word.pending",
           "        state.old_p = word.presented"),
    Mutant("presented-ignored", "host/xics_on_xive.py",
           "        state.old_p = word.presented and not word.pending",
           "        state.old_p = False"),
    # -- QEMU as it is: info pic, default devices, releases (conformance issue) ------------------------
    Mutant("pic-xics-numbers-cpus-by-vcpu-id", "intc/xics.py",
           'lines.append(f"CPU {cpu_index} XIRR=', 'lines.append(f"CPU {vcpu_id} XIRR='),
    Mutant("pic-xics-owner-always-nil", "intc/xics.py",
           "owner = format_pointer(ics_ptr if icp.xirr_owned else 0)", "owner = format_pointer(0)"),
    Mutant("pic-xive-only-the-os-ring", "intc/xive.py",
           'for ring, name in enumerate(("USER", "OS", "POOL", "PHYS")):',
           'for ring, name in [(1, "OS")]:'),
    Mutant("pic-xive-no-queue-window", "intc/xive.py",
           "                    line += self._end_info(self.state.end(end_idx))\n", ""),
    Mutant("normalize-drops-the-cppr", "monitor.py",
           'return f"{match.group(1)}****** (<ptr>) PP=** MFRR=**"',
           'return f"{match.group(1)[:-2]}******** (<ptr>) PP=** MFRR=**"'),
    Mutant("normalize-keeps-the-queue-index", "monitor.py",
           'end = f"  */{end_match.group(1)}      */{end_match.group(2)} @<qaddr> ^* [ queue ]"',
           "pass"),
    Mutant("hotplug-source-on-every-version", "machine/irq.py",
           "    if config.version >= (2, 8):", "    if True:"),
    Mutant("phb-lsis-after-every-vio-device", "machine/irq.py",
           "    devices += [vio(model, None) for model in early] + phb(0)\n"
           "    devices += [vio(model, None) for model in late]\n",
           "    devices += [vio(model, None) for model in early]\n"
           "    devices += [vio(model, None) for model in late] + phb(0)\n"),
    Mutant("nodefaults-keeps-the-nic", "config.py",
           "        nic=b.defaults and b.default_net and not b.nic_none,",
           "        nic=b.default_net and not b.nic_none,"),
    # -- pasted command lines and advise (issue 12) ------------------------------------------------------
    Mutant("vio-reg-low-byte-for-libvirt-vtys", "machine/irq.py",
           "        index = 0xF0 | ((reg >> 12) & 0xF)", "        index = reg & 0xFF"),
    Mutant("netdev-keeps-the-default-nic", "config.py",
           "    if flag == \"-netdev\":\n        b.default_net = False\n",
           "    if flag == \"-netdev\":\n"),
    Mutant("drive-bus-ignored", "config.py",
           "            b.scsi_buses.add(bus)\n        return", "            b.scsi_buses.add(0)\n        return"),
    Mutant("device-errors-without-their-option", "machine/irq.py",
           'raise MachineError(f"{device.option}: {prefix}{exc.message}") from None',
           'raise MachineError(f"{prefix}{exc.message}") from None'),
    Mutant("host-model-without-compat", "domain.py",
           '            words[words.index("-machine") + 1] += f",max-cpu-compat={model.text.strip().lower()}"',
           "            pass"),
    Mutant("advise-prefers-emulated", "advise.py",
           "    setting.score = (len(refused), len(setting.blocked) > 0, len(emulated), len(warned),",
           "    setting.score = (len(refused), len(setting.blocked) > 0, -len(emulated), len(warned),"),
    Mutant("htm-default-beyond-2-11", "machine/machine.py",
           "htm = (config.version <= (2, 11) and not capped", "htm = (config.version <= (3, 0) and not capped"),
    Mutant("tcg-smt-allowed-in-7-2", "machine/machine.py",
           'threads > 1 and config.release.tcg_smt == "refused":', 'threads > 1 and False:'),
    Mutant("legacy-ic-mode-with-prefix", "config.py",
           'raise ConfigError("This machine only uses the legacy XICS backend, don\'t pass "',
           'raise ConfigError(f"{option}: This machine only uses the legacy XICS backend, don\'t pass "'),
    Mutant("machine-keys-keep-underscores", "config.py",
           '        key = key.replace("_", "-")  # QEMU reads machine keys with \'-\' for \'_\'\n', ""),
    Mutant("qemu-7-2-default-cpu-is-v2-2", "releases.py",
           '((7, 2), "power9_v2.0")),', '((7, 2), "power9_v2.2")),'),
    Mutant("ic-mode-property-is-the-option", "conform/compare.py",
           "observed = Observation(0, None, [], machine.mode,", "observed = Observation(0, None, [], config.ic_mode,"),
    Mutant("guest-maps-vdevices-by-name", "guest/profiles.py",
           "                      key=lambda path: int(path.rsplit(\"@\", 1)[1], 16))",
           "                      key=lambda path: path)"),
    # -- migration and CPU hot-plug -------------------------------------------------------------------------
    Mutant("stream-sends-xive-before-ics", "machine/migration.py",
           "        if xics is not None:\n            sections.append(Section(\"ics\"",
           "        if False:\n            sections.append(Section(\"ics\""),
    Mutant("vmstate-equal-unchecked", "machine/vmstate.py", "                if got != count:",
           "                if False:"),
    Mutant("vmstate-footer-unchecked", "machine/vmstate.py",
           "        if footer != QEMU_VM_SECTION_FOOTER or footer_id != section_id:",
           "        if False:"),
    Mutant("post-load-keeps-the-boot-controller", "machine/migration.py",
           '        self._update_active("post-load")\n', ""),
    Mutant("post-load-pushes-nothing-to-kvm", "machine/migration.py",
           "        self.active.push_loaded_state()\n", ""),
    Mutant("load-applies-a-refused-stream-first", "machine/migration.py",
           "        try:\n            sections = decode(",
           "        self.ov5_cas = bytes(26)\n        try:\n            sections = decode("),
    Mutant("replug-connects-a-parked-vcpu-again", "intc/xics.py",
           "        self.xics.icps.pop(vcpu_id, None)",
           "        self.xics.icps.pop(vcpu_id, None)\n        self.kvm_presenters.discard(vcpu_id)"),
    Mutant("hotplug-event-always-on-epow", "machine/hotplug.py",
           "        if papr.ov5_byte(self.ov5_cas, papr.OV5_HP_EVT_BYTE) & papr.OV5_HP_EVT:",
           "        if False:"),
    Mutant("hotplug-ignores-populated-cores", "machine/hotplug.py",
           "        if any(vcpu in self._vcpu_set for vcpu in ids):", "        if False:"),
    Mutant("tcg-to-kvm-msi-pending-from-rejected", "intc/xics_kvm.py",
           "pending = status & (XICS_STATUS_ASSERTED if source.lsi else XICS_STATUS_MASKED_PENDING)",
           "pending = status & (XICS_STATUS_ASSERTED if source.lsi else XICS_STATUS_MASKED_PENDING"
           " | XICS_STATUS_REJECTED)"),
    # -- releases and the checker (issue 11) -----------------------------------------------------------
    Mutant("4-0-dual-refused-only-with-on", "policy.py",
           'ctx.ic_mode == "dual" and ctx.kernel_irqchip != "off":',
           'ctx.ic_mode == "dual" and ctx.kernel_irqchip == "on":'),
    Mutant("kurz-patch-ignores-kvm-xive", "policy.py",
           'if ctx.kvm and ctx.ic_mode == "dual" and not ctx.kvm_has_xive:',
           'if ctx.kvm and ctx.ic_mode == "dual" and ctx.kvm_has_xive is None:'),
    Mutant("broken-disconnect-always-new-text", "policy.py",
           'if ctx.broken_disconnect_text == "too-old":', 'if False:'),
    Mutant("4-0-fallback-warns", "machine/controllers.py",
           "                if policy.fallback_warning:\n", "                if True:\n"),
    Mutant("cas-reboot-every-cas", "machine/cas.py",
           "if now_xive and not had_xive and self.xics", "if now_xive and self.xics"),
    Mutant("4-1-dual-reset-keeps-devices", "machine/controllers.py",
           "        if self.kvm is not None and self.kvm.irqchip_in_kernel:\n"
           "            for intc in self._controllers():\n"
           "                intc.disconnect_kvm()\n", ""),
    Mutant("nr-servers-always-set", "machine/controllers.py",
           "self.config.nr_servers if policy.nr_servers else 0", "self.config.nr_servers"),
    Mutant("old-releases-allow-4096-cpus", "releases.py",
           "irq=irq, base=base, max_cpus=1024,", "irq=irq, base=base, max_cpus=4096,"),
    Mutant("fingerprint-keeps-fd-numbers", "check/fingerprint.py",
           '"fd", "_next_fd", ', ""),
    Mutant("fingerprint-ignores-the-driver", "check/fingerprint.py",
           "        driver = _walk(m.driver, seen)\n", "        driver = None\n"),
    Mutant("g2-allowed-needs-no-warning", "check/invariants.py",
           '    if irqchip == "allowed" and not active.in_kernel and \\\n',
           '    if False and \\\n'),
    Mutant("g3-reset-not-compared", "check/engine.py",
           "            if fp != reference:", "            if False:"),
    Mutant("g4-counts-nothing", "check/invariants.py",
           "    if got != want:\n        return [f\"{_delivery(want, got)}", "    if False:\n        return [f\"{_delivery(want, got)}"),
    Mutant("g5-pending-never-tried", "check/engine.py",
           "                self.first_move(parent_fp, event.arg):", "                False:"),
    Mutant("g1-lockstep-compares-nothing", "check/engine.py",
           "                    if view_i != view_j:", "                    if False:"),
    Mutant("migration-to-any-cpu", "check/engine.py",
           "        return tuple(h for h, cpu in self.guest_cpus.items() if cpu == here)",
           "        return tuple(self.guest_cpus)"),
    Mutant("failed-migration-leaves-source-paused", "check/events.py",
           '            if source.runstate == "paused":  # libvirt resumes', '            if False:  # libvirt resumes'),
    Mutant("hotplug-connect-error-escapes", "machine/hotplug.py",
           "            if isinstance(exc, ConnectError):\n"
           "                raise MachineError(exc.message, exc.hints, stage=\"hotplug\") from None\n",
           ""),
    # -- RHEL's qemu-kvm (issue 12) -----------------------------------------------------------------------
    Mutant("rhel-8-0-0-takes-4-0s-power9-default", "releases.py",
           '    default_cpus=(((4, 0), "power8_v2.0"), ((6, 2), "power9_v2.0")),',
           '    default_cpus=(((3, 1), "power8_v2.0"), ((6, 2), "power9_v2.0")),'),
    Mutant("rhel-keeps-upstream-types", "releases.py",
           "    upstream_types=False,\n", ""),
    Mutant("rhel-type-never-picks-rhel", "releases.py",
           "        if not release.upstream_types and machine_type in release.machine_types():",
           "        if False:"),
    Mutant("first-machine-type-wins", "cmdline.py",
           "            if index == 0 and \"=\" not in prop:\n                named = prop",
           "            if index == 0 and \"=\" not in prop and named is None:\n                named = prop"),
    Mutant("rhel-pseries-is-the-upstream-name", "config.py",
           '        return version, (release.pseries_name if value == "pseries" else value)',
           '        return version, (version_name(version) if value == "pseries" else value)'),
    Mutant("compare-pairs-by-name", "check/compare.py",
           "    pairs = [(c, c) for c in configs] if configs else list(zip(space_configs(space, a),\n"
           "                                                                space_configs(space, b)))",
           "    pairs = [(c, c) for c in (configs or space_configs(space, a))]"),
]
assert all(m.old != m.new for m in MUTANTS), "a mutant that changes nothing proves nothing"


def run(mutant: Mutant, pytest_args: list[str]) -> tuple[Mutant, str]:
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        src = Path(tmp) / "spapr_irq"
        shutil.copytree(ROOT / "src" / "spapr_irq", src)
        path = src / mutant.path
        text = path.read_text()
        if text.count(mutant.old) != 1:
            return mutant, "does not apply"
        path.write_text(text.replace(mutant.old, mutant.new))
        # The real QEMU boots check QEMU, not the edit: skipped here to keep a run short.
        env = {**os.environ, "PYTHONPATH": tmp, "CI": "true", "SPAPR_IRQ_SKIP_REAL_BOOTS": "1"}
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                 *pytest_args], cwd=ROOT, env=env, capture_output=True, text=True)
        return mutant, "killed" if result.returncode else "SURVIVED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="match", default="", help="only mutants whose name contains this")
    parser.add_argument("-j", dest="jobs", type=int, default=2, help="mutants run at once")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (default: the whole suite)")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.match in m.name]
    status = 0
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for mutant, verdict in pool.map(lambda m: run(m, args.pytest_args), chosen):
            print(f"{verdict:14} {mutant.name}", flush=True)
            if verdict == "SURVIVED":
                status = max(status, 1)
            elif verdict == "does not apply":
                status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
