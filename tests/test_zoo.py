"""The zoo's fast subset (bench/zoo_cases.py, `fast=True`): every single-layer case and a small
keras.applications model, each converted to Core ML in both formats and verified against Keras with
kerasml's runtime, and to Core AI, verified with Apple's runtime (and against kerasml's runtime on
the same ML Program), and diffed layer by Keras layer (no layer departs). `make zoo` runs every case, the full keras.applications families included.

A case the runtime cannot run yet (UnsupportedModelError, "does not implement") is an expected
failure naming the op: the conversion itself must succeed, and whatever the runtime runs must match."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from zoo import FORMATS, build, run_case  # noqa: E402
from zoo_cases import CASES  # noqa: E402

FAST = [case for case in CASES if case.fast]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each case's Keras model saved once (both formats convert the same file)."""
    folder = tmp_path_factory.mktemp("zoo")
    cache = {}

    def get(case):
        if case.name not in cache:
            cache[case.name] = build(case, folder)
        return cache[case.name]
    return get


def test_every_layer_case_is_in_the_fast_subset():
    assert all(case.fast for case in CASES if case.kind == "layer")
    assert any(case.kind == "model" for case in FAST)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", FAST, ids=[case.name for case in FAST])
def test_case_converts_and_verifies(case, fmt, saved):
    if fmt == "aimodel":
        pytest.importorskip("coreai.authoring", reason="Apple's coreai-core is not installed here")
    path, parameters = saved(case)
    row = run_case(case, fmt, path, parameters, samples=16, timings=False)
    if row.status == "runtime":
        pytest.xfail(f"kerasml runtime: {row.detail}")
    assert row.status == "verified", f"{case.name} {fmt}: {row.status}: {row.detail}"
    assert row.max_abs_diff <= 1e-5
    if row.runtimes_max_abs_diff is not None:      # Apple's runtime and kerasml's on the same ML Program
        assert row.runtimes_max_abs_diff <= 1e-5
    assert row.first_divergent_layer == "", f"{case.name} {fmt}: kerasml diff: {row.first_divergent_layer or row.layers_compared}"
