"""Load a Keras model from whatever a user has, safely, into one callable shape.

Keras 3 `.keras` and `.h5`, Keras 2 `.h5` (through tf_keras), and SavedModel directories all
become a `LoadedModel`: a batched `predict` for verification and a traced `tf.function` for the
converter. Code stored in a model file (Lambda layers) only runs with `unsafe=True`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.libs import tensorflow


@dataclasses.dataclass
class LoadedModel:
    path: Path
    flavour: str                                 # "keras3", "tf_keras" or "savedmodel"
    input_shape: tuple[int, ...]                 # without the batch dimension
    output_size: int
    function: Callable                           # tensor (N, *input_shape) -> tensor (N, classes)
    keras_model: object | None = None            # the Keras model, when there is one
    owner: object | None = None                  # keeps a SavedModel's variables alive
    _ends_in_softmax: bool | None = None

    def predict(self, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Model outputs for inputs already shaped and scaled as the model expects."""
        x = np.asarray(x, dtype=np.float32)
        if self.keras_model is not None:
            return np.asarray(self.keras_model.predict(x, batch_size=batch_size, verbose=0))
        return np.concatenate([np.asarray(self.function(x[i:i + batch_size]))
                               for i in range(0, len(x), batch_size)])

    @property
    def ends_in_softmax(self) -> bool:
        """Whether the outputs are probabilities, judged by running the model: a softmax layer
        hidden in a SavedModel or a custom head counts as much as a Keras `Dense(softmax)`."""
        if self._ends_in_softmax is None:
            self._ends_in_softmax = _last_layer_is_softmax(self.keras_model)
        if self._ends_in_softmax is None:
            rng = np.random.default_rng(0)
            x = rng.uniform(0, 1, size=(8, *self.input_shape)).astype(np.float32)
            y = self.predict(x)
            self._ends_in_softmax = bool((y >= 0).all() and np.allclose(y.sum(axis=1), 1, atol=1e-3))
        return self._ends_in_softmax


def _last_layer_is_softmax(model) -> bool | None:
    """Read off a Keras model's last layer when it says plainly (saves running the model);
    None when it does not (custom heads, SavedModels)."""
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    last = layers[-1]
    kind = type(last).__name__
    if kind == "Softmax":
        return True
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", None)
    if kind in ("Dense", "Activation", "Conv2D") and name is not None:
        return name == "softmax"
    return None


def load_keras_model(path: Path, unsafe: bool = False) -> LoadedModel:
    path = Path(path)
    if not path.exists():
        raise KerasmlError(f"model {path} not found")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return _load_saved_model(path)
        raise KerasmlError(f"{path} is a directory but not a SavedModel (no saved_model.pb); "
                           "give a .keras or .h5 file or a SavedModel directory")
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return _load_keras3(path, unsafe)
    if suffix in (".h5", ".hdf5"):
        version = _h5_keras_version(path)
        if version.startswith("1."):
            raise KerasmlError(
                f"{path} was saved by Keras {version}, which no current Keras can read; re-save it "
                "with Keras 2 (model.save('model.h5')), or rebuild the architecture in Keras 3 and "
                "load its weights")
        if version.startswith("2.") or version == "":
            return _load_tf_keras(path, unsafe)
        return _load_keras3(path, unsafe)
    if suffix in (".mlmodel", ".mlpackage"):
        raise KerasmlError(f"{path} is already a Core ML model; give the Keras model it came from")
    raise KerasmlError(f"{path} is not a Keras model; give a .keras or .h5 file or a SavedModel directory")


def _h5_keras_version(path: Path) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            version = h5.attrs.get("keras_version", b"")
            config = h5.attrs.get("model_config")
    except OSError:
        raise KerasmlError(f"{path} is not a readable HDF5 file (damaged, truncated or not a model); "
                           "save the model again") from None
    version = version.decode() if isinstance(version, bytes) else str(version)
    if config is None:
        raise KerasmlError(f"{path} holds weights only (no model_config); build the architecture "
                           "in Keras, load these weights and save the whole model")
    if not version:
        # Keras 1 did not always stamp its version; its layer names and arguments give it away.
        text = config.decode() if isinstance(config, bytes) else str(config)
        if "Convolution2D" in text or "border_mode" in text:
            version = "1.x"
    return version


def _contains_lambda(config) -> bool:
    text = config if isinstance(config, str) else json.dumps(config)
    return '"class_name": "Lambda"' in text


def _load_keras3(path: Path, unsafe: bool) -> LoadedModel:
    tensorflow()
    import keras

    if unsafe:
        keras.config.enable_unsafe_deserialization()
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as exc:  # Keras raises ValueError/TypeError/OSError/zipfile errors alike
        raise _load_error(path, exc) from None
    return from_keras(path, "keras3", model)


def _load_tf_keras(path: Path, unsafe: bool) -> LoadedModel:
    import h5py

    with h5py.File(path, "r") as h5:
        config = h5.attrs.get("model_config")
    if not unsafe and _contains_lambda(config.decode() if isinstance(config, bytes) else config):
        raise KerasmlError(f"{path} contains a Lambda layer, whose Python code would run on loading; "
                           "pass --unsafe only if you trust where the file came from")
    tensorflow()
    import tf_keras

    try:
        model = tf_keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise _load_error(path, exc) from None
    return from_keras(path, "tf_keras", model)


def _load_error(path: Path, exc: Exception) -> KerasmlError:
    message = " ".join(str(exc).split())
    if "safe_mode" in message or "Lambda" in message:
        return KerasmlError(f"{path} contains a Lambda layer or other stored code, which kerasml does "
                            "not run by default; pass --unsafe only if you trust where the file came from")
    if "Unknown layer" in message or "Could not locate class" in message or "custom_objects" in message:
        name = message.split("'")[1] if "'" in message else "a custom class"
        return KerasmlError(f"{path} uses the custom layer or object {name}, which kerasml cannot "
                            "rebuild; replace it with built-in layers or export a SavedModel")
    return KerasmlError(f"cannot load {path}: {message[:200]}")


def from_keras(path: Path, flavour: str, model) -> LoadedModel:
    tf = tensorflow()
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    if not inputs and type(model).__name__ == "Sequential":
        raise KerasmlError(f"Keras could not rebuild the layers of {path} from the file (a Lambda layer "
                           "whose output shape Keras cannot infer does this); give each Lambda an "
                           "output_shape=... and save the model again")
    if len(inputs) != 1 or len(outputs) != 1:
        raise KerasmlError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; kerasml "
                           "converts image classifiers with one image input and one output")
    input_shape = tuple(inputs[0].shape[1:])
    output_shape = tuple(outputs[0].shape[1:])
    _check_shapes(path, input_shape, output_shape)

    @tf.function
    def function(x):
        return model(x, training=False)

    return LoadedModel(path, flavour, tuple(int(d) for d in input_shape), int(output_shape[0]),
                       function, keras_model=model)


def _load_saved_model(path: Path) -> LoadedModel:
    tf = tensorflow()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise KerasmlError(f"cannot load SavedModel {path}: {' '.join(str(exc).split())[:200]}") from None
    signatures = dict(getattr(loaded, "signatures", {}))
    signature = signatures.get("serving_default") or signatures.get("serve") or (
        next(iter(signatures.values())) if signatures else None)
    if signature is None:
        raise KerasmlError(f"SavedModel {path} has no serving signature; export it with "
                           "model.export(path) or tf.saved_model.save(..., signatures=...)")
    args, kwargs = signature.structured_input_signature
    specs = list(kwargs.values()) + list(args)
    if len(specs) != 1 or len(signature.structured_outputs) != 1:
        raise KerasmlError(f"SavedModel {path} has {len(specs)} inputs and "
                           f"{len(signature.structured_outputs)} outputs; kerasml converts models "
                           "with one image input and one output")
    input_name = next(iter(kwargs)) if kwargs else None
    output_spec = next(iter(signature.structured_outputs.values()))
    input_shape = tuple(specs[0].shape[1:])
    output_shape = tuple(output_spec.shape[1:])
    _check_shapes(path, input_shape, output_shape)

    @tf.function
    def function(x):
        result = signature(**{input_name: x}) if input_name else signature(x)
        return next(iter(result.values()))

    return LoadedModel(path, "savedmodel", tuple(int(d) for d in input_shape), int(output_shape[0]),
                       function, owner=loaded)


def _check_shapes(path: Path, input_shape: tuple, output_shape: tuple) -> None:
    if any(d is None for d in input_shape):
        raise KerasmlError(f"{path} accepts images of any size {input_shape}; rebuild it with a fixed "
                           "input shape such as (28, 28, 1) so Core ML knows the image size")
    if len(output_shape) != 1 or output_shape[0] is None or output_shape[0] < 2:
        raise KerasmlError(f"{path} outputs shape {output_shape}; an image classifier outputs one "
                           "score per class, shape (classes,)")
    if len(input_shape) not in (1, 2, 3):
        raise KerasmlError(f"{path} takes input of shape {input_shape}, which is not an image; "
                           "kerasml converts models with (height, width, channels) or flat inputs")


def image_shape_for(model: LoadedModel, input_shape: str | None) -> tuple[int, int, int]:
    """The (height, width, channels) of the Core ML image input for this model.

    Image models use their own shape. Flat models (`(None, 784)`) need `--input-shape 28x28`;
    without it a perfect-square size is taken as a square grayscale image, with a note.
    """
    shape = model.input_shape
    if input_shape:
        image = _parse_shape(input_shape)
        if math.prod(image) != math.prod(shape):
            raise KerasmlError(f"--input-shape {input_shape} has {math.prod(image)} values but the model "
                               f"takes {math.prod(shape)} {shape}")
        return image
    if len(shape) == 3:
        if shape[-1] not in (1, 3):
            raise KerasmlError(f"{model.path} takes images with {shape[-1]} channels {shape}; Core ML "
                               "images are grayscale (1) or RGB (3), channels last")
        return shape  # type: ignore[return-value]
    if len(shape) == 2:
        return (shape[0], shape[1], 1)
    side = math.isqrt(shape[0])
    if side * side == shape[0] and side >= 8:
        return (side, side, 1)
    raise KerasmlError(f"{model.path} takes a flat input of {shape[0]} values; pass --input-shape "
                       "HxW or HxWxC (e.g. 28x28) to say which image it is")


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        parts = [int(p) for p in text.lower().replace("×", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) == 2:
        parts.append(1)
    if len(parts) != 3 or min(parts) < 1 or parts[2] not in (1, 3):
        raise KerasmlError(f"--input-shape {text!r} must look like 28x28 or 32x32x3 "
                           "(height x width, optionally x channels 1 or 3)")
    return tuple(parts)  # type: ignore[return-value]
