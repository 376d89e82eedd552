"""`make bench`'s report (bench/run.py) renders every section of a results dict, and its
arguments refuse what they do not know; no model is trained or converted here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _results(runtime: dict) -> dict:
    compression = [
        {"format": "mlpackage", "scheme": "fp32", "size_bytes": 909_824, "accuracy": 0.9864, "max_abs_diff": 1.2e-6,
         "top1_agreement": 1.0, "keras_accuracy": 0.9864, "convert_seconds": 9.0, "target": ""},
        {"format": "mlpackage", "scheme": "palette4", "size_bytes": 124_518, "accuracy": 0.9855, "max_abs_diff": 0.27,
         "top1_agreement": 0.999, "keras_accuracy": 0.9864, "convert_seconds": 20.0,
         "target": "<= 14% of fp32, <= 0.5 points lost"},
    ]
    for row in compression:
        row["ratio"] = row["size_bytes"] / compression[0]["size_bytes"]
        row["delta_points"] = round(100 * (row["accuracy"] - compression[0]["accuracy"]), 2)
    return {
        "machine": {"cores": 2, "cpu": "Test CPU"}, "quick": False, "finished": "2026-11-28 07:00 UTC",
        "bench_wall_s": 1500.0,
        "training": [
            {"dataset": "MNIST sample (5,000)", "recipe": "tutorial model_m, 15 epochs", "seed": 42, "accuracy": 0.9726,
             "fit_s": 38.0, "wall_s": 40.0, "parameters": 94_602},
            {"dataset": "MNIST sample (5,000)", "recipe": "kerasml default", "seed": 42, "accuracy": 0.9901,
             "fit_s": 30.0, "wall_s": 33.0, "parameters": 225_610, "fit_ratio": 30 / 38},
            {"dataset": "MNIST sample (5,000)", "recipe": "kerasml default, mean of 3 seeds", "seed": "mean",
             "accuracy": 0.9899, "accuracy_range": [0.9893, 0.9905], "fit_s": 30.5, "wall_s": 33.0,
             "parameters": 225_610, "fit_ratio": 0.8},
            {"dataset": "Fashion-MNIST (60,000)", "recipe": "Fashion recipe, 10 epochs", "status": "skipped: no data"},
        ],
        "convert": {"pairs": [{"import_tensorflow_s": 4.0, "convert_s": 4.6, "ratio": 1.15},
                              {"import_tensorflow_s": 4.2, "convert_s": 4.5, "ratio": 1.07}],
                    "median_ratio": 1.11, "min_ratio": 1.07, "max_ratio": 1.15, "median_cpu_ratio": 1.21, "goal": 1.3,
                    "command": "kerasml convert bench/out/digits.keras --labels digits"},
        "runtime": runtime,
        "compression": {"model": "digits.keras", "rows": compression},
        "startup": {"help_s": 0.19},
    }


def test_markdown_renders_every_section(run):
    text = run.markdown(_results({"rows": [], "markdown": "| model | ratio |\n|---|---|\n| MobileNetV2 | 1.40x |\n"}))
    for expected in ("on 2 cores (Test CPU)", "took 25 min",
                     "| MNIST sample (5,000) | kerasml default | 42 | 99.01% | 30.0 s | 33.0 s | 0.79x | 225,610 |",
                     "**98.99%** (98.93%–99.05%)", "| Fashion-MNIST (60,000) | Fashion recipe, 10 epochs | | skipped: no data",
                     "**1.11x**", "median of 2 alternating pairs, range 1.07–1.15x", "goal <= 1.3x); in CPU time 1.21x.", "`make bench`;",
                     "| MobileNetV2 | 1.40x |",
                     "| mlpackage | palette4 | 121.6 KiB | 13.7% | 98.55% | -0.09 | 2.7e-01 | 99.90% |",
                     "`kerasml --help` 0.19 s"):
        assert expected in text, expected
    assert text.index("### Training") < text.index("### Convert") < text.index("### Runtime") < text.index("### Smaller")


def test_markdown_renders_the_mobilenet_compression_table(run):
    results = _results({"rows": [], "markdown": ""})
    results["compression"]["mobilenetv2"] = results["compression"]["rows"]
    text = run.markdown(results)
    assert "Compression of `mobilenetv2.keras` on the 10,000 MNIST test digits as 32x32 RGB" in text
    assert text.count("| mlpackage | palette4 | 121.6 KiB |") == 2


def test_markdown_says_what_was_not_measured(run):
    results = _results({"status": "not measured: bench/runtime_speed.py is not in this tree"})
    results["convert"] = {"status": run.NO_MODEL}
    del results["compression"], results["training"]
    text = run.markdown(results)
    assert "not measured: bench/runtime_speed.py is not in this tree" in text
    assert "`kerasml convert` against `import tensorflow`: skipped: no default digit model" in text
    assert "### Training" not in text and "### Smaller" not in text


def test_arguments(run):
    quick = run.parse_arguments(["--quick", "--only", "convert, compression"])
    assert quick.quick and quick.only == ["convert", "compression"] and quick.model is None
    assert run.parse_arguments([]).only == list(run.SECTIONS)
    with pytest.raises(SystemExit):
        run.parse_arguments(["--only", "speed"])


def _kerasml_imports(path: Path) -> set[str]:
    """Every `kerasml...` module a bench script imports, also inside functions (they import lazily,
    so a module moved by a restructure only fails when that section runs)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kerasml"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("kerasml"))
    return found


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_bench_scripts_import_modules_that_exist(script):
    missing = sorted(m for m in _kerasml_imports(BENCH / script) if importlib.util.find_spec(m) is None)
    assert not missing, f"bench/{script} imports modules that do not exist: {missing}"
