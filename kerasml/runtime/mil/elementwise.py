"""ML Program binary ops (arithmetic, comparisons, logic, integer division) and `select`.

Broadcasting follows NumPy, as MIL's elementwise ops define it; comparisons give bool tensors.
`floor_div` rounds toward minus infinity and `mod` takes the divisor's sign, as coremltools'
definitions (np.floor_divide, np.mod) compute them.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime.mil.args import Args, align_batched
from kerasml.runtime.registry import MIL_OPS, TENSOR, InputSpec

XY = InputSpec(x=TENSOR, y=TENSOR)


def _binary(fn):
    def run(args: Args) -> list:
        x, y = args.f32("x"), args.f32("y")
        x, y = align_batched([np.asarray(x), np.asarray(y)], [args.batched("x"), args.batched("y")])
        return [fn(x, y)]

    return run


for _name, _fn in {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "real_div": np.divide,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "pow": np.power,
}.items():
    MIL_OPS.add(_name, _binary(_fn), inputs=XY)


for _name, _fn in {
    "equal": np.equal,
    "not_equal": np.not_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
    "floor_div": np.floor_divide,
    "mod": np.mod,
}.items():
    MIL_OPS.add(_name, _binary(_fn), inputs=XY)


@MIL_OPS.register("select", inputs=InputSpec(cond=TENSOR, a=TENSOR, b=TENSOR))
def select(args: Args) -> list:
    cond, a, b = (np.asarray(args.f32(p)) for p in ("cond", "a", "b"))
    cond, a, b = align_batched([cond, a, b], [args.batched(p) for p in ("cond", "a", "b")])
    return [np.where(cond.astype(bool), a, b)]
