"""NeuralNetwork linear algebra: `innerProduct` (dense), `batchedMatmul` (with stored weights or two
inputs) and `dot` (dot product or cosine similarity along the channels)."""

from __future__ import annotations

import numpy as np

from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import Run, align_batches, unsupported
from kerasml.runtime.registry import NN_LAYERS


@NN_LAYERS.register("innerProduct")
def compile_innerProduct(layer, name: str) -> Run:
    p = layer.innerProduct
    if p.int8DynamicQuantize:
        raise unsupported(name, "innerProduct", "int8 dynamic quantization")
    w = weights.decode(p.weights, (p.outputChannels, p.inputChannels), f"layer '{name}' weights")
    wt = np.ascontiguousarray(w.T)
    bias = weights.vector(p.bias, p.outputChannels, f"layer '{name}' bias") if p.hasBias else None

    def run(inputs):
        # The spec: ranks 1-3 multiply along the last axis; ranks 4-5 flatten the last three axes
        # (C, H, W) into C_in and give (..., C_out, 1, 1). A rank-3 (C_in, 1, 1) blob, or one that does
        # not end in C_in, is a rank-5-mapping (C, H, W) blob, which flattens like rank 5.
        x = inputs[0]
        rank = x.ndim - 1
        chw = rank == 3 and (x.shape[-2:] == (1, 1) and x.shape[-3] == p.inputChannels or x.shape[-1] != p.inputChannels)
        if rank >= 4 or chw:
            lead, flat = x.shape[:-3], x.reshape(x.shape[:-3] + (-1,))
        else:
            lead, flat = x.shape[:-1], x
        if flat.shape[-1] != p.inputChannels:
            raise ValueError(f"input of shape {x.shape[1:]} has {flat.shape[-1]} values per vector, "
                             f"the weights expect {p.inputChannels}")
        y = flat @ wt
        if bias is not None:
            y += bias
        return [y.reshape(lead + (p.outputChannels, 1, 1)) if flat is not x else y]

    return run


@NN_LAYERS.register("batchedMatmul")
def compile_batchedMatmul(layer, name: str) -> Run:
    p = layer.batchedMatmul
    if p.int8DynamicQuantize:
        raise unsupported(name, "batchedMatmul", "int8 dynamic quantization")
    if len(layer.input) == 2:

        def run_two(inputs):
            a, b = align_batches(list(inputs))
            if p.transposeA:
                a = np.swapaxes(a, -1, -2)
            if p.transposeB:
                b = np.swapaxes(b, -1, -2)
            return [np.matmul(a, b)]

        return run_two
    rows, cols = p.weightMatrixFirstDimension, p.weightMatrixSecondDimension
    # Stored as (columns, rows), one row per output channel, like innerProduct's weights.
    w = np.ascontiguousarray(weights.decode(p.weights, (cols, rows), f"layer '{name}' weights").T)
    bias = weights.vector(p.bias, cols, f"layer '{name}' bias") if p.hasBias else None
    # transposeA / transposeB: the spec says both "are ignored when there is one input"

    def run(inputs):
        x = inputs[0]
        if x.shape[-1] != rows:
            raise ValueError(f"input's last dimension is {x.shape[-1]}, the weights expect {rows}")
        y = x @ w
        if bias is not None:
            y += bias
        return [y]

    return run


@NN_LAYERS.register("dot")
def compile_dot(layer, name: str) -> Run:
    cosine = layer.dot.cosineSimilarity

    def run(inputs):
        a, b = inputs
        dot = np.sum(a * b, axis=-3, keepdims=True)
        if cosine:
            norms = np.sqrt(np.sum(a * a, axis=-3, keepdims=True) * np.sum(b * b, axis=-3, keepdims=True))
            dot = dot / norms
        return [dot.astype(np.float32)]

    return run
