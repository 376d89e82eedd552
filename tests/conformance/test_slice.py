"""The fast slice of the conformance run, inside the normal test run: two smoke tests per file
of the op files a classifier draws on, in both formats, against kerasml's runtime
(tests/conformance/plugin.py). Any wrong or crashed case fails; refusals are allowed (they are
what `make conformance` counts). The full run is `make conformance`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FILES = [
    "iOS14/test_activation.py",
    "iOS14/test_conv.py",
    "iOS14/test_elementwise_unary.py",
    "iOS14/test_linear.py",
    "iOS14/test_normalization.py",
    "iOS14/test_pool.py",
    "iOS14/test_reduction.py",
    "iOS14/test_recurrent.py",
    "iOS14/test_tensor_operation.py",
    "iOS14/test_tensor_transformation.py",
    "iOS14/test_image_resizing.py",
    "iOS16/test_constexpr_ops.py",
]
PER_FILE = 2  # 24 cases, a few seconds each


@pytest.mark.slow
def test_conformance_slice_has_no_wrong_or_crashed_case(tmp_path):
    pytest.importorskip("scipy")
    coremltools = pytest.importorskip("coremltools")
    root = Path(coremltools.__file__).parent / "converters" / "mil" / "mil" / "ops" / "tests"
    paths = [str(root / f) for f in FILES if (root / f).is_file()]
    if not paths:
        pytest.skip("this coremltools wheel ships no op tests")
    out = tmp_path / "slice.jsonl"
    cmd = [sys.executable, "-m", "pytest", "-c", str(REPO / "tests" / "conformance" / "conformance.ini"), *paths,
           "--conformance-out", str(out), "--conformance-slice", str(PER_FILE), "-p", "no:randomly"]
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    assert records, f"the slice ran no test:\n{(proc.stdout + proc.stderr)[-2000:]}"
    bad = [f"{r['category']}: {r['file']} {r['nodeid'].split('::', 1)[-1]}: {r['message']}" for r in records
           if r["category"] in ("wrong", "crashed")]
    assert not bad, "\n".join(bad)
    assert any(r["category"] == "passed" for r in records)
