"""Quiet imports of the heavy libraries, done only by the commands that need them.

TensorFlow's C++ core prints start-up notes (oneDNN, CUDA probes) straight to the process's
stderr, whatever TF_CPP_MIN_LOG_LEVEL says, and coremltools warns about untested versions and the
macOS-only runtime it cannot load on Linux. None of that helps a kerasml user, so it is muted here
once, while the libraries load; errors still surface as Python exceptions afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import sys
import warnings


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
