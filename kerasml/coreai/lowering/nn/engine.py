"""A NeuralNetwork (classifier) layer by layer as Core AI ops, as kerasml's runtime runs it
(`kerasml/runtime/nn/engine.py`): the image preprocessing first (scaler or mean image, exactly as
stored), then every layer in order over named blobs.

Each blob is a `graph.Tensor` whose `shape` is what the runtime's blob holds for one prediction:
(1, C, H, W) for images under the rank-4 mapping (specification 4+), (C, H, W) under the original
rank-5 one. The runtime itself says what every layer gives: each layer's compiled runtime function
runs once on a single prediction of zeros (only shapes are read), so no NeuralNetwork shape rule is
written twice; and a layer whose inputs are all constants (loadConstantND and what follows from it)
is computed there once and stays a NumPy constant, so only layers that touch the image reach Core AI.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import Graph, Tensor
from kerasml.coreai.lowering.mil.program import LoweredProgram
from kerasml.coreai.lowering.nn import arith
from kerasml.coreai.lowering.nn.layer import Layer
from kerasml.coreai.lowering.registry import NN_LOWERINGS
from kerasml.model.coreml_spec import image_colour
from kerasml.errors import KerasmlError
from kerasml.runtime.errors import UnsupportedModelError
from kerasml.runtime.nn.engine import image_preprocessing
from kerasml.runtime.registry import NN_LAYERS

_RUNTIME_ERRORS = (ValueError, IndexError, TypeError, ArithmeticError)
_CAUGHT = (ValueError, IndexError, TypeError)


def lower_network(spec, graph: Graph, inputs: dict[str, Tensor]) -> LoweredProgram:
    """The network of a NeuralNetwork spec on `inputs` (image input name → raw pixels as a FOLDED
    Tensor of shape (1, C, H, W), in the model's channel order)."""
    import kerasml.runtime.nn  # noqa: F401  (registers the runtime's layers, which give shapes and constants)

    model_type = spec.WhichOneof("Type")
    network = getattr(spec, model_type)
    colours = {f.name: image_colour(f.type.imageType.colorSpace) for f in spec.description.input
               if f.type.WhichOneof("Type") == "imageType"}
    steps = image_preprocessing(network, colours)
    env: dict = {name: prepared(graph, tensor, steps.get(name), network.imageInputShapeMapping == 1)
                 for name, tensor in inputs.items()}
    kinds = [layer.WhichOneof("layer") for layer in network.layers]
    unknown = sorted({str(k) for k in kinds if k not in NN_LOWERINGS and k not in NN_LAYERS})
    if unknown:
        raise UnsupportedModelError(f"the network uses layer types {', '.join(unknown)}, which kerasml "
                                    "cannot express in Core AI")
    op_outputs = []
    for layer, kind in zip(network.layers, kinds):
        results = lower_layer(layer, kind, [_blob(env, b, layer, kind) for b in layer.input], graph)
        if len(results) != len(layer.output):
            raise UnsupportedModelError(f"layer '{layer.name}' ({kind}) has {len(layer.output)} outputs; its Core AI "
                                        f"lowering gives {len(results)}")
        env.update(zip(layer.output, results))
        op_outputs.append((kind, layer.name, layer.output[0] if layer.output else ""))
    probabilities = _probabilities(spec, model_type, network)
    if probabilities not in env:
        raise KerasmlError(f"the network never produces its probabilities '{probabilities}'; the model is malformed")
    return LoweredProgram(env, probabilities, None, op_outputs)


def prepared(graph: Graph, pixels: Tensor, step, rank4: bool) -> Tensor:
    """The network's input blob from raw pixels (1, C, H, W): scale and per-channel bias, or the
    mean image subtracted, as the runtime's `prepare_image` does."""
    x = pixels
    if step is not None and step[0] == "scaler":
        scale, bias = step[1]
        x = arith.affine(graph, x, np.float32(scale), np.asarray(bias, np.float32))
    elif step is not None:
        mean = np.asarray(step[1], np.float32)
        if mean.size != int(np.prod(x.shape)):
            raise KerasmlError(f"mean image of {mean.size} values does not match an image of shape {x.shape[1:]}")
        x = arith.sub(graph, x, mean.reshape(x.shape[1:]))
    return x if rank4 else graph.reshape(x, x.shape[1:])


def lower_layer(layer, kind: str, args: list, graph: Graph) -> list:
    """One layer's outputs: NumPy constants when every input is one, else Tensors from its lowering."""
    if not any(isinstance(a, Tensor) for a in args):
        batch_of_one = [np.asarray(a, np.float32)[None] for a in args]
        return [r[0] for r in _run(_compiled(layer, kind), layer, kind, batch_of_one)]
    lowering = NN_LOWERINGS.get(kind)
    if lowering is None:
        raise UnsupportedModelError(f"layer '{layer.name}' has type '{kind}', which kerasml cannot express in Core AI")
    p = getattr(layer, kind)
    extra = sorted(f.name for f, _ in p.ListFields() if f.name not in lowering.params)
    if extra:
        raise UnsupportedModelError(f"layer '{layer.name}' ({kind}) has parameter '{extra[0]}', which kerasml's "
                                    "Core AI lowering of it does not know")
    shapes = _shapes(_compiled(layer, kind), layer, kind, args)
    try:
        with graph.provenance(layer.output[0] if layer.output else layer.name):
            results = lowering.fn(Layer(layer, kind, args, shapes, graph))
    except _CAUGHT as exc:
        raise UnsupportedModelError(f"layer '{layer.name}' ({kind}) cannot be expressed in Core AI: {exc}") from None
    for i, (result, shape) in enumerate(zip(results, shapes)):
        got = result.shape if isinstance(result, Tensor) else np.shape(result)
        if tuple(got) != tuple(shape):
            raise UnsupportedModelError(f"layer '{layer.name}' ({kind}): output {i} has shape {tuple(got)} in Core AI "
                                        f"but {tuple(shape)} in kerasml's runtime; this is a kerasml bug")
    return results


def _compiled(layer, kind: str):
    """The runtime's function for the layer (it refuses what it does not implement, by name)."""
    compile_ = NN_LAYERS.get(kind)
    if compile_ is None:
        raise UnsupportedModelError(f"layer '{layer.name}' has type '{kind}', which kerasml cannot express in Core AI")
    try:
        return compile_(layer, layer.name)
    except (ValueError, IndexError) as exc:
        raise KerasmlError(f"layer '{layer.name}' ({kind}) is malformed: {exc}; convert the model again") from None


def _shapes(run, layer, kind: str, args: list) -> list[tuple[int, ...]]:
    """Per-prediction shapes of the layer's outputs: its runtime function on one prediction of zeros."""
    probes = [np.zeros((1, *a.shape), np.float32) if isinstance(a, Tensor) else np.asarray(a, np.float32)[None]
              for a in args]
    return [tuple(r.shape[1:]) for r in _run(run, layer, kind, probes)]


def _run(run, layer, kind: str, arrays: list) -> list:
    try:
        with np.errstate(all="ignore"):
            return [np.asarray(r, np.float32) for r in run(arrays)]
    except KerasmlError:
        raise
    except _RUNTIME_ERRORS as exc:
        raise KerasmlError(f"layer '{layer.name}' ({kind}) cannot run on shapes {[a.shape[1:] for a in arrays]}: "
                           f"{exc}") from None


def _blob(env: dict, name: str, layer, kind: str):
    if name not in env:
        raise KerasmlError(f"layer '{layer.name}' ({kind}) reads blob '{name}' that nothing produces; "
                           "the model is malformed")
    return env[name]


def _probabilities(spec, model_type: str, network) -> str:
    """The blob the runtime reads probabilities from (its `probability_blob`, or the first output)."""
    if model_type != "neuralNetworkClassifier":
        return spec.description.output[0].name
    wanted = network.labelProbabilityLayerName
    for layer in network.layers:
        if layer.name == wanted:
            return layer.output[0]
    return wanted or (network.layers[-1].output[0] if network.layers else "")
