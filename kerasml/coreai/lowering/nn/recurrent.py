"""NeuralNetwork recurrent layers: `uniDirectionalLSTM`, `biDirectionalLSTM`, `gru` and
`simpleRecurrent`, unrolled over their (fixed) number of steps, as kerasml's runtime runs them
(runtime/nn/recurrent.py, runtime/kernels.py): per prediction the input is [Seq, Batch, I, 1, 1];
gate pre-activations are clipped to [-50, 50], the LSTM cell to its threshold, `forgetBias` adds 1
to the forget gate's bias, `reverseInput` reads the sequence backwards and emits in that order, and
the bidirectional layer puts its backward outputs back at their input positions.

The steps work on Core AI values of shape (M, ...), M = N predictions x Batch rows. A state the
model does not give starts at zero, and the first step is then written without it (adding 0 and
multiplying a finite gate by 0 change nothing), so no zeros of an open size are needed.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import STACKED, Tensor, i32, u32
from kerasml.coreai.lowering.nn.arith import F32
from kerasml.coreai.lowering.nn.layer import Layer
from kerasml.coreai.lowering.registry import NN_LOWERINGS, lowers
from kerasml.runtime.nn import weights
from kerasml.runtime.nn.recurrent import GATE_CLIP

_BIG = np.iinfo(np.int32).max
_DEFAULTS = {"linear": (1.0, 0.0), "scaledTanh": (1.0, 1.0), "sigmoidHard": (0.2, 0.5)}


class _Cell:
    """Raw Core AI arithmetic for one layer's steps: values (M, k), constants broadcast as rows."""

    def __init__(self, layer: Layer):
        self.layer, self.A = layer, layer.g.A

    @staticmethod
    def row(v) -> np.ndarray:
        return np.asarray(v, np.float32).reshape(1, -1)

    def add(self, a, b):
        if a is None or b is None:
            return b if a is None else a
        return self.A.broadcasting_add(a, b)

    def mul(self, a, b):
        return self.A.broadcasting_mul(a, b)

    def sub(self, a, b):
        return self.A.broadcasting_sub(a, b)

    def clip(self, v, limit: float):
        limit = np.float32(limit)
        return self.A.broadcasting_minimum(self.A.broadcasting_maximum(v, self.row(-limit)), self.row(limit))

    def matmul(self, h, w: np.ndarray):
        return None if h is None else self.A.broadcasting_batch_matmul(h, np.ascontiguousarray(w, np.float32))

    def columns(self, v, start: int, stop: int):
        return self.A.slice_(v, i32([0, start]), i32([_BIG, stop]), i32([1, 1]))

    def activation(self, params):
        """The function a recurrent layer's ActivationParams names (unset parameters: the standard form)."""
        kind = params.WhichOneof("NonlinearityType")
        A = self.A
        if kind == "sigmoid":
            return A.sigmoid
        if kind == "tanh":
            return A.tanh
        if kind == "ReLU":
            return A.relu
        if kind in _DEFAULTS:
            msg = getattr(params, kind)
            a, b = (msg.alpha, msg.beta) if (msg.alpha or msg.beta) else _DEFAULTS[kind]
            a, b = self.row(a), self.row(b)
            if kind == "linear":
                return lambda v: A.broadcasting_add(A.broadcasting_mul(v, a), b)
            if kind == "scaledTanh":
                return lambda v: A.broadcasting_mul(A.tanh(A.broadcasting_mul(v, b)), a)
            return lambda v: self.clip01(A.broadcasting_add(A.broadcasting_mul(v, a), b))
        raise self.layer.unsupported(f"the {kind or 'unset'} activation inside a recurrent layer")

    def clip01(self, v):
        return self.A.broadcasting_minimum(self.A.broadcasting_maximum(v, self.row(0)), self.row(1))


def _steps(layer: Layer, size: int):
    """The input as (T, M, I) steps, with T, the Batch size and the input's per-prediction rank."""
    g, x = layer.g, layer.x()
    rank = x.rank
    if not 3 <= rank <= 5 or x.shape[-2:] != (1, 1) or x.shape[-3] != size:
        raise ValueError(f"expects [Seq, Batch, {size}, 1, 1] per prediction, got {x.shape}")
    seq, batch = ((1,) * (5 - rank) + x.shape)[:2]
    t = g.stacked(x)
    v = g.A.reshape(t.value, i32((-1, seq, batch, size)))
    v = g.A.transpose(v, u32([1, 0, 2, 3]))
    return g.A.reshape(v, i32((seq, -1, size))), seq, batch


def _blob(layer: Layer, values: list, batch: int, index: int) -> Tensor:
    """Per-step (M, H) values as output `index`: (T, Batch, H, 1, 1) per prediction, trimmed as declared."""
    A = layer.g.A
    hidden = layer.shapes[index][-3]
    parts = [A.reshape(v, i32((1, -1, hidden))) for v in values]
    v = parts[0] if len(parts) == 1 else A.concat(0, parts)
    v = A.reshape(v, i32((len(values), -1, batch, hidden)))
    v = A.reshape(A.transpose(v, u32([1, 0, 2, 3])), i32((-1, len(values), batch, hidden, 1, 1)))
    return layer.out(Tensor(v, (len(values), batch, hidden, 1, 1), F32, STACKED), index)


def _state(layer: Layer, index: int, batch: int, hidden: int):
    """Initial state input `index` as (M, H) (or a (1, H) constant row); None when it is absent or zero."""
    if len(layer.inputs) <= index:
        return None
    s = layer.inputs[index]
    if isinstance(s, Tensor):
        if int(np.prod(s.shape)) != batch * hidden:
            raise ValueError(f"initial state of shape {s.shape}, expected [1, {batch}, {hidden}, 1, 1]")
        return layer.g.A.reshape(layer.g.stacked(s).value, i32((-1, hidden)))
    s = np.asarray(s, np.float32)
    if not s.any():
        return None
    if batch != 1:
        raise layer.unsupported("a constant initial state for more than one sequence per prediction")
    return s.reshape(1, hidden)


def _matrices(layer: Layer, msg, gates, suffix: str, shape) -> np.ndarray:
    return np.concatenate([weights.decode(getattr(msg, f"{g}{suffix}"), shape, f"layer '{layer.name}' {g}{suffix}")
                           for g in gates])


def _pre_x(cell: _Cell, x, w_x: np.ndarray, bias):
    """x (T, M, I) @ w_x^T (+ bias): every step's input term at once."""
    pre = cell.A.broadcasting_batch_matmul(x, np.ascontiguousarray(w_x.T, np.float32)[None])
    return pre if bias is None else cell.A.broadcasting_add(pre, np.asarray(bias, np.float32).reshape(1, 1, -1))


def _step(cell: _Cell, pre, t: int, width: int):
    v = cell.A.slice_(pre, i32([t, 0, 0]), i32([t + 1, _BIG, width]), i32([1, 1, 1]))
    return cell.A.reshape(v, i32((-1, width)))


def _lstm(layer: Layer, cell: _Cell, x, seq: int, wp, p, size, hidden, acts, h, c, backwards: bool):
    """One LSTM direction (runtime `kernels.lstm`): the outputs in processing order, last h and c."""
    gates = ("inputGate", "forgetGate", "blockInput", "outputGate")
    w_x = _matrices(layer, wp, gates, "WeightMatrix", (hidden, size))
    w_h = _matrices(layer, wp, gates, "RecursionMatrix", (hidden, hidden)).T
    bias = (_matrices(layer, wp, gates, "BiasVector", (hidden,)) if p.hasBiasVectors
            else np.zeros(4 * hidden, np.float32))
    if p.forgetBias:
        bias[hidden:2 * hidden] += 1
    peep = None
    if p.hasPeepholeVectors:
        peep = [cell.row(v) for v in np.split(_matrices(layer, wp, ("inputGate", "forgetGate", "outputGate"),
                                                        "PeepholeVector", (hidden,)), 3)]
    f_act, g_act, h_act = (cell.activation(a) for a in acts)
    cell_clip = float(p.cellClipThreshold or 50.0)
    pre = _pre_x(cell, x, w_x, bias)
    outputs = []
    for t in (range(seq - 1, -1, -1) if backwards else range(seq)):
        z = cell.add(_step(cell, pre, t, 4 * hidden), cell.matmul(h, w_h))
        zi, zf, zz, zo = (cell.columns(z, k * hidden, (k + 1) * hidden) for k in range(4))
        if peep is not None and c is not None:
            zi, zf = cell.add(zi, cell.mul(peep[0], c)), cell.add(zf, cell.mul(peep[1], c))
        i = f_act(cell.clip(zi, GATE_CLIP))
        f = cell.sub(cell.row(1), i) if p.coupledInputAndForgetGate else f_act(cell.clip(zf, GATE_CLIP))
        fc = None if c is None else cell.mul(f, c)
        c = cell.clip(cell.add(fc, cell.mul(i, g_act(cell.clip(zz, GATE_CLIP)))), cell_clip)
        if peep is not None:
            zo = cell.add(zo, cell.mul(peep[2], c))
        h = cell.mul(f_act(cell.clip(zo, GATE_CLIP)), h_act(c))
        outputs.append(h)
    return outputs, h, c


def _lstm_outputs(layer: Layer, p, outputs, batch: int, states: list) -> list:
    seq = outputs if p.sequenceOutput else outputs[-1:]
    results = [_blob(layer, seq, batch, 0)]
    for i, s in enumerate(states[:len(layer.shapes) - 1]):
        results.append(_blob(layer, [s], batch, i + 1))
    return results


@lowers(NN_LOWERINGS, "uniDirectionalLSTM", params="inputVectorSize outputVectorSize activations params "
        "weightParams reverseInput")
def uni_lstm(layer: Layer) -> list:
    q, cell = layer.p, _Cell(layer)
    size, hidden, p = q.inputVectorSize, q.outputVectorSize, q.params
    x, seq, batch = _steps(layer, size)
    h0, c0 = (_state(layer, i, batch, hidden) for i in (1, 2))
    outputs, h, c = _lstm(layer, cell, x, seq, q.weightParams, p, size, hidden, q.activations, h0, c0,
                          q.reverseInput)
    return _lstm_outputs(layer, p, outputs, batch, [h, c])


@lowers(NN_LOWERINGS, "biDirectionalLSTM", params="inputVectorSize outputVectorSize activationsForwardLSTM "
        "activationsBackwardLSTM params weightParams")
def bi_lstm(layer: Layer) -> list:
    q, cell = layer.p, _Cell(layer)
    size, hidden, p = q.inputVectorSize, q.outputVectorSize, q.params
    if len(q.weightParams) != 2:
        raise ValueError(f"{len(q.weightParams)} weight sets, expected 2")
    x, seq, batch = _steps(layer, size)
    hf, cf, hb, cb = (_state(layer, i, batch, hidden) for i in (1, 2, 3, 4))
    yf, hf, cf = _lstm(layer, cell, x, seq, q.weightParams[0], p, size, hidden, q.activationsForwardLSTM, hf, cf,
                       False)
    yb, hb, cb = _lstm(layer, cell, x, seq, q.weightParams[1], p, size, hidden, q.activationsBackwardLSTM, hb, cb,
                       True)
    A = layer.g.A
    if p.sequenceOutput:      # backward outputs back at their input positions
        joined = [A.concat(1, [f, b]) for f, b in zip(yf, yb[::-1])]
    else:
        joined = [A.concat(1, [yf[-1], yb[-1]])]
    results = [_blob(layer, joined, batch, 0)]
    for i, s in enumerate([hf, cf, hb, cb][:len(layer.shapes) - 1]):
        results.append(_blob(layer, [s], batch, i + 1))
    return results


@lowers(NN_LOWERINGS, "gru", params="inputVectorSize outputVectorSize activations sequenceOutput hasBiasVectors "
        "updateGateWeightMatrix resetGateWeightMatrix outputGateWeightMatrix updateGateRecursionMatrix "
        "resetGateRecursionMatrix outputGateRecursionMatrix updateGateBiasVector resetGateBiasVector "
        "outputGateBiasVector reverseInput")
def gru(layer: Layer) -> list:
    """Runtime `kernels.gru` with reset_after False: o = g(W_o x + R_o (r * h) + b_o)."""
    q, cell = layer.p, _Cell(layer)
    size, hidden = q.inputVectorSize, q.outputVectorSize
    if len(q.activations) != 2:
        raise ValueError(f"lists {len(q.activations)} activations, expected 2")
    gates = ("updateGate", "resetGate", "outputGate")
    w_x = _matrices(layer, q, gates, "WeightMatrix", (hidden, size))
    w_h = _matrices(layer, q, gates, "RecursionMatrix", (hidden, hidden))
    bias = _matrices(layer, q, gates, "BiasVector", (hidden,)) if q.hasBiasVectors else None
    f_act, g_act = (cell.activation(a) for a in q.activations)
    x, seq, batch = _steps(layer, size)
    h = _state(layer, 1, batch, hidden)
    pre = _pre_x(cell, x, w_x, bias)
    wzr, wo = w_h[:2 * hidden].T, w_h[2 * hidden:].T
    outputs = []
    for t in (range(seq - 1, -1, -1) if q.reverseInput else range(seq)):
        step = _step(cell, pre, t, 3 * hidden)
        zr = cell.add(cell.columns(step, 0, 2 * hidden), cell.matmul(h, wzr))
        z = f_act(cell.clip(cell.columns(zr, 0, hidden), GATE_CLIP))
        r = f_act(cell.clip(cell.columns(zr, hidden, 2 * hidden), GATE_CLIP))
        reset = None if h is None else cell.matmul(cell.mul(r, h), wo)
        zo = cell.add(cell.columns(step, 2 * hidden, 3 * hidden), reset)
        o = g_act(cell.clip(zo, GATE_CLIP))
        kept = cell.mul(cell.sub(cell.row(1), z), o)
        h = kept if h is None else cell.add(kept, cell.mul(z, h))
        outputs.append(h)
    return _one_state_outputs(layer, q, outputs, batch, h)


@lowers(NN_LOWERINGS, "simpleRecurrent", params="inputVectorSize outputVectorSize activation sequenceOutput "
        "hasBiasVector weightMatrix recursionMatrix biasVector reverseInput")
def simple_recurrent(layer: Layer) -> list:
    q, cell = layer.p, _Cell(layer)
    size, hidden = q.inputVectorSize, q.outputVectorSize
    w_x = weights.decode(q.weightMatrix, (hidden, size), f"layer '{layer.name}' W")
    w_h = weights.decode(q.recursionMatrix, (hidden, hidden), f"layer '{layer.name}' R").T
    bias = weights.vector(q.biasVector, hidden, f"layer '{layer.name}' b") if q.hasBiasVector else None
    act = cell.activation(q.activation)
    x, seq, batch = _steps(layer, size)
    h = _state(layer, 1, batch, hidden)
    pre = _pre_x(cell, x, w_x, bias)
    outputs = []
    for t in (range(seq - 1, -1, -1) if q.reverseInput else range(seq)):
        h = act(cell.clip(cell.add(_step(cell, pre, t, hidden), cell.matmul(h, w_h)), GATE_CLIP))
        outputs.append(h)
    return _one_state_outputs(layer, q, outputs, batch, h)


def _one_state_outputs(layer: Layer, q, outputs: list, batch: int, h) -> list:
    results = [_blob(layer, outputs if q.sequenceOutput else outputs[-1:], batch, 0)]
    if len(layer.shapes) > 1:
        results.append(_blob(layer, [h], batch, 1))
    return results
