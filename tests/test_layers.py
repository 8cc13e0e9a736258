"""The layers of docs/architecture.md: each module imports only from modules above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "spapr_irq"

LAYERS = [
    {"papr", "errors"},
    {"config"},
    {"host"},
    {"memory"},
    {"xics", "xive"},
    {"kvm_xics", "kvm_xive"},
    {"kvm"},
    {"intc"},
    {"policy"},
    {"guest"},
    {"machine"},
    {"explore"},
    {"report", "cli"},
]
RANK = {module: rank for rank, modules in enumerate(LAYERS) for module in modules}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spapr_irq."):
            found.add(node.module.split(".")[1])
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(RANK)


@pytest.mark.parametrize("module", sorted(RANK))
def test_module_imports_only_from_layers_above(module):
    for imported in imported_modules(PACKAGE / f"{module}.py"):
        assert RANK[imported] < RANK[module] or imported == module or \
            RANK[imported] == RANK[module] and {imported, module} == {"report", "cli"} and \
            module == "cli", f"{module} imports {imported}"
