"""QEMU's human monitor text, read back: normalising `info pic` so two runs can be compared.

`info pic` prints heap pointers (``%p``) and the state of a running guest: what is pending at the
instant it is read, where the queues stand, which CPU the guest chose for a device interrupt. None
of that says whether two controllers were set up alike. :func:`normalize_info_pic` replaces
exactly those values with ``*`` (pointers with ``<ptr>``) and keeps everything the platform and the
guest's setup decide: the sources and their kinds, priorities, masks, EISNs, queue sizes, the CPPR
and the CAM lines. The model's ``Machine.info_pic(normalize=True)`` and ``spapr-irq conform`` use
this one function, so both sides of a comparison are normalised the same way.
"""

from __future__ import annotations

import re

_POINTER = re.compile(r"0x[0-9a-f]+|\(nil\)")

# XICS: CPU %d XIRR=%08x (%p) PP=%02x MFRR=%02x -- keep the CPPR (the top byte of XIRR).
_XICS_CPU = re.compile(r"^(CPU -?\d+ XIRR=[0-9a-f]{2})[0-9a-f]{6} \((?:0x[0-9a-f]+|\(nil\))\) "
                       r"PP=[0-9a-f]{2} MFRR=[0-9a-f]{2}$")
# XICS: ICS %4x..%4x %p
_XICS_ICS = re.compile(r"^(ICS +[0-9a-f]+\.\.[0-9a-f]+) (?:0x[0-9a-f]+|\(nil\))$")
# XICS source:   %4x %s %02x %02x -- the status bits (sent, rejected, masked-pending) are live.
_XICS_SOURCE = re.compile(r"^(  [ 0-9a-f]{4} (?:MSI|LSI) ([0-9a-f]{2})) [0-9a-f]{2}$")
# XIVE ring: NSR CPPR IPB LSMFB ACK# INC AGE PIPR W2 -- NSR, IPB and PIPR are what is pending now.
_XIVE_RING = re.compile(r"^(CPU\[[0-9a-f]{4}\]: [ A-Z]{4}    )([0-9a-f]{2})(   [0-9a-f]{2}  )"
                        r"([0-9a-f]{2})(    [0-9a-f]{2}   [0-9a-f]{2}  [0-9a-f]{2}  [0-9a-f]{2}   )"
                        r"([0-9a-f]{2})(  [0-9a-f]{8})$")
# XIVE source: "  %08x %s %c%c%c %s %08x " then, unmasked with a valid END,
# "%3d/%d % 6d/%5d @%x ^%d [ six words ]".
_XIVE_SOURCE = re.compile(r"^(  [0-9a-f]{8} (?:MSI|LSI) )([-P][-Q][ A]) ([ M]) ([0-9a-f]{8}) (.*)$")
_XIVE_END = re.compile(r"^ *-?\d+/(\d+) +-?\d+/ *(\d+) @[0-9a-f]+ \^[01] \[ .*\]$")


def normalize_info_pic(text: str) -> str:
    """`info pic` with pointers and run-time values replaced; lines in the same order."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        out.append(_normalize_line(line))
    return "\n".join(out)


def _normalize_line(line: str) -> str:
    match = _XICS_CPU.match(line)
    if match:
        return f"{match.group(1)}****** (<ptr>) PP=** MFRR=**"
    match = _XICS_ICS.match(line)
    if match:
        return f"{match.group(1)} <ptr>"
    match = _XICS_SOURCE.match(line)
    if match:
        # A masked source (priority 0xff) cannot be in flight: its status is kept.
        return match.group(0) if match.group(2) == "ff" else f"{match.group(1)} **"
    match = _XIVE_RING.match(line)
    if match:
        head, _nsr, mid, _ipb, rest, _pipr, w2 = match.groups()
        return f"{head}**{mid}**{rest}**{w2}"
    match = _XIVE_SOURCE.match(line)
    if match:
        head, pq, masked, eisn, end = match.groups()
        if masked == "M":  # routed nowhere: its PQ is the guest's mask, not traffic
            return line.rstrip()
        end_match = _XIVE_END.match(end)
        if end_match:
            end = f"  */{end_match.group(1)}      */{end_match.group(2)} @<qaddr> ^* [ queue ]"
        return f"{head}*** {masked} {eisn} {end}".rstrip()
    return _POINTER.sub("<ptr>", line) if line.startswith("ICS") else line.rstrip()
