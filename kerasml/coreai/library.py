"""The one import of Apple's `coreai-core`, and the two things every use of it needs.

coreai-core is an ordinary dependency, but Apple ships it only for Python 3.11+ on x86-64 Linux and
Apple-silicon macOS, so elsewhere kerasml installs without it; every Core AI command then stops with
one line saying so. Its runtime also announces each function it loads on the process's own stderr
("ODIE [default]: Loading function ..."), which would break kerasml's one-line messages.
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


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def runtime_notes_muted():
    """Apple's runtime writes its load notes to the process's stderr itself; keep them off kerasml's
    output (its errors still arrive as Python exceptions)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        _flush_c_stdio()                # notes still in C's buffers go to /dev/null too
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
