"""Each subcommand's ``--help``: its options, their defaults and its exit status (what
``spapr-irq COMMAND --help`` prints; the parsing is in :mod:`spapr_irq.cli`)."""

from __future__ import annotations

from .guest.profiles import DEFAULT_GUEST
from .host.host import DEFAULT_HOST

_MACHINE = """  QEMU options    any QEMU command line, as pasted (program name and -- allowed); what
                  changes nothing modeled is listed, what QEMU does not know is its error
  --from-file F   the QEMU line of a libvirt log or a shell script (- for stdin)
  --domain F.xml  a libvirt domain, read as libvirt builds its ppc64 command line
  --qemu VERSION  the QEMU release modeled (default: the newest, or 6.2-rhel8 when the options
                  name a pseries-rhel machine type; spapr-irq releases lists them)"""
_EXIT = "exit status: 0 it runs, 1 QEMU would refuse it (its own text), 2 bad input"
HELP = {
    "resolve": f"""usage: spapr-irq resolve [QEMU options] [--host H] [--guest G] [--fault CALL:ERRNO[:N]] [--json]

Which interrupt mode the guest ends up with, on which backend, and what QEMU prints.

{_MACHINE}
  --host H        a host preset or kvm:cpu=...,kernel=... (default: {DEFAULT_HOST})
  --guest G       a guest profile (default: {DEFAULT_GUEST}; linux-xive-off with -append xive=off)
  --fault C:E[:N] the N-th (default 1st) KVM call C that can fail with errno E fails (C "any")
  --json          one object: qemu, advertised, result, stage, interrupt_mode, backend,
                  warnings, error, ignored_options, note, trace
{_EXIT}""",
    "explain": f"""usage: spapr-irq explain [QEMU options] [--host H] [--guest G] [--fault CALL:ERRNO[:N]]

Every step the machine took, the rule it applied and the guarantee behind it, the result, and the
options accepted that change nothing modeled.

{_MACHINE}
  --host H        default: {DEFAULT_HOST}
  --guest G       default: {DEFAULT_GUEST}
  --fault C:E[:N] as for resolve
{_EXIT}""",
    "matrix": f"""usage: spapr-irq matrix [QEMU options] [--host H ...] [--guest G ...] [--format text|markdown|json]

Every ic-mode x kernel-irqchip cell for each host and guest (default: all of them).

{_MACHINE}
  --format F      text (default), markdown or json (--json is --format json)
exit status: 0, 2 bad input""",
    "pic": f"""usage: spapr-irq pic [QEMU options] [--host H] [--guest G] [--before-cas] [--normalize]
       spapr-irq pic --normalize --file FILE|-

The model's `info pic` in QEMU 7.2's format after the guest booted (or before CAS); or a saved
`info pic` normalised as the conformance comparison does.

{_MACHINE}
  --before-cas    before the guest's CAS
  --normalize     pointers and run-time values replaced
{_EXIT}""",
    "migrate": f"""usage: spapr-irq migrate [QEMU options] --from H --to H [--to-options "QEMU options"] [--guest G] [--json]

Boot on one host, leave interrupts pending, save, load on the other, run on: whether the guest
handled what it would have without the move.

{_MACHINE}
  --to-options O  the destination's options (default: the same)
{_EXIT}""",
    "advise": f"""usage: spapr-irq advise [QEMU options] --host H --host H ... [--guest G ...] [--format text|markdown|json]

For a fleet of hosts: each ic-mode x kernel-irqchip setting on each host, whether the guest can
move between every pair, ranked (refused nowhere, movable, in-kernel everywhere, fewest emulated,
no warning) with the reasons.

{_MACHINE}
  --guest G       default: {DEFAULT_GUEST}
  --format F      text (default), markdown or json
exit status: 0, 2 bad input""",
    "report": f"""usage: spapr-irq report [QEMU options] --out DIR [--host H ...] [--guest G ...]

One self-contained HTML page, DIR/index.html (nothing fetched when it is viewed): the mode matrix
for the hosts and guests as a coloured grid (in-kernel, emulated, refused), each cell linking to
its explain, and for two or more hosts the settings for the fleet, ranked.

{_MACHINE}
  --host H        default: every preset
  --guest G       default: every profile
exit status: 0, 2 bad input""",
    "hosts": "usage: spapr-irq hosts\n\nThe host presets and what each host kernel offers.",
    "guests": "usage: spapr-irq guests\n\nThe guest profiles and what each answers at CAS.",
    "releases": "usage: spapr-irq releases\n\nThe QEMU releases modeled and what each changes.",
}

