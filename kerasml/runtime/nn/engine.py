"""Executes NeuralNetwork / NeuralNetworkClassifier / NeuralNetworkRegressor specs.

Compiles every layer once through `registry.NN_LAYERS` (an unknown layer type fails at load, naming
the layer), then runs them in order over a dict of blobs. Blobs carry a leading axis of independent
predictions; image preprocessing (scale and per-channel bias, or mean image) runs first, exactly as
stored in the spec. With `compute="fp16"` the inputs and every layer's output are rounded to
float16 (held as float32), and what that rounding does is recorded (`kerasml.runtime.fp16`).
"""

from __future__ import annotations

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.runtime import fp16, kernels
from kerasml.runtime.errors import UnsupportedModelError
from kerasml.runtime.registry import NN_LAYERS

_RUNTIME_ERRORS = (ValueError, IndexError, TypeError, ArithmeticError)
_OWN_OUTPUT = {"convolution", "innerProduct", "batchedMatmul", "batchnorm", "pooling"}


def _allowed_shapes(array_type):
    """An input's fixed shape, or for a flexible input a test `shape -> bool` of its ranges or
    enumerated shapes (spec 3+: `shapeRange` / `enumeratedShapes`)."""
    flexibility = array_type.WhichOneof("ShapeFlexibility")
    if flexibility == "shapeRange":
        ranges = [(r.lowerBound, r.upperBound) for r in array_type.shapeRange.sizeRanges]
        return lambda shape: len(shape) == len(ranges) and all(
            lo <= d and (hi < 0 or d <= hi) for d, (lo, hi) in zip(shape, ranges)
        )
    if flexibility == "enumeratedShapes":
        shapes = {tuple(int(d) for d in s.shape) for s in array_type.enumeratedShapes.shapes}
        return lambda shape: tuple(shape) in shapes
    return tuple(int(d) for d in array_type.shape)


def _then(run, in_place):
    """run followed by one more in-place activation; a chain of them runs block by block."""
    base, chain = getattr(run, "fused_base", run), getattr(run, "fused_chain", []) + [in_place]

    def fused(args):
        return [kernels.apply_in_place(y, chain) for y in base(args)]

    fused.fused_base, fused.fused_chain = base, chain
    return fused


def _image_bias(scaler, colour: str) -> list[float]:
    if colour == "grayscale":
        return [scaler.grayBias]
    rgb = [scaler.redBias, scaler.greenBias, scaler.blueBias]
    return rgb[::-1] if colour == "bgr" else rgb


def image_preprocessing(net, colours: dict[str, str]) -> dict[str, tuple[str, object]]:
    """{image input: ("scaler", (scale, bias per channel)) or ("mean", mean image)}."""
    found: dict[str, tuple[str, object]] = {}
    for pre in net.preprocessing:
        name = pre.featureName or next(iter(colours), "")  # unnamed: the (only) image input
        if name not in colours:
            raise KerasmlError(
                f"preprocessing for '{pre.featureName}', which is not an image input; convert the model again"
            )
        kind = pre.WhichOneof("preprocessor")
        if kind == "scaler":
            if pre.scaler.channelScale == 0:  # unset: coremltools always writes it, and 0 would be ambiguous
                raise UnsupportedModelError(
                    f"image preprocessing for '{name}' has no channel scale (0); convert the model again"
                )
            bias = np.asarray(_image_bias(pre.scaler, colours[name]), np.float32)[:, None, None]
            found[name] = ("scaler", (np.float32(pre.scaler.channelScale), bias))
        elif kind == "meanImage":
            found[name] = ("mean", np.asarray(pre.meanImage.meanImage, np.float32))
    return found


class NeuralNetworkEngine:
    """`run({input name: (N, ...) array}) -> {blob name: (N, ...) array}` for one NeuralNetwork."""

    def __init__(self, spec, colours: dict[str, str], compute: str = "fp32"):
        self.fp16 = compute == "fp16"
        self.network = getattr(spec, spec.WhichOneof("Type"))
        net = self.network
        self.rank4_images = net.imageInputShapeMapping == 1
        self.exact_arrays = net.arrayInputShapeMapping == 1
        self.array_shapes = {
            f.name: _allowed_shapes(f.type.multiArrayType)
            for f in spec.description.input
            if f.type.WhichOneof("Type") == "multiArrayType"
        }
        self.preprocessing = image_preprocessing(net, colours)
        self.steps = []
        for layer in net.layers:
            kind = layer.WhichOneof("layer")
            compile_ = NN_LAYERS.get(kind)
            if compile_ is None:
                raise UnsupportedModelError(
                    f"layer '{layer.name}' has type '{kind}', which the kerasml runtime does not implement; "
                    "convert the model without it or check it on macOS with coremltools"
                )
            try:
                run = compile_(layer, layer.name)
            except (ValueError, IndexError) as exc:
                raise KerasmlError(
                    f"layer '{layer.name}' ({kind}) is malformed: {exc}; convert the model again"
                ) from None
            self.steps.append((layer.name, kind, list(layer.input), list(layer.output), run))
        self.last_output = self.steps[-1][3][0] if self.steps else None
        self._plain_steps = list(self.steps)  # every layer on its own: each blob holds its own value
        self._stale: set[str] = set()  # blobs whose value fusion changes (an activation applied in place)
        self._fuse({f.name for f in spec.description.output})

    def _fuse(self, outputs: set[str]) -> None:
        """Apply an activation in place, in the producing layer's fresh buffer, when nothing else
        reads that layer's output: one pass over data that is still in cache instead of a new array.
        Only layers whose result is an array they own qualify (never views such as reshape)."""
        readers: dict[str, int] = {}
        for _, _, inputs, _, _ in self.steps:
            for blob in inputs:
                readers[blob] = readers.get(blob, 0) + 1
        producers = {outs[0]: i for i, (_, kind, _, outs, _) in enumerate(self.steps) if kind in _OWN_OUTPUT}
        max_pools = {inputs[0]: i for i, (_, _, inputs, _, run) in enumerate(self.steps) if hasattr(run, "with_floor")}
        for i, (name, kind, inputs, outs, run) in enumerate(self.steps):
            in_place = getattr(run, "in_place", None)
            source = inputs[0] if len(inputs) == 1 else None
            if in_place is None or source is None or readers.get(source) != 1 or source in outputs:
                continue
            floor = getattr(run, "floor", None)
            pool = max_pools.get(outs[0])
            if floor is not None and pool is not None and readers.get(outs[0]) == 1 and outs[0] not in outputs:
                # ReLU then max pooling is max pooling clamped at 0: pool the raw values, clamp for free
                p_name, p_kind, p_inputs, p_outs, p_run = self.steps[pool]
                self.steps[pool] = (p_name, p_kind, p_inputs, p_outs, p_run.with_floor(floor))
                self._stale.add(outs[0])  # the activation passes its input through: the pool clamps
            elif source in producers:
                p_name, p_kind, p_inputs, p_outs, p_run = self.steps[producers[source]]
                self.steps[producers[source]] = (p_name, p_kind, p_inputs, p_outs, _then(p_run, in_place))
                producers[outs[0]] = producers[source]  # the next activation can join the chain
                self._stale.add(source)  # the producer's buffer now holds the activation's result
            else:
                continue
            self.steps[i] = (name, kind, inputs, outs, lambda args: [args[0]])

    def prepare_image(self, name: str, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) pixels in the model's channel order → the network's input blob."""
        x = x.astype(np.float32, copy=False)
        step = self.preprocessing.get(name)
        if step is not None and step[0] == "scaler":
            scale, bias = step[1]
            x = x * scale + bias
        elif step is not None:
            mean = step[1]
            if mean.size != x[0].size:
                raise KerasmlError(
                    f"mean image of {mean.size} values does not match input '{name}' of shape {x.shape[1:]}"
                )
            x = x - mean.reshape(x.shape[1:])
        return x[:, None] if self.rank4_images else x

    def prepare_array(self, name: str, x: np.ndarray) -> np.ndarray:
        """(N, *shape) multiarray → the blob the network sees (rank-5 mapping pads vectors to (C, 1, 1))."""
        x = x.astype(np.float32, copy=False)
        shape = self.array_shapes.get(name)
        if callable(shape):  # a flexible input: the shape given must be one the model allows
            if not shape(x.shape[1:]):
                raise KerasmlError(f"input '{name}' does not allow the shape {x.shape[1:]} per prediction")
        elif shape:
            if x[0].size != int(np.prod(shape)):
                raise KerasmlError(f"input '{name}' takes {shape} per prediction, got {x.shape[1:]}")
            x = x.reshape((len(x),) + shape)
        if not self.exact_arrays and x.ndim == 2:
            return x[:, :, None, None]
        return x

    def probability_blob(self, layer_name: str) -> str | None:
        for name, _, _, outputs, _ in self.steps:
            if name == layer_name:
                return outputs[0]
        return layer_name or self.last_output

    def computed_names(self) -> list[str]:
        """Every layer's output blobs, in the order the layers run."""
        return [blob for _, _, _, outputs, _ in self._plain_steps for blob in outputs]

    def constant_names(self) -> list[str]:
        """None: a NeuralNetwork's constants are layers' outputs (loadConstant) like any other."""
        return []

    def run(self, blobs: dict[str, np.ndarray], wanted: list[str], events: list | None = None) -> dict[str, np.ndarray]:
        """The `wanted` blobs for a batch of prepared inputs; fp16 events are appended to `events`.
        Fused layers run apart when a blob they would change is wanted, or under compute="fp16"."""
        events = [] if events is None else events
        steps = self._plain_steps if self.fp16 or self._stale.intersection(wanted) else self.steps
        blobs = {k: self._rounded(k, v, events) for k, v in blobs.items()}
        last_use = {}
        for i, (_, _, inputs, _, _) in enumerate(steps):
            for blob in inputs:
                last_use[blob] = i
        for i, (name, kind, inputs, outputs, run) in enumerate(steps):
            try:
                args = [blobs[b] for b in inputs]
            except KeyError as exc:
                raise KerasmlError(
                    f"layer '{name}' ({kind}) reads blob {exc} that nothing produces; the model is malformed"
                ) from None
            try:
                results = run(args)
            except KerasmlError:
                raise
            except _RUNTIME_ERRORS as exc:
                raise KerasmlError(
                    f"layer '{name}' ({kind}) cannot run on shapes {[a.shape[1:] for a in args]}: {exc}"
                ) from None
            if len(results) != len(outputs):
                raise UnsupportedModelError(
                    f"layer '{name}' ({kind}) has {len(outputs)} outputs; the kerasml runtime computes {len(results)}"
                )
            blobs.update((out, self._rounded(out, r, events, args)) for out, r in zip(outputs, results))
            for blob in inputs:
                if last_use.get(blob) == i and blob not in wanted:
                    blobs.pop(blob, None)
        missing = [w for w in wanted if w not in blobs]
        if missing:
            raise KerasmlError(f"the network never produces output {missing[0]!r}; the model is malformed")
        return {w: np.array(blobs[w]) for w in wanted}  # copies: layers reuse their buffers

    def _rounded(self, name: str, value, events: list, inputs=()) -> np.ndarray:
        if not self.fp16 or not fp16.is_float(value):
            return value
        return fp16.rounded(name, value, events, batched=True, inputs=inputs).astype(np.float32)
