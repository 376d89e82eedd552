"""tf.distribute: MirroredStrategy over two logical CPU devices, and a two-process multi-worker run
on loopback ports. Each runs in its own Python process, so no other test's TensorFlow state
(devices, collective ops) is touched; every process is bounded in time and killed if it hangs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kerasml.errors import KerasmlError

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from kerasml.training.train import TrainOptions, train
    results = {}
    # The same global batch (64) both ways: one device with 64, two replicas with 32 each.
    for mode, batch in (("none", 64), ("mirrored", 32)):
        lines = []
        result = train(TrainOptions(data=sys.argv[1], arch="chollet", epochs=3, batch_size=batch, quiet=True,
                                    distribute=mode, out=f"{sys.argv[2]}/{mode}.keras"), say=lines.append)
        results[mode] = {"accuracy": result.record.test_accuracy, "lines": lines,
                         "distribute": result.record.extra["distribute"]}
    print(json.dumps(results))
""")


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_matches_one_device(small_digits_npz, tmp_path):
    run = subprocess.run([sys.executable, "-c", MIRRORED, str(small_digits_npz), str(tmp_path)],
                         capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    one, two = results["none"], results["mirrored"]
    assert two["distribute"]["strategy"] == "MirroredStrategy" and two["distribute"]["replicas"] == 2
    assert two["distribute"]["global_batch"] == 64 and two["distribute"]["batch_per_replica"] == 32
    assert one["distribute"]["replicas"] == 1
    assert any("global batch 64 = 32 per replica x 2" in line for line in two["lines"])
    # 200 test digits after three epochs on 540: both well above chance, and within noise of each other.
    assert one["accuracy"] > 0.6 and two["accuracy"] > 0.6
    assert abs(one["accuracy"] - two["accuracy"]) <= 0.08, results


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_multiworker_with_two_local_processes(small_digits_npz, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    out = tmp_path / "multi.keras"
    processes = []
    for index in range(2):
        config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "kerasml", "train", "--data", str(small_digits_npz), "--arch", "chollet",
             "--epochs", "2", "--batch-size", "32", "--distribute", "multiworker", "--quiet", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(TF_CONFIG=config),
            cwd=tmp_path))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT_S)[0])
    finally:
        for process in processes:   # a worker left waiting for its peer must not outlive the test
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [p.returncode for p in processes] == [0, 0], "\n----\n".join(o[-2000:] for o in outputs)
    assert "global batch 64 = 32 per replica x 2" in outputs[0]
    assert "the chief writes the model" in outputs[1]
    record = json.loads(out.with_name("multi.training.json").read_text())
    assert record["extra"]["distribute"]["strategy"] == "MultiWorkerMirroredStrategy"
    assert record["extra"]["distribute"]["replicas"] == 2
    assert record["test"]["accuracy"] > 0.5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("multi")) == [
        "multi.confusion.png", "multi.history.json", "multi.history.png", "multi.keras", "multi.training.json"]


def test_distribution_options_are_checked(monkeypatch):
    from kerasml.training import distribute
    with pytest.raises(KerasmlError, match="unknown --distribute"):
        distribute.check_mode("horovod", False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(KerasmlError, match="needs TF_CONFIG"):
        distribute.check_mode("multiworker", False)
    for bad in ("not json", '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
                '{"task": {"type": "worker", "index": 0}}'):
        monkeypatch.setenv("TF_CONFIG", bad)
        with pytest.raises(KerasmlError, match="TF_CONFIG is not a valid cluster"):
            distribute.check_mode("multiworker", False)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}')
    with pytest.raises(KerasmlError, match="chief and worker tasks only"):
        distribute.check_mode("multiworker", False)


def test_mixed_precision_is_refused_without_a_gpu():
    from kerasml.training import distribute
    from kerasml.libs import tensorflow
    if tensorflow().config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: mixed precision is allowed here")
    with pytest.raises(KerasmlError, match="needs a GPU"):
        distribute.setup("none", mixed_precision=True)


def test_mixed_precision_model_is_saved_as_a_float32_copy():
    """What --mixed-precision does after training, checked on the CPU with a tiny model: the
    policy is only in force inside its block, and the copy computes in float32 with the same weights."""
    import keras
    import numpy as np

    from kerasml.training import distribute
    from kerasml.training.architectures import get_architecture

    def build():
        return get_architecture("chollet").build((28, 28, 1), 10)

    with distribute.precision_policy(True):
        mixed = build()
    assert keras.mixed_precision.global_policy().name == "float32"
    assert mixed.layers[0].compute_dtype == "float16" and mixed.layers[-1].compute_dtype == "float32"
    twin = distribute.local_copy(mixed, build)
    assert all(layer.compute_dtype == "float32" for layer in twin.layers)
    for a, b in zip(mixed.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
