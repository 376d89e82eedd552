"""`make bench`: kerasml's defaults against the recipes they replace, measured side by side.

Writes bench/results.json and bench/results.md (the table the README shows). Rows that need the
real MNIST test set (../shared/data/mnist-test) or Fashion-MNIST say "skipped: no data" without it.
Seeds are fixed; quick timings are the median of several repeats, training runs once each.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist-test"
KERASML = [sys.executable, "-m", "kerasml"]
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
# The digit recipes are compared over several seeds (one accuracy moves by ±0.1 point from seed to
# seed); the first seed's models are the ones converted and timed below.
DIGIT_SEEDS = [int(seed) for seed in os.environ.get("BENCH_SEEDS", "42,1,2").split(",")]
SKIPPED = "skipped: no data"


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def mnist_test_set():
    from kerasml.data.idx import read_idx
    if not (MNIST_TEST / "t10k-images-idx3-ubyte.gz").is_file():
        return None
    return (read_idx(MNIST_TEST / "t10k-images-idx3-ubyte.gz"),
            read_idx(MNIST_TEST / "t10k-labels-idx1-ubyte.gz").astype(np.int64))


def fashion_data():
    from kerasml.data import load_dataset
    from kerasml.errors import KerasmlError
    try:
        return load_dataset("fashion", say=lambda m: None)
    except KerasmlError:
        return None


def train_default(dataset: str, out: Path, test_data: Path | None = None, seed: int = 42):
    from kerasml.training.train import TrainOptions, train
    started = time.perf_counter()
    result = train(TrainOptions(dataset=dataset, test_data=test_data, out=out, force=True, quiet=True,
                                seed=seed), say=lambda m: None)
    return result, time.perf_counter() - started


def side_by_side(dataset: str, baseline_name: str, baseline, data, default_dataset: str, out: Path,
                 test_data: Path | None = None, seed: int = 42) -> tuple[list[dict], object]:
    """One baseline recipe and kerasml's default on the same data, one after the other."""
    log(f"training the baseline ({baseline_name}) on {dataset}, seed {seed}")
    started = time.perf_counter()
    model, fit_s, accuracy = baseline(*data, seed=seed)
    reference = {"dataset": dataset, "recipe": baseline_name, "seed": seed, "accuracy": accuracy, "fit_s": fit_s,
                 "wall_s": time.perf_counter() - started, "parameters": int(model.count_params())}
    log(f"training kerasml's default on {dataset}, seed {seed}")
    result, wall_s = train_default(default_dataset, out, test_data, seed)
    record = result.record
    ours = {"dataset": dataset, "recipe": f"kerasml default ({record.architecture}, {record.epochs_run} epochs)",
            "seed": seed, "accuracy": record.test_accuracy, "validation_accuracy": record.validation["accuracy"],
            "fit_s": record.fit_time_s, "wall_s": wall_s,
            "parameters": record.parameters, "fit_ratio": record.fit_time_s / reference["fit_s"],
            "wall_ratio": wall_s / reference["wall_s"]}
    return [reference, ours], (model, result.model_path)


def mean_rows(rows: list[dict]) -> list[dict]:
    """The seeds' mean for each recipe, the ratio from the summed fit times of the same pairs."""
    means = []
    for recipe in dict.fromkeys(row["recipe"] for row in rows):
        same = [row for row in rows if row["recipe"] == recipe]
        mean = {"dataset": same[0]["dataset"], "recipe": f"{recipe}, mean of {len(same)} seeds",
                "seed": "mean", "parameters": same[0]["parameters"],
                "accuracy_range": [min(row["accuracy"] for row in same), max(row["accuracy"] for row in same)]}
        for key in ("accuracy", "fit_s", "wall_s"):
            mean[key] = statistics.mean(row[key] for row in same)
        means.append(mean)
    if len(means) == 2:
        means[1]["fit_ratio"] = means[1]["fit_s"] / means[0]["fit_s"]
    return means


def training_rows(mnist, fashion) -> tuple[list[dict], dict]:
    from kerasml.data.sources import load_mnist_sample
    from recipes import fashion_recipe, tutorial_recipe

    rows, models = [], {}
    digits, clothes = "MNIST sample (5,000)", "Fashion-MNIST (60,000)"
    if mnist is None:
        rows += [{"dataset": digits, "recipe": name, "status": SKIPPED}
                 for name in ("tutorial model_m, 15 epochs", "kerasml default")]
    else:
        sample = load_mnist_sample()
        pairs = []
        for index, seed in enumerate(DIGIT_SEEDS):   # baseline and default alternate, seed by seed
            found, (tutorial, default) = side_by_side(
                digits, "tutorial model_m, 15 epochs", tutorial_recipe, (sample["x_train"], sample["y_train"], *mnist),
                "mnist-sample", OUT / ("digits.keras" if index == 0 else f"digits-seed{seed}.keras"), MNIST_TEST, seed)
            if index == 0:
                models["tutorial"], models["default"] = tutorial, default
            pairs += found
        rows += pairs + (mean_rows(pairs) if len(DIGIT_SEEDS) > 1 else [])
    if fashion is None:
        rows += [{"dataset": clothes, "recipe": name, "status": SKIPPED}
                 for name in ("Fashion recipe, 10 epochs", "kerasml default")]
    else:
        found, _ = side_by_side(clothes, "Fashion recipe, 10 epochs", fashion_recipe,
                                (fashion.x_train[..., 0], fashion.y_train, fashion.x_test[..., 0], fashion.y_test),
                                "fashion", OUT / "fashion.keras")
        rows += found
    return rows, models


def conversion_rows(default_model: Path | None, mnist) -> list[dict]:
    """Every format and precision of the default digit model: size, parity, accuracy cost."""
    from kerasml.convert import ConvertOptions, convert
    from kerasml.checks.verify import verify

    if default_model is None or mnist is None:
        return [{"model": "kerasml default", "status": SKIPPED}]
    rows = []
    for fmt in ("mlmodel", "mlpackage"):
        for precision in ("fp32", "fp16", "int8"):
            log(f"converting the default model to {fmt} {precision}")
            out = OUT / f"digits-{precision}.{fmt}"
            result = convert(ConvertOptions(model=default_model, labels="digits", format=fmt, precision=precision,
                                            out=out, force=True, data=MNIST_TEST if precision != "fp32" else None),
                             say=lambda m: None, warn=lambda m: None)
            check = verify(out, default_model, data=MNIST_TEST)
            row = {"format": fmt, "precision": precision, "size_bytes": result.size_bytes,
                   "max_abs_diff": check.max_abs_diff, "top1_agreement": check.top1_agreement,
                   "keras_accuracy": check.keras_accuracy, "coreml_accuracy": check.coreml_accuracy,
                   "verify_passed": check.passed}
            if result.fp32_size_bytes:
                row["size_ratio"] = result.size_bytes / result.fp32_size_bytes
            rows.append(row)
    return rows


def runtime_speed(models: dict, mnist) -> dict:
    """10,000 test digits through the tutorial .mlmodel (NumPy runtime) against Keras' own predict."""
    if "tutorial" not in models or mnist is None:
        return {"status": SKIPPED}
    from kerasml.convert import convert_keras_model
    from kerasml.runtime import load_model

    path = OUT / "tutorial.mlmodel"
    convert_keras_model(models["tutorial"], "mlmodel", "fp32").save(str(path))
    coreml = load_model(path)
    images, _ = mnist
    x = images[..., None].astype(np.float32) / 255
    keras_times, runtime_times = [], []
    for _ in range(REPEATS):  # interleaved so both see the same machine load
        started = time.perf_counter()
        expected = models["tutorial"].predict(x, verbose=0)
        keras_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        actual = coreml.predict_probabilities(images)
        runtime_times.append(time.perf_counter() - started)
    keras_s, runtime_s = statistics.median(keras_times), statistics.median(runtime_times)
    return {"images": len(images), "keras_predict_s": keras_s, "runtime_s": runtime_s,
            "ratio": runtime_s / keras_s, "max_abs_diff": float(np.abs(actual - expected).max()),
            "top1_agreement": float((actual.argmax(1) == expected.argmax(1)).mean())}


def startup(default_model: Path | None) -> dict:
    log("timing start-up")
    result = {"help_s": median_seconds(KERASML + ["--help"], REPEATS),
              "import_tensorflow_s": median_seconds([sys.executable, "-c", "import tensorflow"], 3)}
    if default_model is not None:
        result["convert_s"] = median_seconds(KERASML + ["convert", str(default_model), "--labels", "digits",
                                                        "--out", str(OUT / "startup.mlmodel"), "--force"], 3)
        result["convert_ratio"] = result["convert_s"] / result["import_tensorflow_s"]
    return result


def machine() -> dict:
    from kerasml.record import library_versions
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or cpu
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "versions": library_versions()}


def markdown(results: dict) -> str:
    def pct(value):
        return "" if value is None else f"{value:.2%}"
    lines = [f"Measured {results['finished']} on {results['machine']['cores']} cores "
             f"({results['machine']['cpu']}), `make bench`.", "",
             "| dataset | recipe | seed | test accuracy | fit time | wall time | fit ratio to baseline | parameters |",
             "|---|---|---|---|---|---|---|---|"]
    for row in results["training"]:
        if "status" in row:
            lines.append(f"| {row['dataset']} | {row['recipe']} | | {row['status']} | | | | |")
            continue
        ratio = f"{row['fit_ratio']:.2f}x" if "fit_ratio" in row else "baseline"
        accuracy = pct(row["accuracy"])
        if "accuracy_range" in row:
            accuracy = f"**{accuracy}** ({pct(row['accuracy_range'][0])}–{pct(row['accuracy_range'][1])})"
        lines.append(f"| {row['dataset']} | {row['recipe']} | {row.get('seed', 42)} | {accuracy} | {row['fit_s']:.1f} s | "
                     f"{row['wall_s']:.1f} s | {ratio} | {row['parameters']:,} |")
    lines += ["", "| format | precision | size | of fp32 | max \\|Δp\\| vs Keras | top-1 agreement | accuracy Keras → Core ML |",
              "|---|---|---|---|---|---|---|"]
    for row in results["conversion"]:
        if "status" in row:
            lines.append(f"| default model | | {row['status']} | | | | |")
            continue
        ratio = f"{row['size_ratio']:.1%}" if "size_ratio" in row else "100%" if row["precision"] == "fp32" else "n/a"
        lines.append(f"| {row['format']} | {row['precision']} | {row['size_bytes'] / 1024:.1f} KiB | {ratio} | "
                     f"{row['max_abs_diff']:.2e} | {row['top1_agreement']:.2%} | "
                     f"{pct(row['keras_accuracy'])} → {pct(row['coreml_accuracy'])} |")
    speed = results["runtime"]
    lines.append("")
    if "status" in speed:
        lines.append(f"Runtime speed: {speed['status']}")
    else:
        lines.append(f"Runtime speed: {speed['images']:,} test digits through the tutorial .mlmodel in "
                     f"{speed['runtime_s']:.2f} s with kerasml's NumPy runtime against {speed['keras_predict_s']:.2f} s "
                     f"for Keras' `model.predict` ({speed['ratio']:.2f}x; max |Δp| {speed['max_abs_diff']:.1e}, "
                     f"top-1 agreement {speed['top1_agreement']:.2%}).")
    start = results["startup"]
    line = f"Start-up: `kerasml --help` {start['help_s']:.2f} s; `import tensorflow` {start['import_tensorflow_s']:.2f} s"
    if "convert_s" in start:
        line += f"; `kerasml convert` of the default model {start['convert_s']:.2f} s ({start['convert_ratio']:.2f}x the import)"
    lines.append(line + ".")
    return "\n".join(lines) + "\n"


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kerasml.files import write_text_atomic
    from kerasml.libs import tensorflow
    tensorflow()
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    mnist, fashion = mnist_test_set(), fashion_data()
    training, models = training_rows(mnist, fashion)
    results = {"machine": machine(), "training": training}
    results["conversion"] = conversion_rows(models.get("default"), mnist)
    results["runtime"] = runtime_speed(models, mnist)
    results["startup"] = startup(models.get("default"))
    results["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["bench_wall_s"] = time.perf_counter() - started
    write_text_atomic(REPO / "bench" / "results.json", json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    write_text_atomic(REPO / "bench" / "results.md", table)
    print(table)


if __name__ == "__main__":
    main()
