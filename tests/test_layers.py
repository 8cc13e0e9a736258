"""The layers of docs/architecture.md: each module imports only from modules in layers above it.

Modules are named by their dotted path inside the package (``host.kvm``); a sub-package's
``__init__`` holds only its docstring, so every import names the module it needs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "spapr_irq"

LAYERS = [
    {"papr", "errors"},
    {"smp", "releases", "monitor", "cmdline", "domain"},
    {"config"},
    {"host.host", "host.uapi"},
    {"memory"},
    {"arch.xics", "arch.xive"},
    {"host.device", "host.faults"},
    {"host.xics_on_xive_hcalls"},
    {"host.xics", "host.xics_on_xive"},
    {"host.xive_native"},
    {"host.kvm"},
    {"intc.base"},
    {"intc.xics_kvm", "intc.xive_kvm"},
    {"intc.xics", "intc.xive"},
    {"policy"},
    {"guest.driver"},
    {"guest.linux_xics", "guest.linux_xive"},
    {"guest.profiles"},
    {"machine.vmstate"},
    {"machine.dispatch", "machine.irq", "machine.migration", "machine.hotplug",
     "machine.controllers", "machine.cas", "machine.leaks"},
    {"machine.machine"},
    {"devices"},
    {"explore", "check.fingerprint"},
    {"check.events"},
    {"check.invariants"},
    {"check.engine"},
    {"check.scenario", "check.compare", "advise"},
    {"report"},
    {"conform.cases", "conform.guest"},
    {"conform.qemu"},
    {"conform.compare"},
    {"conform.session"},
    {"conform.command", "check.command", "cli_help"},
    {"cli"},
    {"__main__"},
]
RANK = {module: rank for rank, modules in enumerate(LAYERS) for module in modules}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def imported_modules(path: Path) -> set[str]:
    """Every project module `path` imports, as a dotted path inside the package."""
    here = module_name(path).split(".")[:-1]  # the importing module's package
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
            target = base + (node.module.split(".") if node.module else [])
        elif node.module and node.module.startswith("spapr_irq"):
            target = node.module.split(".")[1:]
        else:
            continue
        prefix = ".".join(target)
        for alias in node.names:  # `from . import papr` imports the module papr
            candidate = f"{prefix}.{alias.name}" if prefix else alias.name
            found.add(candidate if candidate in RANK else prefix)
    return found


SOURCES = {module_name(p): p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}


def test_every_module_has_a_layer():
    assert set(SOURCES) == set(RANK)


def test_sub_packages_hold_only_a_docstring():
    for init in PACKAGE.rglob("__init__.py"):
        if init.parent == PACKAGE:
            continue
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), init


@pytest.mark.parametrize("module", sorted(RANK))
def test_module_imports_only_from_layers_above(module):
    for imported in imported_modules(SOURCES[module]):
        assert imported in RANK, f"{module} imports {imported}, which has no layer"
        assert RANK[imported] < RANK[module], f"{module} imports {imported}"
