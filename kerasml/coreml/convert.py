"""Convert a Keras image classifier to Core ML, with everything Xcode shows.

`convert` is the stage's one public function: it loads the model safely, works out the image
input (size, colour, pixel scale and bias) from the training record, traces the model as a
`tf.function` (coremltools 9 cannot take a Keras 3 model object), converts it, names the features
like Apple's MNISTClassifier (`image` → `classLabel`, `labelProbabilities`), fills the metadata,
and writes the file atomically. Checking the result is `verify.py`'s job, not this module's.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Callable

from kerasml import __version__
from kerasml.coreml import compress
from kerasml.coreml import conversion_fixes as fixes
from kerasml.coreml import short_names
from kerasml.data.labels import parse_labels
from kerasml.errors import KerasmlError
from kerasml.files import atomic_output, check_output, path_size
from kerasml.coreml.keras_models import LoadedModel, image_shape_for, load_keras_model
from kerasml.libs import coremltools, quiet_output, tensorflow
from kerasml.record import DIGITS, Preprocessing, TrainingRecord, model_stem, read_record

FORMATS = {"mlmodel": "neuralnetwork", "mlpackage": "mlprogram"}
PRECISIONS = compress.NAMES
INPUT_NAME = "image"
LABEL_OUTPUT = "classLabel"
PROBABILITY_OUTPUT = "labelProbabilities"
METADATA_PREFIX = "com.kerasml."


@dataclasses.dataclass
class ConvertOptions:
    model: Path
    labels: str | None = None
    out: Path | None = None
    format: str = "mlmodel"
    precision: str = "fp32"
    author: str | None = None
    license: str | None = None
    description: str | None = None
    version: str | None = None
    min_target: str | None = None
    scale: float | None = None
    bias: str | None = None
    input_shape: str | None = None
    add_softmax: bool = True
    unsafe: bool = False
    force: bool = False
    data: Path | None = None          # labelled images: what compression costs, w8a8 calibration, auto
    sparsity: float | None = None     # fraction of weights pruned to zero and stored sparse
    max_drop: float | None = None     # --precision auto: accuracy points the smallest scheme may lose


@dataclasses.dataclass
class ConvertResult:
    path: Path
    source: Path
    format: str
    precision: str
    spec_version: int
    size_bytes: int
    input: str
    outputs: list[str]
    labels: list
    seconds: float
    notes: list[str]
    fp32_size_bytes: int | None = None
    accuracy: dict | None = None      # Keras fp32 against this model, when --data was given
    reference_precision: str = "fp32"  # what fp32_size_bytes measured (w8a8 compresses an fp16 program)

    def summary_lines(self) -> list[str]:
        kind = "NeuralNetwork (.mlmodel)" if self.format == "mlmodel" else "ML Program (.mlpackage)"
        lines = [f"wrote {self.path} ({_human_size(self.size_bytes)}, {kind}, {self.precision}, "
                 f"specification version {self.spec_version}) in {self.seconds:.1f} s",
                 f"  input:   {self.input}"]
        lines += [f"  output:  {output}" for output in self.outputs]
        lines.append(f"  labels:  {len(self.labels)} ({', '.join(map(str, self.labels[:10]))}"
                     f"{', ...' if len(self.labels) > 10 else ''})")
        if self.fp32_size_bytes:
            lines.append(f"  size:    {_human_size(self.size_bytes)} = {self.size_bytes / self.fp32_size_bytes:.1%} "
                         f"of the {self.reference_precision} model ({_human_size(self.fp32_size_bytes)})")
        if self.accuracy:
            a = self.accuracy
            lines.append(f"  accuracy: Keras fp32 {a['keras_accuracy']:.2%}, Core ML {self.precision} "
                         f"{a['coreml_accuracy']:.2%} ({a['points_change']:+.2f} points) on "
                         f"{a['samples']:,} {a['source']}")
        lines += self.notes
        lines += ["next:", f"  kerasml verify {self.path} --keras {self.source}   # prove it computes what Keras computes",
                  f"  kerasml inspect {self.path}",
                  f"  kerasml package {self.path}   # put it into the demo app, or drag it into Xcode"]
        return lines


def convert(options: ConvertOptions, say: Callable[[str], None] = print,
            warn: Callable[[str], None] = print) -> ConvertResult:
    started = time.perf_counter()
    if options.format not in FORMATS:
        raise KerasmlError(f"unknown --format {options.format!r}; use mlmodel or mlpackage")
    compress.check(options.format, options.precision, options.sparsity, options.data is not None,
                   options.max_drop)
    source = Path(options.model)
    out = Path(options.out) if options.out else source.with_name(model_stem(source) + "." + options.format)
    if out.suffix != "." + options.format:
        raise KerasmlError(f"--out {out} must end in .{options.format} for --format {options.format}")
    if not source.exists():
        raise KerasmlError(f"model {source} not found")
    check_output(out, options.force)
    record = read_record(source)
    label_list = _resolve_labels(options.labels, record)
    if options.unsafe:
        warn("warning: --unsafe lets code stored in the model file run; use it only for files you trust")

    model = load_keras_model(source, unsafe=options.unsafe)
    notes: list[str] = []
    height, width, channels = image_shape_for(model, options.input_shape)
    if len(model.input_shape) == 1:
        notes.append(f"note: the model takes a flat input of {model.input_shape[0]} values; the Core ML "
                     f"input is a {height}x{width} image, reshaped row by row")
    preprocessing = _resolve_preprocessing(options, record, (height, width, channels), notes,
                                           rescales_itself=_rescales_itself(model))
    if label_list is None:
        if model.output_size != 10:
            raise KerasmlError(f"{source} has {model.output_size} outputs and no training record with "
                               "labels; pass --labels (e.g. @labels.txt or a,b,c)")
        label_list = list(DIGITS)
        notes.append("note: no labels given; assuming digits 0-9 (pass --labels to choose)")
    if len(label_list) != model.output_size:
        raise KerasmlError(f"{len(label_list)} labels given but the model has {model.output_size} outputs; "
                           "give one label per output")
    add_softmax = False
    if not model.ends_in_softmax:
        if options.add_softmax:
            add_softmax = True
            notes.append("note: the model ends in logits (no softmax); added a softmax so the "
                         "outputs are probabilities (--no-softmax keeps logits)")
        else:
            notes.append("note: keeping the model's logits (--no-softmax): labelProbabilities holds "
                         "scores, not probabilities")

    say(f"converting {source} to {options.format} ({compress.label(options.precision, options.sparsity)}) ...")
    mlmodel, options, reference = _convert_compressed(model, options, record, label_list, preprocessing,
                                                      add_softmax, notes, say)
    _describe(mlmodel, source, record, preprocessing, label_list, options)
    with atomic_output(out, force=options.force) as temporary:
        mlmodel.save(str(temporary))
    spec = mlmodel.get_spec()
    accuracy = None
    if options.data is not None and (options.precision != "fp32" or options.sparsity):
        from kerasml.checks.verify import accuracy_change
        say("measuring what the compression costs ...")
        accuracy = accuracy_change(out, source, options.data, unsafe=options.unsafe)
    return ConvertResult(
        path=out, source=source, format=options.format, precision=compress.label(options.precision, options.sparsity),
        spec_version=spec.specificationVersion, size_bytes=path_size(out),
        input=f"{INPUT_NAME}: {width}x{height} {preprocessing.colour} image, "
              f"scale {preprocessing.scale:.6g}, bias {_bias_text(preprocessing.bias)}",
        outputs=[f"{LABEL_OUTPUT}: {'Int64' if _int_labels(label_list) else 'String'} predicted label",
                 f"{PROBABILITY_OUTPUT}: dictionary label → probability"],
        labels=_core_ml_labels(label_list), seconds=time.perf_counter() - started, notes=notes,
        fp32_size_bytes=reference.get("size"), accuracy=accuracy,
        reference_precision=reference.get("precision", "fp32"))


def _convert_compressed(model: LoadedModel, options: ConvertOptions, record: TrainingRecord | None,
                        labels: list[str], preprocessing: Preprocessing, add_softmax: bool,
                        notes: list[str], say: Callable[[str], None]):
    """(compressed model, options naming the precision used, {"size", "precision"} of the same
    conversion before compression). One conversion: the uncompressed model is saved to a temporary
    folder only to measure its size, and `--precision auto` compresses it once per scheme tried."""
    import tempfile

    reference: dict = {}
    fp16_program = options.format == "mlpackage" and compress.computes_in_fp16(options.precision)

    def keep_uncompressed(uncompressed) -> None:
        if options.precision == "fp32" and not options.sparsity or options.precision == "fp16" and fp16_program:
            return                                     # nothing to compare against
        _describe(uncompressed, Path(options.model), record, preprocessing, labels,
                  dataclasses.replace(options, precision="fp32"))  # same metadata, so sizes compare
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"reference.{options.format}"
            uncompressed.save(str(path))
            reference.update(size=path_size(path), precision="fp16" if fp16_program else "fp32")

    auto = options.precision == "auto"
    calibration = None
    if not auto and compress.scheme(options.precision).activations:
        images, _, _ = compress.labelled_images(options.data, None, preprocessing)
        calibration = compress.calibration_images(images)
        notes.append(f"note: 8-bit activation ranges measured on {len(calibration)} images from {options.data} "
                     "with kerasml's runtime")
    target = options.min_target or ("iOS16" if auto and options.format == "mlpackage" else None)
    mlmodel = convert_keras_model(model, options.format, "fp32" if auto else options.precision, labels,
                                  preprocessing, add_softmax=add_softmax, min_target=target,
                                  sparsity=None if auto else options.sparsity, calibration=calibration,
                                  uncompressed=keep_uncompressed if not auto else None, notes=notes)
    if fp16_program and options.precision == "fp16":
        notes.append("note: an fp16 ML Program is converted in float16 directly, so there is no fp32 model "
                     "to compare its size with (convert with --precision fp32 for that)")
    if not auto:
        return mlmodel, options, reference
    _describe(mlmodel, Path(options.model), record, preprocessing, labels, dataclasses.replace(options, precision="fp32"))
    images, truth, source = compress.labelled_images(options.data, record, preprocessing)
    chosen, compressed, trials = compress.choose(mlmodel, options.format, images, truth, options.max_drop,
                                                 options.sparsity, target, say)
    notes.extend(compress.trial_table(trials, len(images), source, options.max_drop))
    if target == "iOS16" and options.min_target is None:
        notes.append("note: auto tried what runs on iOS 16; pass --min-target iOS18 to let it try int4 too")
    reference.update(size=trials[0].size_bytes, precision="fp32")
    return compressed, dataclasses.replace(options, precision=chosen), reference


def convert_keras_model(model, fmt: str = "mlmodel", precision: str = "fp32",
                        labels: list[str] | None = None, preprocessing: Preprocessing | None = None,
                        add_softmax: bool = False, min_target: str | None = None,
                        sparsity: float | None = None, calibration=None, uncompressed=None,
                        notes: list[str] | None = None):
    """The conversion itself: a traced model → a named Core ML classifier (no metadata, not saved).

    `model` is a `LoadedModel` or a Keras model object; returns a `coremltools.models.MLModel`.
    `precision` and `sparsity` name a `compress` scheme (`calibration`: images for w8a8);
    `uncompressed(mlmodel)` sees the model before it is compressed.
    """
    ct = coremltools()
    if not isinstance(model, LoadedModel):
        from kerasml.coreml.keras_models import _from_keras
        model = _from_keras(Path(getattr(model, "name", "model")), "keras3", model)
    if preprocessing is None:
        height, width, channels = image_shape_for(model, None)
        preprocessing = Preprocessing(height, width, channels, bias=[0.0] * channels)
    labels = labels if labels is not None else list(DIGITS)
    image_shape = (1, preprocessing.height, preprocessing.width, preprocessing.channels)
    graph = _traced_graph(model, image_shape, add_softmax)
    fixes.register_missing_tf_ops()

    convert_to = FORMATS[fmt]
    kwargs = {}
    if convert_to == "mlprogram":
        # ML Programs default to float16 compute; fp32 keeps exact parity with Keras.
        kwargs["compute_precision"] = (ct.precision.FLOAT16 if compress.computes_in_fp16(precision)
                                       else ct.precision.FLOAT32)
    target = _deployment_target(ct, min_target, fmt, precision, sparsity)
    if target is not None:
        kwargs["minimum_deployment_target"] = target
    colour = {"grayscale": ct.colorlayout.GRAYSCALE, "rgb": ct.colorlayout.RGB,
              "bgr": ct.colorlayout.BGR}[preprocessing.colour]   # bgr: caffe-style backbones (ResNet50)
    bias = preprocessing.bias if preprocessing.channels == 3 else preprocessing.bias[0]

    def run(target: str, options: dict):
        with quiet_output():
            return ct.convert(
                graph, source="tensorflow", convert_to=target,
                inputs=[ct.ImageType(name=INPUT_NAME, shape=image_shape, scale=preprocessing.scale,
                                     bias=bias, color_layout=colour)],
                classifier_config=ct.ClassifierConfig(_core_ml_labels(labels)), **options)

    try:
        mlmodel = run(convert_to, kwargs)
    except Exception as exc:  # coremltools raises many types for graphs it cannot map (ops, shapes)
        def ml_program_converts() -> bool:
            try:
                run("mlprogram", {"compute_precision": ct.precision.FLOAT32})
            except Exception:  # the ML Program cannot express it either
                return False
            return True
        raise KerasmlError(fixes.explain_failure(exc, graph, fmt, model.path, ml_program_converts)) from None
    mlmodel = short_names.shortened(_rename_probabilities(ct, mlmodel))
    if uncompressed is not None:
        uncompressed(mlmodel)
    return compress.apply(mlmodel, fmt, precision, sparsity=sparsity, calibration=calibration, notes=notes)


def _traced_graph(model: LoadedModel, image_shape: tuple, add_softmax: bool):
    """The model traced for a (1, H, W, C) image as a frozen GraphDef coremltools can take: layers
    rebuilt and nested calls inlined as `conversion_fixes` says."""
    tf = tensorflow()
    function = fixes.rebuilt_function(model)
    model_shape = (1, *model.input_shape)

    @tf.function(input_signature=[tf.TensorSpec(image_shape, tf.float32, name=INPUT_NAME)])
    def serve(image):
        # Core ML hands over the scaled image (N, H, W, C); flat models get it row by row.
        x = image if model_shape == image_shape else tf.reshape(image, model_shape)
        y = function(x)
        return tf.nn.softmax(y) if add_softmax else y

    return fixes.inline_function_calls(serve.get_concrete_function())


def _rename_probabilities(ct, mlmodel):
    """Traced graphs name their output `Identity`; call it what it is."""
    spec = mlmodel.get_spec()
    probability = spec.description.predictedProbabilitiesName
    if probability and probability != PROBABILITY_OUTPUT:
        ct.utils.rename_feature(spec, probability, PROBABILITY_OUTPUT)
        weights_dir = mlmodel.weights_dir if spec.WhichOneof("Type") == "mlProgram" else None
        mlmodel = ct.models.MLModel(spec, weights_dir=weights_dir, skip_model_load=True)
    return mlmodel


def _deployment_target(ct, name: str | None, fmt: str, precision: str, sparsity: float | None = None):
    if name is None:
        if fmt == "mlmodel":
            return None                       # coremltools picks the oldest spec that fits
        return getattr(ct.target, compress.required_target(precision, sparsity))
    normalized = name.strip().replace(" ", "")
    for target in ct.target:
        if target.name.lower() == normalized.lower():
            if fmt == "mlpackage":
                compress.check_target(target.name, precision, sparsity)
            return target
    choices = ", ".join(t.name for t in ct.target if t.name.startswith("iOS"))
    raise KerasmlError(f"unknown --min-target {name!r}; use one of {choices} (or macOS13 and the like)")


def _describe(mlmodel, source: Path, record: TrainingRecord | None, preprocessing: Preprocessing,
              labels: list[str], options: ConvertOptions) -> None:
    """Everything Xcode's model page shows, plus the provenance kerasml reads back later."""
    ct = coremltools()
    kind = "handwritten digits 0-9" if labels == DIGITS else f"{len(labels)} classes ({', '.join(labels[:4])}{', ...' if len(labels) > 4 else ''})"
    description = options.description
    if description is None:
        description = (f"Recognises {kind} in a {preprocessing.width}x{preprocessing.height} "
                       f"{preprocessing.colour} image ({preprocessing.ink}).")
        if record and record.test_accuracy is not None:
            description += (f" {record.test_accuracy:.2%} accuracy on {record.samples.get('test', 0):,} "
                            f"test images.")
        elif record and record.validation.get("accuracy") is not None:
            description += f" {record.validation['accuracy']:.2%} validation accuracy."
        if record:
            description += f" Trained by kerasml on {record.dataset}: {_architecture_in_words(record.architecture)}."
    mlmodel.short_description = description
    mlmodel.author = options.author or _default_author()
    mlmodel.license = options.license or ("Model weights trained by kerasml; MNIST data CC BY-SA 3.0"
                                          if record and "mnist" in record.dataset else "Unspecified")
    mlmodel.version = options.version or "1.0"
    mlmodel.input_description[INPUT_NAME] = (
        f"{preprocessing.width}x{preprocessing.height} {preprocessing.colour} image, {preprocessing.ink}")
    mlmodel.output_description[LABEL_OUTPUT] = "Most likely label"
    mlmodel.output_description[PROBABILITY_OUTPUT] = "Probability of each label"
    metadata = {
        "com.apple.coreml.model.preview.type": "imageClassifier",  # Xcode's Preview tab
        METADATA_PREFIX + "kerasml_version": __version__,
        METADATA_PREFIX + "source_file": source.name,
        METADATA_PREFIX + "source_sha256": _sha256(source),
        METADATA_PREFIX + "preprocessing": json.dumps(dataclasses.asdict(preprocessing)),
        METADATA_PREFIX + "precision": options.precision,
        METADATA_PREFIX + "tensorflow_version": tensorflow().__version__,
        METADATA_PREFIX + "coremltools_version": ct.__version__,
    }
    if record:
        metadata.update({
            METADATA_PREFIX + "dataset": record.dataset,
            METADATA_PREFIX + "architecture": record.architecture,
            METADATA_PREFIX + "training": json.dumps({
                # Folder names only: a model that ships must not carry its build machine's paths.
                "dataset_source": _without_paths(record.dataset_source), "samples": record.samples,
                "epochs_run": record.epochs_run, "batch_size": record.batch_size,
                "seed": record.seed, "validation": record.validation, "status": record.status,
                "created": record.created, "versions": record.versions}),
        })
        if record.test_accuracy is not None:
            metadata[METADATA_PREFIX + "test_accuracy"] = f"{record.test_accuracy:.4f}"
    mlmodel.user_defined_metadata.update(metadata)


def _architecture_in_words(name: str) -> str:
    """"a small batch-normalised CNN, ... (the `kerasml` architecture)"; unknown names as they are."""
    from kerasml.training.architectures import ARCHITECTURES

    known = ARCHITECTURES.get(name)
    if known is None:
        return f"the {name!r} architecture" if name else "an unnamed architecture"
    words = known.summary.split(" (default")[0]   # "(default for digits)" is about the CLI, not the model
    return f"{words} (kerasml's {name!r} architecture)"


def _without_paths(text: str) -> str:
    """Every path-like word (it has a / or \\) replaced by its last part: "test: ../a/mnist-test" -> "test: mnist-test"."""
    import re

    return re.sub(r"[^\s;,()'\"]*[/\\][^\s;,()'\"]*",
                  lambda m: m.group(0).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or "/", text)


def _resolve_labels(spec: str | None, record: TrainingRecord | None) -> list[str] | None:
    if spec is None or spec == "auto":
        if record and record.labels:
            return list(record.labels)
        if spec == "auto":
            raise KerasmlError("--labels auto needs the model's training record (<name>.training.json) "
                               "beside it; pass the labels instead, e.g. --labels digits")
        return None
    return parse_labels(spec)


def _rescales_itself(model: LoadedModel) -> bool:
    """A model that starts with a `Rescaling` layer takes raw 0-255 pixels."""
    layers = getattr(model.keras_model, "layers", None) or []
    return bool(layers) and type(layers[0]).__name__ == "Rescaling"


def _resolve_preprocessing(options: ConvertOptions, record: TrainingRecord | None,
                           shape: tuple[int, int, int], notes: list[str],
                           rescales_itself: bool = False) -> Preprocessing:
    height, width, channels = shape
    if record:
        recorded = record.preprocessing
        if (recorded.height, recorded.width, recorded.channels) != shape:
            raise KerasmlError(f"the training record says {recorded.height}x{recorded.width}x"
                               f"{recorded.channels} images but the model takes {height}x{width}x{channels}; "
                               "is the record beside the model the right one?")
        scale, bias, ink = recorded.scale, list(recorded.bias), recorded.ink
    else:
        scale, bias, ink = 1 / 255.0, [0.0] * channels, "white-on-black" if channels == 1 else "natural colour"
        if rescales_itself:
            scale = 1.0
            if options.scale is None and options.bias is None:
                notes.append("note: the model starts with a Rescaling layer, so Core ML passes raw "
                             "0-255 pixels (scale 1, bias 0)")
        elif options.scale is None and options.bias is None:
            notes.append("note: no training record beside the model; assuming pixels scaled to 0-1 "
                         "(scale 1/255, bias 0); pass --scale/--bias if it was trained otherwise")
    if options.scale is not None:
        if not options.scale > 0:
            raise KerasmlError(f"--scale {options.scale} must be positive (1/255 = 0.00392157 maps 0-255 to 0-1)")
        scale = options.scale
    if options.bias is not None:
        try:
            values = [float(v) for v in options.bias.split(",")]
        except ValueError:
            raise KerasmlError(f"--bias {options.bias!r} must be a number or one number per channel") from None
        if len(values) not in (1, channels):
            raise KerasmlError(f"--bias has {len(values)} values for {channels} channels")
        bias = values * channels if len(values) == 1 else values
    order = record.preprocessing.channel_order if record else "rgb"
    return Preprocessing(height=height, width=width, channels=channels, scale=scale, bias=bias, ink=ink,
                         channel_order=order)


def _core_ml_labels(labels: list[str]) -> list:
    """Digit labels become Int64 class labels, exactly like Apple's MNISTClassifier."""
    return [int(label) for label in labels] if _int_labels(labels) else list(labels)


def _int_labels(labels: list[str]) -> bool:
    return labels == DIGITS


def _default_author() -> str:
    try:
        name = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "Unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()




def _human_size(size: int) -> str:
    return f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.2f} MiB"


def _bias_text(bias: list[float]) -> str:
    return f"{bias[0]:g}" if len(set(bias)) == 1 else ", ".join(f"{b:g}" for b in bias)
