"""The package's shape, read from its source with `ast`: no import circle, no private name imported
across modules, no module over the size limit, and the packages that must stay light stay light.
The whole package is checked, kerasml/runtime/ included."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kerasml"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


ALL_MODULES = {module_name(path) for path in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path) -> list[tuple[str, str | None]]:
    """(imported kerasml module, imported name or None) for every import in the file, also those
    inside functions: a lazy import is still a dependency."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.startswith("kerasml")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("kerasml"):
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.append((child, None) if child in ALL_MODULES else (base, alias.name))
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {target for target, _ in imports(name, path) if target in known and target != name}
            for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    assert circles(graph()) == []


def test_no_private_name_is_imported_from_another_module():
    private = []
    for name, path in modules().items():
        for target, imported in imports(name, path):
            own_package = target.rpartition(".")[0] == name.rpartition(".")[0]
            if imported is not None and imported.startswith("_") and not imported.startswith("__"):
                private.append(f"{name} imports {target}.{imported}")
            elif imported is None and target.rpartition(".")[2].startswith("_") and not own_package:
                private.append(f"{name} imports the private module {target}")
    assert private == []


def test_no_module_is_over_the_size_limit():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


@pytest.mark.parametrize("package", ["kerasml.cli", "kerasml.record", "kerasml.data", "kerasml.data.splits",
                                     "kerasml.coreml", "kerasml.coreml.spec", "kerasml.report.build",
                                     "kerasml.checks.verify", "kerasml.training.options"])
def test_light_modules_import_neither_tensorflow_nor_coremltools(package):
    code = (f"import sys, {package}; "
            "print(sorted({'tensorflow', 'keras', 'coremltools'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout.strip()
    assert out == "[]"


def test_coreml_does_not_depend_on_the_runtime():
    """The runtime may read specs through kerasml.coreml.spec; the other way round would be a circle
    through a package that is meant to be replaceable."""
    for name, path in modules().items():
        if name.startswith("kerasml.coreml.spec") or name == "kerasml.coreml":
            assert not [t for t, _ in imports(name, path) if t.startswith("kerasml.runtime")], name
