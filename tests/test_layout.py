"""The package's shape, read from its source with `ast`: a one-way pipeline (no package imports,
even lazily inside a function, a package above it in `LAYERS`), no import circle among modules, no
private name imported across modules, no module over the size limit, and the packages that must
stay light stay light. The whole package is checked, kerasml/runtime/ included."""

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
                                     "kerasml.conversion", "kerasml.model.coreml_spec", "kerasml.report.build",
                                     "kerasml.checks.verify", "kerasml.training.options"])
def test_light_modules_import_neither_tensorflow_nor_coremltools(package):
    code = (f"import sys, {package}; "
            "print(sorted({'tensorflow', 'keras', 'coremltools'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout.strip()
    assert out == "[]"


# The house, bottom first: each package (or top-level module) may import only those before it.
# `model` describes a model in every format (readers, Keras loader, precisions, feature names, the
# layer record, which images to measure on); `app` is the iOS app's half (its contract, how it reads,
# packaging); the stages follow the pipeline: runtime → Core AI → train → checks → conversion →
# report; `web`, the CLI and the Python API are faces on top.
LAYERS = ["errors", "version", "files", "libs", "record", "plots", "data", "preprocess", "model", "app",
          "runtime", "coreai", "training", "checks", "conversion", "report", "web", "api", "cli", "__main__",
          "kerasml"]


def layer_of(module: str) -> str:
    """`kerasml.checks.verify` → "checks"; `kerasml` (the package's face) → "kerasml"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "kerasml"


def test_every_package_has_a_place_in_the_house():
    assert {layer_of(name) for name in modules()} == set(LAYERS)


def test_the_pipeline_is_one_way():
    """No package imports one above it, lazy imports inside functions included."""
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = sorted({f"{layer_of(name)} → {layer_of(target)} ({name} imports {target})"
                     for name, targets in graph().items() for target in targets
                     if rank[layer_of(target)] > rank[layer_of(name)]})
    assert upward == []


def test_the_layer_check_finds_an_upward_import():
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    assert rank[layer_of("kerasml.conversion.to_coreml")] > rank[layer_of("kerasml.checks.verify")]
    assert layer_of("kerasml") == "kerasml" and layer_of("kerasml.record") == "record"
