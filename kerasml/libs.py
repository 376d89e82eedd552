"""Quiet imports of the heavy libraries, done only by the commands that need them.

TensorFlow's C++ core prints start-up notes (oneDNN, CUDA probes) straight to the process's
stderr, whatever TF_CPP_MIN_LOG_LEVEL says, and coremltools warns about untested versions and the
macOS-only runtime it cannot load on Linux. None of that helps a kerasml user, so it is muted here
once, while the libraries load; errors still surface as Python exceptions afterwards.

Apple's `coreai-core` is imported here too, once: it is an ordinary dependency, but Apple ships it
only for Python 3.11+ on x86-64 Linux and Apple-silicon macOS, so elsewhere kerasml installs without
it and every Core AI command stops with one line saying so. Its runtime also announces each function
it loads on the process's own stderr ("ODIE [default]: Loading function ..."), which would break
kerasml's one-line messages (`coreai_notes_muted`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import sys
import warnings

from kerasml.errors import KerasmlError


@contextlib.contextmanager
def _native_stderr_muted():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@functools.cache
def tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _native_stderr_muted():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe happens here, still muted
    tf.get_logger().setLevel(logging.ERROR)
    _freeze_imported_objects()
    return tf


@functools.cache
def coremltools():
    tensorflow()  # coremltools imports TensorFlow itself when it is installed
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    with _native_stderr_muted(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import coremltools as ct
    _freeze_imported_objects()
    return ct


def _freeze_imported_objects() -> None:
    """Keep what an import created out of every later garbage collection.

    TensorFlow (with the Keras and SciPy it pulls in) and coremltools leave about 400,000 objects
    that live until the process ends. Every full collection walks them all, to free nothing: the
    automatic ones while a model loads and converts, the three `gc.collect()` calls coremltools
    makes per conversion, and the one at interpreter exit (4-5 s of a 20 s `import tensorflow`
    process on a loaded 2-core machine). Frozen, they are skipped; objects made later are still
    collected as usual."""
    gc.freeze()


@contextlib.contextmanager
def quiet_output():
    """coremltools prints a line per quantized layer and draws a progress bar per conversion pass;
    kerasml prints its own progress and summary, and keeps errors to one line."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


# -- Apple's coreai-core ------------------------------------------------------------------------------
COREAI_PACKAGE = "coreai-core"
COREAI_PINNED = "1.0.0b3"
COREAI_INSTALL = (f"install Apple's {COREAI_PACKAGE} ({COREAI_PINNED}, Python 3.11+ on x86-64 Linux or Apple-silicon macOS 26+): "
           f"`pip install {COREAI_PACKAGE}=={COREAI_PINNED}`, or reinstall kerasml there")


@functools.cache
def coreai_authoring():
    """`coreai.authoring`, or one clear error when coreai-core is not installed."""
    try:
        import coreai.authoring as authoring_module
    except ImportError:
        raise KerasmlError(f"Core AI models need Apple's {COREAI_PACKAGE}, which is not installed; {COREAI_INSTALL}") from None
    return authoring_module


@functools.cache
def coreai_runtime():
    """`coreai.runtime` (Apple's Core AI runtime; on Linux its portable CPU backend)."""
    coreai_authoring()
    import coreai.runtime as runtime_module

    return runtime_module


def coreai_version() -> str | None:
    """The installed coreai-core version, None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(COREAI_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def coreai_notes_muted():
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


def leave_process(code) -> None:
    """Exit with `code` (what `sys.exit` takes). After Apple's Core AI libraries ran in this process,
    leave without the interpreter's teardown: coreai-core 1.0.0b3 can abort the process there ("C++ exception handling
    detected but the Swift runtime was compiled with exceptions disabled"; seen once in a full test
    run, after verify had printed its result), turning a finished command's exit code into -6."""
    if not any(name == "coreai" or name.startswith("coreai.") for name in sys.modules):
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
