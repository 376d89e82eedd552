"""Train an image classifier: data → split → model → fit → evaluate → model file and record.

`train` is the stage's one public function and reads top to bottom like a keras-io example, one
short step per function below it. It writes the model and, beside it, `<name>.training.json`,
`<name>.history.json`, `<name>.history.png` and, when the data has a test split,
`<name>.confusion.png`. Its steps live beside it: the options (options.py), the data
(prepared.py) and the model and its fit (recipe.py), shared with `kerasml tune`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from kerasml.libs import tensorflow

tensorflow()
import keras  # noqa: E402  (after the quiet TensorFlow import above)

from kerasml.data.splits import decoding_errors  # noqa: E402
from kerasml.errors import KerasmlError  # noqa: E402
from kerasml.files import atomic_output, check_output, write_text_atomic  # noqa: E402
from kerasml.record import TrainingRecord, library_versions, model_stem, preset_name, write_record  # noqa: E402
from kerasml.training import distribute  # noqa: E402
from kerasml.training.architectures import Architecture, default_architecture, get_architecture, plan_phases  # noqa: E402
from kerasml.training.backbones import input_preprocessing, resolve_weights, transfer_record  # noqa: E402
from kerasml.training.options import TrainOptions, check_options  # noqa: E402
from kerasml.training.prepared import PreparedData, prepare_data  # noqa: E402
from kerasml.training.recipe import BestWeights, build_model, compile_model, fit_phases  # noqa: E402


@dataclasses.dataclass
class TrainResult:
    model_path: Path
    record: TrainingRecord | None      # None on multi-worker workers other than the chief
    written: list[Path]
    fit_cpu_s: float | None = None     # this process's CPU time during the fit (make bench compares it)

    def lines(self) -> list[str]:
        """What the CLI prints once training is done."""
        record = self.record
        if record is None:   # a multi-worker worker other than the chief, which writes and reports
            return []
        summary = f"validation accuracy {record.validation.get('accuracy', 0.0):.2%}"
        if record.test_accuracy is not None:
            summary += f", test accuracy {record.test_accuracy:.2%} on {record.samples['test']} images"
        state = "interrupted" if record.status == "interrupted" else "trained"
        lines = [f"\n{state} {record.architecture} ({record.parameters:,} parameters) on {record.dataset}: "
                 f"{record.epochs_run} epoch{'' if record.epochs_run == 1 else 's'} in {record.wall_time_s:.1f} s, "
                 f"{summary}", "wrote:"]
        lines += [f"  {path}" for path in self.written]
        lines.append(f"next: kerasml convert {self.model_path} --labels {record.label_preset or 'auto'}")
        return lines


@dataclasses.dataclass
class Plan:
    """The recipe as it will run: the options resolved against the architecture's defaults."""

    arch: Architecture
    epochs: int
    batch_size: int
    learning_rate: float
    weights: str               # a backbone's weights: imagenet, none or a file ("none" without one)


@dataclasses.dataclass
class Fitted:
    """The model with the weights of its best validation epoch, and how it got there."""

    model: object
    best: BestWeights
    phases: list
    interrupted: bool
    fit_time: float
    fit_cpu: float
    steps: int


def train(options: TrainOptions, say: Callable[[str], None] = print,
          data: PreparedData | None = None) -> TrainResult:
    """Train as `options` say; `data` skips loading when the caller has prepared it already
    (from the same options: `kerasml tune` retraining its best settings)."""
    out = _check_before_loading(options)
    started = time.perf_counter()
    # Before any other TensorFlow work: a multi-worker strategy sets up the runtime itself.
    dist = distribute.setup(options.distribute, options.mixed_precision, say)

    # Prepare the data: a seeded split of the training images into training and validation.
    data = data or prepare_data(options, say)
    plan = _plan(options, data)
    if plan.arch.backbone is not None:   # the backbone's own pixel scaling, recorded for Core ML
        data = dataclasses.replace(data, preprocessing=input_preprocessing(plan.arch.backbone, data.preprocessing))
    if dist.replicas > 1 or dist.mode in ("mirrored", "multiworker"):
        say(dist.describe(plan.batch_size))

    # Build the model and train it, keeping the weights of the best validation epoch.
    fitted = _fit(plan, options, data, dist, say)
    if not dist.is_chief:   # multi-worker: the chief alone evaluates and writes the model
        say(f"{dist.worker}: done; the chief writes the model")
        return TrainResult(out, None, [])

    # Evaluate on the test split, when there is one, and write everything.
    test_metrics, predictions = _evaluate_test(fitted.model, data, dist.global_batch(plan.batch_size))
    record = _record(options, plan, data, dist, fitted, test_metrics, started)
    return TrainResult(out, record, _write_outputs(fitted.model, out, record, fitted.best.history, predictions,
                                                   data.y_test, data.dataset.labels, options.force),
                       fitted.fit_cpu)


def _check_before_loading(options: TrainOptions) -> Path:
    """Everything that can be refused before the data loads; the output path."""
    out = Path(options.out)
    if out.suffix not in (".keras", ".h5"):
        raise KerasmlError(f"--out {out} must end in .keras (or .h5 for Keras 2 tools)")
    check_output(out, options.force)
    check_options(options)
    distribute.check_mode(options.distribute, options.mixed_precision)
    if options.arch is not None:  # an unknown name or weights file fails before the data loads
        resolve_weights(get_architecture(options.arch).backbone, options.weights)
    return out


def _plan(options: TrainOptions, data: PreparedData) -> Plan:
    arch = get_architecture(options.arch or default_architecture(data.dataset.name, data.streamed))
    plan = Plan(arch, options.epochs or arch.epochs, options.batch_size or arch.batch_size,
                options.learning_rate or arch.learning_rate, resolve_weights(arch.backbone, options.weights))
    if plan.epochs < 1 or plan.batch_size < 1 or plan.learning_rate <= 0:
        raise KerasmlError("--epochs and --batch-size must be at least 1 and --learning-rate positive")
    return plan


def _fit(plan: Plan, options: TrainOptions, data: PreparedData, dist, say: Callable[[str], None]) -> Fitted:
    arch = plan.arch
    global_batch = dist.global_batch(plan.batch_size)
    keras.utils.set_random_seed(options.seed)

    def build():
        return build_model(arch, data.image_shape, data.dataset.num_classes, options.width, options.dropout,
                           plan.weights)

    # Built inside the strategy's scope, so its variables are mirrored.
    with distribute.precision_policy(dist.mixed_precision), dist.strategy.scope():
        model = build()
    dist.prepare(model)
    phases = plan_phases(arch, plan.epochs, plan.learning_rate, pretrained=plan.weights != "none")
    train_data = dist.shard(data.batches("train", global_batch, options.seed, augment=arch.augment))
    val_data = dist.shard(data.batches("validation", global_batch))
    steps = math.ceil(data.counts["train"] / global_batch)
    fit_started, cpu_started = time.perf_counter(), time.process_time()
    with distribute.precision_policy(dist.mixed_precision):
        best, interrupted = fit_phases(model, arch, phases, dist, train_data, val_data, steps, options, data, say)
    fit_time, fit_cpu = time.perf_counter() - fit_started, time.process_time() - cpu_started
    history = best.history
    if any(not math.isfinite(loss) for loss in history.get("loss", [])):
        raise KerasmlError(f"training diverged: the loss became NaN in epoch {len(history['loss'])}; "
                           "lower --learning-rate or check the data; no model was written")
    if best.weights is None:
        raise KerasmlError("training stopped before the first epoch ended; no model was written")
    model.set_weights(best.weights)
    if dist.mixed_precision or dist.replicas > 1:   # evaluate and save on one device, in float32
        model = distribute.local_copy(model, build)
        compile_model(model, arch, plan.learning_rate, plan.epochs, steps)   # the same loss and metrics
    return Fitted(model, best, phases, interrupted, fit_time, fit_cpu, steps)


def _evaluate_test(model, data: PreparedData, batch_size: int) -> tuple[dict[str, float], np.ndarray | None]:
    """Test metrics and predicted classes, or ({}, None) without a test split."""
    if data.y_test is None:
        return {}, None
    test_data = data.batches("test", batch_size)
    with decoding_errors(data.dataset):
        loss, accuracy = model.evaluate(test_data, verbose=0)
        probabilities = model.predict(test_data, verbose=0)
    return ({"accuracy": float(accuracy), "loss": float(loss), "samples": len(data.y_test)},
            probabilities.argmax(axis=1))


def _record(options: TrainOptions, plan: Plan, data: PreparedData, dist, fitted: Fitted,
            test_metrics: dict[str, float], started: float) -> TrainingRecord:
    dataset, best = data.dataset, fitted.best
    return TrainingRecord(
        preprocessing=data.preprocessing, labels=list(dataset.labels),
        label_preset=preset_name(list(dataset.labels)),
        dataset=dataset.name, dataset_source=dataset.source,
        samples=dict(data.counts),
        architecture=plan.arch.name, parameters=int(fitted.model.count_params()),
        epochs_requested=plan.epochs, epochs_run=len(best.history.get("loss", [])), batch_size=plan.batch_size,
        seed=options.seed,
        validation={"accuracy": float(best.best_accuracy), "loss": float(best.best_loss),
                    "best_epoch": best.best_epoch},
        test=test_metrics, versions=library_versions(),
        wall_time_s=round(time.perf_counter() - started, 2), fit_time_s=round(fitted.fit_time, 2),
        status="interrupted" if fitted.interrupted else "complete",
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extra=_record_extra(options, plan, data, dist, fitted.phases),
    )


def _record_extra(options: TrainOptions, plan: Plan, data: PreparedData, dist, phases) -> dict:
    """The recipe's settings and the data's provenance, for the record's `extra`."""
    arch = plan.arch
    extra = {"learning_rate": plan.learning_rate, "schedule": arch.schedule,
             "augment": dataclasses.asdict(arch.augment) if arch.augment else None,
             "label_smoothing": arch.label_smoothing}
    extra.update(data.extra)
    if options.width != 1.0 or options.dropout is not None:
        extra.update(width=options.width, dropout=options.dropout)
    if options.test_data is not None:  # so `kerasml report` finds the same test set again
        extra["test_data"] = str(Path(options.test_data).resolve())
    extra.update(options.extra or {})
    extra["distribute"] = dist.record(plan.batch_size)
    if arch.backbone is not None:
        extra.pop("normalize", None)   # the backbone decides the scaling
        extra["transfer"] = transfer_record(arch.backbone, plan.weights, phases)
    return extra


def _write_outputs(model, out: Path, record: TrainingRecord, history, predictions, y_test,
                   labels: list[str], force: bool) -> list[Path]:
    from kerasml.plots import confusion_matrix, plot_confusion, plot_history

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
