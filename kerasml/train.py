"""Train an image classifier: data → split → model → fit → evaluate → model file and record.

`train` is the stage's one public function and reads top to bottom like a keras-io example.
It writes the model and, beside it, `<name>.training.json`, `<name>.history.json`,
`<name>.history.png` and, when the data has a test split, `<name>.confusion.png`.
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

from kerasml.architectures import get_architecture
from kerasml.data import Dataset, load_dataset
from kerasml.data.labels import preset_name
from kerasml.errors import KerasmlError
from kerasml.files import atomic_output, check_output, write_text_atomic
from kerasml.record import (Preprocessing, TrainingRecord, library_versions, record_path,
                            write_record)


@dataclasses.dataclass
class TrainOptions:
    dataset: str | None = None
    data: Path | None = None
    test_data: Path | None = None      # a separate test set (e.g. MNIST's t10k files); never trained on
    arch: str = "kerasml"
    epochs: int | None = None          # None: the architecture's default
    batch_size: int | None = None
    learning_rate: float | None = None
    val_split: float = 0.1
    seed: int = 42
    patience: int = 5
    out: Path = Path("models/digits.keras")
    force: bool = False
    quiet: bool = False


@dataclasses.dataclass
class TrainResult:
    model_path: Path
    record: TrainingRecord
    written: list[Path]


def train(options: TrainOptions, say: Callable[[str], None] = print) -> TrainResult:
    out = Path(options.out)
    if out.suffix not in (".keras", ".h5"):
        raise KerasmlError(f"--out {out} must end in .keras (or .h5 for Keras 2 tools)")
    check_output(out, options.force)
    if not 0.0 < options.val_split < 0.5:
        raise KerasmlError(f"--val-split {options.val_split} must be between 0 and 0.5")
    arch = get_architecture(options.arch)
    epochs = options.epochs or arch.epochs
    batch_size = options.batch_size or arch.batch_size
    learning_rate = options.learning_rate or arch.learning_rate
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise KerasmlError("--epochs and --batch-size must be at least 1 and --learning-rate positive")
    started = time.perf_counter()

    # Prepare the data: a seeded split of the training images into training and validation.
    dataset = load_dataset(options.dataset, options.data, say=say)
    if dataset.x_train is None:
        raise KerasmlError(f"{dataset.source} has test images only; training needs train-* files or x_train")
    if options.test_data is not None:
        dataset = _with_test_split(dataset, load_dataset(path=options.test_data, say=say))
    x_train, y_train, x_val, y_val = _split(dataset, options.val_split, options.seed)
    preprocessing = Preprocessing(height=x_train.shape[1], width=x_train.shape[2],
                                  channels=x_train.shape[3], scale=1 / 255.0,
                                  bias=[0.0] * x_train.shape[3])

    keras.utils.set_random_seed(options.seed)

    # Build the model.
    model = arch.build(dataset.image_shape, dataset.num_classes)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    if arch.schedule == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=epochs * steps_per_epoch, warmup_target=learning_rate,
            warmup_steps=steps_per_epoch)  # one epoch of warm-up, then cosine down to zero
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=arch.label_smoothing),
                  metrics=["accuracy"])

    # Train, keeping the weights of the best validation epoch.
    train_data = _pipeline(x_train, y_train, dataset.num_classes, preprocessing, batch_size,
                           shuffle_seed=options.seed, augment=arch.augment)
    val_data = _pipeline(x_val, y_val, dataset.num_classes, preprocessing, batch_size=1000)
    best = _BestWeights()
    callbacks = [best, keras.callbacks.TerminateOnNaN(),
                 keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=options.patience)]
    interrupted = False
    fit_started = time.perf_counter()
    try:
        # One line per epoch when the output is a log file rather than a terminal.
        verbose = 0 if options.quiet else (1 if sys.stdout.isatty() else 2)
        model.fit(train_data, validation_data=val_data, epochs=epochs, callbacks=callbacks,
                  verbose=verbose, shuffle=False)  # the pipeline shuffles (seeded) by itself
    except KeyboardInterrupt:
        # First Ctrl-C: keep what was learned so far. A second one during saving aborts
        # (Python raises KeyboardInterrupt again and the atomic writers clean up).
        interrupted = True
        say("\ninterrupted: saving the best model so far (press Ctrl-C again to abort)")
    fit_time = time.perf_counter() - fit_started
    history = best.history
    if any(not math.isfinite(loss) for loss in history.get("loss", [])):
        raise KerasmlError(f"training diverged: the loss became NaN in epoch {len(history['loss'])}; "
                           "lower --learning-rate or check the data; no model was written")
    if best.weights is None:
        raise KerasmlError("training stopped before the first epoch ended; no model was written")
    model.set_weights(best.weights)

    # Evaluate on the test split, when there is one.
    test_metrics: dict[str, float] = {}
    predictions = None
    if dataset.x_test is not None:
        test_data = _pipeline(dataset.x_test, dataset.y_test, dataset.num_classes, preprocessing, 1000)
        loss, accuracy = model.evaluate(test_data, verbose=0)
        probabilities = model.predict(test_data, verbose=0)
        predictions = probabilities.argmax(axis=1)
        test_metrics = {"accuracy": float(accuracy), "loss": float(loss), "samples": len(dataset.x_test)}

    record = TrainingRecord(
        preprocessing=preprocessing, labels=list(dataset.labels),
        label_preset=preset_name(list(dataset.labels)),
        dataset=dataset.name, dataset_source=dataset.source,
        samples={"train": len(x_train), "validation": len(x_val),
                 "test": 0 if dataset.x_test is None else len(dataset.x_test)},
        architecture=arch.name, parameters=int(model.count_params()),
        epochs_requested=epochs, epochs_run=len(history.get("loss", [])), batch_size=batch_size,
        seed=options.seed,
        validation={"accuracy": float(best.best_accuracy), "loss": float(best.best_loss),
                    "best_epoch": best.best_epoch},
        test=test_metrics, versions=library_versions(),
        wall_time_s=round(time.perf_counter() - started, 2), fit_time_s=round(fit_time, 2),
        status="interrupted" if interrupted else "complete",
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extra={"learning_rate": learning_rate, "schedule": arch.schedule, "augment": arch.augment,
               "label_smoothing": arch.label_smoothing},
    )
    return TrainResult(out, record, _write_outputs(model, out, record, history, predictions, dataset,
                                                   options.force))


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


def _split(dataset: Dataset, val_split: float, seed: int):
    x, y = dataset.x_train, dataset.y_train
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * val_split)))
    if len(x) - n_val < 1:
        raise KerasmlError(f"{dataset.source} has only {len(x)} training images; need at least 2")
    val, tr = order[:n_val], order[n_val:]
    return x[tr], y[tr], x[val], y[val]


def _pipeline(x, y, num_classes: int, preprocessing: Preprocessing, batch_size: int,
              shuffle_seed: int | None = None, augment: bool = False):
    """tf.data: scale pixels as the record says, one-hot labels, augment in training only."""
    data = tf.data.Dataset.from_tensor_slices((x, y))
    scale = np.float32(preprocessing.scale)
    bias = np.asarray(preprocessing.bias, dtype=np.float32)
    data = data.map(lambda image, label: (tf.cast(image, tf.float32) * scale + bias,
                                          tf.one_hot(label, num_classes)),
                    num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle_seed is not None:
        data = data.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size)
    if augment:
        augmentation = _augmentation(shuffle_seed)
        data = data.map(lambda images, labels: (augmentation(images, training=True), labels),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def _augmentation(seed: int | None):
    """Small shifts, rotations and zooms, as handwriting varies; applied to training batches only,
    so none of it ends up in the converted model."""
    from keras import layers

    return keras.Sequential([
        layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
        layers.RandomRotation(0.04, fill_mode="constant", seed=seed),  # about ±15 degrees
        layers.RandomZoom(0.1, fill_mode="constant", seed=seed),
    ], name="augmentation")


class _BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the best validation epoch in memory and the history of all epochs,
    so an interrupted or early-stopped run still yields its best model."""

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
        if math.isfinite(loss) and (accuracy > self.best_accuracy or
                                    (accuracy == self.best_accuracy and loss < self.best_loss)):
            self.best_accuracy, self.best_loss, self.best_epoch = accuracy, loss, epoch + 1
            self.weights = self.model.get_weights()


def _write_outputs(model, out: Path, record: TrainingRecord, history, predictions, dataset: Dataset,
                   force: bool) -> list[Path]:
    from kerasml.plots import confusion_matrix, plot_confusion, plot_history

    with atomic_output(out, force=force) as temporary:
        model.save(temporary)
    written = [out, write_record(out, record)]
    stem = record_path(out).name[: -len(".training.json")]
    history_json = out.with_name(stem + ".history.json")
    write_text_atomic(history_json, json.dumps(history, indent=2) + "\n")
    written.append(history_json)
    written.append(plot_history(history, out.with_name(stem + ".history.png"),
                                title=f"{record.architecture} on {record.dataset}"))
    if predictions is not None:
        matrix = confusion_matrix(dataset.y_test, predictions, dataset.num_classes)
        accuracy = record.test["accuracy"]
        written.append(plot_confusion(matrix, dataset.labels, out.with_name(stem + ".confusion.png"),
                                      title=f"Test accuracy {accuracy:.2%} ({len(predictions)} images)"))
    return written
