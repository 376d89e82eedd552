"""Ctrl-C during training keeps the best model so far, marked as interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import restore_ctrl_c

from kerasml.record import read_record


@pytest.mark.slow
def test_ctrl_c_saves_the_best_model_so_far(tmp_path, small_digits_npz):
    out = tmp_path / "interrupted.keras"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "kerasml", "train", "--data", str(small_digits_npz), "--arch", "chollet",
         "--epochs", "200", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        preexec_fn=restore_ctrl_c)
    lines = []
    deadline = time.monotonic() + 240
    try:
        for line in process.stdout:             # one line per epoch when not on a terminal
            lines.append(line)
            if "val_accuracy" in line and sum("val_accuracy" in seen for seen in lines) >= 2:
                process.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, "training never reported an epoch"
        rest, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    output = "".join(lines) + rest
    assert process.returncode == 130, output
    assert "interrupted: saving the best model so far" in output
    assert "Traceback" not in output
    assert out.is_file()
    record = read_record(out)
    assert record.status == "interrupted" and 2 <= record.epochs_run < 200
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
