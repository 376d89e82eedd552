"""The `kerasml` command line: parse arguments, call one library function, print the result.

Heavy libraries (TensorFlow, coremltools) are imported inside the command bodies so that
`kerasml --help` answers instantly. Every problem the user can fix is a `KerasmlError`, printed
as one `error:` line with exit code 2 — never a traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kerasml.version import __version__
from kerasml.errors import KerasmlError
from kerasml.libs import leave_process

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notes) is noise for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Train a Keras image classifier, convert it to Core ML, verify it on Linux, "
         "and drop it into the SwiftUI demo app.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kerasml {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """kerasml: Keras → Core ML, verified."""


def handle_errors(command):
    """Turn a `KerasmlError` into one `error:` line and exit code 2 (Ctrl-C: exit code 130)."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except KerasmlError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(130) from None

    return run


class ProgressBar:
    """A progress bar on stderr that appears with the first report, so an early error stays one line."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = typer.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def options_from(cls, parameters: dict, **overrides):
    """The options dataclass `cls` from a command's parameters (its `locals()`): each option is
    written once in the command's signature and once as a field, never passed on by hand."""
    fields = {field.name for field in dataclasses.fields(cls)}
    return cls(**{**{k: v for k, v in parameters.items() if k in fields}, **overrides})


def say_lines(lines) -> None:
    for line in lines:
        typer.echo(line)


def say(message: str) -> None:
    typer.echo(message)


def warn(message: str) -> None:
    typer.echo(message, err=True)


# ----------------------------------------------------------------------------------------- train
@app.command()
@handle_errors
def train(
    dataset: Annotated[Optional[str], typer.Option(help="mnist (full, falls back to the bundled sample offline), mnist-sample or fashion.")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Your own data: an .npz with x_train/y_train, a folder of IDX files, or a folder of class folders (optionally inside train/, val/, test/).")] = None,
    test_data: Annotated[Optional[Path], typer.Option(help="A separate test set to report accuracy on (e.g. a folder with MNIST's t10k files); never trained on.")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Architecture (see --list-archs; default: kerasml for digits, kerasml-fashion for --dataset fashion, vgg for image folders).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs (default: the architecture's).", min=1)] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size (default: the architecture's).", min=1)] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Peak learning rate (default: the architecture's).")] = None,
    val_split: Annotated[float, typer.Option(help="Fraction of the training images held out for validation.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same model.")] = 42,
    image_size: Annotated[Optional[int], typer.Option(help="Image folders: train at N x N pixels (default: a backbone's 224, else the images' median size, 28-224).", min=8, max=1024)] = None,
    normalize: Annotated[str, typer.Option(help="Pixel scaling, recorded for Core ML: unit (x/255) or symmetric (x/127.5 - 1).")] = "unit",
    width: Annotated[float, typer.Option(help="Multiply every hidden layer's filters and units (kerasml tune searches this); the MobileNets' alpha.")] = 1.0,
    dropout: Annotated[Optional[float], typer.Option(help="Set every Dropout layer's rate (default: the architecture's).")] = None,
    weights: Annotated[Optional[str], typer.Option(help="Backbones (mobilenetv2, ...): imagenet (Keras' download and cache; the default), none (random) or a local weights file.")] = None,
    distribute: Annotated[str, typer.Option(help="auto (mirrored when several GPUs are visible), none, mirrored (every local GPU) or multiworker (machines listed in TF_CONFIG).")] = "auto",
    mixed_precision: Annotated[bool, typer.Option("--mixed-precision", help="Compute in float16 with float32 weights (GPU only).")] = False,
    out: Annotated[Path, typer.Option(help="Where to save the Keras model (.keras).")] = Path("models/digits.keras"),
    force: Annotated[bool, typer.Option(help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    list_archs: Annotated[bool, typer.Option("--list-archs", help="List the architectures and exit.")] = False,
) -> None:
    """Train an image classifier and write the model, its training record and plots."""
    if list_archs:
        from kerasml.training.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE
        for name, architecture in ARCHITECTURES.items():
            marker = "*" if name == DEFAULT_ARCHITECTURE else " "
            say(f"{marker} {name:<16} {architecture.summary}; {architecture.recipe()}")
        return
    from kerasml.training.options import TrainOptions
    from kerasml.training.train import train as train_model

    result = train_model(options_from(TrainOptions, locals()), say=say)
    say_lines(result.lines())
    if result.record is not None and result.record.status == "interrupted":
        raise typer.Exit(130)  # the best model so far is saved, but the run did not finish


# --------------------------------------------------------------------------------------- convert
@app.command()
@handle_errors
def convert(
    model: Annotated[Path, typer.Argument(help="Keras model: .keras, .h5 (Keras 2 or 3) or a SavedModel directory; with --format aimodel also a Core ML .mlmodel or .mlpackage to migrate.")],
    labels: Annotated[Optional[str], typer.Option(help="digits, fashion, auto (from the training record), @labels.txt or a,b,c.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output path (default: beside the model).")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="mlmodel (NeuralNetwork, as the tutorial), mlpackage (ML Program) or aimodel (Core AI, iOS 27+); default: --out's suffix, else mlmodel.")] = None,
    precision: Annotated[str, typer.Option(help="Weights: fp32, fp16, int8, palette8/6/4/2 (k-means look-up tables), int4 and w8a8 (ML Program only; w8a8 needs --data), or auto (smallest within --max-drop).")] = "fp32",
    sparsity: Annotated[Optional[float], typer.Option(help="Prune this fraction of the weights (e.g. 0.5) and store them sparse; ML Program only, combines with --precision.")] = None,
    max_drop: Annotated[Optional[float], typer.Option(help="With --precision auto: accuracy points the chosen scheme may lose on --data (or the record's test set).")] = None,
    author: Annotated[Optional[str], typer.Option(help="Author shown in Xcode (default: git user.name, else your login).")] = None,
    license: Annotated[Optional[str], typer.Option("--license", help="Licence shown in Xcode.")] = None,
    description: Annotated[Optional[str], typer.Option(help="Short description shown in Xcode (default: written from the training record).")] = None,
    version: Annotated[Optional[str], typer.Option("--model-version", "--version", help="Model version shown in Xcode.")] = None,
    min_target: Annotated[Optional[str], typer.Option(help="Minimum deployment target, e.g. iOS15 (default: iOS13 for mlmodel, iOS15 for mlpackage).")] = None,
    scale: Annotated[Optional[float], typer.Option(help="Pixel scale (default: from the training record, else 1/255).")] = None,
    bias: Annotated[Optional[str], typer.Option(help="Pixel bias, one value or one per channel (default: from the record, else 0).")] = None,
    input_shape: Annotated[Optional[str], typer.Option(help="Image shape for flat-input models, e.g. 28x28 or 28x28x1.")] = None,
    no_softmax: Annotated[bool, typer.Option("--no-softmax", help="Keep logits when the model has no softmax.")] = False,
    unsafe: Annotated[bool, typer.Option(help="Allow Lambda layers and custom code inside the model file to run.")] = False,
    data: Annotated[Optional[Path], typer.Option(help="Labelled test images (.npz or IDX folder): measure the accuracy compression costs; calibrates w8a8.")] = None,
    fp32_layers: Annotated[Optional[str], typer.Option("--fp32-layers", help="Keras layers (a,b,c) that keep computing in float32 in a --precision fp16 ML Program; `kerasml diff --compute fp16` names the ones that overflow.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output.")] = False,
) -> None:
    """Convert a Keras model to Core ML or Core AI with full metadata (or a Core ML model to Core AI)."""
    from kerasml.conversion.to_coreml import ConvertOptions

    from kerasml.conversion import convert as convert_model

    result = convert_model(options_from(ConvertOptions, locals(), add_softmax=not no_softmax), say=say, warn=warn)
    say_lines(result.summary_lines())


# --------------------------------------------------------------------------------------- inspect
@app.command()
@handle_errors
def inspect(
    file: Annotated[Path, typer.Argument(help=".mlmodel, .mlpackage, .aimodel, .keras, .h5 or SavedModel directory.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    unsafe: Annotated[bool, typer.Option(help="Allow custom code in a Keras file to run.")] = False,
) -> None:
    """Show what a Core ML, Core AI or Keras model contains."""
    import json

    if file.suffix == ".aimodel":
        from kerasml.model.inspect_aimodel import format_aimodel_report as format_report, inspect_aimodel

        report = inspect_aimodel(file)
    else:
        from kerasml.model.inspect import format_report, inspect_model

        report = inspect_model(file, unsafe=unsafe)
    say(json.dumps(report, indent=2, default=str) if json_output else format_report(report))


# ---------------------------------------------------------------------------------------- verify
@app.command()
@handle_errors
def verify(
    model: Annotated[Path, typer.Argument(help="The converted model: Core ML (.mlmodel or .mlpackage, run by kerasml's runtime) or Core AI (.aimodel, run by Apple's runtime).")],
    keras: Annotated[Path, typer.Option("--keras", help="The Keras model it was converted from.")],
    data: Annotated[Optional[Path], typer.Option(help="Images to compare on (.npz or IDX folder; default: bundled digits or random images).")] = None,
    samples: Annotated[Optional[int], typer.Option(help="How many images to compare (default: 1,000, or all of --data).", min=1)] = None,
    atol: Annotated[Optional[float], typer.Option(help="Largest allowed |Δ probability| (default by weight precision: fp32 1e-5, fp16 5e-3, int8 5e-2).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of the checklist.")] = False,
    unsafe: Annotated[bool, typer.Option(help="Allow custom code in the Keras file to run.")] = False,
) -> None:
    """Prove the converted model computes what the Keras model computes (on Linux, no Mac needed)."""
    import json

    from kerasml.checks.verify import verify as verify_model

    result = verify_model(model, keras, data=data, samples=samples, atol=atol, unsafe=unsafe)
    say(json.dumps(result.to_dict(), indent=2)) if json_output else say_lines(result.lines())
    if not result.passed:
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------------ diff
@app.command()
@handle_errors
def diff(
    keras: Annotated[Path, typer.Argument(help="The Keras model (.keras or .h5) the model was converted from.")],
    model: Annotated[Optional[Path], typer.Argument(help="The converted model: .mlmodel, .mlpackage (kerasml's runtime) or .aimodel (Apple's runtime); not with --sensitivity.")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Images to compare on (.npz or IDX folder; default: bundled digits or random images).")] = None,
    samples: Annotated[Optional[int], typer.Option(help="How many images (default 100, or all of --data).", min=1)] = None,
    compute: Annotated[str, typer.Option(help="fp32, or fp16: run the Core ML program as GPU and Neural Engine do and list the layers that leave float16's range.")] = "fp32",
    tolerance: Annotated[Optional[float], typer.Option(help="Largest |Δ| relative to a layer's largest Keras value (default: fp32 1e-4, fp16 1e-2).")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write the per-layer error as a PNG (log scale, tolerance line, first departure marked).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON: the rows and first_divergent_layer.")] = False,
    sensitivity: Annotated[bool, typer.Option("--sensitivity", help="Instead: compress one Keras layer at a time with --precision and report each one's accuracy cost and size saving (needs labelled --data or a training record).")] = False,
    precision: Annotated[str, typer.Option(help="With --sensitivity: the scheme to try per layer (palette2, palette4, palette6, palette8, int8, int4).")] = "palette4",
    unsafe: Annotated[bool, typer.Option(help="Allow custom code in the Keras file to run.")] = False,
) -> None:
    """Where a converted model departs from Keras, layer by Keras layer (on Linux); or, with
    --sensitivity, which layers pay for compression."""
    import json

    from kerasml.checks.diff import diff as diff_models

    if sensitivity:
        from kerasml.conversion.layer_costs import layer_costs

        if model is not None:
            raise KerasmlError("--sensitivity converts the Keras model itself; give only MODEL.keras")
        report_ = layer_costs(keras, precision, data, samples, say=say, unsafe=unsafe)
        say(json.dumps(report_.to_dict(), indent=2)) if json_output else say_lines(report_.lines())
        return
    if model is None:
        raise KerasmlError("give the converted model to compare: kerasml diff MODEL.keras MODEL.mlpackage")

    result = diff_models(keras, model, data=data, samples=samples, compute=compute, tolerance=tolerance,
                         unsafe=unsafe)
    if plot is not None:
        from kerasml.plots import plot_layer_errors

        plot_layer_errors(result, plot)
    say(json.dumps(result.to_dict(), indent=2, default=str)) if json_output else say_lines(result.lines())
    if result.first_divergent_layer is not None:
        raise typer.Exit(1)


# -------------------------------------------------------------------------------------- evaluate
@app.command()
@handle_errors
def evaluate(
    model: Annotated[Path, typer.Argument(help="An image classifier: Core ML (.mlmodel or .mlpackage, from kerasml or elsewhere) or a kerasml Core AI .aimodel.")],
    data: Annotated[Optional[Path], typer.Option(help="Labelled images: .npz or a folder of IDX files (default: the MNIST test set via Keras).")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Where to write the confusion-matrix PNG (default: <model>.confusion.png beside the model).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Accuracy, per-class accuracy, confusion matrix and worst-confused pairs of a converted model."""
    import json

    from kerasml.checks.evaluate import evaluate as evaluate_model

    progress = ProgressBar("evaluating")
    try:
        result = evaluate_model(model, data=data, plot=plot, progress=progress)
    finally:
        progress.close()
    say(json.dumps(result.to_dict(), indent=2)) if json_output else say_lines(result.lines())


# --------------------------------------------------------------------------------------- predict
@app.command()
@handle_errors
def predict(
    model: Annotated[Path, typer.Argument(help="An image classifier: .mlmodel, .mlpackage or .aimodel.")],
    images: Annotated[list[Path], typer.Argument(help="PNG or JPEG files.")],
    top: Annotated[int, typer.Option(help="How many labels to show per image.", min=1)] = 3,
    raw: Annotated[bool, typer.Option(help="Only resize, without MNIST-style cropping and centring.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Classify image files: photos of digits on paper are prepared as the app prepares them (and it says how)."""
    import json

    from kerasml.checks.predict import predict as predict_images

    results = predict_images(model, images, top=top, raw=raw)
    if json_output:
        say(json.dumps([result.to_dict() for result in results], indent=2))
        return
    for result in results:
        say_lines(result.lines())


# --------------------------------------------------------------------------------------- package
@app.command()
@handle_errors
def package(
    model: Annotated[Path, typer.Argument(help="A converted digit model: .mlmodel (every iOS) or .aimodel (Core AI, iOS 27+).")],
    app_dir: Annotated[Path, typer.Option("--app", help="The demo app folder.")] = Path("ios_app"),
) -> None:
    """Copy a digit model into the SwiftUI demo app, after checking it fits."""
    from kerasml.app.package import next_steps, package_model

    destination = package_model(model, app_dir)
    say(f"copied {model} to {destination}")
    say_lines(next_steps(app_dir))


# ------------------------------------------------------------------------------------------ tune
@app.command()
@handle_errors
def tune(
    dataset: Annotated[Optional[str], typer.Option(help="mnist, mnist-sample or fashion (as in train).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Your own data, as in train.")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Architecture whose width, dropout, learning rate and batch size are searched (see train --list-archs; default: as train).")] = None,
    algorithm: Annotated[str, typer.Option(help="random (random search) or hyperband.")] = "random",
    trials: Annotated[int, typer.Option(help="Budget: how many settings to try.", min=1)] = 10,
    epochs: Annotated[int, typer.Option(help="Epochs per trial (hyperband: the most a trial gets, at least 3).", min=1)] = 3,
    final_epochs: Annotated[Optional[int], typer.Option(help="Epochs for retraining the best settings (default: the architecture's).", min=1)] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Image folders: train at N x N pixels.", min=8, max=1024)] = None,
    normalize: Annotated[str, typer.Option(help="unit (x/255) or symmetric (x/127.5 - 1).")] = "unit",
    val_split: Annotated[float, typer.Option(help="Fraction of the training images held out to score the trials (unless there is a val/ folder).")] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed for the split, the search and the training.")] = 42,
    out: Annotated[Path, typer.Option(help="Where to save the best model (.keras); the results table (.tuning.md, .tuning.json) goes beside it.")] = Path("models/tuned.keras"),
    force: Annotated[bool, typer.Option(help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Search width, dropout, learning rate and batch size; write a results table and the best model."""
    from kerasml.training.options import TrainOptions
    from kerasml.training.tune import TuneOptions, tune as tune_model

    parameters = locals()
    retraining = options_from(TrainOptions, parameters, epochs=final_epochs)   # --epochs is per trial
    result = tune_model(options_from(TuneOptions, parameters, train=retraining), say=say)
    say_lines(result.lines())


# ---------------------------------------------------------------------------------------- report
@app.command()
@handle_errors
def report(
    model: Annotated[Path, typer.Argument(help="A Keras model (.keras or .h5), with its training record and history beside it when kerasml trained it; or a converted one (.mlmodel, .mlpackage, .aimodel), predicted by its runtime.")],
    data: Annotated[Optional[Path], typer.Option(help="Labelled images to report on (default: the data the model was trained on, from its record).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Report folder (default: <model name>.report beside the model).")] = None,
    samples: Annotated[Optional[int], typer.Option(help="Predict at most this many images (default: the whole test split).", min=1)] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing report folder.")] = False,
    unsafe: Annotated[bool, typer.Option(help="Allow custom code in the Keras file to run.")] = False,
) -> None:
    """Training curves, confusion matrix, worst mistakes, per-class accuracy, first-layer filters and feature maps, as PNGs and report.md."""
    from kerasml.report.build import report as write_report

    result = write_report(model, data=data, out_dir=out, force=force, samples=samples, unsafe=unsafe, say=say)
    say_lines(result.lines())


# ------------------------------------------------------------------------------------------- try
@app.command("try")
@handle_errors
def try_model(
    model: Annotated[Path, typer.Argument(help="An image classifier: .mlmodel, .mlpackage or .aimodel.")],
    port: Annotated[int, typer.Option(help="Port to serve the page on (0: any free port).")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on; the default keeps the page on this machine.")] = "127.0.0.1",
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser; just print the address.")] = False,
) -> None:
    """Draw on the model in a web page (or give it a photo), read the way the iOS app reads."""
    from kerasml.web.server import serve

    serve(model, host=host, port=port, open_browser=not no_browser, say=say)


# ------------------------------------------------------------------------------------ entry point
def main() -> None:
    """Run the CLI. Usage errors are Typer's (exit 2); anything unexpected is still one line."""
    try:
        app(prog_name="kerasml")
    except SystemExit as stop:
        leave_process(stop.code)
    except Exception as exc:  # a bug in kerasml or a library: one line unless debugging
        if os.environ.get("KERASML_DEBUG"):
            raise
        first_line = (str(exc).splitlines() or [""])[0][:300]
        typer.echo(f"error: unexpected {type(exc).__name__}: {first_line} "
                   "(set KERASML_DEBUG=1 for the traceback, and please report it)", err=True)
        leave_process(1)

