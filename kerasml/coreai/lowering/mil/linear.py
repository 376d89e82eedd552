"""ML Program linear algebra: `linear` (x W^T + b) and `matmul` (NumPy's, with transpose flags).

Both become Core AI's broadcasting batch matmul. A FOLDED operand is used as it is only where its
prediction axis is a row of the product (the first operand's second-last axis, rank 2); elsewhere
it is STACKED so the prediction axis is a batch axis of the product.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import FOLDED, STACKED, Tensor, i32, u32
from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS, lowers


def _swap_last(g, t: Tensor) -> Tensor:
    perm = list(range(t.rank))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return g.transpose(t, perm)


def _matrix_operand(g, x, rank: int, layout: str):
    """A constant or SHARED operand aligned to `rank` (plus the prediction axis when STACKED)."""
    return g.operand_value(x, rank, layout)


def _product(op: Op, x, y) -> Tensor:
    """x @ y with NumPy broadcasting, at least one of them batched."""
    g = op.g
    shape, dtype = op.shape, op.dtype
    rank = len(shape)
    batched = [t for t in (x, y) if isinstance(t, Tensor) and t.batched]
    folded = (len(batched) == 1 and batched[0] is x and x.layout == FOLDED and x.rank == rank == 2)
    values = []
    for t in (x, y):
        if isinstance(t, Tensor) and t.batched:
            t = t if folded else g.stacked(t)
            if t.rank < rank:
                t = g.reshape(t, (1,) * (rank - t.rank) + t.shape)
                t = g.stacked(t)
            values.append(t.value)
        elif folded:
            values.append(t.value if isinstance(t, Tensor) else np.asarray(t, dtype))
        else:
            values.append(_matrix_operand(g, t if isinstance(t, Tensor) else np.asarray(t, dtype), rank, STACKED))
    return Tensor(g.A.broadcasting_batch_matmul(*values), tuple(shape), dtype, FOLDED if folded else STACKED)


@lowers(MIL_LOWERINGS, "matmul", params="x y transpose_x transpose_y")
def matmul(op: Op) -> list:
    x, y = op.tensor("x"), op.tensor("y")
    for name, t in (("x", x), ("y", y)):
        if (t.rank if isinstance(t, Tensor) else np.ndim(t)) < 2:
            raise op.unsupported(f"a rank-1 '{name}'")
    if op.scalar("transpose_x", False):
        x = _swap_last(op.g, x) if isinstance(x, Tensor) else np.swapaxes(x, -1, -2)
    if op.scalar("transpose_y", False):
        y = _swap_last(op.g, y) if isinstance(y, Tensor) else np.swapaxes(y, -1, -2)
    return [_product(op, x, y)]


@lowers(MIL_LOWERINGS, "linear", params="x weight bias")
def linear(op: Op) -> list:
    g, x = op.g, op.batched("x")
    weight = op.tensor("weight")
    if isinstance(weight, Tensor):       # weights Core AI decompresses: transpose the (out, in) value
        if weight.batched:
            raise op.unsupported("weights computed from the image")
        weight_t = Tensor(g.A.transpose(weight.value, u32([1, 0])), weight.shape[::-1], weight.dtype, weight.layout)
    else:
        weight_t = np.ascontiguousarray(np.asarray(weight, op.dtype).T)
    if x.rank == 1:
        x = g.reshape(x, (1, x.shape[0]))
        y = _product(_Shaped(op, (1, op.shape[0])), x, weight_t)
        y = g.reshape(y, op.shape)
    else:
        y = _product(op, x, weight_t)
    bias = op.tensor("bias", None)
    if bias is not None:
        y = g.elementwise(g.A.broadcasting_add, [y, bias], op.shape, op.dtype)
    return [y]


class _Shaped:
    """An Op seen with another output shape (a rank-1 linear computed as a 1-row matrix product)."""

    def __init__(self, op: Op, shape):
        self.g, self.dtype, self.shape = op.g, op.dtype, tuple(shape)


@lowers(MIL_LOWERINGS, "einsum", params="values equation")
def einsum(op: Op) -> list:
    """Two-operand batched matrix products ("nchw,nwhu->nchu", "chw,whu->chu" and the like): the
    equation's letters put the operands into matmul form (shared axes, rows, contracted | shared,
    contracted, columns), and the product into the output's order."""
    values = op.many("values")
    equation = str(op.scalar("equation")).replace(" ", "")
    inputs, output = equation.split("->")
    terms = inputs.split(",")
    if len(terms) != 2 or len(values) != 2:
        raise op.unsupported(f"einsum '{equation}'")
    a, b = terms
    shared = [c for c in a if c in b and c in output]
    contracted = [c for c in a if c in b and c not in output]
    rows = [c for c in a if c not in b]
    cols = [c for c in b if c not in a]
    order = shared + rows + cols
    if (len(contracted) != 1 or len(rows) != 1 or len(cols) != 1 or sorted(output) != sorted(order)
            or len(set(a)) != len(a) or len(set(b)) != len(b)):
        raise op.unsupported(f"einsum '{equation}'")
    g = op.g
    x = _arranged(g, values[0], a, shared + rows + contracted)
    y = _arranged(g, values[1], b, shared + contracted + cols)
    sizes = dict(zip(output, op.shape))
    product = _product(_Shaped(op, [sizes[c] for c in order]), x, y)
    return [g.transpose(product, [order.index(c) for c in output])]


def _arranged(g, t, letters: str, order: list[str]):
    perm = [letters.index(c) for c in order]
    if isinstance(t, Tensor):
        return g.transpose(t, perm)
    return np.transpose(t, perm)


@lowers(MIL_LOWERINGS, "scaled_dot_product_attention", params="query key value attn_mask")
def scaled_dot_product_attention(op: Op) -> list:
    """softmax(Q K^T / sqrt(E) + mask) V, the mask added (float) or choosing -inf (bool), as iOS 18's
    op defines it."""
    g = op.g
    q, k, v = op.tensor("query"), op.tensor("key"), op.tensor("value")
    shape_of = lambda t: t.shape if isinstance(t, Tensor) else np.shape(t)  # noqa: E731
    q_shape, k_shape = shape_of(q), shape_of(k)
    lead = tuple(np.broadcast_shapes(q_shape[:-2], k_shape[:-2]))
    scores_shape = lead + (q_shape[-2], k_shape[-2])
    k_t = _swap_last(g, k) if isinstance(k, Tensor) else np.swapaxes(np.asarray(k, op.dtype), -1, -2)
    scores = _product(_Shaped(op, scores_shape), q, k_t)
    scale = np.asarray(1 / np.sqrt(np.float32(q_shape[-1])), op.dtype)
    scores = g.elementwise(g.A.broadcasting_mul, [scores, scale], scores_shape, op.dtype)
    mask = op.tensor("attn_mask", None)
    if mask is not None:
        is_bool = (mask.dtype if isinstance(mask, Tensor) else np.asarray(mask).dtype) == np.bool_
        if is_bool:
            scores = g.elementwise(g.A.broadcasting_where, [mask, scores, np.asarray(-np.inf, op.dtype)],
                                   scores_shape, op.dtype)
        else:
            scores = g.elementwise(g.A.broadcasting_add, [scores, mask], scores_shape, op.dtype)
    scores, (axis,) = g.on_axes(scores, [-1])
    probabilities = g.unary(lambda value: g.A.softmax(value, int(axis)), scores)
    return [_product(op, probabilities, v)]
