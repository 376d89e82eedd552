"""NeuralNetwork recurrent layers: `uniDirectionalLSTM`, `biDirectionalLSTM`, `gru`, `simpleRecurrent`.

Per prediction the input is [Seq, Batch, inputVectorSize, 1, 1] (lower ranks are read with leading
ones); optional extra inputs are the initial states [1, Batch, H, 1, 1], missing ones start at zero.
Outputs are the sequence (or its last step) then the final states, as many as the layer lists.
Semantics from NeuralNetwork.proto: gate pre-activations clipped to [-50, 50], LSTM cell clipped to
`cellClipThreshold` (50 when unset), `forgetBias` adds 1 to b_f, `reverseInput` reads the sequence
backwards and emits outputs in that (processing) order, while the bidirectional layer aligns its
backward outputs with the input positions, as the spec's example shows.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.nn import weights
from kerasml.runtime.nn.activations import recurrent_activation_fn
from kerasml.runtime.nn.common import Run, unsupported
from kerasml.runtime.registry import NN_LAYERS

GATE_CLIP = 50.0


def _sequence(x: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """(N, ..., I, 1, 1) blob → (T, N * B, I) steps, and the per-prediction rank to restore."""
    rank = x.ndim - 1
    if not 3 <= rank <= 5 or x.shape[-2:] != (1, 1):
        raise ValueError(f"expects [Seq, Batch, {size}, 1, 1] per prediction, got {x.shape[1:]}")
    if x.shape[-3] != size:
        raise ValueError(f"input vectors have {x.shape[-3]} values, the layer expects {size}")
    x5 = x.reshape((x.shape[0],) + (1,) * (5 - rank) + x.shape[1:])
    n, steps, batch = x5.shape[:3]
    return x5[..., 0, 0].transpose(1, 0, 2, 3).reshape(steps, n * batch, size), rank


def _blob(y: np.ndarray, n: int, rank: int) -> np.ndarray:
    """(T, N * B, H) → (N, T, B, H, 1, 1), trimmed to the input's per-prediction rank."""
    steps, nb, hidden = y.shape
    out = y.reshape(steps, n, nb // n, hidden).transpose(1, 0, 2, 3)[..., None, None]
    return out.reshape((n,) + out.shape[-rank:]) if rank < 5 else out


def _state(inputs: list, index: int, n: int, batch: int, hidden: int) -> np.ndarray:
    if len(inputs) <= index:
        return np.zeros((n * batch, hidden), np.float32)
    s = inputs[index]
    if s[0].size != batch * hidden:
        raise ValueError(f"initial state of shape {s.shape[1:]}, expected [1, {batch}, {hidden}, 1, 1]")
    return s.reshape(n * batch, hidden).astype(np.float32)


def _matrix(params, rows: int, cols: int, what: str) -> np.ndarray:
    return weights.decode(params, (rows, cols), what)


def _activations(acts, count: int, name: str, kind: str) -> tuple:
    if len(acts) != count:
        raise ValueError(f"layer '{name}' ({kind}) lists {len(acts)} activations, expected {count}")
    return tuple(recurrent_activation_fn(a, name, kind) for a in acts)


def _stacked(msg, gates, suffix: str, shape: tuple[int, ...], name: str) -> np.ndarray:
    """The per-gate matrices or vectors `<gate><suffix>` of `msg`, stacked in `gates` order."""
    return np.concatenate(
        [weights.decode(getattr(msg, f"{g}{suffix}"), shape, f"layer '{name}' {g}{suffix}") for g in gates]
    )


def _lstm_direction(wp, p, size: int, hidden: int, name: str) -> dict:
    """The kernels.lstm arguments of one direction (gate order i, f, z, o)."""
    gates = ("inputGate", "forgetGate", "blockInput", "outputGate")
    w_x = _stacked(wp, gates, "WeightMatrix", (hidden, size), name)
    w_h = _stacked(wp, gates, "RecursionMatrix", (hidden, hidden), name)
    bias = _stacked(wp, gates, "BiasVector", (hidden,), name) if p.hasBiasVectors else np.zeros(4 * hidden, np.float32)
    if p.forgetBias:
        bias[hidden : 2 * hidden] += 1
    peephole = None
    if p.hasPeepholeVectors:
        peephole = _stacked(wp, ("inputGate", "forgetGate", "outputGate"), "PeepholeVector", (hidden,), name)
    return {"w_x": w_x, "w_h": w_h, "bias": bias, "peephole": peephole}


def _lstm_options(p, acts) -> dict:
    return {
        "acts": acts, "gate_clip": GATE_CLIP, "cell_clip": float(p.cellClipThreshold or 50.0),
        "coupled": p.coupledInputAndForgetGate,
    }


def compile_uniDirectionalLSTM(layer, name: str) -> Run:
    q = layer.uniDirectionalLSTM
    size, hidden, p = q.inputVectorSize, q.outputVectorSize, q.params
    acts = _activations(q.activations, 3, name, "uniDirectionalLSTM")
    args, options = _lstm_direction(q.weightParams, p, size, hidden, name), _lstm_options(p, acts)
    n_out = len(layer.output)

    def run(inputs):
        x, rank = _sequence(inputs[0], size)
        n = inputs[0].shape[0]
        h0, c0 = (_state(inputs, i, n, x.shape[1] // n, hidden) for i in (1, 2))
        steps = x[::-1] if q.reverseInput else x
        y, h, c = kernels.lstm(steps, args["w_x"], args["w_h"], args["bias"], h0, c0, peephole=args["peephole"],
                               **options)
        seq = y if p.sequenceOutput else y[-1:]
        return [_blob(seq, n, rank), _blob(h[None], n, rank), _blob(c[None], n, rank)][:n_out]

    return run


def compile_biDirectionalLSTM(layer, name: str) -> Run:
    q = layer.biDirectionalLSTM
    size, hidden, p = q.inputVectorSize, q.outputVectorSize, q.params
    if len(q.weightParams) != 2:
        raise ValueError(f"layer '{name}' (biDirectionalLSTM) has {len(q.weightParams)} weight sets, expected 2")
    fwd = _lstm_direction(q.weightParams[0], p, size, hidden, name)
    bwd = _lstm_direction(q.weightParams[1], p, size, hidden, name)
    fwd_opts = _lstm_options(p, _activations(q.activationsForwardLSTM, 3, name, "biDirectionalLSTM"))
    bwd_opts = _lstm_options(p, _activations(q.activationsBackwardLSTM, 3, name, "biDirectionalLSTM"))
    n_out = len(layer.output)

    def run(inputs):
        x, rank = _sequence(inputs[0], size)
        n = inputs[0].shape[0]
        b = x.shape[1] // n
        hf, cf, hb, cb = (_state(inputs, i, n, b, hidden) for i in (1, 2, 3, 4))
        yf, hf, cf = kernels.lstm(x, fwd["w_x"], fwd["w_h"], fwd["bias"], hf, cf, peephole=fwd["peephole"], **fwd_opts)
        yb, hb, cb = kernels.lstm(
            x[::-1], bwd["w_x"], bwd["w_h"], bwd["bias"], hb, cb, peephole=bwd["peephole"], **bwd_opts
        )
        if p.sequenceOutput:
            seq = np.concatenate([yf, yb[::-1]], axis=-1)  # backward outputs back at their input positions
        else:
            seq = np.concatenate([yf[-1:], yb[-1:]], axis=-1)
        states = [_blob(s[None], n, rank) for s in (hf, cf, hb, cb)]
        return ([_blob(seq, n, rank)] + states)[:n_out]

    return run


def compile_gru(layer, name: str) -> Run:
    q = layer.gru
    size, hidden = q.inputVectorSize, q.outputVectorSize
    acts = _activations(q.activations, 2, name, "gru")
    gates = ("updateGate", "resetGate", "outputGate")
    w_x = _stacked(q, gates, "WeightMatrix", (hidden, size), name)
    w_h = _stacked(q, gates, "RecursionMatrix", (hidden, hidden), name)
    bias = _stacked(q, gates, "BiasVector", (hidden,), name) if q.hasBiasVectors else None
    return _one_state_run(q, size, hidden, len(layer.output),
                          lambda x, h0: kernels.gru(x, w_x, w_h, bias, h0, acts=acts, gate_clip=GATE_CLIP))


def compile_simpleRecurrent(layer, name: str) -> Run:
    q = layer.simpleRecurrent
    size, hidden = q.inputVectorSize, q.outputVectorSize
    (act,) = _activations([q.activation], 1, name, "simpleRecurrent")
    w_x = _matrix(q.weightMatrix, hidden, size, f"layer '{name}' W")
    w_h = _matrix(q.recursionMatrix, hidden, hidden, f"layer '{name}' R")
    bias = weights.vector(q.biasVector, hidden, f"layer '{name}' b") if q.hasBiasVector else None
    return _one_state_run(q, size, hidden, len(layer.output),
                          lambda x, h0: kernels.rnn(x, w_x, w_h, bias, h0, act=act, gate_clip=GATE_CLIP))


def _one_state_run(q, size: int, hidden: int, n_out: int, cell) -> Run:
    """The layer run of a recurrent layer with one state (gru, simpleRecurrent): `cell(x, h0)` gives
    the outputs over the sequence and the last state; reversal and sequence output as the layer says."""

    def run(inputs):
        x, rank = _sequence(inputs[0], size)
        n = inputs[0].shape[0]
        h0 = _state(inputs, 1, n, x.shape[1] // n, hidden)
        y, h = cell(x[::-1] if q.reverseInput else x, h0)
        seq = y if q.sequenceOutput else y[-1:]
        return [_blob(seq, n, rank), _blob(h[None], n, rank)][:n_out]

    return run


def _check_outputs(compile_, most: int) -> Callable[..., Run]:
    def compile_checked(layer, name: str) -> Run:
        if len(layer.output) > most:
            raise unsupported(name, layer.WhichOneof("layer"), f"{len(layer.output)} outputs (at most {most} exist)")
        return compile_(layer, name)

    return compile_checked


NN_LAYERS.add("uniDirectionalLSTM", _check_outputs(compile_uniDirectionalLSTM, 3))
NN_LAYERS.add("biDirectionalLSTM", _check_outputs(compile_biDirectionalLSTM, 5))
NN_LAYERS.add("gru", _check_outputs(compile_gru, 2))
NN_LAYERS.add("simpleRecurrent", _check_outputs(compile_simpleRecurrent, 2))
