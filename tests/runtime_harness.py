"""The one harness every runtime test uses (as Keras tests use `run_layer_test`): seeded random
arrays, NeuralNetwork specs built with coremltools' `NeuralNetworkBuilder` and run through
kerasml's runtime, and ML Program ops called alone on the engine's batched arrays."""

from __future__ import annotations

import numpy as np


def seeded(seed: int):
    """`rand(*shape, scale=1.0)`: float32 normal samples from a generator seeded once per test module."""
    rng = np.random.default_rng(seed)

    def rand(*shape, scale: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return rand


def nn_builder(*shapes, rank_n: bool = False, inputs: tuple[str, ...] | None = None, outputs=("out",)):
    """A NeuralNetworkBuilder with array inputs of `shapes` (one shape for several named `inputs`
    gives each that shape), named "data" alone or "in0", "in1", ...; outputs of open shape."""
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    names = inputs or (("data",) if len(shapes) == 1 else tuple(f"in{i}" for i in range(len(shapes))))
    if len(shapes) == 1 and len(names) > 1:
        shapes = shapes * len(names)
    return NeuralNetworkBuilder([(n, datatypes.Array(*s)) for n, s in zip(names, shapes)],
                                [(o, None) for o in outputs], disable_rank5_shape_mapping=rank_n)


def run_nn(nn, *xs, output: str = "out", **features):
    """The runtime's `output` for the builder's spec, inputs positionally (in spec order) or by name."""
    from kerasml.runtime import load_model

    names = [f.name for f in nn.spec.description.input]
    features = {**dict(zip(names, xs)), **features}
    return load_model(nn.spec).predict(features)[output]


def call_mil(kind: str, batched: tuple[str, ...] = ("x",), opset: int | None = None, **inputs) -> list:
    """An ML Program op of the runtime alone: `inputs` by parameter ("values" may be a list), those in
    `batched` carrying the leading axis of predictions; returns the op's outputs. `opset` (15 for
    iOS 15, ...) runs the op's version for that release; without it, the oldest version that
    declares the parameters given."""
    from kerasml.runtime.mil.args import Args
    from kerasml.runtime.registry import MIL_OPS

    values = {k: (v if isinstance(v, list) and k == "values" else [v]) for k, v in inputs.items()}
    flags = {k: [k in batched] * len(v) for k, v in values.items()}
    return MIL_OPS[kind](Args("op", kind, values, flags, [np.float32], opset=opset))
