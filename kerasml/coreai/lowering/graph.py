"""The emitter every lowering shares: Core AI values that carry a batch of N predictions.

A Core ML program describes one prediction (an image input of shape (1, C, H, W)); the Core AI
function kerasml writes takes N images at once, N unknown until it runs. Every value computed from
the input therefore has an extra prediction axis, and `Tensor` records where it is:

    FOLDED   the program's leading axis has size 1 and holds the N predictions: Core AI shape
             (N, *shape[1:]). Convolutions, pooling and most classifier values live here, at no cost.
    STACKED  a new leading axis holds them: Core AI shape (N, *shape). Needed once a program moves its
             leading axis (a transpose to time-major for a recurrent layer) or it is not of size 1.
    SHARED   no prediction axis: the same for every prediction (weights decompressed by Core AI's own
             ops). NumPy arrays are constants, emitted only where an op needs them.

Both batched layouts hold each prediction's values in the same order, so one reshape turns either
into the other. Apple's authoring library checks shapes only when a module is finished (and some
mistakes crash it), so every helper here computes its output shape itself, from the program's
declared shapes, instead of leaving it to Core AI.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from kerasml.libs import coreai_authoring
from kerasml.runtime.errors import UnsupportedModelError

FOLDED, STACKED, SHARED = "folded", "stacked", "shared"
# Every Core AI op carries, in its debug location, the Core ML value it computes part of: how
# `kerasml diff` finds a layer's output inside a saved .aimodel (coreai/intermediates.py).
PROVENANCE = "kerasml.value:"
_BIG = np.iinfo(np.int32).max        # a slice end that keeps the whole (dynamic) prediction axis


@dataclasses.dataclass(frozen=True)
class Tensor:
    """A Core AI value and what it holds for one prediction: `shape` and `dtype` as the program declares them."""

    value: object
    shape: tuple[int, ...]
    dtype: np.dtype
    layout: str
    # SHARED values that Core AI decompresses: the same values as NumPy (kerasml's runtime decompressed
    # them), for ops that need them at conversion (a folded op, a parameter that must be a constant)
    dense: object = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def batched(self) -> bool:
        return self.layout != SHARED

    def core_shape(self) -> tuple[int, ...]:
        """The shape Core AI sees, -1 for the prediction axis."""
        if self.layout == FOLDED:
            return (-1, *self.shape[1:])
        if self.layout == STACKED:
            return (-1, *self.shape)
        return self.shape


def u32(values) -> np.ndarray:
    """Sizes, strides, permutations and pads: Core AI takes them as unsigned 32-bit integers."""
    return np.asarray(values, dtype=np.uint32).reshape(-1)


def i32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int32).reshape(-1)


def normalized_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


class Graph:
    """Emits Core AI ops on `Tensor`s; each method returns the Tensor the program would see."""

    def __init__(self):
        self.A = coreai_authoring()
        self.notes: list[str] = []      # compressed weights some op needed decompressed, in words

    @contextlib.contextmanager
    def provenance(self, value_name: str):
        """Ops emitted inside are located at the Core ML value `value_name` (op output or layer blob)."""
        with self.A.DebugInfo.metadata_only([PROVENANCE + value_name]).activate():
            yield

    # -- layouts --------------------------------------------------------------------------------
    def reshape(self, t: Tensor, shape, dtype=None) -> Tensor:
        """t's values in a new per-prediction shape (a program reshape, squeeze or expand_dims)."""
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape)) != int(np.prod(t.shape)):
            raise ValueError(f"cannot reshape {t.shape} to {shape}")
        dtype = t.dtype if dtype is None else dtype
        if not t.batched:
            dense = None if t.dense is None else np.reshape(t.dense, shape)
            return Tensor(self.A.reshape(t.value, i32(shape)), shape, dtype, SHARED, dense)
        layout = FOLDED if shape and shape[0] == 1 else STACKED
        target = (-1, *shape[1:]) if layout == FOLDED else (-1, *shape)
        if target == t.core_shape():
            return Tensor(t.value, shape, dtype, layout)
        return Tensor(self.A.reshape(t.value, i32(target)), shape, dtype, layout)

    def stacked(self, t: Tensor) -> Tensor:
        if t.layout != FOLDED:
            return t
        return Tensor(self.A.reshape(t.value, i32((-1, *t.shape))), t.shape, t.dtype, STACKED)

    def operand_value(self, x, rank: int, layout: str):
        """A constant or SHARED operand aligned for a batched value of per-prediction `rank` in `layout`:
        NumPy's right-aligned broadcasting, plus a leading 1 for the prediction axis when STACKED."""
        if isinstance(x, Tensor) and x.batched:
            raise ValueError("batched operands are aligned by elementwise()")
        shape = x.shape if isinstance(x, Tensor) else np.shape(x)
        if len(shape) > rank:
            raise UnsupportedModelError(f"a constant of shape {shape} broadcasts against a value of rank {rank}")
        aligned = (1,) * (rank - len(shape)) + tuple(shape)
        if layout == STACKED:
            aligned = (1, *aligned)
        if isinstance(x, Tensor):
            return x.value if aligned == x.shape else self.A.reshape(x.value, i32(aligned))
        return np.ascontiguousarray(np.asarray(x).reshape(aligned))

    # -- elementwise ----------------------------------------------------------------------------
    def elementwise(self, fn, operands: list, shape, dtype) -> Tensor | np.ndarray:
        """fn over operands with NumPy broadcasting (`shape`: the declared output shape)."""
        shape = tuple(shape)
        batched = [o for o in operands if isinstance(o, Tensor) and o.batched]
        if not batched:
            raise ValueError("elementwise() needs a batched operand; constants are folded before lowering")
        rank = len(shape)
        folded = all(o.layout == FOLDED and o.rank == rank for o in batched) and rank > 0 and shape[0] == 1
        layout = FOLDED if folded else STACKED
        values = []
        for o in operands:
            if isinstance(o, Tensor) and o.batched:
                o = o if folded else self.stacked(o)
                if o.rank < rank:  # right-aligned: new axes between the prediction axis and the value's own
                    o = Tensor(self.A.reshape(o.value, i32((-1,) + (1,) * (rank - o.rank) + o.shape)),
                               (1,) * (rank - o.rank) + o.shape, o.dtype, STACKED)
                values.append(o.value)
            else:
                values.append(self.operand_value(_as_dtype(o, dtype), rank, layout))
        return Tensor(fn(*values), shape, dtype, layout)

    def unary(self, fn, t: Tensor, dtype=None) -> Tensor:
        return Tensor(fn(t.value), t.shape, t.dtype if dtype is None else dtype, t.layout)

    # -- axes -------------------------------------------------------------------------------------
    def on_axes(self, t: Tensor, axes) -> tuple[Tensor, list[int]]:
        """(t, its Core AI axes) for per-prediction `axes`; a FOLDED t whose axis 0 is named is
        STACKED first, since that Core AI axis holds the predictions."""
        axes = [normalized_axis(a, t.rank) for a in np.ravel(axes)]
        if t.layout == FOLDED and 0 in axes:
            t = self.stacked(t)
        shift = 1 if t.layout == STACKED else 0
        return t, [a + shift for a in axes]

    def transpose(self, t: Tensor, perm) -> Tensor:
        perm = [normalized_axis(p, t.rank) for p in perm]
        shape = tuple(t.shape[p] for p in perm)
        if perm == list(range(t.rank)):
            return t
        if t.layout == FOLDED and perm[0] != 0:
            t = self.stacked(t)
        if t.layout == STACKED:
            core = [0] + [p + 1 for p in perm]
            layout = STACKED
        else:
            core, layout = perm, t.layout
        dense = None if t.dense is None else np.transpose(t.dense, perm)
        return Tensor(self.A.transpose(t.value, u32(core)), shape, t.dtype, layout, dense)

    def slice(self, t: Tensor, begin, end, stride) -> Tensor:
        """t[begin:end:stride] per axis (all non-negative, in range), as the program sees it."""
        shape = tuple(len(range(b, e, s)) for b, e, s in zip(begin, end, stride))
        if tuple(shape) == t.shape:
            return t
        if t.layout == FOLDED and (begin[0], end[0], stride[0]) != (0, 1, 1):
            t = self.stacked(t)
        if t.layout == STACKED:
            begin, end, stride = [0, *begin], [_BIG, *end], [1, *stride]
        elif t.layout == FOLDED:
            end = [_BIG, *end[1:]]
        value = self.A.slice_(t.value, i32(begin), i32(end), i32(stride))
        return Tensor(value, shape, t.dtype, t.layout)

    def concat(self, tensors: list, axis: int, shape, dtype) -> Tensor:
        """Concatenation of batched Tensors and constants along a per-prediction axis."""
        shape = tuple(shape)
        axis = normalized_axis(axis, len(shape))
        batched = [t for t in tensors if isinstance(t, Tensor) and t.batched]
        folded = axis != 0 and shape[0] == 1 and all(t.layout == FOLDED for t in batched)
        values = []
        for t in tensors:
            if isinstance(t, Tensor) and t.batched:
                values.append((t if folded else self.stacked(t)).value)
            else:  # a constant joins every prediction: broadcast it along the prediction axis
                values.append(self.broadcast_constant(t, batched[0], folded))
        core_axis = axis if folded else axis + 1
        return Tensor(self.A.concat(int(core_axis), values), shape, dtype, FOLDED if folded else STACKED)

    def broadcast_constant(self, x, like: Tensor, folded: bool):
        """A constant (or SHARED value) repeated for each prediction of `like`'s batch."""
        x_shape = x.shape if isinstance(x, Tensor) else np.shape(x)
        core = (1, *x_shape[1:]) if folded else (1, *x_shape)
        value = x.value if isinstance(x, Tensor) else np.ascontiguousarray(np.asarray(x))
        value = self.A.reshape(value, i32(core))
        return self.A.broadcasting_add(self.prediction_zeros(like, len(core), like.dtype), value)

    def prediction_zeros(self, like: Tensor, rank: int, dtype):
        """Core AI zeros of shape (N, 1, ..., 1) (`rank` axes): something with `like`'s prediction
        axis to broadcast a constant against; NaN and inf in `like` do not reach it."""
        first = self.first_elements(like.value, len(like.core_shape()))
        first = self.A.reshape(first, i32((-1,) + (1,) * (rank - 1)))
        zero = np.zeros((1,) * rank, dtype)
        return self.A.broadcasting_where(self.A.broadcasting_equal(first, first), zero, zero)

    def first_elements(self, value, core_rank: int):
        """value[:, 0:1, 0:1, ...]: the first element of each prediction."""
        begin = [0] * core_rank
        end = [_BIG] + [1] * (core_rank - 1)
        return self.A.slice_(value, i32(begin), i32(end), i32([1] * core_rank))

    # -- spatial ops (convolution, pooling) -------------------------------------------------------
    def spatial(self, t: Tensor, k: int) -> tuple[object, int]:
        """(Core AI value of shape (M, C, *D), the program's batch B) for a rank-(k + 2) input
        (B, C, *D), M = N x B: the prediction axis merged into the program's own batch axis."""
        if t.rank != k + 2:
            raise UnsupportedModelError(f"a {k}-D spatial op on a rank-{t.rank} value")
        if t.layout == FOLDED:
            return t.value, 1
        return self.A.reshape(t.value, i32((-1, *t.shape[1:]))), t.shape[0]

    def from_spatial(self, value, shape, dtype, program_batch: int) -> Tensor:
        shape = tuple(shape)
        if program_batch == 1:
            return Tensor(value, shape, dtype, FOLDED)
        return Tensor(self.A.reshape(value, i32((-1, *shape))), shape, dtype, STACKED)

    # -- output -----------------------------------------------------------------------------------
    def rows(self, t: Tensor) -> object:
        """t as Core AI (N, values): one row per prediction, float32."""
        width = int(np.prod(t.shape))
        value = t.value if t.core_shape() == (-1, width) else self.A.reshape(t.value, i32((-1, width)))
        return value if t.dtype == np.float32 else self.A.cast(value, np.float32)


def _as_dtype(x, dtype):
    if isinstance(x, Tensor):
        return x
    array = np.asarray(x)
    floats = array.dtype.kind == "f" and np.dtype(dtype).kind == "f"
    return array.astype(dtype) if floats and array.dtype != dtype else array
