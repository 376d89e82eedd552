"""Train an image classifier: data → split → model → fit → evaluate → model file and record.

`train` is the stage's one public function and reads top to bottom like a keras-io example.
It writes the model and, beside it, `<name>.training.json`, `<name>.history.json`,
`<name>.history.png` and, when the data has a test split, `<name>.confusion.png`.
`prepare_data`, `build_model` and `compile_model` are its steps, shared with `kerasml tune`.

Arrays (MNIST, .npz, IDX) are held in memory and cached; image folders stream from disk through
tf.data (see kerasml/data/folders.py) and are never held whole.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from kerasml.libs import tensorflow

tf = tensorflow()
import keras  # noqa: E402  (after the quiet TensorFlow import above)

from kerasml.training import distribute  # noqa: E402
from kerasml.training.architectures import Augmentation, Phase, default_architecture, get_architecture, plan_phases
from kerasml.training.backbones import (build_transfer_model, default_image_size, input_preprocessing,
                               resolve_weights, transfer_record, unfreeze_top)
from kerasml.data import Dataset, load_dataset
from kerasml.data.labels import preset_name
from kerasml.errors import KerasmlError
from kerasml.files import atomic_output, check_output, write_text_atomic
from kerasml.training.pipeline import array_batches, decoding_errors, image_batches  # noqa: F401 (report, tests)
from kerasml.record import (Preprocessing, TrainingRecord, library_versions, model_stem,
                            write_record)


@dataclasses.dataclass
class TrainOptions:
    dataset: str | None = None
    data: Path | None = None
    test_data: Path | None = None      # a separate test set (e.g. MNIST's t10k files); never trained on
    arch: str | None = None            # None: the measured default for the data (see architectures)
    epochs: int | None = None          # None: the architecture's default
    batch_size: int | None = None
    learning_rate: float | None = None
    val_split: float = 0.1
    seed: int = 42
    patience: int = 5
    out: Path = Path("models/digits.keras")
    force: bool = False
    quiet: bool = False
    image_size: int | None = None      # image folders: square side in pixels (None: from the data)
    normalize: str = "unit"            # "unit": pixel/255, "symmetric": pixel/127.5 - 1
    width: float = 1.0                 # multiplies every hidden layer's filters and units
    dropout: float | None = None       # every Dropout layer's rate (None: the architecture's)
    extra: dict | None = None          # more provenance for the record (kerasml tune's summary)
    weights: str | None = None         # backbones: imagenet (default), none or a weights file
    distribute: str = "auto"           # auto, none, mirrored or multiworker (see distribute.py)
    mixed_precision: bool = False      # mixed_float16 (GPU only)


NORMALIZATIONS = {"unit": (1 / 255.0, 0.0), "symmetric": (1 / 127.5, -1.0)}  # (scale, bias)
MAX_IMAGE_SIZE = 1024


@dataclasses.dataclass
class TrainResult:
    model_path: Path
    record: TrainingRecord | None      # None on multi-worker workers other than the chief
    written: list[Path]


def train(options: TrainOptions, say: Callable[[str], None] = print,
          data: "PreparedData | None" = None) -> TrainResult:
    """Train as `options` say; `data` skips loading when the caller has prepared it already
    (from the same options: `kerasml tune` retraining its best settings)."""
    out = Path(options.out)
    if out.suffix not in (".keras", ".h5"):
        raise KerasmlError(f"--out {out} must end in .keras (or .h5 for Keras 2 tools)")
    check_output(out, options.force)
    check_options(options)
    distribute.check_mode(options.distribute, options.mixed_precision)
    if options.arch is not None:  # an unknown name or weights file fails before the data loads
        resolve_weights(get_architecture(options.arch).backbone, options.weights)
    started = time.perf_counter()
    # Before any other TensorFlow work: a multi-worker strategy sets up the runtime itself.
    dist = distribute.setup(options.distribute, options.mixed_precision, say)

    # Prepare the data: a seeded split of the training images into training and validation.
    data = data or prepare_data(options, say)
    dataset = data.dataset
    arch = get_architecture(options.arch or default_architecture(dataset.name, data.streamed))
    epochs = options.epochs or arch.epochs
    batch_size = options.batch_size or arch.batch_size
    learning_rate = options.learning_rate or arch.learning_rate
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise KerasmlError("--epochs and --batch-size must be at least 1 and --learning-rate positive")
    weights = resolve_weights(arch.backbone, options.weights)
    if arch.backbone is not None:   # the backbone's own pixel scaling, recorded for Core ML
        data = dataclasses.replace(data, preprocessing=input_preprocessing(arch.backbone, data.preprocessing))
    preprocessing = data.preprocessing
    global_batch = dist.global_batch(batch_size)
    if dist.replicas > 1 or dist.mode in ("mirrored", "multiworker"):
        say(dist.describe(batch_size))

    keras.utils.set_random_seed(options.seed)

    # Build the model, inside the strategy's scope so its variables are mirrored.
    def build():
        return build_model(arch, data.image_shape, dataset.num_classes, options.width, options.dropout, weights)

    with distribute.precision_policy(dist.mixed_precision), dist.strategy.scope():
        model = build()
    dist.prepare(model)
    phases = plan_phases(arch, epochs, learning_rate, pretrained=weights != "none")

    # Train, keeping the weights of the best validation epoch.
    train_data = dist.shard(data.batches("train", global_batch, options.seed, augment=arch.augment))
    val_data = dist.shard(data.batches("validation", global_batch))
    steps = math.ceil(data.counts["train"] / global_batch)
    fit_started = time.perf_counter()
    with distribute.precision_policy(dist.mixed_precision):
        best, interrupted = _fit_phases(model, arch, phases, dist, train_data, val_data, steps, options, data, say)
    fit_time = time.perf_counter() - fit_started
    history = best.history
    if any(not math.isfinite(loss) for loss in history.get("loss", [])):
        raise KerasmlError(f"training diverged: the loss became NaN in epoch {len(history['loss'])}; "
                           "lower --learning-rate or check the data; no model was written")
    if best.weights is None:
        raise KerasmlError("training stopped before the first epoch ended; no model was written")
    model.set_weights(best.weights)
    if dist.mixed_precision or dist.replicas > 1:   # evaluate and save on one device, in float32
        model = distribute.local_copy(model, build)
        compile_model(model, arch, learning_rate, epochs, steps)   # the same loss and metrics
    if not dist.is_chief:   # multi-worker: the chief alone evaluates and writes the model
        say(f"{dist.worker}: done; the chief writes the model")
        return TrainResult(out, None, [])

    # Evaluate on the test split, when there is one.
    test_metrics: dict[str, float] = {}
    predictions = None
    if data.y_test is not None:
        test_data = data.batches("test", global_batch)
        with decoding_errors(dataset):
            loss, accuracy = model.evaluate(test_data, verbose=0)
            probabilities = model.predict(test_data, verbose=0)
        predictions = probabilities.argmax(axis=1)
        test_metrics = {"accuracy": float(accuracy), "loss": float(loss), "samples": len(data.y_test)}

    extra = {"learning_rate": learning_rate, "schedule": arch.schedule,
             "augment": dataclasses.asdict(arch.augment) if arch.augment else None,
             "label_smoothing": arch.label_smoothing}
    extra.update(data.extra)
    if options.width != 1.0 or options.dropout is not None:
        extra.update(width=options.width, dropout=options.dropout)
    if options.test_data is not None:  # so `kerasml report` finds the same test set again
        extra["test_data"] = str(Path(options.test_data).resolve())
    extra.update(options.extra or {})
    extra["distribute"] = dist.record(batch_size)
    if arch.backbone is not None:
        extra.pop("normalize", None)   # the backbone decides the scaling
        extra["transfer"] = transfer_record(arch.backbone, weights, phases)
    record = TrainingRecord(
        preprocessing=preprocessing, labels=list(dataset.labels),
        label_preset=preset_name(list(dataset.labels)),
        dataset=dataset.name, dataset_source=dataset.source,
        samples=dict(data.counts),
        architecture=arch.name, parameters=int(model.count_params()),
        epochs_requested=epochs, epochs_run=len(history.get("loss", [])), batch_size=batch_size,
        seed=options.seed,
        validation={"accuracy": float(best.best_accuracy), "loss": float(best.best_loss),
                    "best_epoch": best.best_epoch},
        test=test_metrics, versions=library_versions(),
        wall_time_s=round(time.perf_counter() - started, 2), fit_time_s=round(fit_time, 2),
        status="interrupted" if interrupted else "complete",
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extra=extra,
    )
    return TrainResult(out, record, _write_outputs(model, out, record, history, predictions, data.y_test,
                                                   dataset.labels, options.force))


def _fit_phases(model, arch, phases: list[Phase], dist, train_data, val_data, steps: int,
                options: TrainOptions, data: "PreparedData", say: Callable[[str], None]):
    """model.fit once per phase (one for most recipes; head, then fine-tuning, for backbones),
    compiled inside the strategy's scope. Returns the best-epoch keeper and whether Ctrl-C stopped it."""
    best = _BestWeights()
    epoch = 0
    # One line per epoch when the output is a log file rather than a terminal.
    verbose = 0 if options.quiet else (1 if sys.stdout.isatty() else 2)
    try:
        for phase in phases:
            if phase.unfreeze is not None:
                model.set_weights(best.weights)     # fine-tune from the best head
                opened = unfreeze_top(model, phase.unfreeze)
                say(f"{phase.name}: {opened} layers of the backbone train now, at rate {phase.learning_rate:g}")
            elif len(phases) > 1:
                say(f"{phase.name}: the backbone is frozen, the new head trains at rate {phase.learning_rate:g}")
            with dist.strategy.scope():
                compile_model(model, arch, phase.learning_rate, phase.epochs, steps)
            callbacks = [best, keras.callbacks.TerminateOnNaN()]
            if arch.schedule == "constant":
                # A cosine schedule is planned to its last epoch (its rate is still high mid-way, so
                # validation accuracy wobbles); a constant rate stops once validation stops improving.
                callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.patience))
            if data.streamed and arch.schedule == "constant":
                # Photos learn in steps: halve the rate when the validation loss stalls (the snack tutorial's recipe).
                callbacks.append(keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss", factor=0.5, patience=2, min_lr=phase.learning_rate / 64))
            with decoding_errors(data.dataset), dist.strategy.scope():
                model.fit(train_data, validation_data=val_data, epochs=epoch + phase.epochs,
                          initial_epoch=epoch, callbacks=callbacks, verbose=verbose,
                          shuffle=False)  # the pipeline shuffles (seeded) by itself
            epoch = len(best.history.get("loss", []))
            if best.weights is None or not all(math.isfinite(loss) for loss in best.history.get("loss", [])):
                break   # NaN loss, or nothing learned to fine-tune from
    except KeyboardInterrupt:
        # First Ctrl-C: keep what was learned so far. A second one during saving aborts
        # (Python raises KeyboardInterrupt again and the atomic writers clean up).
        say("\ninterrupted: saving the best model so far (press Ctrl-C again to abort)")
        return best, True
    return best, False


def check_options(options: TrainOptions) -> None:
    """The options that do not need the data, checked before anything slow happens."""
    if not 0.0 < options.val_split < 0.5:
        raise KerasmlError(f"--val-split {options.val_split} must be between 0 and 0.5")
    if options.normalize not in NORMALIZATIONS:
        raise KerasmlError(f"unknown --normalize {options.normalize!r}; use unit (x/255) or "
                           "symmetric (x/127.5 - 1)")
    if options.image_size is not None and not 8 <= options.image_size <= MAX_IMAGE_SIZE:
        raise KerasmlError(f"--image-size {options.image_size} must be between 8 and {MAX_IMAGE_SIZE}")
    if not 0.0 < options.width <= 8.0:
        raise KerasmlError(f"--width {options.width} must be above 0 and at most 8")
    if options.dropout is not None and not 0.0 <= options.dropout < 1.0:
        raise KerasmlError(f"--dropout {options.dropout} must be at least 0 and below 1")


@dataclasses.dataclass
class PreparedData:
    """The data as the recipe uses it: the splits, their sizes and how pixels become inputs."""

    dataset: Dataset
    preprocessing: Preprocessing
    counts: dict[str, int]                       # images per split: train, validation, test
    y_test: np.ndarray | None
    extra: dict                                  # provenance for the record
    splits: dict                                 # name -> (x, y) arrays or ImageFiles
    size: int | None = None                      # image folders: the square side

    @property
    def streamed(self) -> bool:
        return self.dataset.folders is not None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.preprocessing.height, self.preprocessing.width, self.preprocessing.channels)

    def batches(self, split: str, batch_size: int, shuffle_seed: int | None = None,
                augment: Augmentation | None = None):
        """tf.data batches of scaled images and one-hot labels; shuffled and augmented for training."""
        num_classes = self.dataset.num_classes
        if not self.streamed:
            x, y = self.splits[split]
            if split != "train":
                batch_size = 1000   # arrays: large evaluation batches, as before
            return array_batches(x, y, num_classes, self.preprocessing, batch_size, shuffle_seed, augment)
        folders, files = self.dataset.folders, self.splits[split]
        images = folders.dataset(files, self.size, shuffle_seed, cache=folders.fits_in_memory(files, self.size))
        return image_batches(images, num_classes, self.preprocessing, batch_size, shuffle_seed, augment)


def prepare_data(options: TrainOptions, say: Callable[[str], None] = print) -> PreparedData:
    """Load the data, split off validation images (seeded) and decide the preprocessing."""
    scale, bias = NORMALIZATIONS[options.normalize]
    dataset = load_dataset(options.dataset, options.data, say=say)
    extra: dict = {"normalize": options.normalize, "val_split": options.val_split}
    if options.data is not None:
        extra["data"] = str(Path(options.data).resolve())   # so `kerasml report` finds it again
    if dataset.folders is not None:
        return _prepare_folders(options, dataset, scale, bias, extra, say)
    if options.image_size is not None:
        raise KerasmlError("--image-size applies to image folders; array data keeps its own size")
    if dataset.x_train is None:
        raise KerasmlError(f"{dataset.source} has test images only; training needs train-* files or x_train")
    if options.test_data is not None:
        dataset = _with_test_split(dataset, load_dataset(path=options.test_data, say=say))
    x_train, y_train, x_val, y_val = split_validation(dataset, options.val_split, options.seed)
    channels = x_train.shape[3]
    preprocessing = Preprocessing(height=x_train.shape[1], width=x_train.shape[2], channels=channels,
                                  scale=scale, bias=[bias] * channels)
    splits = {"train": (x_train, y_train), "validation": (x_val, y_val),
              "test": (dataset.x_test, dataset.y_test)}
    counts = {"train": len(x_train), "validation": len(x_val),
              "test": 0 if dataset.x_test is None else len(dataset.x_test)}
    return PreparedData(dataset, preprocessing, counts, dataset.y_test, extra, splits)


def _prepare_folders(options: TrainOptions, dataset: Dataset, scale: float, bias: float, extra: dict,
                     say: Callable[[str], None]) -> PreparedData:
    folders = dataset.folders
    if options.test_data is not None:
        raise KerasmlError("--test-data works with array data; for image folders put the test "
                           "images in a test/ folder beside train/")
    size = options.image_size or default_image_size(options.arch, folders.default_size)
    train_files, val_files = folders.split_validation(options.val_split, options.seed)
    if folders.val is not None and options.val_split != TrainOptions.val_split:
        say(f"note: {folders.root} has a val/ folder, so --val-split is not used")
    channels = folders.channels
    preprocessing = Preprocessing(height=size, width=size, channels=channels, scale=scale,
                                  bias=[bias] * channels,
                                  ink="natural colour" if channels == 3 else "natural grayscale")
    extra.update(
        image_size=size,
        image_size_from="--image-size" if options.image_size else "median shorter side of the images, within 28-224",
        resize="stretched to a square, bilinear with antialiasing (aspect ratio not kept)",
        validation_from="val/ folder" if folders.val is not None else "a seeded share of each class",
        formats=dict(folders.formats), skipped_files=folders.skipped)
    counts = {"train": len(train_files), "validation": len(val_files),
              "test": 0 if folders.test is None else len(folders.test)}
    say(f"{folders.describe()}: training at {size}x{size}")
    splits = {"train": train_files, "validation": val_files, "test": folders.test}
    y_test = None if folders.test is None else folders.test.labels
    return PreparedData(dataset, preprocessing, counts, y_test, extra, splits, size)


def build_model(arch, image_shape: tuple[int, int, int], num_classes: int, width: float = 1.0,
                dropout: float | None = None, weights: str = "none"):
    """The architecture's network, its hidden layers `width` times as wide, its dropout rates set;
    a backbone with `weights`, `width` its alpha."""
    if arch.backbone is not None:
        return build_transfer_model(arch.backbone, image_shape, num_classes, weights, width, dropout)
    model = arch.build(image_shape, num_classes)
    if width == 1.0 and dropout is None:
        return model
    head = model.layers[-1]   # the classifier keeps one output per class

    def resized(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.Conv2D) and "filters" in config:
            config["filters"] = max(1, round(config["filters"] * width))
        elif isinstance(layer, keras.layers.Dense) and layer is not head:
            config["units"] = max(1, round(config["units"] * width))
        elif isinstance(layer, keras.layers.Dropout) and dropout is not None:
            config["rate"] = dropout
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=resized)


def compile_model(model, arch, learning_rate: float, epochs: int, steps_per_epoch: int) -> None:
    """The architecture's optimiser and loss: Adam, or AdamW with warm-up and cosine decay."""
    if arch.schedule == "cosine":
        if arch.warmup:  # one epoch of warm-up, then cosine down to zero
            schedule = keras.optimizers.schedules.CosineDecay(
                0.0, decay_steps=epochs * steps_per_epoch, warmup_target=learning_rate,
                warmup_steps=steps_per_epoch)
        else:
            schedule = keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps_per_epoch)
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=arch.label_smoothing),
                  metrics=["accuracy"])


def _with_test_split(dataset: Dataset, test: Dataset) -> Dataset:
    x, y = (test.x_test, test.y_test) if test.x_test is not None else (test.x_train, test.y_train)
    if x.shape[1:] != dataset.image_shape:
        raise KerasmlError(f"--test-data images are {x.shape[1:]}, training images {dataset.image_shape}; "
                           "they must have the same size and channels")
    if y.max() >= dataset.num_classes:
        raise KerasmlError(f"--test-data has label {y.max()} but the training data has "
                           f"{dataset.num_classes} classes")
    return dataclasses.replace(dataset, x_test=x, y_test=y,
                               source=f"{dataset.source}; test: {test.source}")


def split_validation(dataset: Dataset, val_split: float, seed: int):
    """Array data: (x_train, y_train, x_val, y_val), the validation images a seeded random share."""
    x, y = dataset.x_train, dataset.y_train
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * val_split)))
    if len(x) - n_val < 1:
        raise KerasmlError(f"{dataset.source} has only {len(x)} training images; need at least 2")
    val, tr = order[:n_val], order[n_val:]
    return x[tr], y[tr], x[val], y[val]


class _BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the best validation epoch in memory and the history of all epochs,
    so an interrupted or early-stopped run still yields its best model.

    Best means lowest validation loss: on a few hundred validation images accuracy moves in steps
    of a fraction of a percent and picks a lucky early epoch; the loss is smoother."""

    def __init__(self):
        super().__init__()
        self.weights = None
        self.best_accuracy = -1.0
        self.best_loss = math.inf
        self.best_epoch = 0
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        accuracy = float(logs.get("val_accuracy", -1.0))
        loss = float(logs.get("val_loss", math.inf))
        if math.isfinite(loss) and loss < self.best_loss:
            self.best_accuracy, self.best_loss, self.best_epoch = accuracy, loss, epoch + 1
            self.weights = self.model.get_weights()


def _write_outputs(model, out: Path, record: TrainingRecord, history, predictions, y_test,
                   labels: list[str], force: bool) -> list[Path]:
    from kerasml.report.plots import confusion_matrix, plot_confusion, plot_history

    with atomic_output(out, force=force) as temporary:
        model.save(temporary)
    written = [out, write_record(out, record)]
    stem = model_stem(out)
    history_json = out.with_name(stem + ".history.json")
    write_text_atomic(history_json, json.dumps(history, indent=2) + "\n")
    written.append(history_json)
    written.append(plot_history(history, out.with_name(stem + ".history.png"),
                                title=f"{record.architecture} on {record.dataset}"))
    if predictions is not None:
        matrix = confusion_matrix(y_test, predictions, len(labels))
        accuracy = record.test["accuracy"]
        written.append(plot_confusion(matrix, labels, out.with_name(stem + ".confusion.png"),
                                      title=f"Test accuracy {accuracy:.2%} ({len(predictions)} images)"))
    return written
