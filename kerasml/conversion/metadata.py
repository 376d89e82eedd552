"""What a converted model says about itself: the feature names, everything Xcode's model page shows
(description, author, licence, version, input and output descriptions) and the `com.kerasml.*`
provenance that verify, package and the app read back."""

from __future__ import annotations

import dataclasses
import getpass
import json
import subprocess
from pathlib import Path

from kerasml.version import __version__
from kerasml.libs import coremltools, tensorflow
from kerasml.files import sha256_of
from kerasml.model.features import INPUT_NAME, LABEL_OUTPUT, PROBABILITY_OUTPUT
from kerasml.record import DIGITS, Preprocessing, TrainingRecord, metadata_key



def describe(mlmodel, source: Path, record: TrainingRecord | None, preprocessing: Preprocessing,
             labels: list[str], options) -> None:
    """Everything Xcode's model page shows, plus the provenance kerasml reads back later
    (`options`: convert's, for the description, author, licence, version and precision)."""
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
            description += f" Trained by kerasml on {record.dataset}: {architecture_in_words(record.architecture)}."
    mlmodel.short_description = description
    mlmodel.author = options.author or default_author()
    mlmodel.license = options.license or ("Model weights trained by kerasml; MNIST data CC BY-SA 3.0"
                                          if record and "mnist" in record.dataset else "Unspecified")
    mlmodel.version = options.version or "1.0"
    mlmodel.input_description[INPUT_NAME] = (
        f"{preprocessing.width}x{preprocessing.height} {preprocessing.colour} image, {preprocessing.ink}")
    mlmodel.output_description[LABEL_OUTPUT] = "Most likely label"
    mlmodel.output_description[PROBABILITY_OUTPUT] = "Probability of each label"
    metadata = {
        "com.apple.coreml.model.preview.type": "imageClassifier",  # Xcode's Preview tab
        metadata_key("kerasml_version"): __version__,
        metadata_key("source_file"): source.name,
        metadata_key("source_sha256"): sha256_of(source),
        metadata_key("preprocessing"): json.dumps(dataclasses.asdict(preprocessing)),
        metadata_key("precision"): options.precision,
        metadata_key("tensorflow_version"): tensorflow().__version__,
        metadata_key("coremltools_version"): ct.__version__,
    }
    if record:
        metadata.update({
            metadata_key("dataset"): record.dataset,
            metadata_key("architecture"): record.architecture,
            metadata_key("training"): json.dumps({
                # Folder names only: a model that ships must not carry its build machine's paths.
                "dataset_source": without_paths(record.dataset_source), "samples": record.samples,
                "epochs_run": record.epochs_run, "batch_size": record.batch_size,
                "seed": record.seed, "validation": record.validation, "status": record.status,
                "created": record.created, "versions": record.versions}),
        })
        if record.test_accuracy is not None:
            metadata[metadata_key("test_accuracy")] = f"{record.test_accuracy:.4f}"
    mlmodel.user_defined_metadata.update(metadata)


def architecture_in_words(name: str) -> str:
    """"a small batch-normalised CNN, ... (the `kerasml` architecture)"; unknown names as they are."""
    from kerasml.training.architectures import ARCHITECTURES

    known = ARCHITECTURES.get(name)
    if known is None:
        return f"the {name!r} architecture" if name else "an unnamed architecture"
    words = known.summary.split(" (default")[0]   # "(default for digits)" is about the CLI, not the model
    return f"{words} (kerasml's {name!r} architecture)"


def without_paths(text: str) -> str:
    """Every path-like word (it has a / or \\) replaced by its last part: "test: ../a/mnist-test" -> "test: mnist-test"."""
    import re

    return re.sub(r"[^\s;,()'\"]*[/\\][^\s;,()'\"]*",
                  lambda m: m.group(0).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or "/", text)


def default_author() -> str:
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
