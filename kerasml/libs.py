"""Quiet imports of the heavy libraries, done only by the commands that need them.

TensorFlow's C++ core prints start-up notes (oneDNN, CUDA probes) straight to the process's
stderr, whatever TF_CPP_MIN_LOG_LEVEL says, and coremltools warns about untested versions and the
macOS-only runtime it cannot load on Linux. None of that helps a kerasml user, so it is muted here
once, while the libraries load; errors still surface as Python exceptions afterwards.
"""

from __future__ import annotations

import contextlib
import functools
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
    return tf


@functools.cache
def coremltools():
    tensorflow()  # coremltools imports TensorFlow itself when it is installed
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    with _native_stderr_muted(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import coremltools as ct
    return ct


@contextlib.contextmanager
def quiet_output():
    """coremltools prints a line per quantized layer and draws a progress bar per conversion pass;
    kerasml prints its own progress and summary, and keeps errors to one line."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield
