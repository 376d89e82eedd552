"""The recipe's model and fit: the architecture's network (made wider or narrower, its dropout set),
its optimiser and loss, and `model.fit` phase by phase keeping the best validation epoch."""

from __future__ import annotations

import math
import sys
from typing import Callable

from kerasml.libs import tensorflow

tensorflow()
import keras  # noqa: E402  (after the quiet TensorFlow import above)

from kerasml.data.splits import decoding_errors  # noqa: E402
from kerasml.training.architectures import Phase  # noqa: E402
from kerasml.training.backbones import build_transfer_model, unfreeze_top  # noqa: E402
from kerasml.training.options import TrainOptions  # noqa: E402
from kerasml.training.prepared import PreparedData  # noqa: E402


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


def fit_phases(model, arch, phases: list[Phase], dist, train_data, val_data, steps: int,
                options: TrainOptions, data: PreparedData, say: Callable[[str], None]):
    """model.fit once per phase (one for most recipes; head, then fine-tuning, for backbones),
    compiled inside the strategy's scope. Returns the best-epoch keeper and whether Ctrl-C stopped it."""
    best = BestWeights()
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


class BestWeights(keras.callbacks.Callback):
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
