"""NeuralNetwork matrix layers: `innerProduct`, `batchedMatmul` (weights, or two inputs with
transposes), `dot` (and cosine similarity), `embedding` and `embeddingND`.

All become Core AI's broadcasting batch matmul. A constant matrix multiplies a value of any layout
along its last axis as it is; two computed operands are stacked, the prediction axis a batch axis
of the product. An embedding is a product too: the ids compared with 0..vocab-1 give one-hot rows,
times the table (an id outside the table gives zeros, where the runtime refuses it).
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import STACKED, Tensor
from kerasml.coreai.lowering.nn import arith
from kerasml.coreai.lowering.nn.arith import F32
from kerasml.coreai.lowering.nn.layer import Layer
from kerasml.coreai.lowering.registry import NN_LOWERINGS, lowers


def times_matrix(g, x: Tensor, w: np.ndarray) -> Tensor:
    """x (..., k) @ w (k, m), w a constant."""
    if x.rank == 1:
        x = g.reshape(x, (1, x.shape[0]))
        return g.reshape(times_matrix(g, x, w), (w.shape[1],))
    core_rank = len(x.core_shape())
    w = np.ascontiguousarray(np.asarray(w, np.float32).reshape((1,) * (core_rank - 2) + w.shape))
    return Tensor(g.A.broadcasting_batch_matmul(x.value, w), (*x.shape[:-1], w.shape[-1]), F32, x.layout)


def _with_bias(g, y: Tensor, bias) -> Tensor:
    return y if bias is None else arith.add(g, y, bias)


@lowers(NN_LOWERINGS, "innerProduct", params="inputChannels outputChannels hasBias weights bias")
def inner_product(layer: Layer) -> list:
    """Ranks 1-3 multiply along the last axis; ranks 4-5, and a rank-3 (C, H, W) blob of the rank-5
    mapping, flatten (C, H, W) first and give (..., C_out, 1, 1), as the runtime decides."""
    g, p, x = layer.g, layer.p, layer.x()
    w = layer.weights(p.weights, (p.outputChannels, p.inputChannels), "weights")
    bias = layer.vector(p.bias, p.outputChannels, "bias") if p.hasBias else None
    chw = x.rank == 3 and (x.shape[-2:] == (1, 1) and x.shape[-3] == p.inputChannels
                           or x.shape[-1] != p.inputChannels)
    if x.rank >= 4 or chw:
        x = g.reshape(x, (*x.shape[:-3], int(np.prod(x.shape[-3:]))))
    if x.shape[-1] != p.inputChannels:
        raise ValueError(f"input of {x.shape[-1]} values per vector, the weights expect {p.inputChannels}")
    return [layer.out(_with_bias(g, times_matrix(g, x, w.T), bias))]


@lowers(NN_LOWERINGS, "batchedMatmul", params="transposeA transposeB weightMatrixFirstDimension "
        "weightMatrixSecondDimension hasBias weights bias")
def batched_matmul(layer: Layer) -> list:
    g, p = layer.g, layer.p
    if len(layer.inputs) == 1:      # the spec: transposeA / transposeB are ignored with one input
        rows, cols = p.weightMatrixFirstDimension, p.weightMatrixSecondDimension
        w = layer.weights(p.weights, (cols, rows), "weights").T
        bias = layer.vector(p.bias, cols, "bias") if p.hasBias else None
        return [_with_bias(g, times_matrix(g, layer.x(), w), bias)]
    a, b = layer.inputs
    ranks = [len(arith.shape_of(v)) for v in (a, b)]
    if min(ranks) < 2:
        raise layer.unsupported("a rank-1 operand")
    rank = max(ranks)
    a, b = (_operand(g, v, rank, swap) for v, swap in ((a, p.transposeA), (b, p.transposeB)))
    if not isinstance(b, Tensor) and all(d == 1 for d in b.shape[:-2]):     # a constant matrix: any layout
        return [layer.out(times_matrix(g, a, b.reshape(b.shape[-2:])))]
    values = [g.stacked(v).value if isinstance(v, Tensor) else np.ascontiguousarray(v[None]) for v in (a, b)]
    shape = (*np.broadcast_shapes(arith.shape_of(a)[:-2], arith.shape_of(b)[:-2]),
             arith.shape_of(a)[-2], arith.shape_of(b)[-1])
    return [layer.out(Tensor(g.A.broadcasting_batch_matmul(*values), shape, F32, STACKED))]


def _operand(g, v, rank: int, swap: bool):
    """An operand with `rank` axes (leading ones added), its last two swapped when `swap`."""
    if isinstance(v, Tensor):
        v = g.reshape(v, (1,) * (rank - v.rank) + v.shape)
        if swap:
            perm = list(range(rank))
            perm[-2:] = perm[-1], perm[-2]
            v = g.transpose(v, perm)
        return v
    v = np.asarray(v, np.float32)
    v = v.reshape((1,) * (rank - v.ndim) + v.shape)
    return np.ascontiguousarray(np.swapaxes(v, -1, -2) if swap else v)


def _channel_sum(g, v):
    """The sum over C (axis -3), kept."""
    if isinstance(v, Tensor):
        return arith.reduce(g, "sum", v, [-3])
    return np.sum(v, axis=-3, keepdims=True, dtype=np.float32)


@lowers(NN_LOWERINGS, "dot", params="cosineSimilarity")
def dot(layer: Layer) -> list:
    """sum(a * b) over C; with cosineSimilarity, divided by sqrt(sum(a * a) * sum(b * b))."""
    g = layer.g
    a, b = layer.inputs
    total = _channel_sum(g, arith.mul(g, a, b))
    if layer.p.cosineSimilarity:
        norms = arith.mul(g, _channel_sum(g, arith.mul(g, a, a)), _channel_sum(g, arith.mul(g, b, b)))
        total = arith.div(g, total, arith.fn(g, "sqrt", norms) if isinstance(norms, Tensor) else np.sqrt(norms))
    return [total]


def _one_hot_lookup(g, ids: Tensor, table: np.ndarray, bias) -> Tensor:
    """table[ids] (+ bias) for float ids of shape (..., 1): one-hot rows times the table."""
    vocab = np.arange(table.shape[0], dtype=np.float32)
    hot = arith.as_float(g, arith.binary(g, "equal", ids, vocab, arith.BOOL))
    return _with_bias(g, times_matrix(g, hot, table), bias)


@lowers(NN_LOWERINGS, "embedding", params="inputDim outputChannels hasBias weights bias")
def embedding(layer: Layer) -> list:
    g, p, x = layer.g, layer.p, layer.x()
    if x.rank not in (4, 5) or x.shape[-3:] != (1, 1, 1):
        raise ValueError(f"embedding ids must have shape (..., 1, 1, 1) of rank 4 or 5, got {x.shape}")
    table = layer.weights(p.weights, (p.outputChannels, p.inputDim), "weights").T
    bias = layer.vector(p.bias, p.outputChannels, "bias") if p.hasBias else None
    ids = g.reshape(x, (*x.shape[:-3], 1))
    return [layer.out(_one_hot_lookup(g, ids, np.ascontiguousarray(table), bias))]


@lowers(NN_LOWERINGS, "embeddingND", params="vocabSize embeddingSize hasBias weights bias")
def embedding_nd(layer: Layer) -> list:
    g, p, x = layer.g, layer.p, layer.x()
    if x.rank < 2 or x.shape[-1] != 1:
        raise ValueError(f"embedding ids must have rank 2 or more and a last axis of 1, got {x.shape}")
    table = layer.weights(p.weights, (p.embeddingSize, p.vocabSize), "weights").T
    bias = layer.vector(p.bias, p.embeddingSize, "bias") if p.hasBias else None
    return [layer.out(_one_hot_lookup(g, x, np.ascontiguousarray(table), bias))]
