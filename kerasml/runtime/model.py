"""`load_model` and the `CoreMLModel` it returns: what a Core ML model is and what it computes.

The model's inputs, image preprocessing and labels are read from the spec; the computation goes to
an engine (`nn.NeuralNetworkEngine` or `mil.ProgramEngine`), both of which take and return arrays with
a leading axis of independent predictions. `load_model(path, compute="fp16")` computes as the GPU or
Neural Engine would (`fp16`); `model.intermediates(images)` gives every value the model computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasml.model.coreml_spec import (NN_TYPES, read_spec, classifier_labels, image_colour, least_precise,
                                 main_weights, weight_class)
from kerasml.errors import KerasmlError
from kerasml.model import proto
from kerasml.runtime import fp16
from kerasml.runtime.errors import UnsupportedModelError
from kerasml.runtime.parallel import parallel_map, pieces

_CHUNK = 256  # images per pass: large enough for BLAS, small enough for the layers to stay in cache


@dataclass(frozen=True)
class ImageInput:
    """An image input: size, colour and the preprocessing `scale * pixel + bias` it applies.

    `bias` has one value per channel in the model's own channel order (B, G, R for "bgr"). For an ML
    Program the preprocessing is part of the program; `scale` and `bias` are read from its leading
    `mul`/`add` ops when it has them (1 and 0 otherwise).
    """

    name: str
    height: int
    width: int
    channels: int
    colour: str
    scale: float
    bias: tuple[float, ...]


def load_model(source, compute: str = "fp32") -> "CoreMLModel":
    """A runnable model from a .mlmodel file, an .mlpackage folder, a parsed `Model_pb2.Model` or a
    coremltools `MLModel` (as `convert` returns it, before saving).

    `compute`: "fp32" computes as Core ML does on the CPU: in float32, or in float16 where an ML
    Program declares it (a value beyond float16's range there is refused: its answer depends on the
    compute unit). "fp16" computes as the GPU and Neural Engine run a model: a NeuralNetwork with every
    float value (input, each layer's result) rounded to float16; an ML Program in the types it
    declares (typed execution: its fp32 ops stay fp32, its fp16 ops overflow to inf). Where float16
    overflows, makes NaN or flushes a value to zero is recorded in `model.fp16_events` instead of
    refused."""
    if compute not in fp16.COMPUTE_MODES:
        raise KerasmlError(f"compute must be one of {', '.join(fp16.COMPUTE_MODES)}, not {compute!r}")
    if proto.is_model_spec(source):
        return CoreMLModel(source, None, compute)
    if hasattr(source, "get_spec") and hasattr(source, "weights_dir"):  # a coremltools MLModel
        weights = source.weights_dir
        return CoreMLModel(source.get_spec(), Path(weights).parent if weights else None, compute)
    spec, folder = read_spec(Path(source))
    return CoreMLModel(spec, folder, compute)


def _image_inputs(spec) -> dict[str, ImageInput]:
    images = {}
    for feature in spec.description.input:
        if feature.type.WhichOneof("Type") != "imageType":
            continue
        t = feature.type.imageType
        colour = image_colour(t.colorSpace)
        if colour is None:
            raise UnsupportedModelError(
                f"input '{feature.name}' has image colour space {t.colorSpace}, which the kerasml runtime does not implement"
            )
        channels = 1 if colour == "grayscale" else 3
        images[feature.name] = ImageInput(feature.name, t.height, t.width, channels, colour, 1.0, (0.0,) * channels)
    return images


class CoreMLModel:
    """A loaded Core ML model that computes with NumPy; see `load_model`."""

    kind = "Core ML"
    runtime_name = "kerasml runtime"
    runtime_detail = "NumPy, CPU"

    def __init__(self, spec, folder: Path | None, compute: str = "fp32"):
        self.spec = spec
        self.compute = compute
        # (value name, "overflow" | "nan" | "underflow") of the latest call, under compute="fp16"
        self.fp16_events: list[tuple[str, str]] = []
        self.spec_version = int(spec.specificationVersion)
        self.model_type = spec.WhichOneof("Type")
        description = spec.description
        if not description.input:  # e.g. a program of constants only: nothing to batch predictions over
            raise UnsupportedModelError("the model has no inputs; the kerasml runtime runs models that take one")
        self.input_name = description.input[0].name
        self.output_names = [o.name for o in description.output]
        self.probability_output = description.predictedProbabilitiesName or None
        self.class_label_output = description.predictedFeatureName or None
        self._images = _image_inputs(spec)
        self.labels = None
        if self.model_type in NN_TYPES:
            from kerasml.runtime.nn import NeuralNetworkEngine

            self._engine = NeuralNetworkEngine(spec, {n: i.colour for n, i in self._images.items()}, compute)
            for name, (kind, value) in self._engine.preprocessing.items():
                if kind == "scaler" and name in self._images:
                    scale, bias = value
                    self._images[name] = _replace(self._images[name], float(scale), bias.ravel())
            network = self._engine.network
            if self.model_type == "neuralNetworkClassifier":
                self.labels = _labels(network)
                self._probability_blob = self._engine.probability_blob(network.labelProbabilityLayerName)
            precisions = {weight_class(w) for w in main_weights(network)}
        elif self.model_type == "mlProgram":
            from kerasml.runtime.mil import ProgramEngine

            self._engine = ProgramEngine(spec, folder, compute)
            if self._engine.classify is not None:
                self.labels = self._engine.classify.labels
            for name, (scale, bias) in self._engine.image_preprocessing().items():
                if name in self._images:
                    self._images[name] = _replace(self._images[name], scale, bias)
            precisions = self._engine.weight_precisions()
        else:
            raise UnsupportedModelError(
                f"model type '{self.model_type}' is not a neural network or ML Program; the kerasml runtime runs only those"
            )
        self.image = self._images.get(self.input_name)
        self.weight_precision = least_precise(precisions)

    @property
    def declares_fp16(self) -> bool:
        """An ML Program with ops typed float16: it computes in float16 on every compute unit."""
        return self.model_type == "mlProgram" and self._engine.declares_fp16

    @property
    def creator_defined(self) -> dict[str, str]:
        """The model's user-defined metadata (kerasml's `com.kerasml.*` keys among them)."""
        return dict(self.spec.description.metadata.userDefined)

    @property
    def about(self) -> dict[str, str]:
        """What Xcode's model page shows: description, author, licence, version."""
        meta = self.spec.description.metadata
        return {"description": meta.shortDescription, "author": meta.author, "license": meta.license,
                "version": meta.versionString}

    def __repr__(self) -> str:
        return f"<CoreMLModel {self.model_type} v{self.spec_version} input={self.input_name!r} precision={self.weight_precision}>"

    # -- high level -------------------------------------------------------------------------
    def predict_probabilities(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Class probabilities (N, n_classes), in label order, for raw 0-255 pixels.

        `images` is (N, H, W) or (N, H, W, C) with C = 1 or 3 (RGB order; reversed for a BGR model).
        """
        if self.image is None:
            raise KerasmlError(f"input '{self.input_name}' is not an image; call predict() with arrays instead")
        pixels = self._pixels_nchw(np.asarray(images), self.image)
        if not len(pixels):
            return np.zeros((0, len(self.labels or ())), np.float32)
        return self._probabilities({self.input_name: pixels}, batch_size)

    def intermediates(self, images: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Every named value the model computes, for raw 0-255 pixels as `predict_probabilities` takes:
        {name: (N, ...) array}, in the order computed. An ML Program gives each op's outputs (values
        of constants only, such as decompressed weights, when named); a NeuralNetwork each layer's
        output blobs. `names` picks some (None: all). Arrays keep the dtype the engine holds them in
        (an ML Program's declared dtype; float32 for NeuralNetworks, holding float16 values under compute="fp16")."""
        if self.image is None:
            raise KerasmlError(f"input '{self.input_name}' is not an image; intermediates() takes images")
        every = self._engine.computed_names()
        wanted = every if names is None else list(dict.fromkeys(names))
        known = set(every) | set(self._engine.constant_names())
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise KerasmlError(f"the model computes no value named {unknown[0]!r}; it computes {every[:5]} and more")
        pixels = self._pixels_nchw(np.asarray(images), self.image)
        if not len(pixels):
            raise KerasmlError("no images given")
        return self._run({self.input_name: pixels}, wanted)

    @staticmethod
    def _pixels_nchw(x: np.ndarray, img: ImageInput) -> np.ndarray:
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4:
            raise KerasmlError(f"expected images of shape (N, H, W) or (N, H, W, C), got {x.shape}")
        if x.shape[1:3] != (img.height, img.width):
            raise KerasmlError(
                f"the model takes {img.height}x{img.width} images, got {x.shape[1]}x{x.shape[2]}; resize them first"
            )
        if x.shape[3] != img.channels:
            raise KerasmlError(
                f"the model takes {img.colour} images ({img.channels} channels), got {x.shape[3]} channels"
            )
        if img.colour == "bgr":
            x = x[..., ::-1]
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)

    def _run(self, feeds: dict[str, np.ndarray], wanted: list[str], batch_size: int = _CHUNK) -> dict[str, np.ndarray]:
        """The engine over chunks of at most `batch_size` (and `_CHUNK`) predictions, on all cores."""
        total = len(next(iter(feeds.values())))
        if any(len(v) != total for v in feeds.values()):
            raise KerasmlError(f"inputs hold different numbers of predictions: {[len(v) for v in feeds.values()]}")
        step = max(1, min(int(batch_size), _CHUNK))
        chunks = [{k: v[piece] for k, v in feeds.items()} for piece in pieces(total, step)]
        events = [[] for _ in chunks]  # one list per chunk: chunks run on several threads
        def run(i: int) -> dict[str, np.ndarray]:
            if self.compute != "fp16":
                return self._engine.run(self._engine_feeds(chunks[i]), wanted, events[i])
            # inf and NaN are fp16's answers here, recorded as events, not warnings on stderr
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                return self._engine.run(self._engine_feeds(chunks[i]), wanted, events[i])

        results = parallel_map(run, range(len(chunks)))
        self.fp16_events = fp16.merged(getattr(self._engine, "load_events", []), *events)
        return {w: np.concatenate([r[w] for r in results]) for w in wanted}

    def _probabilities(self, feeds: dict[str, np.ndarray], batch_size: int = _CHUNK) -> np.ndarray:
        if self.model_type == "neuralNetworkClassifier":
            wanted = self._probability_blob
        elif self.model_type == "mlProgram" and self._engine.classify is not None:
            wanted = self._engine.classify.probabilities
        else:
            wanted = self.output_names[0]
        out = self._run(feeds, [wanted], batch_size)[wanted]
        probs = out.reshape(len(out), -1).astype(np.float32, copy=False)
        if self.labels is not None and probs.shape[1] != len(self.labels):
            raise KerasmlError(
                f"the network gives {probs.shape[1]} probabilities for {len(self.labels)} labels; the model is malformed"
            )
        return probs

    def _engine_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        prepared = {}
        for name, value in feeds.items():
            if name in self._images:
                prepared[name] = self._engine.prepare_image(name, value)
            else:
                prepared[name] = self._engine.prepare_array(name, np.asarray(value))
        return prepared

    # -- low level --------------------------------------------------------------------------
    def predict(self, features: dict[str, np.ndarray]) -> dict[str, object]:
        """Core ML feature semantics, batched: every feature has a leading axis of N predictions.

        Images are raw pixels (N, H, W) or (N, H, W, C); arrays are (N, *shape). A classifier gives
        its class-label output as a list of N labels and its probability output as a list of N
        {label: probability} dicts; other outputs are arrays with the leading N axis.
        """
        names = [f.name for f in self.spec.description.input]
        unknown = [name for name in features if name not in names]
        if unknown:
            raise KerasmlError(f"the model has no input '{unknown[0]}'; it takes {names}")
        missing = [name for name in names if name not in features]
        if missing:
            raise KerasmlError(
                f"missing input feature '{missing[0]}'; the model takes {[f.name for f in self.spec.description.input]}"
            )
        feeds = {}
        for name, value in features.items():
            feeds[name] = (
                self._pixels_nchw(np.asarray(value), self._images[name]) if name in self._images else np.asarray(value)
            )
        results: dict[str, object] = {}
        if self.labels is not None:
            probs = self._probabilities(feeds)
            top = probs.argmax(axis=1)
            if self.class_label_output:
                results[self.class_label_output] = [self.labels[i] for i in top]
            if self.probability_output:
                results[self.probability_output] = [dict(zip(self.labels, map(float, row))) for row in probs]
            return results
        wanted = list(self.output_names)
        out = self._run(feeds, wanted)
        for feature in self.spec.description.output:
            value = out[feature.name]
            shape = (
                tuple(feature.type.multiArrayType.shape) if feature.type.WhichOneof("Type") == "multiArrayType" else ()
            )
            if shape and int(np.prod(shape)) == value[0].size:
                value = value.reshape((len(value),) + shape)
            results[feature.name] = value
        return results


def _replace(image: ImageInput, scale: float, bias) -> ImageInput:
    values = np.asarray(bias, np.float32).ravel()
    if values.size == 1:
        values = np.repeat(values, image.channels)
    bias = tuple(float(b) for b in values)
    return ImageInput(image.name, image.height, image.width, image.channels, image.colour, float(scale), bias)


def _labels(network) -> list:
    labels = classifier_labels(network)
    if labels is None:
        raise KerasmlError("the classifier has no class labels; convert it again with labels")
    return labels
