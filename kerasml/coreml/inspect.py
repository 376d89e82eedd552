"""What is inside a model file: Core ML (any origin, specification version 1 and up) or Keras.

`inspect_model` returns a plain dict (the `--json` output); `format_report` turns it into text.
Core ML files are read as protobuf specs only, so this works on Linux for any model, including
ones kerasml cannot run.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

from kerasml.errors import KerasmlError
from kerasml.files import path_size

_COLOUR = {10: "grayscale", 20: "RGB", 30: "BGR", 40: "grayscale (float16)"}


def inspect_model(path: Path, unsafe: bool = False) -> dict:
    path = Path(path)
    if not path.exists():
        raise KerasmlError(f"{path} not found")
    if path.suffix in (".mlmodel", ".mlpackage"):
        return inspect_coreml(path)
    from kerasml.keras_models import load_keras_model
    return _inspect_keras(load_keras_model(path, unsafe=unsafe))


def load_spec(path: Path):
    """The protobuf spec of an .mlmodel file or .mlpackage directory, with clear errors."""
    from kerasml.libs import coremltools

    path = Path(path)
    if path.suffix == ".mlpackage" and not (path / "Manifest.json").is_file():
        raise KerasmlError(f"{path} is not a valid .mlpackage (no Manifest.json); convert the model again")
    if path.is_dir():
        from kerasml.runtime.model import package_model_file

        package_model_file(path)  # refuses a manifest that points outside the package
    if path.suffix == ".mlmodel" and not path.is_file():
        raise KerasmlError(f"{path} is not a file; an .mlmodel is a single file")
    ct = coremltools()
    try:
        spec = ct.utils.load_spec(str(path))
    except Exception as exc:  # protobuf DecodeError, KeyError on bad manifests, OSError
        raise KerasmlError(f"{path} is not a readable Core ML model ({type(exc).__name__}); "
                           "it may be truncated or not a model at all") from None
    if spec.specificationVersion < 1 or spec.WhichOneof("Type") is None:
        raise KerasmlError(f"{path} does not hold a Core ML model (empty or unknown specification)")
    return spec


def inspect_coreml(path: Path) -> dict:
    spec = load_spec(path)
    description = spec.description
    metadata = description.metadata
    model_type = spec.WhichOneof("Type")
    report = {
        "file": str(path),
        "format": "mlpackage" if path.suffix == ".mlpackage" else "mlmodel",
        "size_bytes": path_size(path),
        "specification_version": spec.specificationVersion,
        "model_type": model_type,
        "inputs": [_feature(f) for f in description.input],
        "outputs": [_feature(f) for f in description.output],
        "predicted_feature": description.predictedFeatureName or None,
        "predicted_probabilities": description.predictedProbabilitiesName or None,
        "class_labels": class_labels(spec),
        "image_preprocessing": _preprocessing(spec),
        "metadata": {
            "short_description": metadata.shortDescription,
            "author": metadata.author,
            "license": metadata.license,
            "version": metadata.versionString,
            "user_defined": dict(metadata.userDefined),
        },
        "layers": _layer_counts(spec),
        "weight_precision": _weight_precision(spec),
    }
    return report


def _feature(feature) -> dict:
    kind = feature.type.WhichOneof("Type")
    info: dict = {"name": feature.name, "description": feature.shortDescription, "type": kind}
    t = feature.type
    if kind == "imageType":
        info.update(width=t.imageType.width, height=t.imageType.height,
                    colour=_COLOUR.get(t.imageType.colorSpace, str(t.imageType.colorSpace)))
    elif kind == "multiArrayType":
        from coremltools.proto import FeatureTypes_pb2
        info.update(shape=list(t.multiArrayType.shape),
                    data_type=FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(t.multiArrayType.dataType))
    elif kind == "dictionaryType":
        info.update(key_type=t.dictionaryType.WhichOneof("KeyType"))
    return info


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
    try:
        which = body.WhichOneof("ClassLabels")
    except ValueError:                   # this model type has no class labels at all
        return None
    return None if which is None else list(getattr(body, which).vector)


def _program_labels(spec) -> list | None:
    for op in _program_ops(spec):
        if op.type == "classify":
            values = op.inputs["classes"].arguments[0].value.immediateValue.list.values
            labels = []
            for value in values:
                tensor = value.immediateValue.tensor
                labels.extend(tensor.longInts.values or tensor.strings.values or tensor.ints.values)
            return labels
    return None


def _program_ops(spec):
    for function in spec.mlProgram.functions.values():
        block = function.block_specializations[function.opset]
        yield from block.operations


def _preprocessing(spec) -> list[dict]:
    model_type = spec.WhichOneof("Type")
    if model_type in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
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
    """coremltools puts image scale and bias into the program as `mul`/`add` on the input."""
    image_inputs = {f.name for f in spec.description.input if f.type.WhichOneof("Type") == "imageType"}
    constants = {}
    found = []
    for op in _program_ops(spec):
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


def _layer_counts(spec) -> dict[str, int]:
    model_type = spec.WhichOneof("Type")
    if model_type == "mlProgram":
        return dict(collections.Counter(op.type for op in _program_ops(spec)))
    holder = getattr(spec, model_type)
    if hasattr(holder, "layers"):
        return dict(collections.Counter(layer.WhichOneof("layer") for layer in holder.layers))
    if model_type in ("pipeline", "pipelineClassifier"):
        counts: collections.Counter = collections.Counter()
        for model in holder.pipeline.models:
            counts.update(_layer_counts(model))
        return dict(counts)
    return {}


def _weight_precision(spec) -> list[str]:
    model_type = spec.WhichOneof("Type")
    kinds: set[str] = set()
    if model_type == "mlProgram":
        from coremltools.proto import MIL_pb2
        for op in _program_ops(spec):
            if op.type.startswith("constexpr_"):
                kinds.add(op.type)
            elif op.type == "const":
                value = op.attributes["val"]
                if value.HasField("blobFileValue"):
                    kinds.add(MIL_pb2.DataType.Name(value.type.tensorType.dataType).lower())
        return sorted(kinds)
    holder = getattr(spec, model_type, None)
    for layer in getattr(holder, "layers", []):
        params = getattr(layer, layer.WhichOneof("layer"))
        for field, value in params.ListFields():
            if type(value).__name__ != "WeightParams":
                continue
            if value.floatValue:
                kinds.add("float32")
            elif value.float16Value:
                kinds.add("float16")
            elif value.rawValue or value.int8RawValue:
                q = value.quantization
                mode = q.WhichOneof("QuantizationType")
                kinds.add(f"{q.numberOfBits}-bit {'lookup table' if mode == 'lookupTableQuantization' else 'linear'}"
                          if mode else "raw bytes")
    return sorted(kinds)


def _inspect_keras(model) -> dict:
    report = {"file": str(model.path), "format": model.flavour, "size_bytes": path_size(model.path),
              "input_shape": list(model.input_shape), "outputs": model.output_size,
              "ends_in_softmax": model.ends_in_softmax}
    keras_model = model.keras_model
    if keras_model is not None:
        report["name"] = keras_model.name
        report["parameters"] = int(keras_model.count_params())
        report["layers"] = [{"name": layer.name, "type": type(layer).__name__,
                             "output_shape": _shape(layer), "parameters": int(layer.count_params())}
                            for layer in keras_model.layers]
    return report


def _shape(layer):
    try:
        return list(layer.output.shape)
    except (AttributeError, ValueError):
        return None



def format_report(report: dict) -> str:
    lines = [f"{report['file']} ({report['format']}, {report['size_bytes'] / 1024:.1f} KiB)"]
    if "specification_version" not in report:  # a Keras model
        lines.append(f"  input shape: {tuple(report['input_shape'])}, outputs: {report['outputs']}, "
                     f"ends in softmax: {'yes' if report['ends_in_softmax'] else 'no (logits)'}")
        if "layers" in report:
            lines.append(f"  {report['parameters']:,} parameters in {len(report['layers'])} layers:")
            lines += [f"    {layer['name']:<28} {layer['type']:<22} {str(layer['output_shape']):<20} "
                      f"{layer['parameters']:>9,}" for layer in report["layers"]]
        return "\n".join(lines)
    lines.append(f"  specification version {report['specification_version']}, {report['model_type']}")
    for title, features in (("inputs", report["inputs"]), ("outputs", report["outputs"])):
        lines.append(f"  {title}:")
        for feature in features:
            extra = {k: v for k, v in feature.items() if k not in ("name", "description", "type")}
            detail = ", ".join(f"{k} {v}" for k, v in extra.items())
            lines.append(f"    {feature['name']}: {feature['type']}" + (f" ({detail})" if detail else "")
                         + (f" — {feature['description']}" if feature["description"] else ""))
    for step in report["image_preprocessing"]:
        lines.append("  image preprocessing: " + ", ".join(f"{k} {v}" for k, v in step.items() if v not in (None, 0.0)))
    labels = report["class_labels"]
    if labels:
        shown = ", ".join(map(str, labels[:12])) + (", ..." if len(labels) > 12 else "")
        lines.append(f"  class labels ({len(labels)}): {shown}")
    meta = report["metadata"]
    for key in ("short_description", "author", "license", "version"):
        if meta[key]:
            lines.append(f"  {key.replace('_', ' ')}: {meta[key]}")
    if meta["user_defined"]:
        lines.append("  user-defined metadata:")
        for key, value in sorted(meta["user_defined"].items()):
            lines.append(f"    {key}: {value if len(value) < 100 else value[:97] + '...'}")
    counts = ", ".join(f"{kind} {count}" for kind, count in sorted(report["layers"].items()))
    lines.append(f"  layers/ops: {counts or 'none'}")
    lines.append(f"  weights: {', '.join(report['weight_precision']) or 'none'}")
    return "\n".join(lines)


def dumps(report: dict) -> str:
    return json.dumps(report, indent=2, default=str)
