"""Training on several devices and machines with TensorFlow's own tf.distribute, and mixed precision.

`--distribute`:
  none         the default strategy: one device
  auto         MirroredStrategy when more than one GPU is visible, else none
  mirrored     MirroredStrategy over every local GPU (with no GPU: over the logical CPU devices)
  multiworker  MultiWorkerMirroredStrategy across the machines that TF_CONFIG lists, exactly as
               TensorFlow documents it; every worker runs the same `kerasml train` command

The recipe does not change: the model is built and compiled inside `strategy.scope()`, each
replica takes the recipe's batch, so the global batch is that batch times the replicas, and only
the chief writes the model and its record. No scheduler of kerasml's own: starting the workers
is the job of whatever starts processes on those machines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from typing import Callable

from kerasml.errors import KerasmlError

MODES = ("auto", "none", "mirrored", "multiworker")


@dataclasses.dataclass
class Distribution:
    strategy: object
    mode: str                  # what was asked for
    name: str                  # the strategy's class name, for the record
    replicas: int
    is_chief: bool = True
    worker: str = "chief"      # e.g. "worker 1 of 2" in multi-worker runs
    mixed_precision: bool = False

    def global_batch(self, per_replica: int) -> int:
        return per_replica * self.replicas

    def describe(self, per_replica: int) -> str:
        return (f"training with {self.name} on {self.replicas} replica{'s' if self.replicas != 1 else ''} "
                f"({self.worker}): global batch {self.global_batch(per_replica)} = {per_replica} per "
                f"replica x {self.replicas}")

    def record(self, per_replica: int) -> dict:
        return {"strategy": self.name, "mode": self.mode, "replicas": self.replicas,
                "batch_per_replica": per_replica, "global_batch": self.global_batch(per_replica),
                "mixed_precision": self.mixed_precision}

    def prepare(self, model) -> None:
        """Multi-worker only: two work-arounds for Keras 3 (keras-team/keras#20585,
        tensorflow/tensorflow#72388), which cannot fit with MultiWorkerMirroredStrategy as is:
        - its eager "symbolic build" before the first step reduces a batch of PerReplica values,
          which the collective ops refuse; without a strategy recorded on the model Keras builds
          while tracing the first step instead, under the strategy's scope that `fit` runs in;
        - it averages each step's metrics with `strategy.reduce("MEAN", value, axis=0)`, which
          fails on scalars; metrics of shape [1] give the same global mean over all replicas,
          identical on every worker (so early stopping and the best epoch agree everywhere)."""
        if self.mode != "multiworker" or getattr(model, "_kerasml_multiworker", False):
            return
        from kerasml.libs import tensorflow
        tf = tensorflow()

        model._distribute_strategy = None
        for name in ("train_step", "test_step"):
            step = getattr(model, name)
            setattr(model, name, lambda data, step=step: {key: tf.reshape(value, [1])
                                                         for key, value in step(data).items()})
        model._kerasml_multiworker = True

    def shard(self, dataset):
        """Multi-worker: each worker reads every file and keeps its share of the batches (the
        data are local arrays or file lists, not files split per worker)."""
        if self.mode != "multiworker":
            return dataset
        from kerasml.libs import tensorflow
        tf = tensorflow()

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)


def check_mode(mode: str, mixed_precision: bool) -> None:
    """What can be checked before TensorFlow starts."""
    if mode not in MODES:
        raise KerasmlError(f"unknown --distribute {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "multiworker":
        _cluster()


def setup(mode: str, mixed_precision: bool, say: Callable[[str], None] = print) -> Distribution:
    """The strategy for `mode`. Call it before any other TensorFlow work: a multi-worker strategy
    has to configure the runtime's collective operations first."""
    check_mode(mode, mixed_precision)
    from kerasml.libs import tensorflow
    tf = tensorflow()

    gpus = tf.config.list_physical_devices("GPU")
    if mixed_precision and not gpus:
        raise KerasmlError("--mixed-precision needs a GPU: this machine has none, and on a CPU float16 "
                           "is emulated and only slows training; drop the flag")
    if mode == "multiworker":
        cluster, task = _cluster()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        is_chief = task["type"] == "chief" or (task["type"] == "worker" and task["index"] == 0
                                               and "chief" not in cluster)
        workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
        worker = f"{task['type']} {task['index']} of {workers} workers"
    elif mode == "mirrored" or (mode == "auto" and len(gpus) > 1):
        devices = None
        cpus = tf.config.list_logical_devices("CPU")
        if not gpus and len(cpus) > 1:
            devices = [device.name for device in cpus]   # logical CPU devices (tests, CPU-only machines)
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        is_chief, worker = True, "one machine"
    else:
        strategy = tf.distribute.get_strategy()
        is_chief, worker = True, "one machine"
    replicas = int(strategy.num_replicas_in_sync)
    if mode == "mirrored" and replicas == 1:
        say("note: --distribute mirrored found one device only, so it trains as without it")
    name = "MultiWorkerMirroredStrategy" if mode == "multiworker" else type(strategy).__name__
    return Distribution(strategy, mode, name, replicas, is_chief, worker, mixed_precision)


@contextlib.contextmanager
def precision_policy(enabled: bool):
    """mixed_float16 while the model is built and trained (float32 weights, float16 maths on
    the GPU); the global policy is restored afterwards, whatever happens."""
    import keras

    if not enabled:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def local_copy(model, build: Callable[[], object]):
    """The trained model as a plain one-device float32 model (`build` makes the same network),
    to evaluate and save: outside any strategy, with float32 maths as Core ML computes it.
    Mixed precision keeps its variables in float32 anyway, so the weights carry over exactly."""
    twin = build()
    twin.set_weights(model.get_weights())
    return twin


def _cluster() -> tuple[dict, dict]:
    """TF_CONFIG's cluster and task, checked enough to fail in one line rather than hang."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise KerasmlError('--distribute multiworker needs TF_CONFIG, e.g. TF_CONFIG=\'{"cluster": {"worker": '
                           '["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\' '
                           "on each machine, with its own index")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
        members = cluster[kind]
        if not isinstance(members, list) or not 0 <= index < len(members):
            raise ValueError(f"task index {index} is not in cluster[{kind!r}]")
    except (ValueError, KeyError, TypeError) as exc:
        raise KerasmlError(f"TF_CONFIG is not a valid cluster description ({exc}); it needs "
                           '"cluster": {"worker": [...]} and "task": {"type": "worker", "index": N}') from None
    if kind not in ("chief", "worker"):
        raise KerasmlError(f"TF_CONFIG task type {kind!r}: multiworker training runs on chief and worker tasks only")
    return cluster, {"type": kind, "index": index}
