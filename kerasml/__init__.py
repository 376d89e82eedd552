"""kerasml: Keras image classifiers to Core ML and Core AI, verified on Linux.

The Python API (kerasml/api.py, docs/python.md): `train`, `convert`, `verify`, `evaluate`,
`predict`, `prepare_photo` and `diff`, the functions behind the commands, and `KerasmlError`, what
each raises for bad input. They are imported when first used, so `import kerasml` stays light.
"""

from kerasml.errors import KerasmlError
from kerasml.version import __version__

__all__ = ["train", "convert", "verify", "evaluate", "predict", "prepare_photo", "diff", "KerasmlError",
           "__version__"]
_API = {"train", "convert", "verify", "evaluate", "predict", "prepare_photo", "diff"}


def __getattr__(name: str):
    if name in _API:
        from kerasml import api

        return getattr(api, name)
    raise AttributeError(f"module 'kerasml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)
