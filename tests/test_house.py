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


def _model_attributes() -> set[str]:
    """The names the classes in ``coldbrew.models`` define: their methods, properties and
    class attributes, and what their methods set on ``self``."""
    names: set[str] = set()
    for path, tree in _modules():
        if _package(path) != "models":
            continue
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            for statement in cls.body:  # class attributes
                targets = statement.targets if isinstance(statement, ast.Assign) else []
                if isinstance(statement, ast.AnnAssign):
                    targets = [statement.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
            for node in ast.walk(cls):  # methods, properties and what they set on self
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(node.name)
                elif (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "self"
                ):
                    names.add(node.attr)
    return {n for n in names if not n.startswith("__")}


def test_no_module_outside_models_reads_a_model_by_attribute_name() -> None:
    """Outside ``coldbrew.models`` a model is asked through the ``Recommender`` protocol, never
    probed with ``getattr``/``hasattr`` for a name its classes define (issue 25)."""
    defined = _model_attributes()
    probes = [
        f"{path.relative_to(SOURCE)}:{node.lineno} {node.func.id}(..., {node.args[1].value!r})"
        for path, tree in _modules()
        if _package(path) != "models"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr")
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and node.args[1].value in defined
    ]
    assert not probes, f"models read by attribute name outside models/: {probes}"
