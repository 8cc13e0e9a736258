"""The conformance guest: an initramfs whose /init prints what Linux sees between markers.

The archive is a gzip'd newc cpio with busybox and /init, written here so that building it needs
nothing but Python. The report holds the interrupt-controller node of the device tree and
/proc/interrupts; then the guest idles so that QEMU can be read while it runs.
"""

from __future__ import annotations

import gzip
from pathlib import Path

BEGIN = "@@spapr-irq-report-begin@@"
END = "@@spapr-irq-report-end@@"

INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "{BEGIN}"
for d in /proc/device-tree/interrupt-controller*; do
  echo "dt-node: ${{d##*/}}"
  echo "dt-compatible: $(tr '\\0' ' ' < $d/compatible)"
done
cat /proc/interrupts
echo "{END}"
while true; do sleep 1000; done
"""


def _entry(name: str, mode: int, ino: int, data: bytes = b"") -> bytes:
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
    head = b"070701" + "".join(f"{value:08X}" for value in fields).encode() + name.encode() + b"\0"
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def build_initramfs(busybox: Path, out: Path) -> None:
    """Write a gzip'd newc archive with /bin/busybox (static, ppc64le) and /init."""
    entries = [_entry("bin", 0o040755, 1), _entry("bin/busybox", 0o100755, 2, busybox.read_bytes()),
               _entry("init", 0o100755, 3, INIT.encode()), _entry("TRAILER!!!", 0, 4)]
    out.write_bytes(gzip.compress(b"".join(entries), 6))


def parse_report(console: str) -> dict | None:
    """The last complete report on the console: the node names, their compatible strings and
    the interrupt chips Linux registered; None if no report was printed."""
    if END not in console:
        return None
    body = console[console.rindex(BEGIN) + len(BEGIN):console.rindex(END)]
    nodes, compatible, chips = [], [], set()
    for raw in body.replace("\r", "").split("\n"):
        line = raw.strip()
        if line.startswith("dt-node: "):
            nodes.append(line[len("dt-node: "):].split("@")[0])
        elif line.startswith("dt-compatible: "):
            compatible.append(line[len("dt-compatible: "):].strip())
        elif line[:1].isdigit() and ":" in line:
            words = line.split()
            chips.update(w for w in words if w.startswith(("XIVE", "XICS")))
    mode = "xive" if any(c.startswith("XIVE") for c in chips) else "xics" if chips else None
    return {"mode": mode, "dt_nodes": nodes, "dt_compatible": compatible, "chips": sorted(chips)}


if __name__ == "__main__":  # python -m spapr_irq.conform.guest BUSYBOX OUT
    import sys

    build_initramfs(Path(sys.argv[1]), Path(sys.argv[2]))
