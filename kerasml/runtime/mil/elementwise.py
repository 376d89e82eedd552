"""ML Program binary ops beyond arithmetic (comparisons, logic, integer division) and `select`.

Broadcasting follows NumPy, as MIL's elementwise ops define it; comparisons give bool tensors.
`floor_div` rounds toward minus infinity and `mod` takes the divisor's sign, as coremltools'
definitions (np.floor_divide, np.mod) compute them.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime.mil.basic_ops import OPS, Args, _align, _binary, op

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
    OPS[_name] = _binary(_fn)


@op("select")
def select(args: Args) -> list:
    cond, a, b = (np.asarray(args.f32(p)) for p in ("cond", "a", "b"))
    cond, a, b = _align([cond, a, b], [args.batched(p) for p in ("cond", "a", "b")])
    return [np.where(cond.astype(bool), a, b)]
