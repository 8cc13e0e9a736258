"""The mode tables of QEMU's docs/specs/ppc-spapr-xive.rst, reproduced by running the machine.

Rows are ic-mode, columns kernel-irqchip allowed (unset) / off / on. "init" and "CAS" mark where
QEMU stops. The doc's footnote (1) says "requested" where the code and every user log say
"allowed"; the warning text is checked in test_machine_lifecycle.py.
"""

from __future__ import annotations

import pytest

from spapr_irq.explore import matrix

WITH_KVM_XIVE = {  # host power9-linux-5.10
    "linux-xive": {
        "dual": ("XIVE KVM", "XIVE emul.", "XIVE KVM"),
        "xive": ("XIVE KVM", "XIVE emul.", "XIVE KVM"),
        "xics": ("XICS KVM", "XICS emul.", "XICS KVM"),
    },
    "linux-legacy": {
        "dual": ("XICS KVM", "XICS emul.", "XICS KVM"),
        "xive": ("error at CAS", "error at CAS", "error at CAS"),
        "xics": ("XICS KVM", "XICS emul.", "XICS KVM"),
    },
}

WITHOUT_KVM_XIVE = {  # host power9-oldfw-linux-5.4: KVM XICS can be re-created, KVM XIVE absent
    "linux-xive": {
        "dual": ("XIVE emul.", "XIVE emul.", "error at CAS"),
        "xive": ("XIVE emul.", "XIVE emul.", "error at init"),
        "xics": ("XICS KVM", "XICS emul.", "XICS KVM"),
    },
    "linux-legacy": {
        "dual": ("XICS KVM", "XICS emul.", "XICS KVM"),
        "xive": ("error at CAS", "error at CAS", "error at init"),
        "xics": ("XICS KVM", "XICS emul.", "XICS KVM"),
    },
}

OLD_KVM = {  # host power9-linux-4.19: neither KVM XIVE nor a KVM XICS that can be re-created
    "linux-xive": {
        "dual": ("XIVE emul.", "XIVE emul.", "error at init"),
        "xive": ("XIVE emul.", "XIVE emul.", "error at init"),
        "xics": ("XICS KVM", "XICS emul.", "XICS KVM"),
    },
    "linux-legacy": {
        "dual": ("XICS KVM", "XICS emul.", "error at init"),
        "xive": ("error at CAS", "error at CAS", "error at init"),
        "xics": ("XICS KVM", "XICS emul.", "XICS KVM"),
    },
}


def _table(host: str) -> dict:
    table: dict = {}
    for cell in matrix(["-cpu", "power9"], [host], ["linux-xive", "linux-legacy"]):
        row = table.setdefault(cell.guest, {}).setdefault(cell.ic_mode, {})
        row[cell.kernel_irqchip] = cell.outcome.cell
    return {guest: {mode: (row["allowed"], row["off"], row["on"]) for mode, row in modes.items()}
            for guest, modes in table.items()}


@pytest.mark.parametrize("host, expected", [
    ("power9-linux-5.10", WITH_KVM_XIVE),
    ("power9-oldfw-linux-5.4", WITHOUT_KVM_XIVE),
    ("power9-linux-4.19", OLD_KVM),
], ids=["with-kvm-xive", "without-kvm-xive", "old-kvm"])
def test_mode_table_matches_qemus_documentation(host, expected):
    assert _table(host) == expected


def test_tcg_emulates_every_mode_and_ignores_kernel_irqchip():
    table = _table("tcg")
    assert table["linux-xive"]["dual"] == ("XIVE emul.",) * 3
    assert table["linux-legacy"]["xive"] == ("error at CAS",) * 3
