"""Every compression scheme x format for one digit model: size, share of the fp32 size, accuracy on
the real 10,000 MNIST test digits (kerasml's runtime for Core ML, Apple's for Core AI), the points it
costs, and how far its probabilities move from Keras'; writes bench/compression.md (and .json). Each
row is a real `kerasml convert`. `auto` rows let `--precision auto --max-drop AUTO_BUDGET` choose on
the first half of the test digits (a per-layer mix where one scheme for all is not the smallest within
the budget) and report all 10,000, beside the uniform schemes. A second table does the same for a
MobileNetV2 (alpha 0.35, trained here from scratch on the bundled digits as 32x32 RGB): the uniform
schemes `auto` chooses among and `auto`, in all three formats. `make bench` (bench/run.py) calls
`measure` and `table`.

    PYTHONPATH=. .venv/bin/python bench/compression.py [--model models/digits.keras] [--data DIR]

Without --model it uses models/digits.keras, or trains the default recipe on the bundled sample.
w8a8 calibrates its activations on the bundled training sample, never on the test digits.
Sizes follow `kerasml.files.path_size`: every file of an .mlpackage counted, as Xcode copies it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS = [("mlmodel", p, None) for p in ("fp32", "fp16", "int8", "palette8", "palette6", "palette4", "palette2")]
ROWS += [("mlpackage", p, None) for p in ("fp32", "fp16", "int8", "palette8", "palette6", "palette4", "palette2", "int4", "w8a8")]
ROWS += [("mlpackage", "fp32", 0.5), ("mlpackage", "palette4", 0.5), ("mlpackage", "fp32", 0.25)]
ROWS += [("aimodel", p, None) for p in ("fp32", "fp16", "int8", "palette8", "palette6", "palette4", "palette2", "int4", "w8a8")]
ROWS += [("aimodel", "palette4", 0.5), ("mlpackage", "auto", None), ("aimodel", "auto", None)]
AUTO_BUDGET = 0.1      # accuracy points --precision auto may lose
QUICK_ROWS = [(fmt, p, None) for fmt in ("mlmodel", "mlpackage", "aimodel") for p in ("fp32", "palette4")]
# MobileNetV2 (alpha 0.35, 32x32 RGB, trained here from scratch on the bundled digits, padded and
# repeated to RGB): the uniform schemes `auto` chooses among, and `auto`, in each format.
MOBILENET_ROWS = [(fmt, p, None) for fmt in ("mlmodel", "mlpackage", "aimodel")
                  for p in ("fp32", "int8", "palette8", "palette6", "palette4", "palette2", "auto")]
MOBILENET_EPOCHS = 12
TARGETS = {"palette4": "<= 14% of fp32, <= 0.5 points lost", "palette6": "<= 0.1 points lost",
           "w8a8": "<= 0.3 points lost", "int4": "<= 16% of fp32"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "digits.keras")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist-test")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "compression.md")
    parser.add_argument("--quick", action="store_true", help="only fp32 and palette4 in each format")
    parser.add_argument("--models", default="digits,mobilenetv2", help="digits and/or mobilenetv2")
    parser.add_argument("--table-only", action="store_true",
                        help="write the markdown from the JSON beside --out, measure nothing")
    args = parser.parse_args()
    if args.table_only:
        results = json.loads(args.out.with_suffix(".json").read_text())
    else:
        results = run(args)
        if results is None:
            sys.exit(f"skipped: no MNIST test set at {args.data}")
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = tables(results, args.model.name)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}")


def run(args) -> dict | None:
    """{"digits": rows, "mobilenetv2": rows} for the models args names, or None without the test set."""
    test_set = mnist_test_set(args.data)
    if test_set is None:
        return None
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        if "digits" in args.models:
            model = args.model if args.model.exists() else train_default_digits(Path(folder))
            results["digits"] = measure(model, *test_set, Path(folder), QUICK_ROWS if args.quick else ROWS)
        if "mobilenetv2" in args.models:
            rgb = as_rgb32(test_set[0]), test_set[1]
            model = train_mobilenet(Path(folder))
            results["mobilenetv2"] = measure(model, *rgb, Path(folder), MOBILENET_ROWS)
    return results


def tables(results: dict, digits_name: str) -> list[str]:
    lines = table(results["digits"], digits_name) if "digits" in results else []
    if "mobilenetv2" in results:
        lines += ["", "### MobileNetV2", ""] + table(results["mobilenetv2"], "mobilenetv2.keras",
                                                     what="the 10,000 MNIST test digits as 32x32 RGB")
    return lines


def mnist_test_set(folder: Path):
    """(uint8 images (N, 28, 28, 1), int64 labels) of the real MNIST test set, or None without it."""
    from kerasml.data.idx import read_idx

    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        return None
    return (read_idx(folder / "t10k-images-idx3-ubyte.gz")[..., None],
            read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int64))


def measure(model: Path, images: np.ndarray, labels: np.ndarray, folder: Path, rows=ROWS,
            say: Callable[[str], None] = print) -> list[dict]:
    """One row per (format, precision, sparsity) of `rows`, with ratios and points against the
    fp32 row of the same format (which `rows` must hold)."""
    keras_probabilities = _keras_probabilities(model, images)
    measured = [_row(model, fmt, precision, sparsity, images, labels, keras_probabilities, folder, say)
                for fmt, precision, sparsity in rows]
    _fill_ratios(measured)
    return measured


def _keras_probabilities(model: Path, images: np.ndarray) -> np.ndarray:
    """Keras' own probabilities, to say how far each Core ML model moves from them."""
    from kerasml.model.keras_models import load_keras_model
    from kerasml.record import Preprocessing, read_record

    record = read_record(model)
    preprocessing = record.preprocessing if record else Preprocessing()   # the default: 0-255 to 0-1
    return load_keras_model(model).predict(preprocessing.scale_pixels(images))


def as_rgb32(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28, 1) digits → (N, 32, 32, 3): padded by 2 on each side, the channel repeated."""
    return np.repeat(np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0))), 3, axis=-1)


def train_mobilenet(folder: Path) -> Path:
    """MobileNetV2 (alpha 0.35, random weights) trained on the bundled 5,000 digits as 32x32 RGB,
    pixels scaled by 1/255 (convert's default without a training record)."""
    import keras

    from kerasml.data.sources import load_mnist_sample

    print(f"training MobileNetV2 (alpha 0.35) on the bundled sample, {MOBILENET_EPOCHS} epochs ...", flush=True)
    keras.utils.set_random_seed(0)
    sample = load_mnist_sample()
    # The sample is stored class by class: shuffled, or validation_split would hold out only nines.
    order = np.random.default_rng(0).permutation(len(sample["y_train"]))
    x, y = as_rgb32(sample["x_train"][order]).astype("float32") / 255.0, sample["y_train"][order]
    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=10)
    for layer in model.layers:
        # keras.applications' momentum .999 averages over about 1,000 steps, more than this fit's
        # 850: its moving statistics would still be mostly their starting values.
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=MOBILENET_EPOCHS, batch_size=64, validation_split=0.1, verbose=0)
    path = folder / "mobilenetv2.keras"
    model.save(path)
    return path


def train_default_digits(folder: Path) -> Path:
    from kerasml.training.train import TrainOptions, train
    print("training the default digit model on the bundled sample ...", flush=True)
    return train(TrainOptions(dataset="mnist-sample", out=folder / "digits.keras", quiet=True),
                 say=lambda line: None).model_path


def _row(model: Path, fmt: str, precision: str, sparsity, images, labels, keras_probabilities,
         folder: Path, say: Callable[[str], None]) -> dict:
    from kerasml.checks.compare import load_classifier
    from kerasml.conversion.to_coreai import convert as to_aimodel
    from kerasml.model.precision import label
    from kerasml.conversion.to_coreml import ConvertOptions, convert
    from kerasml.data.sources import SAMPLE_PATH

    name = label(precision, sparsity)
    out = folder / f"{name}.{fmt}"
    data = SAMPLE_PATH if precision == "w8a8" else None             # calibration images
    if precision == "auto":
        data = folder / "choose.npz"                                 # the first half of the test digits
        half = images[: len(images) // 2]
        np.savez(data, x_test=half[..., 0] if half.shape[-1] == 1 else half, y_test=labels[: len(labels) // 2])
    started = time.perf_counter()
    options = ConvertOptions(model=model, out=out, format=fmt, precision=precision, sparsity=sparsity,
                             labels="digits", force=True, data=data,
                             max_drop=AUTO_BUDGET if precision == "auto" else None)
    result = (to_aimodel if fmt == "aimodel" else convert)(options, say=lambda line: None, warn=lambda line: None)
    seconds = time.perf_counter() - started
    if precision == "auto":
        name = f"auto ≤{AUTO_BUDGET:g} → {result.precision}"
    probabilities = load_classifier(out).predict_probabilities(images)
    predictions = probabilities.argmax(axis=1)
    accuracy = float((predictions == labels).mean())
    row = {"format": fmt, "scheme": name, "size_bytes": result.size_bytes, "accuracy": accuracy,
           "max_abs_diff": float(np.abs(probabilities - keras_probabilities).max()),
           "top1_agreement": float((predictions == keras_probabilities.argmax(axis=1)).mean()),
           "keras_accuracy": float((keras_probabilities.argmax(axis=1) == labels).mean()),
           "convert_seconds": round(seconds, 1), "target": TARGETS.get(name, "")}
    say(f"{fmt:9} {name:18} {result.size_bytes / 1024:8.1f} KiB {accuracy:.2%} ({seconds:.0f} s)")
    return row


def _fill_ratios(rows: list[dict]) -> None:
    reference = {r["format"]: r for r in rows if r["scheme"] == "fp32"}
    for row in rows:
        base = reference[row["format"]]
        row["ratio"] = row["size_bytes"] / base["size_bytes"]
        row["delta_points"] = round(100 * (row["accuracy"] - base["accuracy"]), 2)


def table(rows: list[dict], model_name: str, what: str = "the 10,000 MNIST test digits") -> list[str]:
    """The markdown table of `measure`'s rows."""
    lines = [f"Compression of `{model_name}` on {what} (kerasml's runtime for .mlmodel and "
             ".mlpackage, Apple's Core AI runtime for .aimodel); ratio and "
             "points against the fp32 model of the same format; max |Δp| and top-1 agreement against Keras. "
             f"`auto` chose within {AUTO_BUDGET:g} points on the first half of these images; its row is "
             "measured on all of them.", "",
             "| format | scheme | size | of fp32 | accuracy | points | max \\|Δp\\| | top-1 agreement | target |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        parity = (f"{r['max_abs_diff']:.1e} | {r['top1_agreement']:.2%}" if "max_abs_diff" in r else " | ")
        lines.append(f"| {r['format']} | {r['scheme']} | {r['size_bytes'] / 1024:.1f} KiB | {r['ratio']:.1%} | "
                     f"{r['accuracy']:.2%} | {r['delta_points']:+.2f} | {parity} | {r['target']} |")
    return lines


if __name__ == "__main__":
    main()
