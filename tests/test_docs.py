"""The documentation quotes nothing by hand that a script can say: every generated block (command
synopses from the CLI, figures from bench/*.md) is current, every command has its synopsis, and
every link between the pages resolves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "ios_app" / "README.md"]


def test_generated_blocks_are_current():
    result = subprocess.run([sys.executable, "docs/generate.py", "--check"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_command_has_its_synopsis_in_the_reference():
    import typer

    from kerasml.cli import app

    commands = set(typer.main.get_command(app).commands)
    documented = set(re.findall(r"<!-- generated: synopsis:(\S+) -->", (REPO / "docs" / "commands.md").read_text()))
    assert commands == documented


def test_a_synopsis_names_every_option_of_its_command():
    sys.path.insert(0, str(REPO / "docs"))
    import generate

    text = generate.synopsis("convert")
    for flag in ("--format", "--precision", "--fp32-layers", "--max-drop", "--force"):
        assert f"[{flag}" in text


@pytest.mark.parametrize("page", PAGES, ids=[p.name if p.parent.name != "ios_app" else "ios_app/README.md" for p in PAGES])
def test_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_the_readme_is_a_front_door():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    assert text.index("make demo") < text.index("## ") and "make test" in text.split("## ")[0]
