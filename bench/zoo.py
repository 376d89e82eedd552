"""`make zoo`: every case of bench/zoo_cases.py built, converted in both formats, verified, timed.

For each case and format: the Keras model is built with seeded random weights and saved, converted
with `kerasml.conversion.to_coreml`, checked with `kerasml.checks.verify` (kerasml's NumPy runtime against Keras on 64
seeded random images), and timed: the runtime on those 64 images against Keras `predict` on the
same images (each timed on its second call, after tracing and warm-up), and diffed layer by Keras
layer (`kerasml diff`, 16 images: the first layer beyond tolerance, none for a clean conversion).
bench/zoo.json keeps the
latest row of every case and format, so a run of a few cases updates their rows; bench/zoo.md is
written from it (docs/conversion.md quotes it: `make docs`).

    python bench/zoo.py                 # everything
    python bench/zoo.py --fast          # the subset `make test` runs
    python bench/zoo.py --cases gelu,ConvNeXtTiny     # re-measure two cases
    python bench/zoo.py --fast --no-write             # print only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from zoo_cases import CASES, CLASSES, Case, case_named  # noqa: E402

FORMATS = ("mlmodel", "mlpackage", "aimodel")
SAMPLES = 64
DIFF_SAMPLES = 16     # images `kerasml diff` compares every layer on
LABELS = ",".join(f"class{i}" for i in range(CLASSES))


@dataclasses.dataclass
class Row:
    case: str
    kind: str
    parameters: int
    format: str
    status: str                       # "verified", "failed", "refused", "runtime", "error"
    detail: str = ""
    convert_seconds: float | None = None
    max_abs_diff: float | None = None
    top1_agreement: float | None = None
    near_ties: int | None = None
    runtime_seconds: float | None = None
    keras_seconds: float | None = None
    measured: str = ""                # UTC time of the run that made this row
    # aimodel rows: Apple's Core AI runtime on the .aimodel against kerasml's runtime on the same
    # case's .mlpackage (the ML Program it was lowered from), on the same images
    runtimes_max_abs_diff: float | None = None
    runtimes_top1_agreement: float | None = None
    # `kerasml diff`, layer by Keras layer: the first layer beyond tolerance ("" when none), and how
    # many rows were compared of all (the others: layers computed inside another op)
    first_divergent_layer: str | None = None
    layers_compared: str | None = None


def build(case: Case, folder: Path) -> tuple[Path, int]:
    """The case's Keras model saved to `folder`, and its parameter count."""
    model = case.build()
    path = folder / f"{case.name}.keras"
    model.save(path)
    return path, int(model.count_params())


def run_case(case: Case, fmt: str, keras_path: Path, parameters: int, samples: int = SAMPLES,
             timings: bool = True) -> Row:
    """Convert, verify and time one case in one format; failures become the row's status."""
    from kerasml.checks.verify import verify
    from kerasml.conversion.to_coreml import ConvertOptions
    from kerasml.errors import KerasmlError
    from kerasml.runtime.errors import UnsupportedModelError

    if fmt == "aimodel":
        from kerasml.conversion.to_coreai import convert
    else:
        from kerasml.conversion.to_coreml import convert

    row = Row(case.name, case.kind, parameters, fmt, "error",
              measured=f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    out = keras_path.with_suffix("." + fmt)
    started = time.perf_counter()
    try:
        convert(ConvertOptions(model=keras_path, labels=LABELS, out=out, format=fmt,
                               force=True), say=lambda m: None, warn=lambda m: None)
    except KerasmlError as exc:
        row.status, row.detail = "refused", str(exc)
        return row
    row.convert_seconds = time.perf_counter() - started
    try:
        result = verify(out, keras_path, samples=samples)
    except UnsupportedModelError as exc:
        row.status, row.detail = "runtime", str(exc)
        return row
    except KerasmlError as exc:
        row.status, row.detail = "error", str(exc)
        return row
    row.status = "verified" if result.passed else "failed"
    row.max_abs_diff, row.top1_agreement, row.near_ties = (result.max_abs_diff, result.top1_agreement,
                                                           result.near_ties)
    if not result.passed:
        row.detail = "; ".join(c.detail for c in result.checks if not c.passed)
    row.first_divergent_layer, row.layers_compared = _layer_diff(keras_path, out, min(samples, DIFF_SAMPLES))
    if timings:
        row.runtime_seconds, row.keras_seconds = _timings(out, keras_path, samples)
    package = keras_path.with_suffix(".mlpackage")
    if fmt == "aimodel" and package.exists():
        row.runtimes_max_abs_diff, row.runtimes_top1_agreement = _runtimes(out, package, samples)
    return row


def _layer_diff(keras_path: Path, converted: Path, samples: int) -> tuple[str | None, str | None]:
    """`kerasml diff` of the clean conversion: (first divergent layer or "", "compared/rows");
    (None, reason) when diff cannot run on it."""
    from kerasml.checks.diff import diff
    from kerasml.errors import KerasmlError
    from kerasml.runtime.errors import UnsupportedModelError

    try:
        result = diff(keras_path, converted, samples=samples)
    except (KerasmlError, UnsupportedModelError) as exc:
        return None, f"not run: {exc}"
    compared = sum(row.within is not None for row in result.rows)
    return result.first_divergent_layer or "", f"{compared}/{len(result.rows)}"


def _images(image, samples: int) -> np.ndarray:
    """The seeded random images the timings and the runtime comparison use."""
    return np.random.default_rng(1).integers(0, 256, (samples, image.height, image.width, image.channels),
                                             dtype=np.uint8)


def _runtimes(aimodel: Path, package: Path, samples: int) -> tuple[float, float]:
    """Apple's Core AI runtime on the .aimodel against kerasml's runtime on the .mlpackage: max |Δp|
    and top-1 agreement on the same images."""
    from kerasml.checks.compare import load_classifier

    apple, numpy = load_classifier(aimodel), load_classifier(package)
    images = _images(numpy.image, samples)
    a, b = apple.predict_probabilities(images), numpy.predict_probabilities(images)
    return float(np.abs(a.astype(np.float64) - b).max()), float((a.argmax(1) == b.argmax(1)).mean())


def _timings(coreml_path: Path, keras_path: Path, samples: int) -> tuple[float, float]:
    """Seconds for `samples` images: the converted model's runtime (kerasml's for Core ML, Apple's for
    Core AI) and Keras `predict`, each after a warm-up."""
    from kerasml.checks.compare import load_classifier
    from kerasml.model.keras_models import load_keras_model

    coreml = load_classifier(coreml_path)
    keras_model = load_keras_model(keras_path)
    image = coreml.image
    images = _images(image, samples)
    inputs = (images.astype(np.float32) * np.float32(image.scale)
              + np.asarray(image.bias, np.float32)).reshape((samples, *keras_model.input_shape))
    coreml.predict_probabilities(images)
    started = time.perf_counter()
    coreml.predict_probabilities(images)
    runtime_seconds = time.perf_counter() - started
    keras_model.predict(inputs)       # the first call traces Keras' predict function
    started = time.perf_counter()
    keras_model.predict(inputs)
    return runtime_seconds, time.perf_counter() - started


def markdown(rows: list[Row], header: str) -> str:
    lines = [header, "",
             "| case | parameters | format | result | convert s | max \\|Δp\\| | top-1 agree (near-ties) "
             "| diff: layers compared | runtime s / 64 | Keras s / 64 |",
             "|---|---:|---|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        agree = ("-" if r.top1_agreement is None and r.near_ties is None else
                 f"all ties ({r.near_ties})" if r.top1_agreement is None else
                 f"{r.top1_agreement:.1%} ({r.near_ties})")
        result = r.status if r.status == "verified" else f"{r.status}: {_short(r.detail)}"
        lines.append(f"| {r.case} | {r.parameters:,} | {r.format} | {result} | {_num(r.convert_seconds, '.1f')} "
                     f"| {_num(r.max_abs_diff, '.1e')} | {agree} | {_layers(r)} | {_num(r.runtime_seconds, '.3f')} "
                     f"| {_num(r.keras_seconds, '.3f')} |")
    counts = {s: sum(r.status == s for r in rows) for s in ("verified", "failed", "refused", "runtime", "error")}
    lines += ["", ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(rows)} conversions."]
    diffed = [r for r in rows if r.first_divergent_layer is not None]
    if diffed:
        clean = sum(r.first_divergent_layer == "" for r in diffed)
        lines.append(f"`kerasml diff`: {clean} of {len(diffed)} diffed conversions depart from Keras at no layer "
                     f"(relative tolerance 1e-4, {DIFF_SAMPLES} images).")
    return "\n".join(lines) + "\n"


def runtimes_markdown(rows: list[Row]) -> str:
    """Three runtimes side by side, per case: Keras against kerasml's NumPy runtime on the
    .mlpackage, Keras against Apple's Core AI runtime on the .aimodel lowered from the same ML
    Program, and the two runtimes against each other on the same images."""
    by_case: dict[str, dict[str, Row]] = {}
    for r in rows:
        by_case.setdefault(r.case, {})[r.format] = r
    lines = ["| case | Keras ↔ kerasml runtime (.mlpackage) | Keras ↔ Apple Core AI runtime (.aimodel) "
             "| kerasml ↔ Apple: max \\|Δp\\| | kerasml ↔ Apple: top-1 agree |",
             "|---|---:|---:|---:|---:|"]
    for case, formats in by_case.items():
        package, ai = formats.get("mlpackage"), formats.get("aimodel")
        if ai is None:
            continue
        lines.append(f"| {case} | {_diff(package)} | {_diff(ai)} | {_num(ai.runtimes_max_abs_diff, '.1e')} "
                     f"| {_num(ai.runtimes_top1_agreement, '.1%')} |")
    return "\n".join(lines) + "\n"


def _layers(row: Row) -> str:
    """The diff column: "12/14" when no layer departs, "departs at X" otherwise, "-" when not diffed."""
    if row.first_divergent_layer is None:
        return "-" if row.layers_compared is None else _short(row.layers_compared, 60)
    return row.layers_compared if row.first_divergent_layer == "" else f"departs at {row.first_divergent_layer}"


def _diff(row: Row | None) -> str:
    if row is None:
        return "-"
    return _num(row.max_abs_diff, ".1e") if row.status == "verified" else f"{row.status}"


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _short(text: str, limit: int = 140) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def merged(rows: list[Row]) -> list[Row]:
    """bench/zoo.json's rows with these replacing theirs (same case and format), in case order: a
    run of a few cases updates the table instead of shrinking it to them."""
    path = REPO / "bench" / "zoo.json"
    previous = [Row(**row) for row in json.loads(path.read_text())] if path.is_file() else []
    latest = {(row.case, row.format): row for row in previous + rows}
    order = {case.name: number for number, case in enumerate(CASES)}
    return sorted((row for row in latest.values() if row.case in order and row.format in FORMATS),
                  key=lambda row: (order[row.case], FORMATS.index(row.format)))


def _write_json(rows: list[Row]) -> None:
    (REPO / "bench" / "zoo.json").write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=1) + "\n")


def write_tables(rows: list[Row], command: str, minutes: float | None) -> None:
    took = "" if minutes is None else f" ({minutes:.1f} min)"
    table = markdown(rows, (
        f"Measured on {platform.machine()} ({platform.system()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores); each row from the latest run of its case (times in bench/zoo.json), "
        f"the last `{command}`{took}. Random weights, {SAMPLES} seeded random images; top-1 agreement "
        "counts images whose best Keras class leads by more than the tolerance (near-ties in brackets)."))
    table += ("\n### Three runtimes side by side\n\nmax |Δp| on the same images; the .aimodel is the case's "
              "ML Program lowered to Core AI ops and run by Apple's runtime (CPU).\n\n" + runtimes_markdown(rows))
    (REPO / "bench" / "zoo.md").write_text("# Model zoo: convert and verify\n\n" + table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--fast", action="store_true", help="only the cases `make test` runs")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--no-write", action="store_true", help="print the table, write no files")
    parser.add_argument("--table-only", action="store_true",
                        help="write bench/zoo.md from bench/zoo.json, run nothing")
    args = parser.parse_args(argv)
    if args.table_only:
        write_tables(merged([]), "python bench/zoo.py --table-only", None)
        return 0
    cases = [case_named(name) for name in args.cases.split(",")] if args.cases else CASES  # in that order
    cases = [case for case in cases if case.fast or not args.fast]
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for number, case in enumerate(cases, 1):
            path, parameters = build(case, Path(folder))
            for fmt in args.formats.split(","):
                row = run_case(case, fmt, path, parameters)
                rows.append(row)
                print(f"[zoo] {number}/{len(cases)} {case.name} {fmt}: {row.status}"
                      f"{'' if row.status == 'verified' else ' - ' + _short(row.detail, 200)}", flush=True)
            if not args.no_write:  # rows so far, so an interrupted run still leaves its figures
                _write_json(merged(rows))
    minutes = (time.perf_counter() - started) / 60
    command = " ".join(["python bench/zoo.py", *(sys.argv[1:] if argv is None else argv)])
    print(markdown(rows, f"This run: `{command}`, {minutes:.1f} min."))
    if not args.no_write:
        write_tables(merged(rows), command, minutes)
    return 0 if all(r.status in ("verified", "runtime") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
