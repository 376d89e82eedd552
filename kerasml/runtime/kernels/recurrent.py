"""Recurrent cells over whole sequences: `lstm`, `gru`, `rnn`, and `reorder_gates`.

Recurrent weights use one canonical gate order per cell (LSTM: input, forget, block input z,
output = "ifzo"; GRU: update z, reset r, output/new o = "zro"); `reorder_gates` converts from
whatever order a format stores (Core ML's MIL lstm uses "ifoz", Keras "ifzo" with z called c).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Activation = Callable[[np.ndarray], np.ndarray]


def reorder_gates(stacked: np.ndarray, order: str, canonical: str) -> np.ndarray:
    """Gate blocks stacked along axis 0 in `order` (e.g. "ifoz"), rearranged into `canonical`."""
    blocks = np.split(np.asarray(stacked, np.float32), len(order), axis=0)
    by_name = dict(zip(order, blocks))
    if sorted(order) != sorted(canonical):
        raise ValueError(f"gate order {order!r} does not name the gates {canonical!r}")
    return np.concatenate([by_name[g] for g in canonical], axis=0)


def _clip(x: np.ndarray, limit: float | None) -> np.ndarray:
    return x if limit is None else np.clip(x, -limit, limit, out=x)


def lstm(
    x: np.ndarray,
    w_x: np.ndarray,
    w_h: np.ndarray,
    bias: np.ndarray | None,
    h0: np.ndarray,
    c0: np.ndarray,
    *,
    acts: tuple[Activation, Activation, Activation],
    peephole: np.ndarray | None = None,
    gate_clip: float | None = None,
    cell_clip: float | None = None,
    coupled: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One LSTM direction over a whole sequence, steps in the order given.

    x (T, B, I); w_x (4H, I) and w_h (4H, H) in gate order "ifzo"; bias (4H,); h0, c0 (B, H);
    peephole (3H,) for gates i, f, o. acts = (f, g, h): f for the i/f/o gates, g for z, h on the cell.
    `gate_clip` bounds each gate's pre-activation, `cell_clip` the cell state (None: no bound).
    `coupled`: the forget gate is 1 - i. Returns (outputs (T, B, H), last h, last c).
    """
    f_act, g_act, h_act = acts
    steps, hidden = x.shape[0], w_h.shape[1]
    pre_x = np.einsum("tbi,gi->tbg", x, w_x, optimize=True).astype(np.float32)
    if bias is not None:
        pre_x += bias
    p_i, p_f, p_o = (None, None, None) if peephole is None else np.split(peephole, 3)
    h, c = h0.astype(np.float32), c0.astype(np.float32)
    out = np.empty((steps, x.shape[1], hidden), np.float32)
    w_ht = np.ascontiguousarray(w_h.T)
    for t in range(steps):
        z = pre_x[t] + h @ w_ht
        zi, zf, zz, zo = (z[:, k * hidden : (k + 1) * hidden] for k in range(4))
        if p_i is not None:
            zi, zf = zi + p_i * c, zf + p_f * c
        i = f_act(_clip(zi, gate_clip))
        f = 1 - i if coupled else f_act(_clip(zf, gate_clip))
        c = f * c + i * g_act(_clip(zz, gate_clip))
        c = _clip(c.astype(np.float32), cell_clip)
        if p_o is not None:
            zo = zo + p_o * c
        h = (f_act(_clip(zo, gate_clip)) * h_act(c)).astype(np.float32)
        out[t] = h
    return out, h, c


def gru(
    x: np.ndarray,
    w_x: np.ndarray,
    w_h: np.ndarray,
    bias: np.ndarray | None,
    h0: np.ndarray,
    *,
    acts: tuple[Activation, Activation],
    recurrent_bias: np.ndarray | None = None,
    reset_after: bool = False,
    gate_clip: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One GRU direction over a whole sequence.

    x (T, B, I); w_x (3H, I), w_h (3H, H), bias and recurrent_bias (3H,), all in gate order "zro"
    (update, reset, output/candidate); h0 (B, H); acts = (f for z and r, g for o).
    reset_after=False (Core ML NeuralNetwork, Keras reset_after=False): o = g(W_o x + R_o (r * h) + b_o).
    reset_after=True (Keras' default, MIL iOS17 `reset_after`): o = g(W_o x + b_o + r * (R_o h + b_ho)).
    Output h = (1 - z) * o + z * h_prev. Returns (outputs (T, B, H), last h).
    """
    f_act, g_act = acts
    steps, hidden = x.shape[0], w_h.shape[1]
    pre_x = np.einsum("tbi,gi->tbg", x, w_x, optimize=True).astype(np.float32)
    if bias is not None:
        pre_x += bias
    rb = np.zeros(3 * hidden, np.float32) if recurrent_bias is None else recurrent_bias
    wz_r_t = np.ascontiguousarray(w_h[: 2 * hidden].T)
    wo_t = np.ascontiguousarray(w_h[2 * hidden :].T)
    h = h0.astype(np.float32)
    out = np.empty((steps, x.shape[1], hidden), np.float32)
    for t in range(steps):
        zr = pre_x[t, :, : 2 * hidden] + h @ wz_r_t + rb[: 2 * hidden]
        z = f_act(_clip(zr[:, :hidden], gate_clip))
        r = f_act(_clip(zr[:, hidden:], gate_clip))
        if reset_after:
            zo = pre_x[t, :, 2 * hidden :] + r * (h @ wo_t + rb[2 * hidden :])
        else:
            zo = pre_x[t, :, 2 * hidden :] + (r * h) @ wo_t + rb[2 * hidden :]
        o = g_act(_clip(zo, gate_clip))
        h = ((1 - z) * o + z * h).astype(np.float32)
        out[t] = h
    return out, h


def rnn(
    x: np.ndarray,
    w_x: np.ndarray,
    w_h: np.ndarray,
    bias: np.ndarray | None,
    h0: np.ndarray,
    *,
    act: Activation,
    gate_clip: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A simple recurrent layer h_t = act(W x_t + R h_{t-1} + b): x (T, B, I), w_x (H, I),
    w_h (H, H), bias (H,), h0 (B, H). Returns (outputs (T, B, H), last h)."""
    pre_x = np.einsum("tbi,gi->tbg", x, w_x, optimize=True).astype(np.float32)
    if bias is not None:
        pre_x += bias
    w_ht = np.ascontiguousarray(w_h.T)
    h = h0.astype(np.float32)
    out = np.empty(pre_x.shape, np.float32)
    for t in range(x.shape[0]):
        h = act(_clip(pre_x[t] + h @ w_ht, gate_clip)).astype(np.float32)
        out[t] = h
    return out, h

