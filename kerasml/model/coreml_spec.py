"""The one reader of Core ML files and of what a Core ML model declares: `read_spec` parses an
.mlmodel or .mlpackage (proto.py: coremltools' message classes without importing coremltools), and
the rest reads image colour, class labels, image preprocessing, weight precision and where an
.mlpackage keeps its model.

`kerasml inspect`, `kerasml package` and kerasml's runtime (kerasml/runtime/model.py) all read these
facts here. It imports neither coremltools, TensorFlow nor the runtime, so any of them may import it.
"""

from __future__ import annotations

import json
from pathlib import Path

from kerasml.errors import KerasmlError
from kerasml.model import proto

# ImageFeatureType.ColorSpace -> the channel order the model takes (40 is GRAYSCALE_FLOAT16).
COLOUR_SPACES = {10: "grayscale", 20: "rgb", 30: "bgr", 40: "grayscale"}
GRAYSCALE_FLOAT16 = 40
NN_TYPES = ("neuralNetworkClassifier", "neuralNetwork", "neuralNetworkRegressor")
# Weight precisions from the most to the least precise: a model is as precise as its least precise weights.
PRECISION_ORDER = ("float32", "float16", "int8", "int4", "lut")


# ------------------------------------------------------------------------------------ image colour
def image_colour(colour_space: int) -> str | None:
    """"grayscale", "rgb" or "bgr" for an image input's colour space; None for one kerasml does not know."""
    return COLOUR_SPACES.get(colour_space)


def describe_colour(colour_space: int) -> str:
    """The colour space for people: grayscale, RGB, BGR or grayscale (float16)."""
    colour = image_colour(colour_space)
    if colour is None:
        return str(colour_space)
    text = colour if colour == "grayscale" else colour.upper()
    return text + " (float16)" if colour_space == GRAYSCALE_FLOAT16 else text


# ------------------------------------------------------------------------------------------ files
def package_model_file(package: Path) -> Path:
    """The model file an .mlpackage's Manifest.json names, which must lie inside the package: a
    manifest pointing elsewhere (`../../etc/passwd`) would make kerasml read any file."""
    model_file = package / "Data" / "com.apple.CoreML" / "model.mlmodel"
    manifest = package / "Manifest.json"
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text())
            entry = info["itemInfoEntries"][info["rootModelIdentifier"]]
            model_file = package / "Data" / entry["path"]
        except (ValueError, KeyError, TypeError):
            raise KerasmlError(f"{manifest} is not a valid package manifest; convert the model again") from None
        if not model_file.resolve().is_relative_to(package.resolve()):
            raise KerasmlError(f"{manifest} points outside the package ({entry['path']}); kerasml reads "
                               "nothing outside it: convert the model again")
    if not model_file.is_file():
        raise KerasmlError(f"{package} is not an .mlpackage (no {model_file.relative_to(package)}); "
                           "pass a .mlmodel file or an .mlpackage folder")
    return model_file


def read_spec(path: Path):
    """(spec, folder that `@model_path` means) for a .mlmodel file or an .mlpackage folder, refused
    in one line when the path is not a whole Core ML model."""
    path = Path(path)
    if not path.exists():
        raise KerasmlError(f"{path} does not exist; pass a .mlmodel file or an .mlpackage folder")
    if path.suffix == ".mlpackage" and not (path / "Manifest.json").is_file():
        raise KerasmlError(f"{path} is not a valid .mlpackage (no Manifest.json); convert the model again")
    if path.suffix == ".mlmodel" and not path.is_file():
        raise KerasmlError(f"{path} is not a file; an .mlmodel is a single file")
    if path.is_dir():
        path = package_model_file(path)   # refuses a manifest that points outside the package
    spec = proto.model_pb2().Model()
    try:
        spec.ParseFromString(path.read_bytes())
    except Exception:  # protobuf's DecodeError and friends: the file is not (all) a Core ML model
        raise KerasmlError(f"{path} is not a readable Core ML model (it may be truncated or not a model at "
                           "all); convert the model again") from None
    if spec.specificationVersion < 1 or spec.WhichOneof("Type") is None or not spec.description.input:
        raise KerasmlError(f"{path} is not a readable Core ML model (no specification version, type or "
                           "inputs); convert the model again")
    return spec, path.parent


def class_labels(spec) -> list | None:
    """The class labels of a classifier (also inside a pipeline or an ML Program), else None."""
    model_type = spec.WhichOneof("Type")
    if model_type is None:
        return None
    body = getattr(spec, model_type)
    if model_type in ("pipelineClassifier", "pipeline"):
        models = body.pipeline.models if model_type == "pipelineClassifier" else body.models
        for inner in reversed(models):
            labels = class_labels(inner)
            if labels is not None:
                return labels
        return None
    if model_type == "mlProgram":
        return _program_labels(spec)
    return classifier_labels(body)


def classifier_labels(body) -> list | None:
    """The labels a classifier message (a NeuralNetworkClassifier, ...) lists, else None."""
    try:
        which = body.WhichOneof("ClassLabels")
    except ValueError:                   # this model type has no class labels at all
        return None
    return None if which is None else list(getattr(body, which).vector)


def _program_labels(spec) -> list | None:
    for op in program_ops(spec):
        if op.type == "classify":
            values = op.inputs["classes"].arguments[0].value.immediateValue.list.values
            labels = []
            for value in values:
                tensor = value.immediateValue.tensor
                labels.extend(tensor.longInts.values or tensor.strings.values or tensor.ints.values)
            return labels
    return None


def program_ops(spec):
    """Every operation of an ML Program's functions, in order."""
    for function in spec.mlProgram.functions.values():
        block = function.block_specializations[function.opset]
        yield from block.operations


# ---------------------------------------------------------------------------------- preprocessing
def image_preprocessing(spec) -> list[dict]:
    """The image preprocessing a model declares: NeuralNetwork scalers and mean images, or the
    leading `mul`/`add` by constants coremltools writes into an ML Program."""
    model_type = spec.WhichOneof("Type")
    if model_type in NN_TYPES:
        found = []
        for step in getattr(spec, model_type).preprocessing:
            kind = step.WhichOneof("preprocessor")
            if kind == "scaler":
                s = step.scaler
                found.append({"feature": step.featureName or None, "scale": s.channelScale or 1.0,
                              "red_bias": s.redBias, "green_bias": s.greenBias,
                              "blue_bias": s.blueBias, "gray_bias": s.grayBias})
            elif kind == "meanImage":
                found.append({"feature": step.featureName or None, "mean_image": len(step.meanImage.meanImage)})
        return found
    if model_type == "mlProgram":
        return _program_preprocessing(spec)
    return []


def _program_preprocessing(spec) -> list[dict]:
    image_inputs = {f.name for f in spec.description.input if f.type.WhichOneof("Type") == "imageType"}
    constants = {}
    found = []
    for op in program_ops(spec):
        if op.type == "const":
            value = op.attributes["val"].immediateValue.tensor
            numbers = list(value.floats.values) or list(value.ints.values)
            if numbers:
                constants[op.outputs[0].name] = numbers
            continue
        if op.type in ("mul", "add") and "x" in op.inputs and "y" in op.inputs:
            x = op.inputs["x"].arguments[0].name
            y = op.inputs["y"].arguments[0].name
            if x in image_inputs and y in constants:
                key = "scale" if op.type == "mul" else "bias"
                found.append({"feature": x, key: constants[y]})
                image_inputs.add(op.outputs[0].name)
    return found


# ----------------------------------------------------------------------------------------- weights
def weight_storage(params) -> tuple[str, int]:
    """How a NeuralNetwork `WeightParams` stores its values: ("lut" or "linear", bits) when
    quantized, else ("float16", 16), ("int8", 8), ("raw", 0), ("float32", 32) or ("empty", 0)."""
    q = params.quantization
    if params.HasField("quantization") and (q.numberOfBits or q.WhichOneof("QuantizationType")):
        mode = q.WhichOneof("QuantizationType")
        return ("lut" if mode == "lookupTableQuantization" else "linear"), q.numberOfBits
    if params.float16Value:
        return "float16", 16
    if params.int8RawValue:
        return "int8", 8
    if params.rawValue:
        return "raw", 0
    if params.floatValue:
        return "float32", 32
    return "empty", 0


def weight_class(params) -> str:
    """A `WeightParams`' precision as kerasml names it: float32, float16, int8, int<n> (n-bit linear) or lut."""
    kind, bits = weight_storage(params)
    return {"lut": "lut", "linear": f"int{bits}", "float16": "float16", "int8": "int8"}.get(kind, "float32")


def least_precise(precisions) -> str:
    """The least precise of some weight precisions (float32 when there are none)."""
    def rank(name: str) -> int:
        return PRECISION_ORDER.index(name) if name in PRECISION_ORDER else len(PRECISION_ORDER) - 1
    return max(precisions or {"float32"}, key=rank)


def main_weights(network):
    """The main weights of a NeuralNetwork's layers (not biases): what decides its precision."""
    for layer in network.layers:
        kind = layer.WhichOneof("layer")
        params = getattr(layer, kind) if kind else None
        if kind in ("convolution", "innerProduct", "batchedMatmul", "embedding", "embeddingND") and params.HasField(
            "weights"
        ):
            yield params.weights


def weight_precision(spec) -> list[str]:
    """Every way the model stores weights, for people: float32, float16, "8-bit lookup table",
    "4-bit linear", raw bytes, or an ML Program's constexpr ops and blob data types."""
    model_type = spec.WhichOneof("Type")
    kinds: set[str] = set()
    if model_type == "mlProgram":
        for op in program_ops(spec):
            if op.type.startswith("constexpr_"):
                kinds.add(op.type)
            elif op.type == "const":
                value = op.attributes["val"]
                if value.HasField("blobFileValue"):
                    data_type = value.type.tensorType.dataType
                    kinds.add(type(value.type.tensorType).DESCRIPTOR.fields_by_name["dataType"]
                              .enum_type.values_by_number[data_type].name.lower())
        return sorted(kinds)
    holder = getattr(spec, model_type, None)
    for layer in getattr(holder, "layers", []):
        params = getattr(layer, layer.WhichOneof("layer"))
        for field, value in params.ListFields():
            if type(value).__name__ != "WeightParams":
                continue
            kind, bits = weight_storage(value)
            text = {"float32": "float32", "float16": "float16", "lut": f"{bits}-bit lookup table",
                    "linear": f"{bits}-bit linear", "int8": "raw bytes", "raw": "raw bytes"}.get(kind)
            if text:
                kinds.add(text)
    return sorted(kinds)
