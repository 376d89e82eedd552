"""`kerasml diff`: a clean conversion has no divergent layer in any format; a fault is found at the
layer it was put in; fused layers are one row; bad input is one line."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from test_cli import assert_one_line_error, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from diff_examples import scale_one_weight  # noqa: E402  (the fault docs/diff.md shows)

pytestmark = pytest.mark.slow
LABELS = ",".join(f"c{i}" for i in range(10))


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> Path:
    """A small CNN with the layers conversion fuses: Conv → BatchNorm → ReLU, Dropout, Dense."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        keras.layers.Conv2D(6, 3, name="conv_a"),
        keras.layers.BatchNormalization(name="norm_a"),
        keras.layers.ReLU(name="relu_a"),
        keras.layers.MaxPooling2D(name="pool_a"),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv_b"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dropout(0.3, name="drop"),
        keras.layers.Dense(10, activation="softmax", name="head"),
    ])
    return _saved_with_active_norm(model, "norm_a", tmp_path_factory.mktemp("diff") / "cnn.keras", seed=0)


def _saved_with_active_norm(model, norm_name: str, path: Path, seed: int) -> Path:
    """`model` saved to `path`, its batch normalisation doing something, so folding it is visible."""
    norm = model.get_layer(norm_name)
    norm.set_weights([w + np.random.default_rng(seed).uniform(0.5, 1.5, w.shape).astype(np.float32)
                      for w in norm.get_weights()])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def converted(cnn):
    out = {}
    for fmt in ("mlmodel", "mlpackage", "aimodel"):
        if fmt == "aimodel":
            pytest.importorskip("coreai.authoring", reason="Apple's coreai-core is not installed here")
        result = run("convert", cnn, "--labels", LABELS, "--format", fmt, "--out", cnn.with_suffix("." + fmt))
        assert result.returncode == 0, result.stderr
        out[fmt] = cnn.with_suffix("." + fmt)
    return out


@pytest.mark.parametrize("fmt", ["mlmodel", "mlpackage", "aimodel"])
def test_a_clean_conversion_departs_nowhere(cnn, converted, fmt):
    result = run("diff", cnn, converted[fmt], "--samples", "20", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["first_divergent_layer"] is None
    compared = [row for row in report["rows"] if row["within"] is not None]
    assert all(row["within"] and row["relative"] < 1e-4 for row in compared)
    names = [row["layer"] for row in report["rows"]]
    assert names[-1].startswith("head") or names[-1] == "drop + head"
    assert len(compared) >= 4, names               # the convolutions, pooling and the head at least
    assert "pool_a" in names, names                # its own row, though coremltools renames the op


def test_fused_layers_are_one_row(cnn, converted):
    report = json.loads(run("diff", cnn, converted["mlpackage"], "--samples", "8", "--json").stdout)
    names = [row["layer"] for row in report["rows"]]
    assert "conv_a + norm_a" in names, names       # the normalisation folded into the convolution
    assert any(name.endswith("drop + head") or name == "drop + head" for name in names), names


@pytest.fixture(scope="module")
def blocks(tmp_path_factory) -> Path:
    """The two shapes the zoo found misaligned: a SeparableConv2D whose pointwise half TensorFlow
    folds into the batch normalisation after it (Xception, NASNet), and Dense layers on a 4-D tensor
    around a GELU, whose reshapes Core AI folds into the matmuls (ConvNeXt)."""
    import keras

    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((10, 10, 3)),
        keras.layers.Conv2D(8, 3, name="stem"),
        keras.layers.SeparableConv2D(8, 3, padding="same", use_bias=False, name="sep"),  # 8 → 8: sizes alike
        keras.layers.BatchNormalization(name="sep_bn"),
        keras.layers.Dense(32, name="expand"),
        keras.layers.Activation("gelu", name="gelu"),
        keras.layers.Dense(8, name="project"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(10, activation="softmax", name="head"),
    ])
    return _saved_with_active_norm(model, "sep_bn", tmp_path_factory.mktemp("blocks") / "blocks.keras", seed=1)


@pytest.mark.parametrize("fmt", ["mlpackage", "aimodel"])
def test_folded_halves_are_compared_where_the_layer_output_is(blocks, fmt):
    if fmt == "aimodel":
        pytest.importorskip("coreai.authoring", reason="Apple's coreai-core is not installed here")
    out = blocks.with_suffix("." + fmt)
    assert run("convert", blocks, "--labels", LABELS, "--format", fmt, "--out", out).returncode == 0
    report = json.loads(run("diff", blocks, out, "--samples", "8", "--json").stdout)
    rows = {row["layer"]: row for row in report["rows"]}
    assert report["first_divergent_layer"] is None, report["rows"]
    assert "sep + sep_bn" in rows, list(rows)        # its depthwise half alone is not its output
    for name in ("expand", "gelu", "project"):       # each at its own value, not a neighbour's
        assert rows[name]["within"] is True, rows[name]


def test_a_fault_is_found_at_its_layer(cnn, converted, tmp_path):
    from kerasml.model.layer_record import read
    from kerasml.runtime import load_model

    faulty = tmp_path / "faulty.mlpackage"
    shutil.copytree(converted["mlpackage"], faulty)
    record = read(load_model(faulty).creator_defined)
    scale_one_weight(faulty, record["conv_b"], 1.05)     # after conversion, in one layer's weights
    result = run("diff", cnn, faulty, "--samples", "20", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["first_divergent_layer"] == "conv_b"
    rows = {row["layer"]: row for row in report["rows"]}
    assert rows["conv_a + norm_a"]["within"] and rows["relu_a"]["within"]


def test_the_plot_is_written(cnn, converted, tmp_path):
    png = tmp_path / "layers.png"
    result = run("diff", cnn, converted["mlmodel"], "--samples", "8", "--plot", png)
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "no layer departs from Keras beyond the tolerance" in result.stdout


def test_another_keras_model_is_one_line(converted, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    other = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    other.save(tmp_path / "other.keras")
    assert_one_line_error(run("diff", tmp_path / "other.keras", converted["mlpackage"]), "was not converted from")


def test_a_model_without_the_layer_record_is_one_line(cnn, converted, tmp_path):
    from kerasml.libs import coremltools

    ct = coremltools()
    spec = ct.utils.load_spec(str(converted["mlmodel"]))
    del spec.description.metadata.userDefined["com.kerasml.layers"]
    bare = tmp_path / "bare.mlmodel"
    ct.utils.save_spec(spec, str(bare))
    assert_one_line_error(run("diff", cnn, bare), "convert the model again")


@pytest.fixture(scope="module")
def overflowing(tmp_path_factory) -> Path:
    """A CNN whose first convolution's values exceed float16's ±65504 while its outputs are ordinary:
    ReLU is positively homogeneous, so scaling `big` by k and `after`'s kernel by 1/k changes nothing
    Keras computes (in float32)."""
    import keras

    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="big"),
        keras.layers.MaxPooling2D(name="pool"),
        keras.layers.Conv2D(6, 3, name="after"),
        keras.layers.ReLU(name="relu"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(10, activation="softmax", name="head"),
    ])
    images = np.random.default_rng(1).uniform(0, 1, (64, 12, 12, 1)).astype(np.float32)
    peak = float(keras.Model(model.inputs, model.get_layer("big").output).predict(images, verbose=0).max())
    k = 8 * 65504 / peak
    kernel, bias = model.get_layer("big").get_weights()
    model.get_layer("big").set_weights([kernel * k, bias * k])
    kernel, bias = model.get_layer("after").get_weights()
    model.get_layer("after").set_weights([kernel / k, bias])
    path = tmp_path_factory.mktemp("fp16") / "big.keras"
    model.save(path)
    return path


def _convert(keras_path: Path, out: Path, *options) -> Path:
    result = run("convert", keras_path, "--labels", LABELS, "--out", out, *options)
    assert result.returncode == 0, result.stderr
    return out


def test_float16_overflow_is_found_and_the_named_fix_removes_it(overflowing, tmp_path):
    half = _convert(overflowing, tmp_path / "half.mlpackage", "--precision", "fp16")
    result = run("diff", overflowing, half, "--samples", "20", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["compute"] == "fp16" and report["first_divergent_layer"] == "big"
    kinds = {event["layer"]: event["kind"] for event in report["fp16_overflow_layers"]}
    assert kinds["big"] == kinds["pool"] == "overflow"
    assert {kinds[layer] for layer in ("after", "relu", "flat", "head")} == {"follows"}
    assert report["fp32_layers"] == ["big", "pool", "after"]   # the overflowing layers and their reader
    plot = tmp_path / "layers.png"   # inf and NaN rows are drawn too, not a crash
    text = run("diff", overflowing, half, "--samples", "20", "--plot", plot).stdout
    assert "--precision fp16 --fp32-layers big,pool,after" in text and "4 later layers" in text
    assert plot.read_bytes().startswith(b"\x89PNG")

    fixed = _convert(overflowing, tmp_path / "fixed.mlpackage", "--precision", "fp16", "--fp32-layers",
                     ",".join(report["fp32_layers"]))
    result = run("diff", overflowing, fixed, "--samples", "20", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["first_divergent_layer"] is None and report["fp16_overflow_layers"] == []
    assert report["top1_changed"] == 0 and report["compute"] == "fp16"


def test_a_neural_network_under_fp16_compute_and_an_fp32_program(overflowing, tmp_path):
    network = _convert(overflowing, tmp_path / "big.mlmodel")
    assert run("diff", overflowing, network, "--samples", "10").returncode == 0   # float32: as Keras
    result = run("diff", overflowing, network, "--samples", "10", "--compute", "fp16")
    assert result.returncode == 1
    assert "fp16: big reaches" in result.stdout
    assert "--format mlpackage --precision fp16 --fp32-layers big,pool,after" in result.stdout
    program = _convert(overflowing, tmp_path / "big.mlpackage")
    report = json.loads(run("diff", overflowing, program, "--samples", "10", "--compute", "fp16", "--json").stdout)
    assert report["compute"] == "fp32" and report["first_divergent_layer"] is None
    assert "computes in float32 on every compute unit" in report["notes"][0]
