"""The layering rule: nothing under cycletrans/ imports the layers on top (analysis/, app/)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cycletrans"
UPPER_LAYERS = ("analysis", "app")


def imported_modules(source: str) -> list[str]:
    """Every module an ``import`` / ``from ... import`` names, at any depth of the code."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def upper_layer_imports(source: str) -> list[str]:
    return [name for name in imported_modules(source) if name.split(".")[0] in UPPER_LAYERS]


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_module_of_the_package_imports_analysis_or_app(path):
    assert upper_layer_imports(path.read_text(encoding="utf-8")) == []


def test_the_scan_sees_imports_inside_functions():
    source = "import os\ndef run():\n    from analysis.tables import x\n    import app.ui\n"
    assert upper_layer_imports(source) == ["analysis.tables", "app.ui"]
