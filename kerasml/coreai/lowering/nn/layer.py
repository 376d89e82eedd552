"""`Layer`: what a NeuralNetwork layer's lowering receives — the layer's parameters, its inputs
(computed blobs as `graph.Tensor`s, constants as NumPy arrays of one prediction's shape), the
per-prediction shapes of its outputs (kerasml's runtime worked them out) and the `Graph` to emit
into."""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import Graph, Tensor
from kerasml.runtime.errors import UnsupportedModelError
from kerasml.runtime.nn import weights

F32 = np.dtype(np.float32)


class Layer:
    def __init__(self, spec_layer, kind: str, inputs: list, shapes: list[tuple[int, ...]], graph: Graph):
        self.name, self.kind = spec_layer.name, kind
        self.p = getattr(spec_layer, kind)
        self.inputs = inputs
        self.shapes = shapes
        self.g = graph

    @property
    def shape(self) -> tuple[int, ...]:
        return self.shapes[0]

    def x(self, i: int = 0) -> Tensor:
        """Input i, which must be computed from the image."""
        value = self.inputs[i]
        if not isinstance(value, Tensor) or not value.batched:
            raise self.unsupported(f"a constant input '{i}' where a computed one was expected")
        return value

    def const(self, i: int) -> np.ndarray:
        value = self.inputs[i]
        if isinstance(value, Tensor):
            raise self.unsupported(f"a computed input {i} (a value the image decides) where a constant was expected")
        return np.asarray(value)

    def weights(self, params, shape, what: str, axis: int = 0) -> np.ndarray:
        """A WeightParams as float32 in any encoding the runtime reads (quantized ones expanded)."""
        return weights.decode(params, shape, f"layer '{self.name}' {what}", axis=axis)

    def vector(self, params, count: int, what: str) -> np.ndarray:
        return weights.vector(params, count, f"layer '{self.name}' {what}")

    def out(self, t: Tensor, i: int = 0) -> Tensor:
        """t in the declared shape of output i (a reshape where the element counts agree)."""
        return self.g.reshape(t, self.shapes[i])

    def unsupported(self, what: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"layer '{self.name}' ({self.kind}) uses {what}, which kerasml cannot express in Core AI")
