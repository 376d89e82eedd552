"""The runtime's module graph stays a tree: no import circle, no private name imported from another
module (an AST walk over kerasml/runtime, so it needs no import and runs in well under a second)."""

from __future__ import annotations

import ast
from pathlib import Path

import kerasml

RUNTIME = Path(kerasml.__file__).parent / "runtime"


def _module_name(path: Path) -> str:
    parts = path.relative_to(RUNTIME.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> list[tuple[str, str]]:
    """(module imported, name imported or '') for every kerasml.runtime import in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("kerasml.runtime")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kerasml.runtime"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                # `from package import module` depends on the module; `from module import name` on the module
                found.append((sub, "") if sub in known else (node.module, alias.name))
    return found


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    files = {_module_name(p): p for p in RUNTIME.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in files}
    private = []
    for module, path in files.items():
        for target, name in _imports(path, set(files)):
            if target in files and target != module:
                edges[module].add(target)
            if name.startswith("_"):
                private.append(f"{module} imports {name} from {target}")
    return edges, private


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_runtime_has_no_import_circle():
    edges, _ = _graph()
    assert len(edges) > 20  # the walk really found the runtime's modules
    cycle = _cycle(edges)
    assert cycle is None, " -> ".join(cycle)


def test_runtime_imports_no_private_name_across_modules():
    _, private = _graph()
    assert not private, "; ".join(private)


def test_the_checks_catch_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_every_runtime_module_is_short():
    long = {str(p.relative_to(RUNTIME)): n for p in RUNTIME.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
