"""`make bench`: every figure of issue 16 in one run, side by side.

1. digits: kerasml's default recipe against the tutorial recipe on the 5,000-digit sample, 3 seeds,
   accuracy on the real 10,000 MNIST test digits, fit-time ratio in wall-clock and in CPU time;
2. fashion: the default against the classic Fashion-MNIST recipe;
3. convert: `kerasml convert` of the default digit model against `python -c "import tensorflow"`,
   median of alternating pairs with their range;
4. runtime: the NumPy runtime against Keras `predict` on three models (bench/runtime_speed.py);
5. compression: every scheme x format of the default digit model, and MobileNetV2's auto against
   its uniform schemes (bench/compression.py's rows);
6. startup: `kerasml --help`.

Writes bench/results.json and bench/results.md (the tables the README shows) and prints them;
a --quick or --only run writes bench/out/results.json and .md instead.
Rows that need the real MNIST test set (../shared/data/mnist-test) or Fashion-MNIST say
"skipped: no data" without it. Seeds are fixed; training runs once per seed.

    PYTHONPATH=$PWD .venv/bin/python bench/run.py [--quick] [--only convert,compression] [--model M]
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
sys.path[:0] = [str(REPO), str(REPO / "bench")]   # kerasml, and the bench's sibling modules
OUT = REPO / "bench" / "out"
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist-test"
KERASML = [sys.executable, "-m", "kerasml"]
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
# The digit recipes are compared over several seeds (one accuracy moves by ±0.1 point from seed to
# seed); the first seed's models are the ones converted and timed below.
DIGIT_SEEDS = [int(seed) for seed in os.environ.get("BENCH_SEEDS", "42,1,2").split(",")]
CONVERT_PAIRS = int(os.environ.get("BENCH_PAIRS", "5"))
CONVERT_GOAL = 1.3
SKIPPED = "skipped: no data"
NO_MODEL = "skipped: no default digit model (run the digits section, or pass --model)"


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process, start-up and exit included. CPU time moves
    far less than wall time when other processes load the machine."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def seconds(command: list[str]) -> float:
    return timed(command)[0]


def median_seconds(command: list[str], repeats: int) -> float:
    return statistics.median(seconds(command) for _ in range(repeats))


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
    """One baseline recipe and kerasml's default on the same data, one after the other. Fit times
    in wall-clock seconds and in this process's CPU seconds: on a shared machine other processes
    stretch the wall clock of whichever run they meet, while CPU time counts only the run's own work."""
    log(f"training the baseline ({baseline_name}) on {dataset}, seed {seed}")
    started = time.perf_counter()
    model, fit_s, accuracy, fit_cpu_s = baseline(*data, seed=seed)
    reference = {"dataset": dataset, "recipe": baseline_name, "seed": seed, "accuracy": accuracy, "fit_s": fit_s,
                 "fit_cpu_s": fit_cpu_s, "wall_s": time.perf_counter() - started,
                 "parameters": int(model.count_params())}
    log(f"training kerasml's default on {dataset}, seed {seed}")
    result, wall_s = train_default(default_dataset, out, test_data, seed)
    record = result.record
    ours = {"dataset": dataset, "recipe": f"kerasml default ({record.architecture}, {record.epochs_run} epochs)",
            "seed": seed, "accuracy": record.test_accuracy, "validation_accuracy": record.validation["accuracy"],
            "fit_s": record.fit_time_s, "fit_cpu_s": result.fit_cpu_s, "wall_s": wall_s,
            "parameters": record.parameters, "fit_ratio": record.fit_time_s / reference["fit_s"],
            "cpu_ratio": result.fit_cpu_s / fit_cpu_s, "wall_ratio": wall_s / reference["wall_s"]}
    return [reference, ours], (model, result.model_path)


def mean_rows(rows: list[dict]) -> list[dict]:
    """The seeds' mean for each recipe, the ratio from the summed fit times of the same pairs."""
    means = []
    for recipe in dict.fromkeys(row["recipe"] for row in rows):
        same = [row for row in rows if row["recipe"] == recipe]
        mean = {"dataset": same[0]["dataset"], "recipe": f"{recipe}, mean of {len(same)} seeds",
                "seed": "mean", "parameters": same[0]["parameters"],
                "accuracy_range": [min(row["accuracy"] for row in same), max(row["accuracy"] for row in same)]}
        for key in ("accuracy", "fit_s", "fit_cpu_s", "wall_s"):
            mean[key] = statistics.mean(row[key] for row in same)
        means.append(mean)
    if len(means) == 2:
        means[1]["fit_ratio"] = means[1]["fit_s"] / means[0]["fit_s"]
        means[1]["cpu_ratio"] = means[1]["fit_cpu_s"] / means[0]["fit_cpu_s"]
    return means


def training_rows(mnist, fashion, seeds: list[int], sections=("digits", "fashion")) -> tuple[list[dict], dict]:
    from kerasml.data.sources import load_mnist_sample
    from recipes import fashion_recipe, tutorial_recipe

    rows, models = [], {}
    digits, clothes = "MNIST sample (5,000)", "Fashion-MNIST (60,000)"
    if "digits" not in sections:
        pass
    elif mnist is None:
        rows += [{"dataset": digits, "recipe": name, "status": SKIPPED}
                 for name in ("tutorial model_m, 15 epochs", "kerasml default")]
    else:
        sample = load_mnist_sample()
        pairs = []
        for index, seed in enumerate(seeds):   # baseline and default alternate, seed by seed
            found, (tutorial, default) = side_by_side(
                digits, "tutorial model_m, 15 epochs", tutorial_recipe, (sample["x_train"], sample["y_train"], *mnist),
                "mnist-sample", OUT / ("digits.keras" if index == 0 else f"digits-seed{seed}.keras"), MNIST_TEST, seed)
            if index == 0:
                models["tutorial"], models["default"] = tutorial, default
            pairs += found
        rows += pairs + (mean_rows(pairs) if len(seeds) > 1 else [])
    if "fashion" not in sections:
        pass
    elif fashion is None:
        rows += [{"dataset": clothes, "recipe": name, "status": SKIPPED}
                 for name in ("Fashion recipe, 10 epochs", "kerasml default")]
    else:
        found, _ = side_by_side(clothes, "Fashion recipe, 10 epochs", fashion_recipe,
                                (fashion.x_train[..., 0], fashion.y_train, fashion.x_test[..., 0], fashion.y_test),
                                "fashion", OUT / "fashion.keras")
        rows += found
    return rows, models


def convert_ratio(model: Path | None, pairs: int) -> dict:
    """`kerasml convert` of the default digit model against `python -c "import tensorflow"`, as whole
    processes in alternating pairs (the order flips every pair, so a load change hits both alike):
    the median of the per-pair ratios, with their range. One untimed run of each warms the disk cache."""
    if model is None:
        return {"status": NO_MODEL}
    log(f"timing `kerasml convert` against `import tensorflow`, {pairs} alternating pairs")
    importing = [sys.executable, "-c", "import tensorflow"]
    converting = KERASML + ["convert", str(model), "--labels", "digits", "--out", str(OUT / "pairs.mlmodel"), "--force"]
    seconds(importing), seconds(converting)
    rows = []
    for index in range(pairs):
        if index % 2 == 0:
            (import_s, import_cpu), (convert_s, convert_cpu) = timed(importing), timed(converting)
        else:
            (convert_s, convert_cpu), (import_s, import_cpu) = timed(converting), timed(importing)
        rows.append({"import_tensorflow_s": import_s, "convert_s": convert_s, "ratio": convert_s / import_s,
                     "import_tensorflow_cpu_s": import_cpu, "convert_cpu_s": convert_cpu,
                     "cpu_ratio": convert_cpu / import_cpu})
        log(f"  pair {index + 1}: import {import_s:.2f} s, convert {convert_s:.2f} s, {convert_s / import_s:.2f}x "
            f"(CPU time {convert_cpu / import_cpu:.2f}x)")
    ratios = [row["ratio"] for row in rows]
    return {"pairs": rows, "median_ratio": statistics.median(ratios), "min_ratio": min(ratios),
            "max_ratio": max(ratios), "median_cpu_ratio": statistics.median(row["cpu_ratio"] for row in rows),
            "goal": CONVERT_GOAL,
            "command": " ".join(["kerasml"] + converting[3:]).replace(str(REPO) + "/", "")}


def runtime_ratios(quick: bool) -> dict:
    """Runtime speed against Keras `predict` on three models, by bench/runtime_speed.py (its own
    module, also run alone); said plainly when this tree does not have it."""
    if not (Path(__file__).parent / "runtime_speed.py").is_file():
        return {"status": "not measured: bench/runtime_speed.py is not in this tree"}
    import runtime_speed

    log("timing the NumPy runtime against Keras predict" + (" (digits only, --quick)" if quick else ""))
    rows = runtime_speed.measure(names=["digits"] if quick else None)
    return {"rows": rows, "markdown": runtime_speed.markdown(rows)}


def compression_rows(model: Path | None, mnist, quick: bool) -> dict:
    """Every scheme x format of the default digit model (bench/compression.py's rows)."""
    import compression

    if model is None or mnist is None:
        return {"status": NO_MODEL if mnist is not None else SKIPPED}
    images, labels = mnist
    log("compressing the default digit model: every scheme x format" + (" (fp32 and palette4, --quick)" if quick else ""))
    folder = OUT / "compression"
    folder.mkdir(parents=True, exist_ok=True)
    rows = compression.measure(model, images[..., None], labels, folder,
                               compression.QUICK_ROWS if quick else compression.ROWS, say=log)
    if quick:
        return {"model": model.name, "rows": rows}
    # auto against the uniform schemes on a second, deeper model (bench/compression.py's MobileNetV2)
    mobilenet = compression.train_mobilenet(folder)
    mobilenet_rows = compression.measure(mobilenet, compression.as_rgb32(images[..., None]), labels, folder,
                                         compression.MOBILENET_ROWS, say=log)
    return {"model": model.name, "rows": rows, "mobilenetv2": mobilenet_rows}


def startup() -> dict:
    log("timing `kerasml --help`")
    return {"help_s": median_seconds(KERASML + ["--help"], REPEATS)}


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
    """All of issue 16's figures, one section after another, from `results` (bench/results.json)."""
    host = results["machine"]
    command = "`bench/run.py --quick`" if results.get("quick") else "`make bench`"
    lines = [f"Measured {results['finished']} on {host['cores']} cores ({host['cpu']}), {command}; "
             f"the whole run took {results['bench_wall_s'] / 60:.0f} min.", ""]
    if "training" in results:
        lines += ["### Training: kerasml's defaults against the recipes they replace", ""] + _training_table(results["training"]) + [""]
    if "convert" in results:
        lines += ["### Convert time", "", _convert_line(results["convert"]), ""]
    if "runtime" in results:
        runtime = results["runtime"]
        lines += ["### Runtime speed: kerasml's NumPy runtime against Keras `predict`", ""]
        lines += [runtime["status"] if "status" in runtime else runtime["markdown"].rstrip("\n"), ""]
    if "compression" in results:
        compression = results["compression"]
        lines += ["### Smaller models: every scheme x format of the default digit model", ""]
        if "status" in compression:
            lines += [compression["status"], ""]
        else:
            import compression as tables
            lines += tables.table(compression["rows"], compression["model"]) + [""]
            if "mobilenetv2" in compression:
                lines += ["MobileNetV2 (bench/compression.py's):", ""]
                lines += tables.table(compression["mobilenetv2"], "mobilenetv2.keras",
                                      what="the 10,000 MNIST test digits as 32x32 RGB") + [""]
    if "startup" in results:
        lines.append(f"Start-up: `kerasml --help` {results['startup']['help_s']:.2f} s.")
    return "\n".join(lines).rstrip("\n") + "\n"


def _pct(value) -> str:
    return "" if value is None else f"{value:.2%}"


def _training_table(rows: list[dict]) -> list[str]:
    lines = ["| dataset | recipe | seed | test accuracy | fit time | wall time | fit ratio to baseline | parameters "
             "| fit CPU time | CPU ratio to baseline |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "status" in row:
            lines.append(f"| {row['dataset']} | {row['recipe']} | | {row['status']} | | | | | | |")
            continue
        ratio = f"{row['fit_ratio']:.2f}x" if "fit_ratio" in row else "baseline"
        accuracy = _pct(row["accuracy"])
        if "accuracy_range" in row:
            accuracy = f"**{accuracy}** ({_pct(row['accuracy_range'][0])}–{_pct(row['accuracy_range'][1])})"
        cpu = f"{row['fit_cpu_s']:.1f} s" if row.get("fit_cpu_s") is not None else ""   # older results have none
        cpu_ratio = f"{row['cpu_ratio']:.2f}x" if "cpu_ratio" in row else ("baseline" if cpu and "fit_ratio" not in row else "")
        lines.append(f"| {row['dataset']} | {row['recipe']} | {row.get('seed', 42)} | {accuracy} | {row['fit_s']:.1f} s | "
                     f"{row['wall_s']:.1f} s | {ratio} | {row['parameters']:,} | {cpu} | {cpu_ratio} |")
    return lines


def _convert_line(convert: dict) -> str:
    if "status" in convert:
        return f"`kerasml convert` against `import tensorflow`: {convert['status']}"
    pairs = convert["pairs"]
    median = statistics.median(pair["convert_s"] for pair in pairs)
    median_import = statistics.median(pair["import_tensorflow_s"] for pair in pairs)
    return (f"`{convert['command']}` takes **{convert['median_ratio']:.2f}x** the time of "
            f"`python -c \"import tensorflow\"` (median of {len(pairs)} alternating pairs, range "
            f"{convert['min_ratio']:.2f}–{convert['max_ratio']:.2f}x; medians {median:.2f} s and {median_import:.2f} s; "
            f"goal <= {convert['goal']}x)" + (f"; in CPU time {convert['median_cpu_ratio']:.2f}x." if "median_cpu_ratio" in convert
                                             else "."))


SECTIONS = ("digits", "fashion", "convert", "runtime", "compression", "startup")


def parse_arguments(argv: list[str] | None = None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: one seed, 3 convert pairs, the digit model's runtime row only, "
                             "fp32 and palette4 compression rows")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})")
    parser.add_argument("--model", type=Path, help="a default digit model to convert and compress instead of "
                                                    "the one the digits section trains")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kerasml.files import write_text_atomic
    from kerasml.libs import tensorflow
    tensorflow()
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    seeds = DIGIT_SEEDS[:1] if args.quick else DIGIT_SEEDS
    mnist = mnist_test_set()
    results: dict = {"machine": machine(), "quick": args.quick}
    model = args.model
    if "digits" in args.only or "fashion" in args.only:
        fashion = fashion_data() if "fashion" in args.only else None
        training, models = training_rows(mnist, fashion, seeds, args.only)
        results["training"] = training
        model = model or models.get("default")
    if "convert" in args.only:
        results["convert"] = convert_ratio(model, 3 if args.quick else CONVERT_PAIRS)
    if "runtime" in args.only:
        results["runtime"] = runtime_ratios(args.quick)
    if "compression" in args.only:
        results["compression"] = compression_rows(model, mnist, args.quick)
    if "startup" in args.only:
        results["startup"] = startup()
    results["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["bench_wall_s"] = time.perf_counter() - started
    # Only a whole run replaces the figures the README quotes; a partial one goes to bench/out.
    folder = OUT if args.quick or args.only != list(SECTIONS) else REPO / "bench"
    write_text_atomic(folder / "results.json", json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    write_text_atomic(folder / "results.md", table)
    print(table)
    log(f"wrote {folder / 'results.md'} and results.json")


if __name__ == "__main__":
    main()
