"""Every compression scheme x format for one digit model: size, share of the fp32 size, accuracy on
the real 10,000 MNIST test digits (kerasml's runtime) and the points it costs; writes
bench/compression.md (and .json). Each row is a real `kerasml convert` (kerasml.convert.convert).

    PYTHONPATH=. .venv/bin/python bench/compression.py [--model models/digits.keras] [--data DIR]

Without --model it uses models/digits.keras, or trains the default recipe on the bundled sample.
w8a8 calibrates its activations on the bundled training sample, never on the test digits.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS = [("mlmodel", p, None) for p in ("fp32", "fp16", "int8", "palette8", "palette6", "palette4")]
ROWS += [("mlpackage", p, None) for p in ("fp32", "fp16", "int8", "palette8", "palette6", "palette4", "int4", "w8a8")]
ROWS += [("mlpackage", "fp32", 0.5), ("mlpackage", "palette4", 0.5), ("mlpackage", "fp32", 0.25)]
TARGETS = {"palette4": "<= 14% of fp32, <= 0.5 points lost", "palette6": "<= 0.1 points lost",
           "w8a8": "<= 0.3 points lost", "int4": "<= 16% of fp32"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "digits.keras")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist-test")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "compression.md")
    args = parser.parse_args()
    if not (args.data / "t10k-images-idx3-ubyte.gz").is_file():
        sys.exit(f"skipped: no MNIST test set at {args.data}")
    from kerasml.data.idx import read_idx
    images = read_idx(args.data / "t10k-images-idx3-ubyte.gz")[..., None]
    labels = read_idx(args.data / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model if args.model.exists() else _train(Path(folder))
        rows = [_row(model, fmt, precision, sparsity, images, labels, Path(folder))
                for fmt, precision, sparsity in ROWS]
    _fill_ratios(rows)
    lines = _table(rows, model)
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}")


def _train(folder: Path) -> Path:
    from kerasml.training.train import TrainOptions, train
    print("training the default digit model on the bundled sample ...", flush=True)
    return train(TrainOptions(dataset="mnist-sample", out=folder / "digits.keras", quiet=True),
                 say=lambda line: None).model_path


def _row(model: Path, fmt: str, precision: str, sparsity, images, labels, folder: Path) -> dict:
    from kerasml.compress import label
    from kerasml.convert import ConvertOptions, convert
    from kerasml.data.sources import SAMPLE_PATH
    from kerasml.runtime import load_model

    name = label(precision, sparsity)
    out = folder / f"{name}.{fmt}"
    started = time.perf_counter()
    options = ConvertOptions(model=model, out=out, format=fmt, precision=precision, sparsity=sparsity,
                             labels="digits", force=True,
                             data=SAMPLE_PATH if precision == "w8a8" else None)  # calibration images
    result = convert(options, say=lambda line: None, warn=lambda line: None)
    seconds = time.perf_counter() - started
    predictions = load_model(out).predict_probabilities(images).argmax(axis=1)
    accuracy = float((predictions == labels).mean())
    row = {"format": fmt, "scheme": name, "size_bytes": result.size_bytes, "accuracy": accuracy,
           "convert_seconds": round(seconds, 1), "target": TARGETS.get(name, "")}
    print(f"{fmt:9} {name:18} {result.size_bytes / 1024:8.1f} KiB {accuracy:.2%} ({seconds:.0f} s)", flush=True)
    return row


def _fill_ratios(rows: list[dict]) -> None:
    reference = {r["format"]: r for r in rows if r["scheme"] == "fp32"}
    for row in rows:
        base = reference[row["format"]]
        row["ratio"] = row["size_bytes"] / base["size_bytes"]
        row["delta_points"] = round(100 * (row["accuracy"] - base["accuracy"]), 2)


def _table(rows: list[dict], model: Path) -> list[str]:
    lines = [f"Compression of `{model.name}` on the 10,000 MNIST test digits (kerasml's runtime); ratio and "
             "points against the fp32 model of the same format.", "",
             "| format | scheme | size | of fp32 | accuracy | points | target |", "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['format']} | {r['scheme']} | {r['size_bytes'] / 1024:.1f} KiB | {r['ratio']:.1%} | "
                     f"{r['accuracy']:.2%} | {r['delta_points']:+.2f} | {r['target']} |")
    return lines


if __name__ == "__main__":
    main()
