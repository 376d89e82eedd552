"""`--precision auto` and the labelled images compression is measured and calibrated on: every
candidate scheme applied to one conversion, scored by kerasml's runtime, the smallest within
`--max-drop` points kept; w8a8 calibrates its activation ranges on the same images."""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from kerasml.conversion.compress import apply
from kerasml.model.precision import BY_NAME, CALIBRATION_IMAGES, SCHEMES, TARGET_ORDER, label, required_target


@dataclasses.dataclass
class Trial:
    """One row of `--precision auto`'s table."""

    precision: str
    size_bytes: int
    accuracy: float
    drop_points: float
    kept: bool = False

    def line(self, reference_size: int) -> str:
        mark = "  <- kept" if self.kept else ""
        return (f"  {self.precision:<34} {self.size_bytes / 1024:9.1f} KiB {self.size_bytes / reference_size:7.1%}"
                f" {self.accuracy:8.2%} {0.0 - self.drop_points + 0.0:+7.2f}{mark}")


def auto_candidates(fmt: str, target: str | None) -> list[str]:
    """Schemes `auto` tries, smallest first: those the format stores and the target runs. w8a8 is
    left out (it saves no bytes over int8), and so is fp16 for ML Programs (a separate conversion)."""
    names = [s.name for s in sorted(SCHEMES, key=lambda s: s.bits) if s.supports(fmt) and not s.activations
             and not (fmt == "mlpackage" and s.computes_in_fp16)]
    if fmt == "mlpackage" and target is not None:
        names = [n for n in names if TARGET_ORDER.index(BY_NAME[n].min_target) <= TARGET_ORDER.index(target)]
    return names


def choose(reference, fmt: str, images: np.ndarray, labels: np.ndarray, max_drop: float,
           sparsity: float | None = None, target: str | None = None, say: Callable[[str], None] = print):
    """(precision, model, trials): the smallest scheme whose accuracy on `images` is within
    `max_drop` points of the uncompressed `reference`, measured with kerasml's runtime."""
    import tempfile
    from pathlib import Path

    from kerasml.files import path_size
    from kerasml.runtime import load_model

    def measure(model) -> tuple[int, float]:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"candidate.{fmt}"
            model.save(str(path))
            predictions = load_model(path).predict_probabilities(images).argmax(axis=1)
            return path_size(path), float((predictions == labels).mean())

    reference_size, reference_accuracy = measure(reference)
    trials = [Trial("fp32 (reference)", reference_size, reference_accuracy, 0.0)]
    smaller_failed: list[str] = []
    for name in auto_candidates(fmt, target):
        if name == "fp32" and not sparsity:
            trials[0].kept = True
            return "fp32", reference, trials
        if sparsity and TARGET_ORDER.index(required_target(name, sparsity)) > TARGET_ORDER.index(target or "iOS18"):
            continue
        say(f"trying {label(name, sparsity)} ...")
        model = apply(reference, fmt, name, sparsity=sparsity)
        size, accuracy = measure(model)
        trial = Trial(label(name, sparsity), size, accuracy, round(100 * (reference_accuracy - accuracy), 4))
        trials.append(trial)
        if trial.drop_points > max_drop:
            smaller_failed.append(name)
            continue
        if smaller_failed and fmt == "mlpackage" and not sparsity:
            # each smaller scheme on the layers where it costs least, this one elsewhere: the
            # smallest such mix within the budget, if it is smaller than this scheme alone
            best = None
            for small in smaller_failed:
                mix = _mixed(reference, small, name, images, labels, reference_accuracy, max_drop, say)
                if mix is not None:
                    trials.append(mix[1])
                    if mix[1].size_bytes < (best[2].size_bytes if best else size):
                        best = (mixed_label(small, name), *mix)
            if best is not None:
                best[2].kept = True
                return best[0], best[1], trials
        trial.kept = True
        return name, model, trials
    trials[0].kept = True
    return "fp32", reference, trials


def _mixed(reference, small: str, safe: str, images, labels, reference_accuracy: float, max_drop: float, say):
    """(model, trial) of the smallest per-layer mix of `small` and `safe` within the budget, or None:
    each weight tensor compressed alone with `small` first (what it costs), then as many of them
    kept `small` as the budget allows."""
    from kerasml.conversion import sensitivity
    from kerasml.model import layer_record

    record = layer_record.read(dict(reference.user_defined_metadata)) or {}
    say(f"trying {small} where it costs least, {safe} elsewhere: each layer with {small} alone ...")
    costs, _, _ = sensitivity.sensitivity(reference, record, small, images, labels, say)
    found = sensitivity.mixed(reference, costs, small, safe, images, labels, reference_accuracy, max_drop, say)
    if found is None:
        return None
    model, schemes, size, accuracy = found
    name = mixed_label(small, safe)
    kept_small = sum(1 for s in schemes.values() if s == small)
    return model, Trial(f"{name} ({kept_small}/{len(schemes)} {small})", size, accuracy,
                        round(100 * (reference_accuracy - accuracy), 4))


def mixed_label(small: str, safe: str) -> str:
    """The precision a per-layer mix is recorded as: both schemes, the smaller first."""
    return f"{small}+{safe}"


def trial_table(trials: list[Trial], samples: int, source: str, max_drop: float) -> list[str]:
    reference = trials[0].size_bytes
    lines = [f"--precision auto: the smallest scheme losing at most {max_drop:g} points on {samples:,} {source}",
             f"  {'scheme':<34} {'size':>13} {'of fp32':>7} {'accuracy':>8} {'points':>7}"]
    return lines + [trial.line(reference) for trial in trials]


def calibration_images(images: np.ndarray) -> np.ndarray:
    """A seeded sample of CALIBRATION_IMAGES images for w8a8's activation ranges."""
    if len(images) <= CALIBRATION_IMAGES:
        return images
    return images[np.sort(np.random.default_rng(0).permutation(len(images))[:CALIBRATION_IMAGES])]


