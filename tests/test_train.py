import json

import numpy as np
import pytest
from PIL import Image

from kerasml.errors import KerasmlError
from kerasml.record import read_record
from kerasml.training.train import TrainOptions, train


def test_training_writes_model_record_history_and_plots(trained_digits, small_digits_npz):
    out = trained_digits.model_path
    stem = out.with_suffix("")
    for suffix in (".keras", ".training.json", ".history.json", ".history.png", ".confusion.png"):
        assert stem.with_name(stem.name + suffix).is_file(), suffix
    record = read_record(out)
    assert record.architecture == "tutorial" and record.parameters == 94_602
    assert record.samples == {"train": 540, "validation": 60, "test": 200}
    assert record.preprocessing.scale == pytest.approx(1 / 255) and record.preprocessing.bias == [0.0]
    assert (record.preprocessing.height, record.preprocessing.width, record.preprocessing.channels) == (28, 28, 1)
    assert record.labels == [str(d) for d in range(10)] and record.label_preset == "digits"
    assert record.test["samples"] == 200
    # The recorded test accuracy is the saved model's on the .npz's 200 test digits.
    import keras
    with np.load(small_digits_npz) as data:
        x_test, y_test = data["x_test"], data["y_test"]
    predicted = keras.saving.load_model(out).predict(x_test[..., None] / np.float32(255), verbose=0).argmax(axis=1)
    assert record.test_accuracy == pytest.approx(float((predicted == y_test).mean()), abs=1 / 200)
    assert record.epochs_run == 1 and record.seed == 42 and record.status == "complete"
    assert {"tensorflow", "keras", "kerasml", "numpy"} <= record.versions.keys()
    history = json.loads(stem.with_name(stem.name + ".history.json").read_text())
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= history.keys()
    with Image.open(stem.with_name(stem.name + ".history.png")) as image:
        assert image.size[0] >= 600


@pytest.mark.slow
def test_same_seed_same_model(tmp_path, small_digits_npz):
    import keras
    weights = []
    for run in range(2):
        result = train(TrainOptions(data=small_digits_npz, arch="chollet", epochs=1, batch_size=64,
                                    out=tmp_path / f"run{run}.keras", quiet=True), say=lambda m: None)
        weights.append(keras.saving.load_model(result.model_path).get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_existing_output_needs_force(trained_digits, small_digits_npz):
    with pytest.raises(KerasmlError, match="--force"):
        train(TrainOptions(data=small_digits_npz, arch="tutorial", epochs=1,
                           out=trained_digits.model_path, quiet=True), say=lambda m: None)


@pytest.mark.slow
def test_nan_loss_stops_without_writing_a_model(tmp_path, small_digits_npz):
    out = tmp_path / "diverged.keras"
    with pytest.raises(KerasmlError, match="NaN"):
        train(TrainOptions(data=small_digits_npz, arch="chollet", epochs=2, learning_rate=1e12,
                           out=out, quiet=True), say=lambda m: None)
    assert list(tmp_path.iterdir()) == []


def test_bad_options_fail_before_training(tmp_path):
    with pytest.raises(KerasmlError, match=".keras"):
        train(TrainOptions(dataset="mnist-sample", out=tmp_path / "model.txt"), say=lambda m: None)
    with pytest.raises(KerasmlError, match="val-split"):
        train(TrainOptions(dataset="mnist-sample", val_split=0.9, out=tmp_path / "m.keras"), say=lambda m: None)
    with pytest.raises(KerasmlError, match="unknown dataset"):
        train(TrainOptions(dataset="cifar", out=tmp_path / "m.keras"), say=lambda m: None)
