"""Where lowerings join: `MIL_LOWERINGS` (ML Program op type → function) and `NN_LOWERINGS`
(NeuralNetwork layer type → function), filled by the `lowers` decorator in each op family's module.

A lowering declares the parameters it reads, as coremltools' ops declare their `input_spec`: an op
that carries any other parameter is refused by name instead of being half-understood.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from kerasml.runtime.registry import Registry


@dataclasses.dataclass(frozen=True)
class Lowering:
    fn: Callable
    params: frozenset[str]           # every parameter the lowering reads (an op may omit optional ones)


MIL_LOWERINGS = Registry("ML Program op (Core AI lowering)")
NN_LOWERINGS = Registry("NeuralNetwork layer (Core AI lowering)")


def lowers(registry: Registry, *names: str, params: str = "") -> Callable[[Callable], Callable]:
    """`@lowers(MIL_LOWERINGS, "relu", params="x")` above `def relu(op) -> list`."""
    declared = frozenset(params.split())

    def decorate(fn: Callable) -> Callable:
        for name in names:
            registry.add(name, Lowering(fn, declared))
        return fn

    return decorate
