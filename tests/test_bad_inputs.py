"""Every bad input a user can bring gets one `error:` line, exit code 2, no traceback, and leaves
no output behind. The table is run in-process through Typer's test runner (one TensorFlow import)."""

from __future__ import annotations

import gzip
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kerasml.cli import app

runner = CliRunner()


def idx(array: np.ndarray) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    return (struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.tobytes())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, trained_digits):
    """Bad files of every kind, built once."""
    import h5py
    import keras

    d = tmp_path_factory.mktemp("bad")
    files = {"digits": trained_digits.model_path}
    def npz(name, **arrays):
        np.savez(d / name, **arrays)
        files[name] = d / name
    npz("empty.npz")
    npz("pickled.npz", x_train=np.array([{"pixels": 1}], dtype=object), y_train=np.array([0]))
    npz("two_channels.npz", x_train=np.zeros((3, 28, 28, 2), np.uint8), y_train=np.zeros(3, int))
    npz("negative.npz", x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([0, -3]))
    npz("nan.npz", x_train=np.full((2, 28, 28), np.nan), y_train=np.array([0, 1]))
    npz("no_images.npz", x_train=np.zeros((0, 28, 28), np.uint8), y_train=np.zeros(0, int))
    npz("count.npz", x_train=np.zeros((5, 28, 28), np.uint8), y_train=np.zeros(4, int))
    npz("strings.npz", x_train=np.array(["a", "b"]), y_train=np.array([0, 1]))
    npz("tiny_images.npz", x_train=np.zeros((2, 4, 4), np.uint8), y_train=np.array([0, 1]))
    npz("only_x_test.npz", x_test=np.zeros((2, 28, 28), np.uint8))
    npz("rgb32.npz", x_test=np.zeros((2, 32, 32, 3), np.uint8), y_test=np.array([0, 1]))
    raw = (d / "count.npz").read_bytes()
    (d / "truncated.npz").write_bytes(raw[: len(raw) // 2]); files["truncated.npz"] = d / "truncated.npz"
    (d / "notes.txt").write_text("not data"); files["notes.txt"] = d / "notes.txt"

    def idx_dir(name, **members):
        folder = d / name
        folder.mkdir()
        for member, content in members.items():
            (folder / member).write_bytes(content)
        files[name] = folder
    images, labels = np.zeros((3, 28, 28)), np.array([1, 2, 3])
    idx_dir("idx_truncated", **{"train-images-idx3-ubyte": idx(images)[:-10], "train-labels-idx1-ubyte": idx(labels)})
    idx_dir("idx_bad_gzip", **{"train-images-idx3-ubyte.gz": b"\x1f\x8b" + b"junk" * 10,
                               "train-labels-idx1-ubyte": idx(labels)})
    idx_dir("idx_no_labels", **{"train-images-idx3-ubyte": idx(images)})
    idx_dir("idx_bad_magic", **{"train-images-idx3-ubyte": b"\x08\x03" + idx(images)[2:],
                                "train-labels-idx1-ubyte": idx(labels)})
    idx_dir("idx_empty_file", **{"train-images-idx3-ubyte": b"", "train-labels-idx1-ubyte": idx(labels)})
    idx_dir("idx_test_only", **{"t10k-images-idx3-ubyte.gz": gzip.compress(idx(images)),
                                "t10k-labels-idx1-ubyte.gz": gzip.compress(idx(labels))})
    idx_dir("idx_label_count", **{"train-images-idx3-ubyte": idx(images), "train-labels-idx1-ubyte": idx(labels[:2])})
    idx_dir("idx_rgb_test", **{"t10k-images-idx3-ubyte": idx(np.zeros((3, 32, 32, 3))),
                               "t10k-labels-idx1-ubyte": idx(labels)})

    (d / "blank_labels.txt").write_text("a\n\nb\n" + "\n".join("cdefghij") + "\n")
    (d / "duplicate_labels.txt").write_text("\n".join(["a", "b", "a"] + list("cdefghi")) + "\n")
    (d / "latin1_labels.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (d / "a_directory").mkdir()
    (d / "a_file").write_text("in the way")
    (d / "garbage.mlmodel").write_bytes(b"\xff\xfe not a protobuf at all" * 20)
    converted = d / "good.mlmodel"
    result = runner.invoke(app, ["convert", str(trained_digits.model_path), "--labels", "digits",
                                 "--out", str(converted)])
    assert result.exit_code == 0, result.stderr
    (d / "truncated.mlmodel").write_bytes(converted.read_bytes()[:500])
    (d / "empty.mlpackage").mkdir()
    (d / "garbage.keras").write_bytes(b"PK\x03\x04 broken zip")
    (d / "garbage.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 20)
    with zipfile.ZipFile(d / "truncated.keras", "w") as archive:
        archive.writestr("config.json", "{not json")
    with h5py.File(d / "keras1.h5", "w") as h5:
        h5.attrs["keras_version"] = b"1.2.2"
        h5.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": [
            {"class_name": "Convolution2D", "config": {"border_mode": "valid"}}]}).encode()
    small = keras.Sequential([keras.layers.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    small.save_weights(d / "weights_only.weights.h5")
    (d / "weights_only.h5").write_bytes((d / "weights_only.weights.h5").read_bytes())
    keras.Sequential([keras.layers.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2),
                      keras.layers.Flatten(), keras.layers.Dense(10)]).save(d / "lambda.keras")
    first, second = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    merged = keras.layers.Flatten()(keras.layers.Concatenate()([first, second]))
    keras.Model([first, second], keras.layers.Dense(10)(merged)).save(d / "two_inputs.keras")
    keras.Sequential([keras.layers.Input((784,)), keras.layers.Dense(10)]).save(d / "flat.keras")
    keras.Sequential([keras.layers.Input((10,)), keras.layers.Dense(10)]).save(d / "tabular.keras")
    keras.Sequential([keras.layers.Input((None, None, 1)), keras.layers.GlobalAveragePooling2D(),
                      keras.layers.Dense(10)]).save(d / "any_size.keras")
    keras.Sequential([keras.layers.Input((28, 28, 1)), keras.layers.Flatten(),
                      keras.layers.Dense(3, activation="softmax")]).save(d / "three.keras")
    rgb = keras.Sequential([keras.layers.Input((32, 32, 3)), keras.layers.Flatten(),
                            keras.layers.Dense(10, activation="softmax")])
    rgb.save(d / "rgb.keras")
    assert runner.invoke(app, ["convert", str(d / "rgb.keras"), "--out", str(d / "rgb.mlmodel"),
                               "--labels", "digits"]).exit_code == 0
    keras.Sequential([keras.layers.Input((28, 28, 2)), keras.layers.Conv2D(4, 3, groups=2),
                      keras.layers.Flatten(), keras.layers.Dense(10)]).save(d / "two_channel.keras")
    # Bicubic resizing: neither Core ML format has it (grouped convolutions, once here, now convert).
    keras.Sequential([keras.layers.Input((28, 28, 3)), keras.layers.Resizing(18, 18, "bicubic"),
                      keras.layers.Flatten(),
                      keras.layers.Dense(10, activation="softmax")]).save(d / "bicubic.keras")
    (d / "not_an_image.png").write_text("hello")
    for path in d.iterdir():
        files.setdefault(path.name, path)
    return files


# (name, command line with {file} placeholders and {out} for the output, fragment of the error)
CASES = [
    ("unknown dataset", "train --dataset cifar --out {out}/m.keras", "unknown dataset"),
    ("missing data path", "train --data {out}/nowhere.npz --out {out}/m.keras", "does not exist"),
    ("data neither npz nor folder", "train --data {notes_txt} --out {out}/m.keras", "neither an .npz"),
    ("npz without arrays", "train --data {empty_npz} --out {out}/m.keras", "no x_train"),
    ("npz needing pickles", "train --data {pickled_npz} --out {out}/m.keras", "pickles"),
    ("npz with two channels", "train --data {two_channels_npz} --out {out}/m.keras", "shape"),
    ("npz negative label", "train --data {negative_npz} --out {out}/m.keras", "negative"),
    ("npz NaN pixels", "train --data {nan_npz} --out {out}/m.keras", "NaN"),
    ("npz empty dataset", "train --data {no_images_npz} --out {out}/m.keras", "empty"),
    ("npz label count", "train --data {count_npz} --out {out}/m.keras", "4 labels for 5 images"),
    ("npz string pixels", "train --data {strings_npz} --out {out}/m.keras", "dtype"),
    ("npz tiny images", "train --data {tiny_images_npz} --out {out}/m.keras", "at least 8x8"),
    ("npz truncated", "train --data {truncated_npz} --out {out}/m.keras", "not a readable .npz"),
    ("npz test only", "train --data {only_x_test_npz} --out {out}/m.keras", "x_test"),
    ("idx truncated", "train --data {idx_truncated} --out {out}/m.keras", "truncated"),
    ("idx damaged gzip", "train --data {idx_bad_gzip} --out {out}/m.keras", "damaged gzip"),
    ("idx images without labels", "train --data {idx_no_labels} --out {out}/m.keras", "no train-labels"),
    ("idx bad magic", "train --data {idx_bad_magic} --out {out}/m.keras", "not an IDX file"),
    ("idx empty file", "train --data {idx_empty_file} --out {out}/m.keras", "too short"),
    ("idx test only", "train --data {idx_test_only} --out {out}/m.keras", "test images only"),
    ("idx label count", "train --data {idx_label_count} --out {out}/m.keras", "2 labels for 3 images"),
    ("test data of another shape", "train --dataset mnist-sample --test-data {idx_rgb_test} --out {out}/m.keras", "same size"),
    ("train output suffix", "train --dataset mnist-sample --out {out}/model.txt", "must end in .keras"),
    ("train output exists", "train --dataset mnist-sample --out {digits}", "--force"),
    ("train output under a file", "train --dataset mnist-sample --out {a_file}/m.keras", "not a directory"),
    ("validation split", "train --dataset mnist-sample --val-split 0.9 --out {out}/m.keras", "val-split"),
    ("unknown architecture", "train --arch resnet9000 --out {out}/m.keras", "unknown architecture"),
    ("convert missing model", "convert {out}/nope.keras --out {out}/m.mlmodel", "not found"),
    ("convert a text file", "convert {notes_txt} --out {out}/m.mlmodel", "not a Keras model"),
    ("convert a broken .keras", "convert {garbage_keras} --out {out}/m.mlmodel", "cannot load"),
    ("convert a .keras without weights", "convert {truncated_keras} --out {out}/m.mlmodel", "cannot load"),
    ("convert a broken .h5", "convert {garbage_h5} --out {out}/m.mlmodel", "not a readable HDF5"),
    ("convert a Keras 1 file", "convert {keras1_h5} --out {out}/m.mlmodel", "Keras 1.2.2"),
    ("convert weights only", "convert {weights_only_h5} --out {out}/m.mlmodel", "weights only"),
    ("convert a Lambda layer", "convert {lambda_keras} --out {out}/m.mlmodel", "Lambda"),
    ("convert two inputs", "convert {two_inputs_keras} --out {out}/m.mlmodel", "2 inputs"),
    ("convert a non-image input", "convert {tabular_keras} --out {out}/m.mlmodel", "--input-shape"),
    ("convert a two-channel image model", "convert {two_channel_keras} --out {out}/m.mlmodel", "2 channels"),
    ("convert what Core ML cannot express", "convert {bicubic_keras} --out {out}/m.mlmodel", "either format"),
    ("convert any-size input", "convert {any_size_keras} --out {out}/m.mlmodel", "fixed input shape"),
    ("convert wrong input shape", "convert {flat_keras} --input-shape 30x30 --out {out}/m.mlmodel", "900 values"),
    ("convert unparsable input shape", "convert {flat_keras} --input-shape big --out {out}/m.mlmodel", "must look like"),
    ("convert label count", "convert {digits} --labels a,b,c --out {out}/m.mlmodel", "3 labels given"),
    ("convert no labels for 3 outputs", "convert {three_keras} --out {out}/m.mlmodel", "pass --labels"),
    ("convert unknown preset", "convert {digits} --labels animals --out {out}/m.mlmodel", "unknown label preset"),
    ("convert labels auto without record", "convert {three_keras} --labels auto --out {out}/m.mlmodel", "training record"),
    ("label file with a blank", "convert {digits} --labels @{blank_labels_txt} --out {out}/m.mlmodel", "blank"),
    ("label file with duplicates", "convert {digits} --labels @{duplicate_labels_txt} --out {out}/m.mlmodel", "twice"),
    ("label file not UTF-8", "convert {digits} --labels @{latin1_labels_txt} --out {out}/m.mlmodel", "UTF-8"),
    ("label file missing", "convert {digits} --labels @{out}/none.txt --out {out}/m.mlmodel", "not found"),
    ("label file is a directory", "convert {digits} --labels @{a_directory} --out {out}/m.mlmodel", "directory"),
    ("unknown format", "convert {digits} --format onnx --out {out}/m.onnx", "unknown --format"),
    ("unknown precision", "convert {digits} --precision int3 --out {out}/m.mlmodel", "unknown --precision"),
    ("output suffix", "convert {digits} --format mlpackage --out {out}/m.mlmodel", "must end in .mlpackage"),
    ("convert output exists", "convert {digits} --out {good_mlmodel}", "--force"),
    ("bad bias", "convert {digits} --bias one --out {out}/m.mlmodel", "must be a number"),
    ("bad scale", "convert {digits} --scale -1 --out {out}/m.mlmodel", "must be positive"),
    ("unknown deployment target", "convert {digits} --min-target iOS99 --out {out}/m.mlmodel", "unknown --min-target"),
    ("inspect garbage", "inspect {garbage_mlmodel}", "not a readable Core ML model"),
    ("inspect truncated", "inspect {truncated_mlmodel}", "not a readable Core ML model"),
    ("inspect empty package", "inspect {empty_mlpackage}", "not a valid .mlpackage"),
    ("verify against the wrong model", "verify {good_mlmodel} --keras {three_keras}", "do not fit"),
    ("verify with data of another size", "verify {good_mlmodel} --keras {digits} --data {rgb32_npz}", "takes 28x28x1"),
    ("evaluate data of another size", "evaluate {good_mlmodel} --data {rgb32_npz} --plot {out}/c.png", "takes 28x28x1"),
    ("evaluate not a model", "evaluate {garbage_mlmodel} --data {idx_test_only} --plot {out}/c.png", "Core ML model"),
    ("predict not an image", "predict {good_mlmodel} {not_an_image_png}", "cannot read"),
    ("predict missing image", "predict {good_mlmodel} {out}/missing.png", "does not exist"),
    # The app folder holds the contract a model is checked against; an RGB model into a real app
    # folder is refused in tests/test_package.py (test_refuses_models_that_do_not_fit).
    ("package into a folder without the app", "package {rgb_mlmodel} --app {out}", "has no DigitDemo.xcodeproj"),
]


@pytest.mark.parametrize("name, command, fragment", CASES, ids=[case[0] for case in CASES])
def test_bad_input(inputs, tmp_path, name, command, fragment):
    out = tmp_path / "out"
    out.mkdir()
    args = [part.format(out=out, **{k.replace(".", "_"): v for k, v in inputs.items()})
            for part in command.split()]
    before = {p: p.stat().st_mtime for p in Path(inputs["notes.txt"]).parent.iterdir()}
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0], lines[0]
    print(f"{name}: {lines[0]}")  # with -s, the table of what users see
    assert "Traceback" not in result.stdout + result.stderr
    assert list(out.iterdir()) == [], "an output was left behind"
    after = {p: p.stat().st_mtime for p in Path(inputs["notes.txt"]).parent.iterdir()}
    assert after == before, "an input file was changed or a stray file written"


def test_the_table_is_large():
    assert len(CASES) >= 30
