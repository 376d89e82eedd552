"""ML Program recurrent ops: lstm, gru and rnn, on the cells in `kernels` (shared with the
NeuralNetwork layers).

MIL stores LSTM gates as i, f, o, z (peepholes i, f, o) and GRU gates as r, o, z (coremltools'
ops/defs/iOS15/recurrent.py); both are reordered into the kernels' canonical orders. x is
(seq, batch, input); `reverse` runs the sequence backwards and reports its outputs in the order
it computed them (as coremltools' tests expect, from PyTorch on the flipped input); `bidirectional`
concatenates forward and backward features, the backward ones aligned with the input's steps
(initial states split the same way).
The LSTM `clip` bounds the cell state. iOS 18's gru adds `reset_after` and a separate `input_bias`.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.mil.args import Args
from kerasml.runtime.mil.per_prediction import per_prediction
from kerasml.runtime.registry import CONST, IOS18, MIL_OPS, OPTIONAL_CONST, TENSOR, InputSpec

RNN = InputSpec(x=TENSOR, initial_h=TENSOR, weight_ih=CONST, weight_hh=CONST, bias=OPTIONAL_CONST,
                direction=OPTIONAL_CONST, output_sequence=OPTIONAL_CONST, activation=OPTIONAL_CONST)
GRU = RNN.but(recurrent_activation=OPTIONAL_CONST)
LSTM = GRU.but(initial_c=TENSOR, peephole=OPTIONAL_CONST, weight_ih_back=OPTIONAL_CONST, weight_hh_back=OPTIONAL_CONST,
               bias_back=OPTIONAL_CONST, peephole_back=OPTIONAL_CONST, cell_activation=OPTIONAL_CONST, clip=OPTIONAL_CONST)

_ACTIVATIONS = {
    "sigmoid": kernels.sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "linear": lambda x: x,
    "hard_sigmoid": lambda x: np.clip(np.float32(0.2) * x + np.float32(0.5), 0, 1),
    "sigmoid_hard": lambda x: np.clip(np.float32(0.2) * x + np.float32(0.5), 0, 1),
    "scaled_tanh": np.tanh,  # with the op's default alpha = beta = 1 (the cell takes no parameters)
}


def _act(args: Args, param: str, default: str):
    name = str(args.scalar(param, default)).lower()
    if name not in _ACTIVATIONS:
        raise args.unsupported(f"{param} '{name}'")
    return _ACTIVATIONS[name]


def _directions(args: Args) -> list[tuple[str, bool]]:
    """(weight suffix, runs backwards) per direction."""
    direction = args.scalar("direction", "forward")
    if direction == "forward":
        return [("", False)]
    if direction == "reverse":
        return [("", True)]
    if direction == "bidirectional":
        return [("", False), ("_back", True)]
    raise args.unsupported(f"direction '{direction}'")


def _f32(args: Args, name: str):
    value = args.f32(name, None)
    return None if value is None else np.asarray(value, np.float32)


def _run(args: Args, cell, states: list[np.ndarray]) -> list:
    """Runs `cell(x, suffix, *initial states)` per direction; returns the op's outputs."""
    x = np.asarray(args.f32("x"), np.float32)
    directions = _directions(args)
    parts = [np.split(s, len(directions), axis=-1) for s in states]
    seqs, finals = [], []
    for d, (suffix, backwards) in enumerate(directions):
        xs = x[::-1] if backwards else x
        seq, *last = cell(xs, suffix, *[p[d] for p in parts])
        seqs.append(seq[::-1] if backwards and len(directions) == 2 else seq)
        finals.append(last)
    out = np.concatenate(seqs, axis=-1)
    if not args.scalar("output_sequence", False):
        out = np.concatenate([f[0][None] for f in finals], axis=-1)
    return [out] + [np.concatenate([f[k] for f in finals], axis=-1) for k in range(len(finals[0]))]


@MIL_OPS.register("lstm", inputs=LSTM)
@per_prediction
def lstm(args: Args) -> list:
    acts = (_act(args, "recurrent_activation", "sigmoid"), _act(args, "cell_activation", "tanh"),
            _act(args, "activation", "tanh"))
    clip = args.scalar("clip", None)

    def cell(x, suffix, h0, c0):
        w_x = kernels.reorder_gates(_f32(args, "weight_ih" + suffix), "ifoz", "ifzo")
        w_h = kernels.reorder_gates(_f32(args, "weight_hh" + suffix), "ifoz", "ifzo")
        bias = _f32(args, "bias" + suffix)
        bias = None if bias is None else kernels.reorder_gates(bias, "ifoz", "ifzo")
        return kernels.lstm(x, w_x, w_h, bias, h0, c0, acts=acts, peephole=_f32(args, "peephole" + suffix),
                            cell_clip=None if clip is None else float(clip))

    return _run(args, cell, [np.asarray(args.f32("initial_h")), np.asarray(args.f32("initial_c"))])


@MIL_OPS.register("gru", inputs=GRU)
@per_prediction
def gru(args: Args) -> list:
    return _gru(args, reset_after=False, input_bias=None)


@MIL_OPS.register("gru", opset=IOS18, inputs=GRU.but(reset_after=OPTIONAL_CONST, input_bias=OPTIONAL_CONST))
@per_prediction
def gru_ios18(args: Args) -> list:
    """iOS 18 adds `reset_after` and a separate `input_bias`."""
    return _gru(args, reset_after=bool(args.scalar("reset_after", False)), input_bias=_f32(args, "input_bias"))


def _gru(args: Args, reset_after: bool, input_bias) -> list:
    acts = (_act(args, "recurrent_activation", "sigmoid"), _act(args, "activation", "tanh"))
    bias = _f32(args, "bias")
    bias = None if bias is None else kernels.reorder_gates(bias, "roz", "zro")
    input_bias = None if input_bias is None else kernels.reorder_gates(input_bias, "roz", "zro")

    def cell(x, suffix, h0):
        w_x = kernels.reorder_gates(_f32(args, "weight_ih"), "roz", "zro")
        w_h = kernels.reorder_gates(_f32(args, "weight_hh"), "roz", "zro")
        if reset_after:  # `bias` is the recurrent (hidden) bias, `input_bias` the input one
            return kernels.gru(x, w_x, w_h, input_bias, h0, acts=acts, recurrent_bias=bias, reset_after=True)
        both = bias if input_bias is None else (input_bias if bias is None else bias + input_bias)
        return kernels.gru(x, w_x, w_h, both, h0, acts=acts)

    return _run(args, cell, [np.asarray(args.f32("initial_h"))])


@MIL_OPS.register("rnn", inputs=RNN)
@per_prediction
def rnn(args: Args) -> list:
    act = _act(args, "activation", "tanh")

    def cell(x, suffix, h0):
        return kernels.rnn(x, _f32(args, "weight_ih"), _f32(args, "weight_hh"), _f32(args, "bias"), h0, act=act)

    return _run(args, cell, [np.asarray(args.f32("initial_h"))])
