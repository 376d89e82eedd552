"""`Args`: what an ML Program op function receives, and the batch-axis helpers ops share.

An op function (registered in `registry.MIL_OPS`) takes `Args` and returns the list of its outputs.
Values computed per batch carry a leading axis of independent predictions (`args.batched(param)`
says which do); constants do not. Arithmetic runs in float32 (`args.f32`); the engine casts each
result to the declared dtype. `args.opset` is the iOS release of the program's opset and
`args.inputs` the `InputSpec` of the op version that runs: a parameter it does not declare is
never given, so reading one with a default gives the default, and without one is a runtime bug.
"""

from __future__ import annotations

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.runtime.errors import UnsupportedModelError

_REQUIRED = object()


class Args:
    """An op's inputs by parameter name, with which of them carry the batch axis."""

    def __init__(self, name: str, kind: str, values: dict, flags: dict, dtypes: list, ws=None, *,
                 opset: int | None = None, inputs=None):
        self.name, self.kind, self.dtypes = name, kind, dtypes
        self._values, self._flags = values, flags
        self.ws = ws
        self.opset, self.inputs = opset, inputs

    def params(self) -> list[str]:
        """The parameters the program gives this op."""
        return list(self._values)

    def declared(self, inputs) -> "Args":
        """These arguments for the op version that declares `inputs`."""
        if inputs is self.inputs:
            return self
        return Args(self.name, self.kind, self._values, self._flags, self.dtypes, self.ws, opset=self.opset,
                    inputs=inputs)

    def has(self, param: str) -> bool:
        return param in self._values

    def get(self, param: str, default=_REQUIRED):
        if param not in self._values:
            if default is not _REQUIRED:
                return default
            if self.inputs is not None and param not in self.inputs:
                raise RuntimeError(f"kerasml runtime bug: {self.kind} reads '{param}', which it does not declare")
            raise KerasmlError(f"op '{self.name}' ({self.kind}) lacks its '{param}' input; the model is malformed")
        return self._values[param][0]

    def many(self, param: str) -> list:
        return list(self._values.get(param, []))

    def batched(self, param: str) -> bool:
        return bool(self._flags.get(param, [False])[0])

    def f32(self, param: str, default=_REQUIRED):
        value = self.get(param, default)
        return value.astype(np.float32) if isinstance(value, np.ndarray) and value.dtype == np.float16 else value

    def scalar(self, param: str, default=_REQUIRED):
        value = self.get(param, default)
        return value.item() if isinstance(value, np.ndarray) else value

    def ints(self, param: str, default=_REQUIRED) -> list[int]:
        value = self.get(param, default)
        return [int(v) for v in np.ravel(value)] if value is not None else None

    def batch_size(self) -> int | None:
        """The number of predictions of the first batched input, None when every input is a constant."""
        for param, flags in self._flags.items():
            for value, flag in zip(self._values[param], flags):
                if flag:
                    return len(value)
        return None

    def prediction(self, i: int) -> "Args":
        """These arguments for prediction i alone: batched inputs lose their leading axis."""
        values = {p: [v[i] if f else v for v, f in zip(vals, self._flags[p])] for p, vals in self._values.items()}
        flags = {p: [False] * len(vals) for p, vals in self._values.items()}
        return Args(self.name, self.kind, values, flags, self.dtypes, None, opset=self.opset, inputs=self.inputs)

    def unsupported(self, what: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"op '{self.name}' ({self.kind}) uses {what}, which the kerasml runtime does not implement"
        )


def batch_axis(axis: int, x: np.ndarray, batched: bool) -> int:
    """A per-prediction axis (negative counts from the end) as an axis of x, batched or not."""
    rank = x.ndim - batched
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return (axis + rank if axis < 0 else axis) + batched


def align_batched(arrays: list[np.ndarray], flags: list[bool]) -> list[np.ndarray]:
    """Batched operands get new axes after the batch axis so per-prediction ranks line up."""
    rank = max(a.ndim - f for a, f in zip(arrays, flags))
    return [
        a.reshape(a.shape[:1] + (1,) * (rank - a.ndim + 1) + a.shape[1:]) if f and a.ndim - 1 < rank else a
        for a, f in zip(arrays, flags)
    ]
