"""verify: top-1 agreement ignores near-ties, an all-ties model says so, and on macOS Apple's Core ML
is a third column checked against the kerasml runtime (tested here with a stand-in for its predict)."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.checks.verify import top1_check, verify


def test_near_ties_are_counted_not_held_against_the_conversion():
    expected = np.array([[0.7, 0.2, 0.1], [0.5000001, 0.4999999, 0.0], [0.1, 0.1, 0.8]])
    actual = np.array([[0.7, 0.2, 0.1], [0.4999999, 0.5000001, 0.0], [0.1, 0.1, 0.8]])
    result = top1_check(expected, actual, atol=1e-5, min_agreement=1.0)
    assert result.check.passed and result.agreement == 1.0 and result.near_ties == 1
    assert "1 near-tie" in result.check.detail


def test_a_decisive_disagreement_still_fails():
    expected = np.array([[0.7, 0.3], [0.6, 0.4]])
    actual = np.array([[0.3, 0.7], [0.6, 0.4]])
    result = top1_check(expected, actual, atol=1e-5, min_agreement=1.0)
    assert not result.check.passed and result.agreement == 0.5 and result.near_ties == 0


def test_all_ties_says_so_instead_of_failing():
    uniform = np.full((64, 10), 0.1) + np.random.default_rng(0).normal(0, 1e-8, (64, 10))
    shuffled = uniform[:, ::-1]
    result = top1_check(uniform, shuffled, atol=1e-5, min_agreement=1.0)
    assert result.check.passed and result.agreement is None and result.near_ties == 64
    assert "all 64 images are near-ties" in result.check.detail


@pytest.fixture(scope="module")
def converted(trained_digits, tmp_path_factory):
    from kerasml.conversion.to_coreml import ConvertOptions, convert

    out = tmp_path_factory.mktemp("ties") / "digits.mlmodel"
    convert(ConvertOptions(model=trained_digits.model_path, labels="digits", out=out),
            say=lambda m: None, warn=lambda m: None)
    return out, trained_digits.model_path


class _StandInCoreML:
    """Answers like coremltools' MLModel.predict on macOS, from the kerasml runtime's own
    probabilities (plus `shift` on class 0 of every image)."""

    shift = 0.0

    def __init__(self, path):
        from kerasml.runtime import load_model
        self.model = load_model(path)

    def predict(self, features):
        pixels = np.asarray(features["image"], dtype=np.uint8)[None, ..., None]
        row = self.model.predict_probabilities(pixels)[0]
        row[0] += self.shift
        return {"classLabel": int(row.argmax()), "labelProbabilities": dict(zip(self.model.labels, row))}


@pytest.mark.parametrize("shift, passes", [(0.0, True), (1e-3, False)])
def test_macos_adds_core_ml_as_a_third_column(converted, monkeypatch, shift, passes):
    import platform

    from kerasml.libs import coremltools

    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(_StandInCoreML, "shift", shift)
    monkeypatch.setattr(coremltools().models, "MLModel", _StandInCoreML)
    result = verify(converted[0], converted[1], samples=20)
    check = next(c for c in result.checks if c.name == "Core ML")
    assert check.passed is passes and result.passed is passes
    assert set(result.columns) == {"Keras", "kerasml runtime", "Apple Core ML"}   # each column named by its runtime
    text = "\n".join(result.lines())
    assert "kerasml runtime" in text and "Core ML" in text


def test_linux_has_no_core_ml_column(converted):
    import platform

    if platform.system() == "Darwin":
        pytest.skip("on macOS the Core ML column is real")
    result = verify(converted[0], converted[1], samples=20)
    assert set(result.columns) == {"Keras", "kerasml runtime"} and all(c.name != "Core ML" for c in result.checks)
