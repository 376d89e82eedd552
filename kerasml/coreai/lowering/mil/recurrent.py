"""ML Program recurrent ops (lstm, gru, rnn) unrolled over their static sequence length.

Core AI has no recurrent op here, so each step is written out: the step's input slice, two matrix
products with the (constant) weights, the gates, the new state. The gate orders and directions
follow kerasml's runtime (runtime/mil/recurrent.py): MIL's LSTM gates i, f, o, z and GRU gates
r, o, z are reordered as its kernels read them; `reverse` reports the outputs in the order it
computed them; `bidirectional` aligns the backward outputs with the input's steps and joins the
two directions' features. A state that starts as a constant stays NumPy until the first step
mixes in the input.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import STACKED, Tensor, i32
from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS, lowers
from kerasml.runtime import kernels

_BIG = np.iinfo(np.int32).max


class _Steps:
    """Arithmetic on (N, B, width) Core AI values and (B, width) NumPy constants."""

    def __init__(self, op: Op, batch: int):
        self.g, self.A, self.batch = op.g, op.g.A, batch
        self.dtype = np.dtype(np.float32)

    def _operand(self, v):
        return np.ascontiguousarray(np.asarray(v, np.float32).reshape((1,) + np.shape(v)[-2:])) \
            if isinstance(v, np.ndarray) and v.ndim == 2 else np.asarray(v, np.float32)

    def binary(self, name: str, a, b):
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return {"add": np.add, "sub": np.subtract, "mul": np.multiply}[name](a, b).astype(np.float32)
        fn = getattr(self.A, f"broadcasting_{name}")
        return fn(self._operand(a) if isinstance(a, np.ndarray) else a,
                  self._operand(b) if isinstance(b, np.ndarray) else b)

    def add(self, a, b): return self.binary("add", a, b)
    def sub(self, a, b): return self.binary("sub", a, b)
    def mul(self, a, b): return self.binary("mul", a, b)

    def matmul(self, v, w_t: np.ndarray):
        """v (N, B, K) or (B, K) @ w_t (K, G)."""
        if isinstance(v, np.ndarray):
            return (v @ w_t).astype(np.float32)
        return self.A.broadcasting_batch_matmul(v, np.ascontiguousarray(w_t[None].astype(np.float32)))

    def columns(self, v, start: int, stop: int):
        if isinstance(v, np.ndarray):
            return v[:, start:stop]
        return self.A.slice_(v, i32([0, 0, start]), i32([_BIG, self.batch, stop]), i32([1, 1, 1]))

    def act(self, name: str, v):
        if isinstance(v, np.ndarray):
            raise ValueError("a recurrent step on constants only")
        A = self.A
        if name == "sigmoid":
            return A.sigmoid(v)
        if name in ("tanh", "scaled_tanh"):       # scaled_tanh with its default alpha = beta = 1
            return A.tanh(v)
        if name == "relu":
            return A.relu(v)
        if name == "linear":
            return v
        if name in ("hard_sigmoid", "sigmoid_hard"):
            v = A.broadcasting_add(A.broadcasting_mul(v, np.asarray(0.2, np.float32)), np.asarray(0.5, np.float32))
            return A.broadcasting_minimum(A.broadcasting_maximum(v, np.asarray(0, np.float32)),
                                          np.asarray(1, np.float32))
        raise ValueError(f"activation '{name}'")

    def clip(self, v, limit):
        if limit is None:
            return v
        A = self.A
        return A.broadcasting_minimum(A.broadcasting_maximum(v, np.asarray(-limit, np.float32)),
                                      np.asarray(limit, np.float32))


def _activation(op: Op, param: str, default: str) -> str:
    name = str(op.scalar(param, default)).lower()
    if name not in ("sigmoid", "tanh", "relu", "linear", "hard_sigmoid", "sigmoid_hard", "scaled_tanh"):
        raise op.unsupported(f"{param} '{name}'")
    return name


def _directions(op: Op) -> list[tuple[str, bool]]:
    direction = op.scalar("direction", "forward")
    if direction == "forward":
        return [("", False)]
    if direction == "reverse":
        return [("", True)]
    if direction == "bidirectional":
        return [("", False), ("_back", True)]
    raise op.unsupported(f"direction '{direction}'")


def _f32(op: Op, name: str):
    value = op.const(name, None)
    return None if value is None else np.asarray(value, np.float32)


def _state(op: Op, name: str, parts: int):
    """An initial state split per direction: NumPy (B, H) or Core AI (N, B, H)."""
    value = op.get(name)
    if isinstance(value, Tensor):
        if not value.batched:
            return np.split(np.asarray(value.dense, np.float32), parts, axis=-1)
        t = op.g.stacked(value)
        b, width = value.shape
        size = width // parts
        return [op.g.A.slice_(t.value, i32([0, 0, k * size]), i32([_BIG, b, (k + 1) * size]), i32([1, 1, 1]))
                for k in range(parts)]
    return np.split(np.asarray(value, np.float32), parts, axis=-1)


def _run(op: Op, cell, states: list[list]) -> list:
    """cell(m, steps, suffix, *initial states) -> (per-step outputs, *final states), per direction."""
    g, x = op.g, op.batched("x")
    if x.rank != 3:
        raise op.unsupported(f"a rank-{x.rank} input")
    steps, batch, width = x.shape
    t = g.stacked(x)
    inputs = [g.A.reshape(g.A.slice_(t.value, i32([0, s, 0, 0]), i32([_BIG, s + 1, batch, width]), i32([1, 1, 1, 1])),
                          i32((-1, batch, width))) for s in range(steps)]
    m = _Steps(op, batch)
    directions = _directions(op)
    seqs, finals = [], []
    for d, (suffix, backwards) in enumerate(directions):
        order = inputs[::-1] if backwards else inputs
        outs, *last = cell(m, order, suffix, *[s[d] for s in states])
        if backwards and len(directions) == 2:
            outs = outs[::-1]
        seqs.append(outs)
        finals.append(last)
    hidden = op.shapes[1][-1] // len(directions)
    joined = lambda parts: parts[0] if len(parts) == 1 else g.A.concat(2, list(parts))  # noqa: E731
    if op.scalar("output_sequence", False):
        per_step = [joined([seq[s] for seq in seqs]) for s in range(steps)]
        stacked = [g.A.reshape(v, i32((-1, 1, batch, hidden * len(directions)))) for v in per_step]
        out = stacked[0] if steps == 1 else g.A.concat(1, stacked)
    else:
        out = g.A.reshape(joined([f[0] for f in finals]), i32((-1, 1, batch, hidden * len(directions))))
    results = [Tensor(out, op.shapes[0], op.dtypes[0], STACKED)]
    for k in range(len(finals[0])):
        value = joined([f[k] for f in finals])
        results.append(Tensor(value, op.shapes[1 + k], op.dtypes[1 + k], STACKED))
    return [g.reshape(r, r.shape) for r in results]


@lowers(MIL_LOWERINGS, "lstm", params="x initial_h initial_c weight_ih weight_hh bias peephole weight_ih_back "
        "weight_hh_back bias_back peephole_back direction output_sequence recurrent_activation "
        "cell_activation activation clip")
def lstm(op: Op) -> list:
    gate_act = _activation(op, "recurrent_activation", "sigmoid")
    cell_act = _activation(op, "cell_activation", "tanh")
    out_act = _activation(op, "activation", "tanh")
    clip = op.scalar("clip", None)
    clip = None if clip is None else float(clip)
    parts = len(_directions(op))

    def cell(m: _Steps, inputs, suffix, h, c):
        w_x = kernels.reorder_gates(_f32(op, "weight_ih" + suffix), "ifoz", "ifzo")
        w_h = kernels.reorder_gates(_f32(op, "weight_hh" + suffix), "ifoz", "ifzo")
        bias = _f32(op, "bias" + suffix)
        bias = None if bias is None else kernels.reorder_gates(bias, "ifoz", "ifzo")
        peep = _f32(op, "peephole" + suffix)
        p_i, p_f, p_o = (None, None, None) if peep is None else np.split(peep, 3)
        hidden = w_h.shape[1]
        w_xt, w_ht = np.ascontiguousarray(w_x.T), np.ascontiguousarray(w_h.T)
        outs = []
        for x_t in inputs:
            z = m.add(m.matmul(x_t, w_xt), m.matmul(h, w_ht))
            if bias is not None:
                z = m.add(z, bias.reshape(1, -1))
            zi, zf, zz, zo = (m.columns(z, k * hidden, (k + 1) * hidden) for k in range(4))
            if p_i is not None:
                zi, zf = m.add(zi, m.mul(c, p_i.reshape(1, -1))), m.add(zf, m.mul(c, p_f.reshape(1, -1)))
            i, f = m.act(gate_act, zi), m.act(gate_act, zf)
            c = m.clip(m.add(m.mul(f, c), m.mul(i, m.act(cell_act, zz))), clip)
            if p_o is not None:
                zo = m.add(zo, m.mul(c, p_o.reshape(1, -1)))
            h = m.mul(m.act(gate_act, zo), m.act(out_act, c))
            outs.append(h)
        return outs, h, c

    return _run(op, cell, [_state(op, "initial_h", parts), _state(op, "initial_c", parts)])


@lowers(MIL_LOWERINGS, "gru", params="x initial_h weight_ih weight_hh bias input_bias direction output_sequence "
        "recurrent_activation activation reset_after")
def gru(op: Op) -> list:
    gate_act = _activation(op, "recurrent_activation", "sigmoid")
    out_act = _activation(op, "activation", "tanh")
    reset_after = bool(op.scalar("reset_after", False))
    parts = len(_directions(op))

    def cell(m: _Steps, inputs, suffix, h):
        w_x = kernels.reorder_gates(_f32(op, "weight_ih"), "roz", "zro")
        w_h = kernels.reorder_gates(_f32(op, "weight_hh"), "roz", "zro")
        bias, input_bias = _f32(op, "bias"), _f32(op, "input_bias")
        bias = None if bias is None else kernels.reorder_gates(bias, "roz", "zro")
        input_bias = None if input_bias is None else kernels.reorder_gates(input_bias, "roz", "zro")
        if reset_after:        # `bias` is the recurrent (hidden) bias, `input_bias` the input one
            x_bias, h_bias = input_bias, bias
        else:
            x_bias = bias if input_bias is None else (input_bias if bias is None else bias + input_bias)
            h_bias = None
        hidden = w_h.shape[1]
        h_bias = np.zeros(3 * hidden, np.float32) if h_bias is None else h_bias
        w_xt = np.ascontiguousarray(w_x.T)
        w_zr_t, w_o_t = np.ascontiguousarray(w_h[: 2 * hidden].T), np.ascontiguousarray(w_h[2 * hidden:].T)
        outs = []
        for x_t in inputs:
            pre = m.matmul(x_t, w_xt)
            if x_bias is not None:
                pre = m.add(pre, x_bias.reshape(1, -1))
            zr = m.add(m.add(m.columns(pre, 0, 2 * hidden), m.matmul(h, w_zr_t)), h_bias[: 2 * hidden].reshape(1, -1))
            z = m.act(gate_act, m.columns(zr, 0, hidden))
            r = m.act(gate_act, m.columns(zr, hidden, 2 * hidden))
            if reset_after:
                rec = m.add(m.matmul(h, w_o_t), h_bias[2 * hidden:].reshape(1, -1))
                zo = m.add(m.columns(pre, 2 * hidden, 3 * hidden), m.mul(r, rec))
            else:
                zo = m.add(m.add(m.columns(pre, 2 * hidden, 3 * hidden), m.matmul(m.mul(r, h), w_o_t)),
                           h_bias[2 * hidden:].reshape(1, -1))
            o = m.act(out_act, zo)
            h = m.add(m.mul(m.sub(np.ones((1, hidden), np.float32), z), o), m.mul(z, h))
            outs.append(h)
        return outs, h

    return _run(op, cell, [_state(op, "initial_h", parts)])


@lowers(MIL_LOWERINGS, "rnn", params="x initial_h weight_ih weight_hh bias direction output_sequence activation")
def rnn(op: Op) -> list:
    out_act = _activation(op, "activation", "tanh")
    parts = len(_directions(op))

    def cell(m: _Steps, inputs, suffix, h):
        w_xt = np.ascontiguousarray(_f32(op, "weight_ih").T)
        w_ht = np.ascontiguousarray(_f32(op, "weight_hh").T)
        bias = _f32(op, "bias")
        outs = []
        for x_t in inputs:
            z = m.add(m.matmul(x_t, w_xt), m.matmul(h, w_ht))
            if bias is not None:
                z = m.add(z, bias.reshape(1, -1))
            h = m.act(out_act, z)
            outs.append(h)
        return outs, h

    return _run(op, cell, [_state(op, "initial_h", parts)])
