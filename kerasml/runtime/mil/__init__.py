"""The ML Program side of the runtime: the engine, its value decoding and its ops."""

from kerasml.runtime.mil.engine import ProgramEngine

__all__ = ["ProgramEngine"]
