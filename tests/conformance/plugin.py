"""pytest plugin: coremltools' own MIL op tests, with kerasml's runtime standing in for Core ML.

coremltools ships its op tests in the wheel (`coremltools/converters/mil/mil/ops/tests/iOS14` ...
`iOS18`). Each builds a small program, converts it and compares `MLModel.predict` with an expected
output, but only where `testing_utils._IS_MACOS` says Core ML is there. This plugin opens that seam:

- `testing_utils._IS_MACOS` becomes True and `coremltools.models.utils._macos_version` reports a
  recent macOS, so the comparisons (and the tests gated on a macOS version) run;
- `MLModel.predict` runs the model through `kerasml.runtime` instead (one prediction: a leading
  batch axis of 1 is added to every input and removed from every output);
- `MLModel.make_state` skips the test: stateful models need Core ML itself (macOS 15).

Load it with `-p tests.conformance.plugin` (see tests/conformance/README.md). Each test's outcome is
sorted into passed / refused / wrong / crashed / skipped / no-prediction and, with
`--conformance-out FILE`, appended to FILE as one JSON line per test.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

REFUSED = "kerasml refused: "
FAKE_MACOS = (15, 2)  # new enough for every test gated on a macOS version

_state = {"predictions": 0, "asked": 0}
_config: dict[str, object] = {}


def pytest_addoption(parser):
    parser.addoption("--conformance-out", default=None, help="append one JSON line per test to this file")
    parser.addoption(
        "--conformance-slice",
        type=int,
        default=0,
        help="keep only N tests per file, spread over its smoke tests (the fast slice)",
    )


def pytest_collection_modifyitems(config, items):
    """--conformance-slice N: N tests per file, spread evenly over its smoke tests (its tests, when
    none is called smoke), so every op class of a file gets its turn across files and runs."""
    per_file = config.getoption("--conformance-slice")
    if not per_file:
        return
    by_file: dict[str, list] = {}
    for item in items:
        by_file.setdefault(str(item.fspath), []).append(item)
    kept = set()
    for group in by_file.values():
        smoke = [i for i in group if "smoke" in getattr(i, "originalname", i.name)] or group
        step = len(smoke) / per_file
        kept.update(id(smoke[int(k * step)]) for k in range(min(per_file, len(smoke))))
    config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
    items[:] = [item for item in items if id(item) in kept]


def pytest_configure(config):
    from coremltools.converters.mil import testing_utils
    from coremltools.models import model as ct_model
    from coremltools.models import utils as ct_utils

    testing_utils._IS_MACOS = True
    ct_utils._macos_version = lambda: FAKE_MACOS
    ct_model.MLModel.predict = _predict
    ct_model.MLModel.make_state = _make_state
    config._conformance_out = config.getoption("--conformance-out")
    _config["config"] = config


def _make_state(self):
    pytest.skip("stateful model: needs Core ML itself (macOS 15); the kerasml runtime has no state")


def _as_batch(value) -> np.ndarray:
    """One Core ML feature value (an array, a scalar or a PIL image: H, W[, C] pixels) as a batch of one."""
    return np.asarray(value)[None]


def _predict(self, data, state=None):
    from kerasml.errors import KerasmlError
    from kerasml.runtime import UnsupportedModelError, load_model

    if state is not None:
        pytest.skip("stateful model: needs Core ML itself (macOS 15); the kerasml runtime has no state")
    _state["asked"] += 1
    try:
        # kept on the MLModel itself: a cache keyed by id() handed a later model (at a freed model's
        # address) the earlier model's runtime, e.g. across the models of one slice_update test
        model = getattr(self, "_kerasml_runtime_model", None)
        if model is None:
            model = self._kerasml_runtime_model = load_model(self)
        out = model.predict({name: _as_batch(value) for name, value in data.items()})
    except UnsupportedModelError as exc:
        pytest.skip(REFUSED + str(exc))
    except KerasmlError as exc:  # a prediction that fails (e.g. a validated index out of bounds): as Core ML's
        kind = "ML Program" if self.get_spec().WhichOneof("Type") == "mlProgram" else "a neural network model"
        raise RuntimeError(f"Unable to compute the prediction using {kind}: {exc}") from None
    _state["predictions"] += 1
    return {name: value[0] for name, value in out.items()}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _state["predictions"] = _state["asked"] = 0
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        category, message = _classify(report, call)
        report.user_properties.append(("conformance", category))
        if category == "skipped" and report.failed:  # a missing optional reference library is a skip
            report.outcome, report.longrepr = "skipped", (str(item.fspath), item.location[1] or 0, message)
        path = item.config._conformance_out
        if path:
            seconds = round(sum(r.duration for r in getattr(item, "_conformance_reports", [])) + report.duration, 2)
            _write(path, {"nodeid": item.nodeid, "file": _test_file(item), "category": category,
                          "message": message, "seconds": seconds})
    elif report.when == "setup":
        item._conformance_reports = [report]


def pytest_collectreport(report):
    """A test file that cannot even be imported (e.g. it needs PyTorch) is recorded as such."""
    path = report.nodeid
    if report.failed and path.endswith(".py"):
        text = str(report.longrepr)
        missing = re.search(r"No module named '([\w.]+)'", text)
        message = f"needs {missing.group(1)} (not installed)" if missing else (text.strip().splitlines() or [""])[-1][:300]
        config = _config.get("config")
        if config is not None and config._conformance_out:
            _write(config._conformance_out, {"nodeid": path, "file": "/".join(path.split("/")[-2:]),
                                              "category": "collection-error", "message": message, "seconds": 0})


def _write(path: str, record: dict) -> None:
    with open(path, "a") as out:
        out.write(json.dumps(record) + "\n")


def _classify(report, call) -> tuple[str, str]:
    exc = call.excinfo.value if call.excinfo else None
    if report.passed:
        # asked and passed: a prediction, or a failure to predict that the test expected of Core ML
        return ("passed" if _state["asked"] else "no-prediction"), ""
    if hasattr(report, "wasxfail"):  # coremltools marks it as failing on Core ML too
        if exc is None or isinstance(exc, pytest.xfail.Exception):
            return "skipped", f"xfail in coremltools: {report.wasxfail}"[:300]
        if isinstance(exc, pytest.skip.Exception) and str(exc.msg).startswith(REFUSED):
            return "refused", str(exc.msg)[len(REFUSED) :]
        return _failure(exc)
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith(REFUSED):
            return "refused", reason[len(REFUSED) :]
        return "skipped", reason
    return _failure(exc)


def _failure(exc) -> tuple[str, str]:
    if isinstance(exc, (NameError, ImportError)) and "torch" in str(exc) and not _state["asked"]:
        return "skipped", "the test computes its expected output with PyTorch, which is not installed"
    first_line = (str(exc).strip().splitlines() or [""])[0][:300] if exc is not None else ""
    if isinstance(exc, AssertionError) and _state["predictions"]:
        return "wrong", _mismatch_summary(str(exc)) or first_line
    if not _state["asked"]:  # coremltools' own test failed here (e.g. a timing check under load)
        return "test-error", f"{type(exc).__name__}: {first_line}"
    where = ""
    return "crashed", f"{type(exc).__name__}{where}: {first_line}"


def _mismatch_summary(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    keep = [ln for ln in lines if ln.startswith(("Mismatched", "Max absolute", "Max relative"))]
    return "; ".join(keep)[:300]


def _test_file(item) -> str:
    """'iOS14/test_activation.py' for a test of coremltools' op test folders."""
    parts = str(item.fspath).replace("\\", "/").split("/")
    return "/".join(parts[-2:])


if __name__ == "__main__":  # pragma: no cover - a reminder of how to use it
    sys.exit("load with: python -m pytest -p tests.conformance.plugin ...; see tests/conformance/README.md")
