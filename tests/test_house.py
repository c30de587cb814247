"""Rules of the house that the code itself can be checked against (issue 25): library code
raises errors instead of asserting (``python -O`` strips asserts, so they guard nothing), and no
module reaches into another package's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import coldbrew

SOURCE = Path(coldbrew.__file__).parent


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path))) for path in sorted(SOURCE.rglob("*.py"))]


def _package(path: Path) -> str:
    """``serve`` for ``coldbrew/serve/app.py``; the module's own name at the top level."""
    return path.relative_to(SOURCE).parts[0].removesuffix(".py")


def test_library_code_raises_instead_of_asserting() -> None:
    asserts = [
        f"{path.relative_to(SOURCE)}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert)
    ]
    assert not asserts, f"assert statements in library code: {asserts}"


def test_no_module_imports_another_packages_private_names() -> None:
    crossings = [
        f"{path.relative_to(SOURCE)}:{node.lineno} imports {node.module}.{alias.name}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("coldbrew.")
        for alias in node.names
        if alias.name.startswith("_")
        and not alias.name.startswith("__")
        and (node.module or "").split(".")[1] != _package(path)
    ]
    assert not crossings, f"private names imported across packages: {crossings}"
