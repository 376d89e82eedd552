"""What is inside a model file: Core ML (any origin, specification version 1 and up) or Keras.

`inspect_model` returns a plain dict (the `--json` output); `format_report` turns it into text.
Core ML files are read as protobuf specs only (decoded by spec.py), so this works on Linux for any
model, including ones kerasml cannot run.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

from kerasml.model.coreml_spec import (class_labels, describe_colour, image_preprocessing, program_ops,
                                 read_spec, weight_precision)
from kerasml.errors import KerasmlError
from kerasml.files import path_size


def inspect_model(path: Path, unsafe: bool = False) -> dict:
    path = Path(path)
    if not path.exists():
        raise KerasmlError(f"{path} not found")
    if path.suffix in (".mlmodel", ".mlpackage"):
        return inspect_coreml(path)
    from kerasml.model.keras_models import load_keras_model
    return _inspect_keras(load_keras_model(path, unsafe=unsafe))


def load_spec(path: Path):
    """The protobuf spec of an .mlmodel file or .mlpackage directory, with clear errors."""
    return read_spec(Path(path))[0]


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
        "image_preprocessing": image_preprocessing(spec),
        "metadata": {
            "short_description": metadata.shortDescription,
            "author": metadata.author,
            "license": metadata.license,
            "version": metadata.versionString,
            "user_defined": dict(metadata.userDefined),
        },
        "layers": _layer_counts(spec),
        "weight_precision": weight_precision(spec),
    }
    return report


def _feature(feature) -> dict:
    kind = feature.type.WhichOneof("Type")
    info: dict = {"name": feature.name, "description": feature.shortDescription, "type": kind}
    t = feature.type
    if kind == "imageType":
        info.update(width=t.imageType.width, height=t.imageType.height,
                    colour=describe_colour(t.imageType.colorSpace))
    elif kind == "multiArrayType":
        from coremltools.proto import FeatureTypes_pb2
        info.update(shape=list(t.multiArrayType.shape),
                    data_type=FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(t.multiArrayType.dataType))
    elif kind == "dictionaryType":
        info.update(key_type=t.dictionaryType.WhichOneof("KeyType"))
    return info


def _layer_counts(spec) -> dict[str, int]:
    model_type = spec.WhichOneof("Type")
    if model_type == "mlProgram":
        return dict(collections.Counter(op.type for op in program_ops(spec)))
    holder = getattr(spec, model_type)
    if hasattr(holder, "layers"):
        return dict(collections.Counter(layer.WhichOneof("layer") for layer in holder.layers))
    if model_type in ("pipeline", "pipelineClassifier"):
        counts: collections.Counter = collections.Counter()
        for model in holder.pipeline.models:
            counts.update(_layer_counts(model))
        return dict(counts)
    return {}


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
