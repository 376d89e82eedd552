"""Atomic output: nothing half-written is ever left where the user looks.

Every file or directory kerasml writes is first built under a temporary name in the target's own
directory (so the final rename stays on one file system and is atomic), then renamed into place.
"""

from __future__ import annotations

import hashlib

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from kerasml.errors import KerasmlError


def check_output(path: Path, force: bool) -> None:
    """Refuse to replace an existing output unless `force`, and make sure we can write there."""
    path = Path(path)
    if path.exists() and not force:
        raise KerasmlError(f"{path} already exists; pass --force to overwrite it")
    if path.exists() and path.is_dir() and not path.suffix:
        raise KerasmlError(f"{path} is a directory; give a file name for the output")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise KerasmlError(f"cannot write {path}: {parent} is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KerasmlError(f"cannot create directory {parent}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise KerasmlError(f"cannot write to {parent}: permission denied; choose another --out")


@contextlib.contextmanager
def atomic_output(path: Path, force: bool = False, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success move it into place, on failure remove it.

    With `directory=True` the temporary path is a fresh empty directory (for `.mlpackage`);
    otherwise it is a path that does not exist yet, so writers that insist on their own
    suffix (Keras, coremltools) see the real suffix.
    """
    path = Path(path)
    check_output(path, force)
    parent = path.parent if str(path.parent) else Path(".")
    workdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    temporary = workdir / path.name
    if directory:
        temporary.mkdir()
    try:
        yield temporary
        if not temporary.exists():
            raise KerasmlError(f"internal error: nothing was written for {path}")
        _replace(temporary, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _replace(source: Path, target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        # A directory cannot be replaced by rename in one step: move the old one aside first,
        # so the target is never missing for longer than two renames.
        aside = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, aside)
        os.replace(source, target)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(source, target)


def path_size(path: Path) -> int:
    """Bytes in a file, or in all files of a directory (an .mlpackage, a SavedModel)."""
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def write_text_atomic(path: Path, text: str, force: bool = True) -> None:
    """Write a small text file atomically (records, reports)."""
    with atomic_output(path, force=force) as temporary:
        temporary.write_text(text, encoding="utf-8")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, or of all files of a folder (an .mlpackage, a SavedModel) in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
