"""Hyperparameter search: which width, dropout, learning rate and batch size suit this data?

`tune` is the stage's one public function. It prepares the data exactly as `kerasml train` does
(same split, same seed), lets keras-tuner (random search or Hyperband) try a budget of trials,
each trained for a few epochs and scored by its best validation accuracy, writes every trial to
`<name>.tuning.md` and `<name>.tuning.json`, and then trains the best settings once more with
`kerasml.training.train.train`, so the best model arrives with its training record, history and plots
and `kerasml convert` works on it as on any trained model. keras-tuner's working files
(checkpoints of every trial) live in a temporary folder beside the output and are deleted at
the end, whatever happens.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from kerasml.libs import tensorflow

tensorflow()
import keras  # noqa: E402  (after the quiet TensorFlow import above)
import keras_tuner as kt  # noqa: E402

from kerasml.training.architectures import default_architecture, get_architecture  # noqa: E402
from kerasml.training.backbones import input_preprocessing  # noqa: E402
from kerasml.errors import KerasmlError  # noqa: E402
from kerasml.files import check_output, write_text_atomic  # noqa: E402
from kerasml.record import TrainingRecord, model_stem  # noqa: E402
from kerasml.data.splits import decoding_errors  # noqa: E402
from kerasml.training.options import TrainOptions, check_options  # noqa: E402
from kerasml.training.prepared import prepare_data  # noqa: E402
from kerasml.training.recipe import build_model, compile_model  # noqa: E402
from kerasml.training.train import train  # noqa: E402

ALGORITHMS = ("random", "hyperband")
WIDTHS = [0.5, 1.0, 1.5, 2.0]            # multiplies every hidden layer's filters and units
BATCH_SIZES = [32, 64, 128]


@dataclasses.dataclass
class TuneOptions:
    """The search; `train` says which data and how the best settings are retrained (its `epochs`
    are the retraining's, None: the architecture's), as `kerasml train` takes them."""

    train: TrainOptions = dataclasses.field(default_factory=lambda: TrainOptions(out=Path("models/tuned.keras")))
    algorithm: str = "random"          # "random" or "hyperband"
    trials: int = 10                   # the budget: at most this many settings are tried
    epochs: int = 3                    # per trial (Hyperband: the most a trial gets)


@dataclasses.dataclass
class TuneResult:
    model_path: Path
    record: TrainingRecord
    trials: list[dict]                 # every trial: hyperparameters, val_accuracy, val_loss, epochs, seconds
    best: dict                         # the winning hyperparameters
    written: list[Path]

    def lines(self) -> list[str]:
        best = self.best
        lines = [f"tried {len(self.trials)} settings; best: width {best['width']}, dropout {best['dropout']}, "
                 f"learning rate {best['learning_rate']:.3g}, batch size {best['batch_size']} "
                 f"(validation accuracy {max(t['val_accuracy'] for t in self.trials):.2%} in the search)"]
        record = self.record
        summary = f"validation accuracy {record.validation.get('accuracy', 0.0):.2%}"
        if record.test_accuracy is not None:
            summary += f", test accuracy {record.test_accuracy:.2%}"
        lines.append(f"retrained for {record.epochs_run} epochs: {summary}")
        lines.append("wrote:")
        lines += [f"  {path}" for path in self.written]
        lines.append(f"next: kerasml convert {self.model_path}")
        return lines


def tune(options: TuneOptions, say: Callable[[str], None] = print) -> TuneResult:
    train_options = options.train
    out = Path(train_options.out)
    tables = _table_paths(out)
    if out.suffix != ".keras":
        raise KerasmlError(f"--out {out} must end in .keras")
    for path in (out, *tables):
        check_output(path, train_options.force)
    if options.algorithm not in ALGORITHMS:
        raise KerasmlError(f"unknown --algorithm {options.algorithm!r}; use random or hyperband")
    if options.trials < 1 or options.epochs < 1 or (train_options.epochs is not None and train_options.epochs < 1):
        raise KerasmlError("--trials, --epochs and --final-epochs must be at least 1")
    if options.algorithm == "hyperband" and options.epochs < 3:
        raise KerasmlError("Hyperband needs --epochs 3 or more (it stops weak trials early and trains "
                           "the best up to --epochs); use --algorithm random for shorter trials")

    if train_options.arch is not None:
        get_architecture(train_options.arch)  # an unknown name fails before the data loads
    check_options(train_options)
    data = prepare_data(train_options, say)
    arch = get_architecture(train_options.arch or default_architecture(data.dataset.name, data.streamed))
    options = dataclasses.replace(options, train=dataclasses.replace(train_options, arch=arch.name))
    if arch.backbone is not None:
        # The trials see pixels scaled as the backbone wants them, as the final training does
        # (train sets the same scaling again; it is a replacement, not a second scaling).
        data = dataclasses.replace(data, preprocessing=input_preprocessing(arch.backbone, data.preprocessing))

    workdir = Path(tempfile.mkdtemp(prefix=f".{out.stem}.tuner.", dir=out.parent))
    try:
        trials = _search(options, arch, data, workdir, say)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best = max(trials, key=lambda t: (t["val_accuracy"], -t["val_loss"]))["hyperparameters"]
    written = _write_tables(tables, options, trials, best)

    say(f"retraining the best settings for {options.train.epochs or arch.epochs} epochs ...")
    summary = {"algorithm": options.algorithm, "trials": len(trials), "epochs_per_trial": options.epochs,
               "search_best_val_accuracy": max(t["val_accuracy"] for t in trials),
               "results": tables[0].name}
    result = train(dataclasses.replace(
        options.train, batch_size=best["batch_size"], learning_rate=best["learning_rate"], width=best["width"],
        dropout=best["dropout"], extra={"tuning": summary}), say=say, data=data)
    return TuneResult(result.model_path, result.record, trials, best, result.written + written)


def _search(options: TuneOptions, arch, data, workdir: Path, say: Callable[[str], None]) -> list[dict]:
    hypermodel = _HyperModel(arch, data, options, say)
    common = dict(objective="val_accuracy", seed=options.train.seed, directory=str(workdir),
                  project_name="search", overwrite=True, max_consecutive_failed_trials=1)
    if options.algorithm == "random":
        tuner = kt.RandomSearch(hypermodel, max_trials=options.trials, **common)
    else:
        tuner = kt.Hyperband(hypermodel, max_epochs=options.epochs, factor=3, **common)
        tuner.oracle.max_trials = options.trials   # Hyperband has no budget argument; its oracle does
    say(f"searching {options.trials} {options.algorithm} trials of up to {options.epochs} epochs "
        f"on {data.counts['train']} training and {data.counts['validation']} validation images ...")
    try:
        tuner.search(epochs=options.epochs, verbose=0)
    except _Stop as stop:
        raise stop.error from None
    except RuntimeError as exc:   # keras-tuner: "Number of consecutive failures ..." and a traceback
        cause = [line.strip() for line in str(exc).splitlines() if line.strip()][-1]
        raise KerasmlError(f"a tuning trial failed: {cause[:300]}") from None
    if not hypermodel.rows:
        raise KerasmlError("no tuning trial finished; check the data and options")
    return hypermodel.rows


def _hyperparameter_space(hp, arch) -> dict:
    """The search space, centred on the architecture's own defaults."""
    return {
        "width": hp.Choice("width", WIDTHS, default=1.0),
        "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.3),
        "learning_rate": hp.Float("learning_rate", arch.learning_rate / 10, arch.learning_rate * 3,
                                  sampling="log", default=arch.learning_rate),
        "batch_size": hp.Choice("batch_size", sorted(set(BATCH_SIZES) | {arch.batch_size}),
                                default=arch.batch_size),
    }


class _HyperModel(kt.HyperModel):
    """Builds a trial's model and fits it with the trial's batch size (keras-tuner leaves batch
    size to `fit`, so it is chosen here rather than in `build`)."""

    def __init__(self, arch, data, options: TuneOptions, say: Callable[[str], None]):
        super().__init__(name="kerasml")
        self.arch, self.data, self.options, self.say = arch, data, options, say
        self.rows: list[dict] = []

    def build(self, hp):
        values = _hyperparameter_space(hp, self.arch)
        keras.utils.set_random_seed(self.options.train.seed)
        model = build_model(self.arch, self.data.image_shape, self.data.dataset.num_classes,
                            values["width"], values["dropout"])
        steps = math.ceil(self.data.counts["train"] / values["batch_size"])
        compile_model(model, self.arch, values["learning_rate"], self.options.epochs, steps)
        return model

    def fit(self, hp, model, *args, epochs: int = 1, callbacks=None, **kwargs):
        batch_size = hp.get("batch_size")
        seed = self.options.train.seed
        train = self.data.batches("train", batch_size, seed, augment=self.arch.augment)
        val = self.data.batches("validation", batch_size)
        started = time.perf_counter()
        try:
            with decoding_errors(self.data.dataset):
                history = model.fit(train, validation_data=val, epochs=epochs,
                                    initial_epoch=kwargs.get("initial_epoch", 0),
                                    callbacks=[keras.callbacks.TerminateOnNaN(), *(callbacks or [])],
                                    verbose=0, shuffle=False)
        except KerasmlError as exc:
            raise _Stop(exc) from None
        accuracy = [a for a in history.history.get("val_accuracy", []) if math.isfinite(a)] or [0.0]
        best = max(range(len(accuracy)), key=lambda i: accuracy[i])
        losses = history.history.get("val_loss", [math.inf] * len(accuracy))
        row = {"trial": len(self.rows) + 1,
               "hyperparameters": {k: _plain(v) for k, v in hp.values.items() if not k.startswith("tuner/")},
               "val_accuracy": float(accuracy[best]), "val_loss": float(losses[best]),
               "epochs": len(history.history.get("loss", [])), "seconds": round(time.perf_counter() - started, 2)}
        if "tuner/trial_id" in hp.values:
            row["continues"] = hp.values["tuner/trial_id"]   # Hyperband: resumed from an earlier trial
        self.rows.append(row)
        values = row["hyperparameters"]
        self.say(f"  trial {row['trial']}: width {values['width']}, dropout {values['dropout']:.1f}, "
                 f"learning rate {values['learning_rate']:.2e}, batch {values['batch_size']}: "
                 f"validation accuracy {row['val_accuracy']:.2%} ({row['seconds']:.0f} s)")
        return history


class _Stop(kt.errors.FatalError):
    """A `KerasmlError` inside a trial: keras-tuner stops the search and we re-raise the error."""

    def __init__(self, error: KerasmlError):
        super().__init__(str(error))
        self.error = error


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _table_paths(out: Path) -> tuple[Path, Path]:
    stem = model_stem(out)
    return out.with_name(stem + ".tuning.md"), out.with_name(stem + ".tuning.json")


def _write_tables(paths: tuple[Path, Path], options: TuneOptions, trials: list[dict], best: dict) -> list[Path]:
    markdown, json_path = paths
    run = options.train
    ranked = sorted(trials, key=lambda t: (-t["val_accuracy"], t["val_loss"]))
    lines = [f"# Hyperparameter search: {run.arch} on {run.data or run.dataset or 'mnist'}", "",
             f"{options.algorithm} search, {len(trials)} trials of up to {options.epochs} epochs, seed {run.seed}; "
             "ranked by best validation accuracy.", "",
             "| rank | trial | width | dropout | learning rate | batch size | epochs | val accuracy | val loss | seconds |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for rank, trial in enumerate(ranked, start=1):
        hp = trial["hyperparameters"]
        lines.append(f"| {rank} | {trial['trial']} | {hp['width']} | {hp['dropout']:.1f} | {hp['learning_rate']:.2e} | "
                     f"{hp['batch_size']} | {trial['epochs']} | {trial['val_accuracy']:.2%} | "
                     f"{trial['val_loss']:.4f} | {trial['seconds']:.1f} |")
    lines += ["", "Train these settings yourself:", "",
              f"    kerasml train --arch {run.arch} --width {best['width']} --dropout {best['dropout']:.1f} "
              f"--learning-rate {best['learning_rate']:.3g} --batch-size {best['batch_size']}", ""]
    write_text_atomic(markdown, "\n".join(lines), force=run.force)
    document = {"algorithm": options.algorithm, "architecture": run.arch, "seed": run.seed,
                "epochs_per_trial": options.epochs, "best": best, "trials": trials}
    write_text_atomic(json_path, json.dumps(document, indent=2) + "\n", force=run.force)
    return [markdown, json_path]
