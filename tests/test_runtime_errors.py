"""Bad input to the kerasml runtime gives one clear `KerasmlError`, never a traceback or garbage."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kerasml.errors import KerasmlError
from kerasml.runtime import UnsupportedModelError, load_model

ct = pytest.importorskip("coremltools")
from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402


def _dense_spec():
    b = NeuralNetworkBuilder([("data", datatypes.Array(64))], [("out", None)])
    b.add_inner_product("dense", np.ones((32, 64), np.float32), np.zeros(32, np.float32), 64, 32, True, "data", "out")
    return b.spec


def test_import_does_not_pull_in_tensorflow():
    code = "import sys, kerasml.runtime; print('tensorflow' in sys.modules, 'coremltools' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_missing_path(tmp_path):
    with pytest.raises(KerasmlError, match="does not exist"):
        load_model(tmp_path / "nope.mlmodel")


def test_not_a_model(tmp_path):
    path = tmp_path / "notes.mlmodel"
    path.write_text("these are not the weights you are looking for\n")
    with pytest.raises(KerasmlError, match="not a readable Core ML model"):
        load_model(path)


def test_folder_that_is_not_a_package(tmp_path):
    with pytest.raises(KerasmlError, match="is not an .mlpackage"):
        load_model(tmp_path)


def test_truncated_file(tmp_path):
    data = _dense_spec().SerializeToString()
    path = tmp_path / "cut.mlmodel"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(KerasmlError, match="not a readable Core ML model"):
        load_model(path)


def test_saved_model_round_trips(tmp_path):
    path = tmp_path / "dense.mlmodel"
    path.write_bytes(_dense_spec().SerializeToString())
    model = load_model(path)
    assert (model.model_type, model.input_name, model.image, model.labels) == ("neuralNetwork", "data", None, None)
    np.testing.assert_allclose(model.predict({"data": np.ones((2, 64))})["out"].reshape(2, 32), 64.0)


def test_weights_of_the_wrong_size_are_rejected():
    spec = _dense_spec()
    spec.neuralNetwork.layers[0].innerProduct.bias.floatValue.append(1.0)
    with pytest.raises(KerasmlError, match="layer 'dense' bias: 33 float values, expected 32"):
        load_model(spec)


def test_input_of_the_wrong_size_is_rejected():
    with pytest.raises(KerasmlError, match="input 'data' takes \\(64,\\) per prediction"):
        load_model(_dense_spec()).predict({"data": np.ones((2, 63))})


def test_dangling_blob_is_an_error():
    spec = _dense_spec()
    spec.neuralNetwork.layers[0].input[0] = "elsewhere"
    with pytest.raises(KerasmlError, match="reads blob 'elsewhere' that nothing produces"):
        load_model(spec).predict({"data": np.ones((1, 64))})


def test_other_model_types_are_unsupported():
    spec = _dense_spec()
    spec.ClearField("neuralNetwork")
    spec.identity.SetInParent()
    with pytest.raises(UnsupportedModelError, match="model type 'identity'"):
        load_model(spec)


def test_a_model_without_inputs_is_refused():
    spec = _dense_spec()
    del spec.description.input[:]
    with pytest.raises(UnsupportedModelError, match="the model has no inputs"):
        load_model(spec)
