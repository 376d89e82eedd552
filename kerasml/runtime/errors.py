"""The runtime's error types (all `KerasmlError`, so the CLI prints them as one line)."""

from kerasml.errors import KerasmlError


class UnsupportedModelError(KerasmlError):
    """The model uses a layer, op or option that the runtime does not implement; the message names it."""
