"""ML Program gather and scatter ops (ops/defs/iOS15/scatter_gather.py, iOS 16's batch_dims, iOS 17's
validate_indices).

Negative indices count from the end, as in NumPy, except in iOS 17's scatter ops (versions of
their own), which call them out of bounds. Scatter modes combine each update with the
value already there (`update` replaces it); repeated indices combine one after another.
"""

from __future__ import annotations

import itertools

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.runtime.mil.args import Args
from kerasml.runtime.mil.per_prediction import per_prediction
from kerasml.runtime.registry import IOS16, IOS17, MIL_OPS, OPTIONAL_CONST, TENSOR, InputSpec

GATHER = InputSpec(x=TENSOR, indices=TENSOR, axis=OPTIONAL_CONST)
SCATTER = InputSpec(data=TENSOR, indices=TENSOR, updates=TENSOR, axis=OPTIONAL_CONST, mode=OPTIONAL_CONST)
VALIDATED = {"validate_indices": OPTIONAL_CONST}  # iOS 17 adds it to every gather and scatter op

_MODES = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "max": np.maximum,
    "min": np.minimum,
}


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _indices(args: Args) -> np.ndarray:
    return np.asarray(args.get("indices")).astype(np.int64)


def _in_bounds(args: Args, indices: np.ndarray, sizes) -> np.ndarray:
    """iOS 17's scatter ops take indices 0 <= i < size only: negative ones are out of bounds too.
    Out of bounds is an error when `validate_indices`, and undefined (refused here) when not."""
    bad = (indices < 0) | (indices >= np.asarray(sizes))
    if bad.any():
        value = int(indices[bad].flat[0])
        if args.scalar("validate_indices", False):
            raise KerasmlError(f"op '{args.name}' ({args.kind}) got index {value}, out of bounds (validate_indices)")
        raise args.unsupported(
            f"index {value}, out of bounds without validate_indices (Core ML's result is undefined then)"
        )
    return indices


def _from_the_end(args: Args, indices: np.ndarray, sizes) -> np.ndarray:
    """Scatter ops before iOS 17 count negative indices from the end, as NumPy does."""
    return indices


def _batched(x: np.ndarray, indices: np.ndarray, batch_dims: int, fn) -> np.ndarray:
    """fn(x[b], indices[b]) for every index b of the first `batch_dims` axes, stacked back."""
    if batch_dims == 0:
        return fn(x, indices)
    lead = x.shape[:batch_dims]
    parts = [fn(x[b], indices[b]) for b in itertools.product(*map(range, lead))]
    return np.stack(parts).reshape(lead + parts[0].shape)


@MIL_OPS.register("gather", inputs=GATHER)
@MIL_OPS.register("gather", opset=IOS16, inputs=GATHER.but(batch_dims=OPTIONAL_CONST))
@MIL_OPS.register("gather", opset=IOS17, inputs=GATHER.but(batch_dims=OPTIONAL_CONST, **VALIDATED))
@per_prediction
def gather(args: Args) -> list:
    x, indices = np.asarray(args.get("x")), _indices(args)
    batch_dims = int(args.scalar("batch_dims", 0))
    axis = _axis(args.scalar("axis", 0), x.ndim) - batch_dims
    return [_batched(x, indices, batch_dims, lambda a, i: np.take(a, i, axis=axis))]


@MIL_OPS.register("gather_along_axis", inputs=GATHER)
@MIL_OPS.register("gather_along_axis", opset=IOS17, inputs=GATHER.but(**VALIDATED))
@per_prediction
def gather_along_axis(args: Args) -> list:
    x = np.asarray(args.get("x"))
    return [np.take_along_axis(x, _indices(args), axis=_axis(args.scalar("axis", 0), x.ndim))]


@MIL_OPS.register("gather_nd", inputs=GATHER.but(axis=None))
@MIL_OPS.register("gather_nd", opset=IOS16, inputs=GATHER.but(axis=None, batch_dims=OPTIONAL_CONST))
@MIL_OPS.register("gather_nd", opset=IOS17, inputs=GATHER.but(axis=None, batch_dims=OPTIONAL_CONST, **VALIDATED))
@per_prediction
def gather_nd(args: Args) -> list:
    x, indices = np.asarray(args.get("x")), _indices(args)
    batch_dims = int(args.scalar("batch_dims", 0))
    return [_batched(x, indices, batch_dims, lambda a, i: a[tuple(np.moveaxis(i, -1, 0))])]


def _combine(args: Args, data: np.ndarray, where: tuple, updates: np.ndarray) -> np.ndarray:
    mode = str(args.scalar("mode", "add"))
    out = np.array(data)
    if mode == "update":
        out[where] = updates
    elif mode in _MODES:
        _MODES[mode].at(out, where, updates)
    else:
        raise args.unsupported(f"scatter mode '{mode}'")
    return out


def _scatter(args: Args, checked) -> list:
    data, indices, updates = np.asarray(args.f32("data")), _indices(args), np.asarray(args.f32("updates"))
    axis = _axis(args.scalar("axis", 0), data.ndim)
    indices = checked(args, indices, data.shape[axis])
    # updates has the shape of data with axis `axis` replaced by indices' shape
    grids = np.indices(updates.shape, sparse=True)
    placed = indices.reshape((1,) * axis + indices.shape + (1,) * (data.ndim - axis - 1))
    where = tuple(grids[:axis]) + (placed,) + tuple(grids[axis + indices.ndim :])
    return [_combine(args, data, where, updates)]


def _scatter_along_axis(args: Args, checked) -> list:
    data, indices, updates = np.asarray(args.f32("data")), _indices(args), np.asarray(args.f32("updates"))
    axis = _axis(args.scalar("axis", 0), data.ndim)
    indices = checked(args, indices, data.shape[axis])
    grids = list(np.indices(indices.shape, sparse=True))
    grids[axis] = indices
    return [_combine(args, data, tuple(grids), updates)]


def _scatter_nd(args: Args, checked) -> list:
    data, indices, updates = np.asarray(args.f32("data")), _indices(args), np.asarray(args.f32("updates"))
    indices = checked(args, indices, data.shape[: indices.shape[-1]])
    return [_combine(args, data, tuple(np.moveaxis(indices, -1, 0)), updates)]


SCATTER_ND = SCATTER.but(axis=None)
for _name, _fn, _inputs in (("scatter", _scatter, SCATTER), ("scatter_along_axis", _scatter_along_axis, SCATTER),
                            ("scatter_nd", _scatter_nd, SCATTER_ND)):
    MIL_OPS.add(_name, per_prediction(lambda args, fn=_fn: fn(args, _from_the_end)), inputs=_inputs)
    MIL_OPS.add(_name, per_prediction(lambda args, fn=_fn: fn(args, _in_bounds)), opset=IOS17,
                inputs=_inputs.but(**VALIDATED))
