"""`kerasml convert MODEL --format aimodel`: a Keras model, or an existing Core ML image classifier,
as a Core AI model (iOS 27+).

From Keras, kerasml builds the ML Program it would write as an .mlpackage (the same conversion
fixes, the same `--precision` compression, the same metadata) and lowers it op by op; from a Core
ML file (`.mlpackage`, or a NeuralNetwork `.mlmodel` of any specification version, from kerasml,
coremltools or the tutorials' old converters) it lowers that model as it is, its image
preprocessing, channel order and labels included, so the `.aimodel` computes what the original
computes. Either way the metadata travels: author, licence and description into Core AI's own
fields, everything else as `com.kerasml.*` creator-defined metadata.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

from kerasml.model.aimodel import LABELS_KEY, SUFFIX, VERSION_KEY, AssetMetadata, write_asset
from kerasml.libs import coreai_version
from kerasml.coreai.lowering import INPUT, OUTPUT, lower_model
from kerasml.model import layer_record
from kerasml.model import precision as schemes
from kerasml.conversion.to_coreml import ConvertOptions, ConvertResult, check_fp32_layers, keras_to_core_ml
from kerasml.conversion.interface import bias_text
from kerasml.files import sha256_of
from kerasml.data.labels import parse_labels
from kerasml.errors import KerasmlError
from kerasml.files import check_output, path_size
from kerasml.record import Preprocessing, metadata_key, model_stem

CORE_ML_SUFFIXES = (".mlmodel", ".mlpackage")


@dataclasses.dataclass
class _Lowerable:
    """A Core ML model ready to lower: its parsed spec, where its weights are, and what to write."""

    spec: object
    folder: Path | None
    labels: list | None
    metadata: AssetMetadata
    preprocessing: Preprocessing
    precision: str
    notes: list[str]
    reference: object = None          # the same model uncompressed (coremltools MLModel), to size against
    reference_precision: str = "fp32"


def convert(options: ConvertOptions, say: Callable[[str], None] = print,
            warn: Callable[[str], None] = print) -> ConvertResult:
    started = time.perf_counter()
    source, out = _checked_paths(options)
    if source.suffix in CORE_ML_SUFFIXES:
        lowerable = _from_core_ml(source, options, say)
    else:
        lowerable = _from_keras(options, say, warn)
    say("lowering to Core AI ops ...")
    lowered = lower_model(lowerable.spec, lowerable.folder, labels=lowerable.labels)
    lowerable.notes.extend(lowered.notes)
    metadata = lowerable.metadata
    _point_layers_at_core_ai_values(metadata, lowered.same_as)
    metadata.creator_defined[LABELS_KEY] = json.dumps([str(label) for label in lowered.labels])
    metadata.creator_defined[metadata_key("coreai_version")] = coreai_version() or ""
    write_asset(lowered.module, out, metadata, force=options.force)
    accuracy = None
    if options.data is not None and source.suffix not in CORE_ML_SUFFIXES and (
            options.precision != "fp32" or options.sparsity):
        from kerasml.checks.verify import accuracy_change
        say("measuring what the compression costs ...")
        accuracy = accuracy_change(out, source, options.data, unsafe=options.unsafe)
    p, pixels = lowerable.preprocessing, lowered.pixels
    reference_size = _reference_size(lowerable, metadata) if lowerable.reference is not None else None
    return ConvertResult(
        path=out, source=source, format="aimodel", precision=lowerable.precision, spec_version=0,
        size_bytes=path_size(out),
        input=(f"{INPUT}: float32 [N, {pixels.height}, {pixels.width}, {pixels.channels}], raw "
               f"{'grayscale' if pixels.channels == 1 else 'RGB'} pixels 0-255; inside, "
               f"{'reversed to BGR, ' if p.channel_order == 'bgr' else ''}scale {p.scale:.6g}, bias {bias_text(p.bias)}"),
        outputs=[f"{OUTPUT}: float32 [N, {len(lowered.labels)}], one probability per label"],
        labels=list(lowered.labels), seconds=time.perf_counter() - started, notes=lowerable.notes,
        accuracy=accuracy, fp32_size_bytes=reference_size, reference_precision=lowerable.reference_precision)


def _reference_size(lowerable: _Lowerable, metadata: AssetMetadata) -> int:
    """Bytes of the same .aimodel without compression: what "% of fp32" is measured against, as for
    the Core ML formats."""
    import tempfile

    mlmodel = lowerable.reference
    weights = mlmodel.weights_dir
    lowered = lower_model(mlmodel.get_spec(), Path(weights).parent if weights else None, labels=lowerable.labels)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"reference{SUFFIX}"
        write_asset(lowered.module, path, metadata)
        return path_size(path)


def _point_layers_at_core_ai_values(metadata: AssetMetadata, same_as: dict[str, str]) -> None:
    """The layer record names, for each Keras layer, the value Core AI computes its output as."""
    record = layer_record.read(metadata.creator_defined)
    if record:
        layer_record.write_to(metadata.creator_defined, {layer: same_as.get(v, v) for layer, v in record.items()})


def _checked_paths(options: ConvertOptions) -> tuple[Path, Path]:
    source = Path(options.model)
    out = Path(options.out) if options.out else source.with_name(model_stem(source) + SUFFIX)
    if out.suffix != SUFFIX:
        raise KerasmlError(f"--out {out} must end in {SUFFIX} for --format aimodel")
    if not source.exists():
        raise KerasmlError(f"model {source} not found")
    if source.resolve() == out.resolve():
        raise KerasmlError(f"--out {out} is the model itself; choose another output")
    schemes.check("mlpackage", options.precision, options.sparsity, options.data is not None, options.max_drop)
    check_fp32_layers(options, "aimodel")
    check_output(out, options.force)
    return source, out


def _from_keras(options: ConvertOptions, say, warn) -> _Lowerable:
    """The ML Program kerasml builds for an .mlpackage, in memory, with its metadata."""
    conversion = keras_to_core_ml(options, "mlpackage", say, warn)
    mlmodel = conversion.mlmodel
    weights = mlmodel.weights_dir
    spec = mlmodel.get_spec()
    chosen = conversion.options
    return _Lowerable(spec, Path(weights).parent if weights else None, None, _asset_metadata(spec),
                      conversion.preprocessing, schemes.label(chosen.precision, chosen.sparsity),
                      conversion.notes, conversion.reference.get("mlmodel"),
                      conversion.reference.get("precision", "fp32"))


def _from_core_ml(source: Path, options: ConvertOptions, say) -> _Lowerable:
    """An existing Core ML classifier, as it is: only the description and labels may be overridden."""
    from kerasml.runtime import load_model
    from kerasml.model.coreml_spec import read_spec

    if options.precision != "fp32" or options.sparsity:
        raise KerasmlError("--precision and --sparsity apply when converting from Keras; a Core ML model "
                           "keeps the weights it has (convert its Keras model to compress it)")
    say(f"converting {source} (Core ML) to aimodel ...")
    spec, folder = read_spec(source)
    reference = load_model(source)     # kerasml's runtime reads the image input and its preprocessing
    if reference.image is None or reference.labels is None and options.labels is None:
        raise KerasmlError(f"{source} is not an image classifier (it needs one image input and class labels, "
                           "or pass --labels)")
    notes: list[str] = []
    image = reference.image
    metadata = _asset_metadata(spec)
    recorded = metadata.creator_defined.get(metadata_key("preprocessing"))
    ink = _recorded_ink(recorded) or ("white-on-black" if image.channels == 1 else "natural colour")
    if recorded is None:
        notes.append(f"note: {source.name} was not made by kerasml; its ink is taken to be {ink}")
    preprocessing = Preprocessing(height=image.height, width=image.width, channels=image.channels,
                                  scale=image.scale, bias=list(image.bias), ink=ink,
                                  channel_order="bgr" if image.colour == "bgr" else "rgb")
    custom = metadata.creator_defined
    custom[metadata_key("preprocessing")] = json.dumps(dataclasses.asdict(preprocessing))
    custom[metadata_key("converted_from")] = (f"Core ML {_kind(spec)}, specification version "
                                              f"{spec.specificationVersion}")
    custom[metadata_key("source_file")] = source.name
    custom[metadata_key("source_sha256")] = sha256_of(source)
    custom.setdefault(metadata_key("precision"), reference.weight_precision)
    for field, value in (("author", options.author), ("license", options.license),
                         ("description", options.description)):
        if value is not None:
            setattr(metadata, field, value)
    if options.version is not None:
        custom[VERSION_KEY] = options.version
    labels = parse_labels(options.labels) if options.labels else None
    return _Lowerable(spec, folder, labels, metadata, preprocessing, custom[metadata_key("precision")], notes)


def _asset_metadata(spec) -> AssetMetadata:
    """A Core ML model's metadata as Core AI's: its own fields, the rest creator-defined strings; the
    descriptions of its image input and probability output go to the Core AI function's names
    (Core ML's keys for Xcode's preview and the class-label output have no Core AI counterpart)."""
    meta, description = spec.description.metadata, spec.description
    custom = {key: str(value) for key, value in meta.userDefined.items() if not key.startswith("com.apple.coreml.")}
    if meta.versionString:
        custom[VERSION_KEY] = meta.versionString
    features = {INPUT: description.input[0] if description.input else None,
                OUTPUT: next((f for f in description.output if f.name == description.predictedProbabilitiesName), None)}
    for name, feature in features.items():
        if feature is not None and feature.shortDescription:
            custom[metadata_key(f"description.{name}")] = feature.shortDescription
    return AssetMetadata(meta.author, meta.license, meta.shortDescription, custom)


def _recorded_ink(text: str | None) -> str | None:
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    return data.get("ink") if isinstance(data, dict) else None


def _kind(spec) -> str:
    model_type = spec.WhichOneof("Type")
    return "ML Program" if model_type == "mlProgram" else "NeuralNetwork"
