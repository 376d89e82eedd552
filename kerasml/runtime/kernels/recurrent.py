"""Format-neutral math shared by the NeuralNetwork layers and the ML Program ops.

Plain NumPy arrays in, float32 arrays out; no protobuf anywhere. Axis orders are stated per
function. Recurrent weights use one canonical gate order per cell (LSTM: input, forget, block
input z, output = "ifzo"; GRU: update z, reset r, output/new o = "zro"); `reorder_gates` converts
from whatever order a format stores (Core ML's MIL lstm uses "ifoz", Keras "ifzo" with z called c).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from kerasml.runtime.errors import UnsupportedModelError

Activation = Callable[[np.ndarray], np.ndarray]


# -- activations and special functions --------------------------------------------------------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of -|x| never overflows: the two branches give the same value where both are finite
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32, copy=False)


def erf(x: np.ndarray) -> np.ndarray:
    """The Gauss error function, elementwise (scipy's, in float32)."""
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:  # scipy is a dependency; a stripped environment gets one clear line
        raise UnsupportedModelError("erf needs scipy; install it with `pip install scipy`") from None
    return scipy_erf(np.asarray(x, np.float32)).astype(np.float32, copy=False)


GELU_MODES = ("EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION")


def gelu(x: np.ndarray, mode: str = "EXACT") -> np.ndarray:
    """GELU as Core ML defines its three modes (NeuralNetwork `GeluLayerParams`, MIL `gelu`):
    EXACT 0.5 x (1 + erf(x / sqrt 2)); TANH_APPROXIMATION 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)));
    SIGMOID_APPROXIMATION x sigmoid(1.702 x)."""
    x = np.asarray(x, np.float32)
    if mode == "EXACT":
        return (0.5 * x * (1 + erf(x / np.float32(np.sqrt(2))))).astype(np.float32)
    if mode == "TANH_APPROXIMATION":
        inner = np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x**3)
        return (0.5 * x * (1 + np.tanh(inner))).astype(np.float32)
    if mode == "SIGMOID_APPROXIMATION":
        return (x * sigmoid(np.float32(1.702) * x)).astype(np.float32)
    raise UnsupportedModelError(f"gelu mode {mode!r} is not one of {', '.join(GELU_MODES)}")


# -- recurrent cells ---------------------------------------------------------------------------------
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


# -- transposed convolution --------------------------------------------------------------------------
def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    crop: tuple[int, int, int, int] = (0, 0, 0, 0),
    out_size: tuple[int, int] | None = None,
    groups: int = 1,
) -> np.ndarray:
    """Transposed 2-D convolution (the gradient of `numerics.conv2d` with respect to its input).

    x (M, C_in, H, W); w (C_in, C_out / groups, kH, kW). The full result is
    ((H - 1) * s + d (kH - 1) + 1) rows; `crop` (top, bottom, left, right) removes rows and columns
    from its edges. `out_size` (rows, columns), when given, instead takes that many from (top, left)
    of `crop`, extending with zeros past the full result. Returns (M, C_out, rows, columns).
    """
    m, c_in, h, wd = x.shape
    if w.shape[0] != c_in:
        raise ValueError(f"input has {c_in} channels, the weights expect {w.shape[0]}")
    if c_in % groups:
        raise ValueError(f"{c_in} input channels do not split into {groups} groups")
    _, cout_g, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    full_h, full_w = (h - 1) * sh + dh * (kh - 1) + 1, (wd - 1) * sw + dw * (kw - 1) + 1
    cin_g = c_in // groups
    out = np.zeros((m, groups * cout_g, full_h, full_w), np.float32)
    xh = x.transpose(0, 2, 3, 1)  # (M, H, W, C_in): one matmul per group gives every tap at once
    for g in range(groups):
        wg = w[g * cin_g : (g + 1) * cin_g].reshape(cin_g, cout_g * kh * kw)
        taps = (xh[..., g * cin_g : (g + 1) * cin_g] @ wg).reshape(m, h, wd, cout_g, kh, kw)
        block = out[:, g * cout_g : (g + 1) * cout_g]
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + (h - 1) * sh + 1, sh)
                cols = slice(j * dw, j * dw + (wd - 1) * sw + 1, sw)
                block[:, :, rows, cols] += taps[..., i, j].transpose(0, 3, 1, 2)
    top, bottom, left, right = crop
    if out_size is None:
        out_size = (full_h - top - bottom, full_w - left - right)
    oh, ow = out_size
    if oh <= 0 or ow <= 0:
        raise ValueError(f"cropping {crop} leaves nothing of a {full_h}x{full_w} transposed convolution")
    result = np.zeros((m, out.shape[1], oh, ow), np.float32)
    src = out[:, :, top : top + oh, left : left + ow]
    result[:, :, : src.shape[2], : src.shape[3]] = src
    if bias is not None:
        result += bias.reshape(-1, 1, 1)
    return result


# -- resampling ------------------------------------------------------------------------------------
GRID_MODES = ("align_corners", "align_endpoints", "asymmetric", "half_pixel", "roi_align")


def sample_grid(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """`n_out` sampling positions in input pixel units along one axis of length `n_in`.

    align_corners:   linspace(0, n_in - 1, n_out) (a single output sits at 0)
    align_endpoints: the same, but a single output sits at the centre (n_in - 1) / 2
    asymmetric:      i * n_in / n_out                    (NN upsample DEFAULT, SamplingMode UPSAMPLE_MODE)
    half_pixel:      (i + 0.5) * n_in / n_out - 0.5      (ALIGN_CORNERS_FALSE, TensorFlow 2 / Keras)
    roi_align:       spacing max(1, n_in - 1) / n_out, start at half a spacing
    Positions are clamped to [0, n_in - 1], as every Core ML mode specifies.
    """
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("align_corners", "align_endpoints"):
        if n_out == 1:
            pos = np.array([0.0 if mode == "align_corners" else (n_in - 1) / 2])
        else:
            pos = i * (n_in - 1) / (n_out - 1)
    elif mode == "asymmetric":
        pos = i * n_in / n_out
    elif mode == "half_pixel":
        pos = (i + 0.5) * n_in / n_out - 0.5
    elif mode == "roi_align":
        spacing = max(1, n_in - 1) / n_out
        pos = 0.5 * spacing + i * spacing
    else:
        raise ValueError(f"grid mode {mode!r} is not one of {', '.join(GRID_MODES)}")
    return np.clip(pos, 0, n_in - 1)


def box_grid(start: float, end: float, n_out: int, mode: str) -> np.ndarray:
    """`n_out` positions inside the box edge [start, end] (pixel units, end < start allowed for the
    corner modes), the box read as the interval [0, X - 1] of `sample_grid` with X - 1 = end - start."""
    span = end - start
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("align_corners", "align_endpoints"):
        if n_out == 1:
            return np.array([start if mode == "align_corners" else start + span / 2])
        return start + i * span / (n_out - 1)
    if span < 0:
        raise ValueError(f"a box from {start} to {end} runs backwards, which {mode} sampling does not allow")
    if mode == "asymmetric":
        pos = i * (span + 1) / n_out
    elif mode == "roi_align":
        spacing = max(1.0, span) / n_out
        pos = 0.5 * spacing + i * spacing
    else:
        raise ValueError(f"grid mode {mode!r} cannot sample a box")
    return start + np.minimum(pos, span)


def _linear_weights(pos: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = np.clip(np.floor(pos), 0, n_in - 1).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def bilinear_sample(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """x (..., H, W) sampled bilinearly at every (row, column) of the grid rows x cols → (..., R, C).
    Positions must lie in [0, H - 1] and [0, W - 1]."""
    h0, h1, fh = _linear_weights(np.asarray(rows, np.float64), x.shape[-2])
    w0, w1, fw = _linear_weights(np.asarray(cols, np.float64), x.shape[-1])
    x = x.astype(np.float32, copy=False)
    top = x[..., h0, :] * (1 - fh)[:, None] + x[..., h1, :] * fh[:, None]
    return (top[..., w0] * (1 - fw) + top[..., w1] * fw).astype(np.float32, copy=False)


def resize_bilinear(x: np.ndarray, out_hw: tuple[int, int], mode: str) -> np.ndarray:
    """Bilinear resize of the last two axes of x (..., H, W) on a `sample_grid` mode."""
    return bilinear_sample(
        x, sample_grid(x.shape[-2], out_hw[0], mode), sample_grid(x.shape[-1], out_hw[1], mode)
    )


def nearest_indices(n_in: int, n_out: int, *, half_pixel: bool = False) -> np.ndarray:
    """Source index of each output for nearest-neighbour resizing: floor(i * n_in / n_out)
    (or of the pixel centres, floor((i + 0.5) * n_in / n_out), with `half_pixel`), computed in
    exact integer arithmetic so no ratio rounds an index down."""
    i = np.arange(n_out, dtype=np.int64)
    idx = ((2 * i + 1) * n_in) // (2 * n_out) if half_pixel else (i * n_in) // n_out
    return np.minimum(idx, n_in - 1)


def resize_nearest(x: np.ndarray, out_hw: tuple[int, int], *, half_pixel: bool = False) -> np.ndarray:
    """Nearest-neighbour resize of the last two axes of x (..., H, W) to `out_hw`."""
    rows = nearest_indices(x.shape[-2], out_hw[0], half_pixel=half_pixel)
    cols = nearest_indices(x.shape[-1], out_hw[1], half_pixel=half_pixel)
    return x[..., rows, :][..., cols]


# -- normalisation -----------------------------------------------------------------------------------
def layer_norm(
    x: np.ndarray, axes: Sequence[int], gamma: np.ndarray | None, beta: np.ndarray | None, eps: float
) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) * gamma + beta over `axes` (biased variance, eps inside the
    root, as Core ML and Keras both define it); gamma and beta broadcast against x's trailing axes."""
    x = x.astype(np.float32, copy=False)
    axes = tuple(axes)
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    y = centred / np.sqrt(var + np.float32(eps))
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y.astype(np.float32, copy=False)
