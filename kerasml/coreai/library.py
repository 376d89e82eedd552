"""The one import of Apple's `coreai-core`, and the two things every use of it needs.

coreai-core is an ordinary dependency, but Apple ships it only for Python 3.11+ on x86-64 Linux and
Apple-silicon macOS, so elsewhere kerasml installs without it; every Core AI command then stops with
one line saying so. Its runtime also announces each function it loads on the process's own stdout
("ODIE [default]: Loading function ..."), which would break kerasml's one-result-per-line output.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

from kerasml.errors import KerasmlError

PACKAGE = "coreai-core"
PINNED = "1.0.0b3"
INSTALL = (f"install Apple's {PACKAGE} ({PINNED}, Python 3.11+ on x86-64 Linux or Apple-silicon macOS 26+): "
           f"`pip install {PACKAGE}=={PINNED}`, or reinstall kerasml there")


@functools.cache
def authoring():
    """`coreai.authoring`, or one clear error when coreai-core is not installed."""
    try:
        import coreai.authoring as authoring_module
    except ImportError:
        raise KerasmlError(f"Core AI models need Apple's {PACKAGE}, which is not installed; {INSTALL}") from None
    return authoring_module


@functools.cache
def runtime():
    """`coreai.runtime` (Apple's Core AI runtime; on Linux its portable CPU backend)."""
    authoring()
    import coreai.runtime as runtime_module

    return runtime_module


def version() -> str | None:
    """The installed coreai-core version, None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def runtime_notes_muted():
    """Apple's runtime writes load notes to file descriptor 1 itself; keep them off kerasml's output."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
