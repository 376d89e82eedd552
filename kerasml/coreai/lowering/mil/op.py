"""`Op`: what an ML Program op's lowering receives — its inputs by parameter name (constants as
NumPy values, computed values as `graph.Tensor`s), its declared output shapes and types, and the
`Graph` to emit into."""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import Graph, Tensor
from kerasml.errors import KerasmlError
from kerasml.runtime.errors import UnsupportedModelError

_REQUIRED = object()


class Op:
    def __init__(self, name: str, kind: str, inputs: dict[str, list], shapes: list, dtypes: list, graph: Graph):
        self.name, self.kind = name, kind
        self._inputs = inputs
        self.shapes, self.dtypes = shapes, dtypes
        self.g = graph

    @property
    def shape(self) -> tuple[int, ...]:
        return self.shapes[0]

    @property
    def dtype(self):
        return self.dtypes[0]

    def params(self) -> list[str]:
        return list(self._inputs)

    def has(self, param: str) -> bool:
        return param in self._inputs

    def get(self, param: str, default=_REQUIRED):
        if param not in self._inputs:
            if default is _REQUIRED:
                raise KerasmlError(f"op '{self.name}' ({self.kind}) lacks its '{param}' input; the model is malformed")
            return default
        return self._inputs[param][0]

    def many(self, param: str) -> list:
        return list(self._inputs.get(param, []))

    def const(self, param: str, default=_REQUIRED):
        """A parameter that must be known when the model is converted (a size, an axis, a weight);
        weights Core AI would decompress are decompressed here."""
        value = self.get(param, default)
        if isinstance(value, Tensor):
            if not value.batched and value.dense is not None:
                note = f"op '{self.name}' ({self.kind}) reads its compressed '{param}' decompressed"
                if note not in self.g.notes:
                    self.g.notes.append(note)
                return value.dense
            raise self.unsupported(f"a computed '{param}'")
        return value

    def scalar(self, param: str, default=_REQUIRED):
        value = self.const(param, default)
        return value.item() if isinstance(value, np.ndarray) else value

    def ints(self, param: str, default=_REQUIRED) -> list[int] | None:
        value = self.const(param, default)
        return None if value is None else [int(v) for v in np.ravel(value)]

    def tensor(self, param: str, default=_REQUIRED):
        """A data input: a batched or shared Tensor, or a NumPy constant."""
        return self.get(param, default)

    def batched(self, param: str) -> Tensor:
        value = self.get(param)
        if not isinstance(value, Tensor) or not value.batched:
            raise self.unsupported(f"a constant '{param}' where a computed value was expected")
        return value

    def unsupported(self, what: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"op '{self.name}' ({self.kind}) uses {what}, which kerasml cannot express in Core AI"
        )
