"""Convert a Keras image classifier to Core ML, with everything Xcode shows.

`convert` is the stage's one public function: it loads the model safely, works out the image
input (size, colour, pixel scale and bias) from the training record, traces the model as a
`tf.function` (coremltools 9 cannot take a Keras 3 model object), converts it, names the features
like Apple's MNISTClassifier (`image` → `classLabel`, `labelProbabilities`), fills the metadata (metadata.py),
and writes the file atomically. Checking the result is `verify.py`'s job, not this module's.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

from kerasml.conversion import auto_precision, compress, layers, short_names
from kerasml.conversion import conversion_fixes as fixes
from kerasml.conversion.folding import conversion_pipeline
from kerasml.conversion.interface import (bias_text, core_ml_labels, int_labels, labels_for_outputs, rescales_itself,
                                          resolve_labels, resolve_preprocessing)
from kerasml.conversion.metadata import describe
from kerasml.errors import KerasmlError
from kerasml.model import layer_record
from kerasml.model import precision as schemes
from kerasml.model.features import INPUT_NAME, LABEL_OUTPUT, PROBABILITY_OUTPUT
from kerasml.model.images import labelled_images
from kerasml.model.keras_models import LoadedModel, image_shape_for, load_keras_model
from kerasml.files import atomic_output, check_output, path_size
from kerasml.libs import coremltools, quiet_output, tensorflow
from kerasml.record import DIGITS, Preprocessing, TrainingRecord, model_stem, read_record

FORMATS = {"mlmodel": "neuralnetwork", "mlpackage": "mlprogram"}   # Core ML formats → coremltools targets
OUTPUT_FORMATS = ("mlmodel", "mlpackage", "aimodel")   # aimodel: Core AI (to_coreai.py)


@dataclasses.dataclass
class ConvertOptions:
    model: Path
    labels: str | None = None
    out: Path | None = None
    format: str | None = None         # mlmodel, mlpackage or aimodel; None: --out's suffix, else mlmodel
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
    fp32_layers: str | None = None    # Keras layers kept in float32 in a float16 ML Program (a,b,c)

    def __post_init__(self) -> None:
        if self.format is None:   # --out big.mlpackage says which format it wants
            suffix = Path(self.out).suffix.lstrip(".") if self.out else ""
            self.format = suffix if suffix in OUTPUT_FORMATS else "mlmodel"


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
        kind = {"mlmodel": "NeuralNetwork (.mlmodel)", "mlpackage": "ML Program (.mlpackage)",
                "aimodel": "Core AI program (.aimodel, iOS 27+)"}[self.format]
        version = f", specification version {self.spec_version}" if self.spec_version else ""
        lines = [f"wrote {self.path} ({_human_size(self.size_bytes)}, {kind}, {self.precision}{version}) "
                 f"in {self.seconds:.1f} s",
                 f"  input:   {self.input}"]
        lines += [f"  output:  {output}" for output in self.outputs]
        lines.append(f"  labels:  {len(self.labels)} ({', '.join(map(str, self.labels[:10]))}"
                     f"{', ...' if len(self.labels) > 10 else ''})")
        if self.fp32_size_bytes:
            lines.append(f"  size:    {_human_size(self.size_bytes)} = {self.size_bytes / self.fp32_size_bytes:.1%} "
                         f"of the {self.reference_precision} model ({_human_size(self.fp32_size_bytes)})")
        if self.accuracy:
            a = self.accuracy
            kind = "Core AI" if self.format == "aimodel" else "Core ML"
            lines.append(f"  accuracy: Keras fp32 {a['keras_accuracy']:.2%}, {kind} {self.precision} "
                         f"{a['coreml_accuracy']:.2%} ({a['points_change']:+.2f} points) on "
                         f"{a['samples']:,} {a['source']}")
        lines += self.notes
        if Path(self.source).suffix in (".mlmodel", ".mlpackage"):      # migrated from Core ML
            lines += ["next:", f"  kerasml evaluate {self.path} --data IMAGES   # same accuracy as "
                               f"`kerasml evaluate {self.source} --data IMAGES`",
                      f"  kerasml inspect {self.path}",
                      f"  kerasml package {self.path}   # put it into the demo app, or drag it into Xcode"]
            return lines
        lines += ["next:", f"  kerasml verify {self.path} --keras {self.source}   # prove it computes what Keras computes",
                  f"  kerasml inspect {self.path}",
                  f"  kerasml package {self.path}   # put it into the demo app, or drag it into Xcode"]
        return lines


@dataclasses.dataclass
class Conversion:
    """A Keras model converted in memory, before it is saved: what `convert` writes as Core ML and
    what kerasml's Core AI converter lowers (kerasml/conversion/to_coreai.py)."""

    mlmodel: object                   # coremltools MLModel, metadata filled
    options: ConvertOptions           # with --precision auto resolved to the scheme chosen
    source: Path
    preprocessing: Preprocessing
    labels: list
    notes: list[str]
    reference: dict                   # {"size", "precision"} of the same conversion before compression


def keras_to_core_ml(options: ConvertOptions, fmt: str, say: Callable[[str], None] = print,
                     warn: Callable[[str], None] = print) -> Conversion:
    """Load the Keras model, work out its image input and labels, convert it to `fmt` (mlmodel or
    mlpackage) with the requested compression, and describe it; nothing is written."""
    source = Path(options.model)
    record = read_record(source)
    label_list = resolve_labels(options.labels, record)
    if options.unsafe:
        warn("warning: --unsafe lets code stored in the model file run; use it only for files you trust")

    model = load_keras_model(source, unsafe=options.unsafe)
    notes: list[str] = []
    height, width, channels = image_shape_for(model, options.input_shape)
    if len(model.input_shape) == 1:
        notes.append(f"note: the model takes a flat input of {model.input_shape[0]} values; the Core ML "
                     f"input is a {height}x{width} image, reshaped row by row")
    preprocessing = resolve_preprocessing(options, record, (height, width, channels), notes,
                                           rescales_itself=rescales_itself(model))
    label_list = labels_for_outputs(label_list, model, source, notes)
    add_softmax = _adds_softmax(model, options.add_softmax, notes)

    say(f"converting {source} to {options.format} ({schemes.label(options.precision, options.sparsity)}) ...")
    in_format = dataclasses.replace(options, format=fmt)
    mlmodel, chosen, reference = _convert_compressed(model, in_format, record, label_list, preprocessing,
                                                     add_softmax, notes, say)
    describe(mlmodel, source, record, preprocessing, label_list, chosen)
    return Conversion(mlmodel, dataclasses.replace(chosen, format=options.format), source, preprocessing,
                      label_list, notes, reference)


def convert(options: ConvertOptions, say: Callable[[str], None] = print,
            warn: Callable[[str], None] = print) -> ConvertResult:
    started = time.perf_counter()
    source, out = _checked_paths(options)
    conversion = keras_to_core_ml(options, options.format, say, warn)
    mlmodel, options, preprocessing = conversion.mlmodel, conversion.options, conversion.preprocessing
    with atomic_output(out, force=options.force) as temporary:
        mlmodel.save(str(temporary))
    spec = mlmodel.get_spec()
    accuracy = None
    if options.data is not None and (options.precision != "fp32" or options.sparsity):
        from kerasml.checks.verify import accuracy_change
        say("measuring what the compression costs ...")
        accuracy = accuracy_change(out, source, options.data, unsafe=options.unsafe)
    label_list = conversion.labels
    return ConvertResult(
        path=out, source=source, format=options.format, precision=schemes.label(options.precision, options.sparsity),
        spec_version=spec.specificationVersion, size_bytes=path_size(out),
        input=f"{INPUT_NAME}: {preprocessing.width}x{preprocessing.height} {preprocessing.colour} image, "
              f"scale {preprocessing.scale:.6g}, bias {bias_text(preprocessing.bias)}",
        outputs=[f"{LABEL_OUTPUT}: {'Int64' if int_labels(label_list) else 'String'} predicted label",
                 f"{PROBABILITY_OUTPUT}: dictionary label → probability"],
        labels=core_ml_labels(label_list), seconds=time.perf_counter() - started, notes=conversion.notes,
        fp32_size_bytes=conversion.reference.get("size"), accuracy=accuracy,
        reference_precision=conversion.reference.get("precision", "fp32"))



def check_fp32_layers(options: ConvertOptions, fmt: str) -> None:
    """--fp32-layers only means something where the rest of the program computes in float16."""
    if options.fp32_layers and not (fmt in ("mlpackage", "aimodel") and schemes.computes_in_fp16(options.precision)):
        raise KerasmlError("--fp32-layers keeps layers in float32 inside a float16 ML Program: use it with "
                           "--precision fp16 and --format mlpackage or aimodel")


def _checked_paths(options: ConvertOptions) -> tuple[Path, Path]:
    """(Keras model, Core ML output), refused before anything loads when the options cannot work."""
    if options.format not in FORMATS:
        raise KerasmlError(f"unknown --format {options.format!r}; use mlmodel, mlpackage or aimodel")
    if Path(options.model).suffix in (".mlmodel", ".mlpackage"):
        raise KerasmlError(f"{options.model} is already a Core ML model; convert its Keras model, or pass "
                           "--format aimodel to turn it into a Core AI model")
    schemes.check(options.format, options.precision, options.sparsity, options.data is not None,
                   options.max_drop)
    check_fp32_layers(options, options.format)
    source = Path(options.model)
    out = Path(options.out) if options.out else source.with_name(model_stem(source) + "." + options.format)
    if out.suffix != "." + options.format:
        raise KerasmlError(f"--out {out} must end in .{options.format} for --format {options.format}")
    if not source.exists():
        raise KerasmlError(f"model {source} not found")
    check_output(out, options.force)
    return source, out


def _layer_list(text: str | None) -> list[str] | None:
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def _adds_softmax(model: LoadedModel, add_softmax: bool, notes: list[str]) -> bool:
    """Whether the conversion appends a softmax: for a model ending in logits, unless --no-softmax."""
    if model.ends_in_softmax:
        return False
    if add_softmax:
        notes.append("note: the model ends in logits (no softmax); added a softmax so the "
                     "outputs are probabilities (--no-softmax keeps logits)")
        return True
    notes.append("note: keeping the model's logits (--no-softmax): labelProbabilities holds "
                 "scores, not probabilities")
    return False

def _convert_compressed(model: LoadedModel, options: ConvertOptions, record: TrainingRecord | None,
                        labels: list[str], preprocessing: Preprocessing, add_softmax: bool,
                        notes: list[str], say: Callable[[str], None]):
    """(compressed model, options naming the precision used, {"size", "precision"} of the same
    conversion before compression). One conversion: the uncompressed model is saved to a temporary
    folder only to measure its size, and `--precision auto` compresses it once per scheme tried."""
    import tempfile

    reference: dict = {}
    fp16_program = options.format == "mlpackage" and schemes.computes_in_fp16(options.precision)

    def keep_uncompressed(uncompressed) -> None:
        if options.precision == "fp32" and not options.sparsity or options.precision == "fp16" and fp16_program:
            return                                     # nothing to compare against
        describe(uncompressed, Path(options.model), record, preprocessing, labels,
                  dataclasses.replace(options, precision="fp32"))  # same metadata, so sizes compare
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"reference.{options.format}"
            uncompressed.save(str(path))
            reference.update(size=path_size(path), precision="fp16" if fp16_program else "fp32",
                             mlmodel=uncompressed)      # Core AI measures its own format's reference

    auto = options.precision == "auto"
    calibration = None
    if not auto and schemes.scheme(options.precision).activations:
        images, _, _ = labelled_images(preprocessing.shape, options.data)
        calibration = auto_precision.calibration_images(images)
        notes.append(f"note: 8-bit activation ranges measured on {len(calibration)} images from {options.data} "
                     "with kerasml's runtime")
    target = options.min_target or ("iOS16" if auto and options.format == "mlpackage" else None)
    mlmodel = convert_keras_model(model, options.format, "fp32" if auto else options.precision, labels,
                                  preprocessing, add_softmax=add_softmax, min_target=target,
                                  sparsity=None if auto else options.sparsity, calibration=calibration,
                                  uncompressed=keep_uncompressed if not auto else None, notes=notes,
                                  fp32_layers=_layer_list(options.fp32_layers))
    if fp16_program and options.precision == "fp16":
        notes.append("note: an fp16 ML Program is converted in float16 directly, so there is no fp32 model "
                     "to compare its size with (convert with --precision fp32 for that)")
    if not auto:
        return mlmodel, options, reference
    describe(mlmodel, Path(options.model), record, preprocessing, labels, dataclasses.replace(options, precision="fp32"))
    images, truth, source = labelled_images(preprocessing.shape, options.data, record)
    chosen, compressed, trials = auto_precision.choose(mlmodel, options.format, images, truth, options.max_drop,
                                                 options.sparsity, target, say)
    notes.extend(auto_precision.trial_table(trials, len(images), source, options.max_drop))
    if target == "iOS16" and options.min_target is None:
        notes.append("note: auto tried what runs on iOS 16; pass --min-target iOS18 to let it try int4 too")
    reference.update(size=trials[0].size_bytes, precision="fp32")
    return compressed, dataclasses.replace(options, precision=chosen), reference


def convert_keras_model(model, fmt: str = "mlmodel", precision: str = "fp32",
                        labels: list[str] | None = None, preprocessing: Preprocessing | None = None,
                        add_softmax: bool = False, min_target: str | None = None,
                        sparsity: float | None = None, calibration=None, uncompressed=None,
                        notes: list[str] | None = None, fp32_layers: list[str] | None = None):
    """The conversion itself: a traced model → a named Core ML classifier (no metadata, not saved).

    `model` is a `LoadedModel` or a Keras model object; returns a `coremltools.models.MLModel`.
    `precision` and `sparsity` name a `compress` scheme (`calibration`: images for w8a8);
    `uncompressed(mlmodel)` sees the model before it is compressed; `fp32_layers` (Keras layer
    names) keep computing in float32 in a program that otherwise computes in float16. The model
    records which of its values each Keras layer computed (`layer_record.KEY`).
    """
    ct = coremltools()
    if not isinstance(model, LoadedModel):
        from kerasml.model.keras_models import from_keras
        model = from_keras(Path(getattr(model, "name", "model")), "keras3", model)
    if preprocessing is None:
        height, width, channels = image_shape_for(model, None)
        preprocessing = Preprocessing(height, width, channels, bias=[0.0] * channels)
    labels = labels if labels is not None else list(DIGITS)
    image_shape = (1, preprocessing.height, preprocessing.width, preprocessing.channels)
    graph = _traced_graph(model, image_shape, add_softmax)
    fixes.register_missing_tf_ops()

    convert_to = FORMATS[fmt]
    kwargs = {}
    keras_layers = layers.keras_layer_classes(model.keras_model)
    layer_names = [name for name, _ in keras_layers]
    scopes = layers.scope_table(graph, layer_names, getattr(model.keras_model, "name", ""))
    if convert_to == "mlprogram":
        # ML Programs default to float16 compute; fp32 keeps exact parity with Keras.
        kwargs["compute_precision"] = (layers.fp16_except(ct, fp32_layers, keras_layers, scopes)
                                       if schemes.computes_in_fp16(precision) else ct.precision.FLOAT32)
    target = _deployment_target(ct, min_target, fmt, precision, sparsity)
    if target is not None:
        kwargs["minimum_deployment_target"] = target
    colour = {"grayscale": ct.colorlayout.GRAYSCALE, "rgb": ct.colorlayout.RGB,
              "bgr": ct.colorlayout.BGR}[preprocessing.colour]   # bgr: caffe-style backbones (ResNet50)
    bias = preprocessing.bias if preprocessing.channels == 3 else preprocessing.bias[0]

    def run(target: str, options: dict):
        with quiet_output():
            return ct.convert(
                graph, source="tensorflow", convert_to=target, pass_pipeline=conversion_pipeline(ct),
                inputs=[ct.ImageType(name=INPUT_NAME, shape=image_shape, scale=preprocessing.scale,
                                     bias=bias, color_layout=colour)],
                classifier_config=ct.ClassifierConfig(core_ml_labels(labels)), **options)

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
    mlmodel = _rename_probabilities(ct, mlmodel)
    traced = layers.computing_values(mlmodel.get_spec())        # TensorFlow's names, before shortening
    owners = layers.owners_filled([t for t, _ in traced], layers.layers_of([n for _, n in traced], scopes), keras_layers)
    if owners and not add_softmax and layer_names:   # the graph's output is named Identity, not after its layer
        owners[-1] = owners[-1] or layer_names[-1]
    before = list(zip([t for t, _ in traced], layers.outputs_only([t for t, _ in traced], owners, keras_layers)))
    mlmodel = short_names.shortened(mlmodel)
    if uncompressed is not None:
        uncompressed(mlmodel)
    mlmodel = compress.apply(mlmodel, fmt, precision, sparsity=sparsity, calibration=calibration, notes=notes)
    layer_record.write(mlmodel, layers.paired(before, layers.computing_values(mlmodel.get_spec())))
    return mlmodel


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
        return getattr(ct.target, schemes.required_target(precision, sparsity))
    normalized = name.strip().replace(" ", "")
    for target in ct.target:
        if target.name.lower() == normalized.lower():
            if fmt == "mlpackage":
                schemes.check_target(target.name, precision, sparsity)
            return target
    choices = ", ".join(t.name for t in ct.target if t.name.startswith("iOS"))
    raise KerasmlError(f"unknown --min-target {name!r}; use one of {choices} (or macOS13 and the like)")


def _human_size(size: int) -> str:
    return f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.2f} MiB"


