"""The Core ML protobuf message classes, without importing coremltools (and with it TensorFlow).

`coremltools.proto.Model_pb2` is only reachable through `import coremltools`, whose `__init__`
imports TensorFlow when it is installed (several seconds). The generated `*_pb2.py` files only need
`google.protobuf` and import each other relatively, so we load them from the installed coremltools
folder under a private package name. The descriptors are registered in protobuf's default pool, so a
later `import coremltools` gets the very same message classes: specs from either side interoperate.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

from kerasml.errors import KerasmlError

_PACKAGE = "kerasml.model._coreml_proto"


def _proto_module(name: str) -> types.ModuleType:
    real = sys.modules.get("coremltools.proto." + name)
    if real is not None:  # coremltools already imported: reuse its modules
        return real
    if _PACKAGE not in sys.modules:
        spec = importlib.util.find_spec("coremltools")
        if spec is None or spec.origin is None:
            raise KerasmlError("coremltools is not installed; install it with `pip install coremltools`")
        package = types.ModuleType(_PACKAGE)
        package.__path__ = [str(Path(spec.origin).parent / "proto")]
        sys.modules[_PACKAGE] = package
    return importlib.import_module(f"{_PACKAGE}.{name}")


def model_pb2() -> types.ModuleType:
    """`Model_pb2`: the top-level `Model` message and, through it, every other Core ML message."""
    return _proto_module("Model_pb2")


def mil_pb2() -> types.ModuleType:
    """`MIL_pb2`: the ML Program messages (`Program`, `Operation`, `Value`, `DataType`)."""
    return _proto_module("MIL_pb2")


def is_model_spec(obj: object) -> bool:
    """True for a parsed `CoreML.Specification.Model`, whichever module its class came from."""
    descriptor = getattr(obj, "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", None) == "CoreML.Specification.Model"
