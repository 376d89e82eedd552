"""kerasml tune: a tiny random search writes its table and a best model that convert can use."""

from __future__ import annotations

import json

import pytest

from kerasml.errors import KerasmlError
from conftest import make_shapes, quiet


@pytest.mark.slow
def test_random_search_writes_table_and_best_model(tmp_path):
    from kerasml.record import read_record
    from kerasml.training.options import TrainOptions
    from kerasml.training.tune import TuneOptions, tune

    data = make_shapes(tmp_path / "shapes", per_class=10)
    out = tmp_path / "models" / "tuned.keras"
    lines = []
    # chollet: no batch normalisation, so each trial compiles and trains in a second or two.
    result = tune(TuneOptions(TrainOptions(data=data, arch="chollet", epochs=1, out=out, quiet=True),
                              trials=2, epochs=1), say=lines.append)

    table = json.loads((tmp_path / "models" / "tuned.tuning.json").read_text())
    assert table["algorithm"] == "random" and len(table["trials"]) == 2
    record = read_record(out)
    validation_images = record.samples["validation"]
    for trial in table["trials"]:
        assert set(trial["hyperparameters"]) == {"width", "dropout", "learning_rate", "batch_size"}
        # A share of the validation images the retrained model was scored on too: k of them right.
        right = trial["val_accuracy"] * validation_images
        assert right == pytest.approx(round(right), abs=1e-3) and trial["epochs"] == 1
    assert table["best"] == result.best
    markdown = (tmp_path / "models" / "tuned.tuning.md").read_text()
    assert markdown.count("\n| ") == 3 and "kerasml train --arch chollet --width" in markdown

    assert record.labels == ["circle", "square", "triangle"] and record.epochs_run == 1
    assert record.batch_size == result.best["batch_size"]
    assert record.extra["learning_rate"] == pytest.approx(result.best["learning_rate"])
    assert record.extra["width"] == result.best["width"] and record.extra["tuning"]["trials"] == 2
    # keras-tuner's working folder is gone; only our outputs remain.
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "tuned.history.json", "tuned.history.png", "tuned.keras", "tuned.training.json",
        "tuned.tuning.json", "tuned.tuning.md"]
    assert sum(line.startswith("  trial ") for line in lines) == 2        # one line per trial
    assert result.lines()[-1] == f"next: kerasml convert {out}"


def test_tune_checks_options_before_searching(tmp_path, small_digits_npz):
    from kerasml.training.options import TrainOptions
    from kerasml.training.tune import TuneOptions, tune

    def options(**kwargs):
        return TrainOptions(data=small_digits_npz, out=tmp_path / "t.keras", **kwargs)

    with pytest.raises(KerasmlError, match="algorithm"):
        tune(TuneOptions(options(), algorithm="grid"), say=quiet)
    with pytest.raises(KerasmlError, match="Hyperband needs --epochs 3"):
        tune(TuneOptions(options(), algorithm="hyperband", epochs=2), say=quiet)
    with pytest.raises(KerasmlError, match="at least 1"):
        tune(TuneOptions(options(), trials=0), say=quiet)
    (tmp_path / "t.tuning.md").write_text("an earlier search")
    with pytest.raises(KerasmlError, match="--force"):
        tune(TuneOptions(options()), say=quiet)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tuning.md"]


@pytest.mark.parametrize("arch", ["kerasml", "chollet"])
def test_width_and_dropout_reshape_any_architecture(arch):
    import keras

    from kerasml.training.architectures import get_architecture
    from kerasml.training.recipe import build_model

    architecture = get_architecture(arch)
    plain = build_model(architecture, (32, 32, 3), 5)
    wide = build_model(architecture, (32, 32, 3), 5, width=2.0, dropout=0.25)
    convs = [(a.filters, b.filters) for a, b in zip(plain.layers, wide.layers) if isinstance(a, keras.layers.Conv2D)]
    assert convs and all(b == 2 * a for a, b in convs)
    assert {layer.rate for layer in wide.layers if isinstance(layer, keras.layers.Dropout)} == {0.25}
    assert wide.output_shape == plain.output_shape == (None, 5)
    assert wide.count_params() > 2 * plain.count_params()


def test_trials_of_a_backbone_see_its_own_pixel_scaling(tmp_path, monkeypatch):
    """`kerasml tune --arch mobilenetv2`: the search trains on pixels scaled to [-1, 1] as the
    backbone wants them and as the final training records them, not on tune's default x/255."""
    from kerasml.training import tune as tune_module
    from kerasml.training.options import TrainOptions

    data = make_shapes(tmp_path / "shapes", per_class=4)
    seen = {}

    def search(options, arch, prepared, workdir, say):
        seen["search"] = prepared.preprocessing
        return [{"hyperparameters": {"width": 0.35, "dropout": 0.2, "learning_rate": 1e-3, "batch_size": 32},
                 "val_accuracy": 0.5, "val_loss": 1.0, "epochs": 1}]

    def train(options, say, data):
        seen["train"] = data.preprocessing
        raise KerasmlError("stop here: the scaling is what this test is about")

    monkeypatch.setattr(tune_module, "_search", search)
    monkeypatch.setattr(tune_module, "train", train)
    monkeypatch.setattr(tune_module, "_write_tables", lambda *args: [])
    with pytest.raises(KerasmlError, match="stop here"):
        tune_module.tune(tune_module.TuneOptions(TrainOptions(data=data, arch="mobilenetv2", image_size=32,
                                                              out=tmp_path / "t.keras", quiet=True)), say=quiet)
    assert seen["search"].scale == pytest.approx(1 / 127.5) and seen["search"].bias == [-1.0] * 3
    assert seen["train"] == seen["search"]
