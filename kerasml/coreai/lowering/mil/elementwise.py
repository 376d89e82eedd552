"""ML Program binary ops, comparisons and `select`, with NumPy broadcasting (as MIL defines them).

Core AI has no less / less_equal / greater_equal: they are `greater` with the operands swapped or
negated. `floor_div` and `mod` follow MIL (np.floor_divide, np.mod: the divisor's sign); Core AI's
modulo takes the dividend's sign (C's fmod), so `mod` is x - floor(x / y) * y.
"""

from __future__ import annotations

from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS, lowers


def _binary(name: str):
    def lower(op: Op) -> list:
        fn = getattr(op.g.A, name)
        return [op.g.elementwise(fn, [op.tensor("x"), op.tensor("y")], op.shape, op.dtype)]
    return lower


for _mil, _core in {"add": "broadcasting_add", "sub": "broadcasting_sub", "mul": "broadcasting_mul",
                    "real_div": "broadcasting_divide", "maximum": "broadcasting_maximum",
                    "minimum": "broadcasting_minimum", "pow": "broadcasting_pow",
                    "floor_div": "broadcasting_floor_divide",
                    "equal": "broadcasting_equal", "not_equal": "broadcasting_not_equal",
                    "greater": "broadcasting_greater", "logical_and": "broadcasting_and",
                    "logical_or": "broadcasting_or", "logical_xor": "broadcasting_xor"}.items():
    lowers(MIL_LOWERINGS, _mil, params="x y")(_binary(_core))


@lowers(MIL_LOWERINGS, "less", "less_equal", "greater_equal", params="x y")
def ordered(op: Op) -> list:
    """x < y is y > x; x <= y is y > x or x == y; x >= y is x > y or x == y (NaN compares false in all)."""
    g, x, y = op.g, op.tensor("x"), op.tensor("y")
    bigger, smaller = (x, y) if op.kind == "greater_equal" else (y, x)
    greater = g.elementwise(g.A.broadcasting_greater, [bigger, smaller], op.shape, op.dtype)
    if op.kind == "less":
        return [greater]
    equal = g.elementwise(g.A.broadcasting_equal, [x, y], op.shape, op.dtype)
    return [g.elementwise(g.A.broadcasting_or, [greater, equal], op.shape, op.dtype)]


@lowers(MIL_LOWERINGS, "select", params="cond a b")
def select(op: Op) -> list:
    g = op.g
    return [g.elementwise(g.A.broadcasting_where, [op.tensor("cond"), op.tensor("a"), op.tensor("b")],
                          op.shape, op.dtype)]


@lowers(MIL_LOWERINGS, "mod", params="x y")
def mod(op: Op) -> list:
    g, x, y = op.g, op.tensor("x"), op.tensor("y")
    quotient = g.elementwise(g.A.broadcasting_floor_divide, [x, y], op.shape, op.dtype)
    product = g.elementwise(g.A.broadcasting_mul, [quotient, y], op.shape, op.dtype)
    return [g.elementwise(g.A.broadcasting_sub, [x, product], op.shape, op.dtype)]
