"""kerasml report: every picture exists, is a real PNG of a sensible size, and report.md links it."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from kerasml.errors import KerasmlError
from conftest import make_shapes, make_split_shapes, quiet

PICTURES = ["curves.png", "confusion.png", "per_class.png", "mistakes.png", "filters.png", "feature_maps.png"]


def check_pictures(folder, expected=PICTURES):
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected + ["report.md"])
    markdown = (folder / "report.md").read_text()
    assert sorted(re.findall(r"\]\(([^)]+\.png)\)", markdown)) == sorted(expected)
    for name in expected:
        with Image.open(folder / name) as image:
            assert image.format == "PNG", name
            image.verify()
        with Image.open(folder / name) as image:
            width, height = image.size
            assert 300 <= width <= 3000 and 150 <= height <= 3000, (name, image.size)
    return markdown


@pytest.mark.slow
def test_report_on_a_folder_model(tmp_path):
    from kerasml.report.build import report
    from kerasml.training.train import TrainOptions, train

    data = make_split_shapes(tmp_path / "shapes")
    model = train(TrainOptions(data=data, epochs=1, batch_size=16, out=tmp_path / "shapes.keras", quiet=True),
                  say=quiet).model_path
    result = report(model, say=quiet)          # the data is found through the training record
    assert result.folder == tmp_path / "shapes.report" and result.samples == 18
    assert result.images == "shapes (trained on): test split"
    markdown = check_pictures(result.folder)
    assert "| circle | 6 |" in markdown and "18 images (shapes (trained on): test split)" in markdown
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary folders left

    with pytest.raises(KerasmlError, match="--force"):
        report(model, say=quiet)
    again = report(model, out_dir=tmp_path / "again", samples=5, force=True, say=quiet)
    assert again.samples == 5
    other = make_shapes(tmp_path / "pets", per_class=2, classes={"cat": (9, 9, 9), "dog": (99, 9, 9)})
    with pytest.raises(KerasmlError, match="not the model's labels"):
        report(model, data=other, out_dir=tmp_path / "pets.report", say=quiet)


def test_report_on_the_digit_model_uses_its_test_split(trained_digits, tmp_path):
    from kerasml.report.build import report

    result = report(trained_digits.model_path, out_dir=tmp_path / "digits", say=quiet)
    assert result.samples == 200 and result.images.endswith(": test split")
    check_pictures(result.folder)
    # The same 200 test digits the record was scored on, predicted again: the same accuracy.
    record_accuracy = trained_digits.record.test_accuracy
    assert result.accuracy == pytest.approx(record_accuracy, abs=1 / 200)


def test_report_without_record_uses_the_image_policy(tmp_path, trained_digits, small_digits_npz):
    """No record: a 28x28 grayscale model is reported on MNIST's digits (model/images.py: offline the
    bundled sample, said so), and --data still wins."""
    import shutil

    from kerasml.report.build import report

    model = tmp_path / "bare.keras"
    shutil.copy(trained_digits.model_path, model)             # no record, no history beside it
    digits = report(model, out_dir=tmp_path / "digits.report", samples=200, say=quiet)
    assert digits.samples == 200 and ("MNIST" in digits.images or "sample" in digits.images), digits.images
    result = report(model, data=small_digits_npz, say=quiet)
    assert any("no training record" in note for note in result.notes)
    check_pictures(result.folder, [p for p in PICTURES if p != "curves.png"])
