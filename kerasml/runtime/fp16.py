"""Computing as fp16 hardware (the GPU, the Neural Engine) would: each float16 value rounded, and
what the rounding did to it recorded instead of refused.

`load_model(path, compute="fp16")` runs a model this way: a NeuralNetwork with every float value in
float16, an ML Program with the values it declares float16 (typed execution). Arithmetic itself stays
as the engines do it (float32); each value they produce is rounded once, like a result written to an
fp16 buffer.
An event `(value name, kind)` is recorded when that rounding (or the arithmetic on rounded values)
changes a value in a way worth a look:

    overflow   a finite value beyond ±65504 became ±inf
    nan        the value holds NaN although nothing it was computed from did
    underflow  a value (of one prediction) that was not all zeros became all zeros
"""

from __future__ import annotations

import numpy as np

COMPUTE_MODES = ("fp32", "fp16")
EVENT_KINDS = ("overflow", "nan", "underflow")


def is_float(value) -> bool:
    return isinstance(value, np.ndarray | np.generic) and np.issubdtype(np.asarray(value).dtype, np.floating)


def has_nan(value) -> bool:
    return is_float(value) and bool(np.isnan(value).any())


def rounded(name: str, value, events: list, *, batched: bool, inputs=()) -> np.ndarray:
    """`value` (float) as float16, each event it shows appended to `events` as (name, kind).
    `batched`: the leading axis holds independent predictions (underflow is judged per prediction);
    `inputs`: what the value was computed from (a NaN already there is not this value's doing)."""
    exact = np.asarray(value)
    with np.errstate(over="ignore"):
        out = exact.astype(np.float16)
    if not out.size:
        return out
    finite = np.isfinite(out)
    if not finite.all():
        if (np.isinf(out) & np.isfinite(exact)).any():
            events.append((name, "overflow"))
        if np.isnan(out).any() and not any(has_nan(v) for v in inputs):
            events.append((name, "nan"))
    lead = len(out) if batched and out.ndim else 1
    was = (exact != 0).reshape(lead, -1).any(axis=1)
    now = (out != 0).reshape(lead, -1).any(axis=1)
    if (was & ~now).any():
        events.append((name, "underflow"))
    return out


def merged(*lists: list) -> list:
    """Events of several runs, each (name, kind) once, in the order first seen."""
    seen: dict = {}
    for events in lists:
        for event in events:
            seen.setdefault(event, None)
    return list(seen)
