"""Fill the generated blocks of README.md and docs/*.md, so no figure or synopsis is typed twice.

A block is

    <!-- generated: WHAT -->
    ...
    <!-- /generated -->

where WHAT is `synopsis:COMMAND` (the command's options, read from the CLI itself) or a file the
script that measured the figures wrote (`bench/zoo.md`, `bench/results.md`, ...), copied without its
title line. `make docs` rewrites the blocks; `python docs/generate.py --check` (tests/test_docs.py)
fails when one is stale.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- generated: (?P<what>\S+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)
WIDTH = 104


def synopsis(command: str) -> str:
    """`kerasml COMMAND` with every argument and option it takes, as its --help defines them."""
    import typer

    sys.path.insert(0, str(REPO))
    from kerasml.cli import app

    group = typer.main.get_command(app)
    cmd = group.commands[command]
    parts = []
    for param in cmd.params:
        if param.param_type_name == "argument":
            name = param.name.upper()
            parts.append(f"{name}..." if param.nargs == -1 else (name if param.required else f"[{name}]"))
        elif param.param_type_name == "option" and not getattr(param, "hidden", False) and param.name != "help":
            flag = max(param.opts, key=len) if len(param.opts) > 1 and param.name == "version" else param.opts[0]
            if param.is_flag:
                parts.append(f"[{flag}]")
            else:
                parts.append(f"[{flag} {_metavar(param)}]")
    indent = " " * (len(command) + 9)
    lines, line = [], f"kerasml {command}"
    for part in parts:                  # wrap between options, never inside one
        if len(line) + 1 + len(part) > WIDTH and line.strip():
            lines.append(line)
            line = indent + part
        else:
            line += " " + part
    lines.append(line)
    return "```\n" + "\n".join(lines) + "\n```\n"


def _metavar(option) -> str:
    annotation = option.type_descriptor.annotation      # the option's Python type, as typer read it
    return {"Path": "PATH", "int": "N", "float": "X"}.get(getattr(annotation, "__name__", ""), "TEXT")


def api() -> str:
    """Each function of `kerasml.__all__`: its signature and docstring, as Python reports them."""
    import inspect

    import kerasml

    lines = []
    for name in kerasml.__all__:
        value = getattr(kerasml, name)
        if not callable(value) or isinstance(value, type):
            continue
        lines += [f"### `kerasml.{name}{inspect.signature(value)}`", "", inspect.getdoc(value), ""]
    return "\n".join(lines)


def precisions() -> str:
    """model/precision.py's table of schemes, as `convert --precision` offers them and verify judges them."""
    from kerasml.model.precision import SCHEMES, SPARSE_ATOL

    lines = ["| `--precision` | weights | formats | ML Program needs | verify tolerance (max \\|Δp\\|, top-1) |",
             "|---|---|---|---|---|"]
    for scheme in SCHEMES:
        formats = "both" if set(scheme.formats) == {"mlmodel", "mlpackage"} else ", ".join(scheme.formats)
        atol, agreement = scheme.tolerance
        lines.append(f"| `{scheme.name}` | {scheme.what} | {formats} | {scheme.min_target} | {atol:g}, {agreement:.1%} |")
    lines.append("| `auto --max-drop P` | the smallest of the above losing at most P points | both | | that scheme's |")
    lines.append(f"| `--sparsity F` (with any of them) | pruned by magnitude, stored sparse | mlpackage | iOS 16 (18 joint) "
                 f"| {SPARSE_ATOL:g}, 1 - F/2 |")
    return "\n".join(lines) + "\n"


def stored_precisions() -> str:
    """How verify judges a model kerasml did not compress: by how its weights are stored."""
    from kerasml.model.precision import STORED_AS, BY_NAME

    lines = ["| weights stored as | judged as | max \\|Δp\\| | top-1 agreement at least |", "|---|---|---|---|"]
    for stored, name in STORED_AS.items():
        atol, agreement = BY_NAME[name].tolerance
        lines.append(f"| {stored} | `{name}` | {atol:g} | {agreement:.1%} |")
    return "\n".join(lines) + "\n"


def render(what: str) -> str:
    if what.startswith("synopsis:"):
        return synopsis(what.split(":", 1)[1])
    if what == "api":
        return api()
    if what == "precisions":
        return precisions()
    if what == "stored-precisions":
        return stored_precisions()
    path = REPO / what
    if not path.is_file():
        raise SystemExit(f"generated block names {what}, which does not exist")
    text = path.read_text(encoding="utf-8")
    if text.startswith("# "):                       # the file's own title: the page has its heading
        text = text.split("\n", 1)[1].lstrip("\n")
    return text if text.endswith("\n") else text + "\n"


def filled(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("what")) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale blocks (exit 1)")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        new = filled(text)
        if new != text:
            stale.append(page.relative_to(REPO))
            if not args.check:
                page.write_text(new, encoding="utf-8")
    if args.check and stale:
        print("stale generated blocks in: " + ", ".join(map(str, stale)) + " (run `make docs`)")
        return 1
    if not args.check:
        print("updated: " + (", ".join(map(str, stale)) or "nothing"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
