"""`kerasml diff`: where a converted model departs from its Keras model, layer by Keras layer.

Both models see the same raw images (compare.py). Keras gives every layer's output; the converted
model gives the value each Keras layer became, by the record convert wrote into it
(`com.kerasml.layers`): kerasml's runtime reads any value of a Core ML model, Apple's runtime the
values of a Core AI model (coreai/intermediates.py). A Keras layer conversion fused into the one
before (a batch normalisation into its convolution, a dropout) has no value of its own: its row
joins that layer's, named for the group. Each row gives the largest difference, the difference
relative to the largest Keras value there, and the signal-to-noise ratio; the first row beyond the
tolerance is where the converted model departs.

With `--compute fp16` a Core ML program runs as the GPU and Neural Engine run it (every value
rounded to float16, kerasml's runtime), and the layers whose values leave float16's range — above
65504, infinite or NaN, or a layer that was not zero in Keras underflowing to zero — are listed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError

FP16_MAX = 65504.0
FP16_TINY = 6.0e-8                   # float16's smallest positive (subnormal) value
TOLERANCES = {"fp32": 1e-4, "fp16": 1e-2}     # largest |Δ| relative to the layer's largest Keras value


@dataclasses.dataclass
class LayerRow:
    layer: str                       # the Keras layer, or "a + b" for layers conversion fused
    shape: tuple                     # Keras' output shape for one image
    value: str | None                # the converted model's value it is compared with
    max_abs_diff: float | None = None
    relative: float | None = None
    snr_db: float | None = None
    within: bool | None = None       # None: not compared (the row says why)
    note: str = ""


@dataclasses.dataclass
class DiffResult:
    keras: str
    converted: str
    runtime: str
    samples: int
    images: str
    compute: str
    tolerance: float
    rows: list[LayerRow]
    fp16_overflow_layers: list[dict] = dataclasses.field(default_factory=list)
    top1_changed: int | None = None          # images whose best class differs from Keras'

    @property
    def first_divergent_layer(self) -> str | None:
        return next((row.layer for row in self.rows if row.within is False), None)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["first_divergent_layer"] = self.first_divergent_layer
        return data

    def lines(self) -> list[str]:
        first = self.first_divergent_layer
        lines = [f"diff {self.converted} ({self.runtime}, {self.compute}) against {self.keras}, layer by layer, "
                 f"on {self.samples} {self.images}; tolerance {self.tolerance:g} relative to each layer's largest value",
                 f"  {'layer':<34} {'shape':<16} {'max |Δ|':>10} {'relative':>10} {'SNR dB':>8}"]
        for row in self.rows:
            mark = "  <- first beyond tolerance" if row.layer == first else ""
            status = {True: "✓", False: "x", None: "-"}[row.within]
            numbers = (f"{_num(row.max_abs_diff, '.2e'):>10} {_num(row.relative, '.2e'):>10} "
                       f"{_num(row.snr_db, '.1f'):>8}" if row.within is not None else f"  {row.note}")
            lines.append(f"{status} {_short(row.layer, 34):<34} {_shape(row.shape):<16} {numbers}{mark}")
        for event in self.fp16_overflow_layers:
            lines.append(f"fp16: {event['layer']} {event['what']}")
        if self.top1_changed is not None:
            lines.append(f"top-1 differs from Keras on {self.top1_changed} of {self.samples} images")
        if first is None:
            lines.append("no layer departs from Keras beyond the tolerance")
        else:
            lines.append(f"first departs at {first}")
        if self.fp16_overflow_layers:
            names = ",".join(dict.fromkeys(e["layer"].split(" + ")[0] for e in self.fp16_overflow_layers))
            lines.append(f"fix: keep those layers in float32: kerasml convert {self.keras} --precision fp16 "
                         f"--fp32-layers {names} (and diff again)")
        return lines


def diff(keras_path: Path, converted_path: Path, data: Path | None = None, samples: int | None = None,
         compute: str = "fp32", tolerance: float | None = None, unsafe: bool = False) -> DiffResult:
    from kerasml.checks.compare import image_preprocessing, load_classifier
    from kerasml.checks.verify import images_for
    from kerasml.coreml.keras_models import load_keras_model

    if compute not in TOLERANCES:
        raise KerasmlError(f"--compute {compute!r} is not fp32 or fp16")
    converted_path, keras_path = Path(converted_path), Path(keras_path)
    model = load_classifier(converted_path)
    record = _layer_record(model, converted_path)
    _check_source(model, keras_path, converted_path)
    if compute == "fp16" and model.kind == "Core AI":
        raise KerasmlError("Apple's Core AI runtime on Linux computes in float32; diff the .mlpackage the "
                           ".aimodel was lowered from with --compute fp16 (kerasml's runtime rounds as fp16 "
                           "hardware does)")
    keras_model = load_keras_model(keras_path, unsafe=unsafe)
    image = model.image
    images, labels, source = images_for(image.height, image.width, image.channels, data, samples or 100)
    pixels = image_preprocessing(image).scale_pixels(images).reshape((len(images), *keras_model.input_shape))
    keras_values, groups = _keras_layers(keras_model, pixels, record)
    converted, events = _converted_values(model, converted_path, images, [v for v in record.values()], compute)
    if tolerance is None:   # a float16 program departs from Keras by float16's rounding at every layer
        fp16_program = model.creator_defined.get("com.kerasml.precision") == "fp16"
        tolerance = TOLERANCES["fp16" if fp16_program else compute]
    rows = [_row(group, record, keras_values, converted, tolerance) for group in groups]
    result = DiffResult(str(keras_path), str(converted_path), f"{model.runtime_name}", len(images), source,
                        compute, tolerance, rows)
    if compute == "fp16":
        result.fp16_overflow_layers = _fp16_layers(groups, record, keras_values, converted, events)
        expected, actual = keras_model.predict(pixels), model.predict_probabilities(images)
        result.top1_changed = int((expected.argmax(1) != actual.argmax(1)).sum())
    return result


# -- the converted model's side ----------------------------------------------------------------------
def _layer_record(model, path: Path) -> dict[str, str]:
    from kerasml.coreml.layers import KEY, read

    record = read(model.creator_defined)
    if not record:
        raise KerasmlError(f"{path} has no record of which Keras layer each of its values came from ({KEY}); "
                           "convert the model again with this kerasml")
    return record


def _check_source(model, keras_path: Path, converted_path: Path) -> None:
    from kerasml.coreml.metadata import sha256_of
    from kerasml.record import metadata_key

    recorded = model.creator_defined.get(metadata_key("source_sha256"))
    if recorded and keras_path.exists() and sha256_of(keras_path) != recorded:
        raise KerasmlError(f"{converted_path} was not converted from {keras_path} (its source was "
                           f"{model.creator_defined.get(metadata_key('source_file'), 'another file')}); "
                           "pass the Keras model it came from")


def _converted_values(model, path: Path, images: np.ndarray, names: list[str], compute: str):
    """({value name: (N, values)}, fp16 events [(value, kind)])."""
    if model.kind == "Core AI":
        from kerasml.coreai.intermediates import intermediates

        return intermediates(path, _nhwc(images), names), []
    from kerasml.runtime import load_model

    runtime = load_model(path, compute=compute) if compute != "fp32" else model
    if hasattr(runtime, "intermediates"):
        values = runtime.intermediates(images, names)
    else:   # until the runtime's own intermediates() lands
        pixels = runtime._pixels_nchw(np.asarray(images), runtime.image)
        values = runtime._run({runtime.input_name: pixels}, [n for n in names if n])
    events = list(getattr(runtime, "fp16_events", []))
    return {name: np.asarray(v, np.float64).reshape(len(images), -1) for name, v in values.items()}, events


def _nhwc(images: np.ndarray) -> np.ndarray:
    return images[..., None] if images.ndim == 3 else images


# -- the Keras side ------------------------------------------------------------------------------------
def _keras_layers(loaded, pixels: np.ndarray, record: dict[str, str]):
    """({layer: output (N, ...)}, groups): each group a list of consecutive layers whose last has the
    converted value, the others fused into it by conversion."""
    keras_model = loaded.keras_model
    if keras_model is None or not getattr(keras_model, "layers", None):
        raise KerasmlError(f"{loaded.path} is a SavedModel without Keras layers; diff compares Keras "
                           "layers, so pass the .keras or .h5 file")
    layers = [layer for layer in keras_model.layers if type(layer).__name__ != "InputLayer"]
    outputs, kept = [], []
    for layer in layers:
        try:
            outputs.append(layer.output)
            kept.append(layer)
        except (AttributeError, ValueError):   # a layer used twice has no single output
            continue
    import keras

    probe = keras.Model(keras_model.inputs, outputs)
    values = probe.predict(pixels, verbose=0, batch_size=100)
    values = values if isinstance(values, list) else [values]
    by_name = {layer.name: np.asarray(v) for layer, v in zip(kept, values)}
    return by_name, _groups(kept, record)


def _groups(layers: list, record: dict[str, str]) -> list[list[str]]:
    """Consecutive layers, each group ending at a layer with a value of its own: a layer conversion
    gave no value (a convolution whose batch normalisation was folded into it names its op after
    the normalisation; a dropout) joins the next one, whose value is computed after it. Layers
    left at the end with no value join the last group."""
    groups: list[list[str]] = []
    pending: list[str] = []
    for layer in layers:
        pending.append(layer.name)
        if layer.name in record:
            groups.append(pending)
            pending = []
    if pending:
        groups[-1:] = [groups[-1] + pending] if groups else [pending]
    return groups


# -- comparison ---------------------------------------------------------------------------------------
def _row(group: list[str], record: dict[str, str], keras_values: dict, converted: dict, tolerance: float) -> LayerRow:
    name = " + ".join(group)
    owner = next((layer for layer in reversed(group) if layer in record), None)
    expected = keras_values[group[-1]]
    row = LayerRow(name, tuple(expected.shape[1:]), record.get(owner) if owner else None)
    if owner is None:
        row.note = "no value of its own in the converted model (computed inside another op)"
        return row
    actual = converted.get(record[owner])
    if actual is None:
        row.note = "no value of its own in the converted model (folded into the next op)"
        return row
    aligned = _aligned(expected, actual)
    if aligned is None:
        row.note = f"sizes differ: Keras {expected[0].size} values, converted {actual.shape[1]}"
        return row
    delta = aligned - expected.reshape(len(expected), -1).astype(np.float64)
    reference = np.abs(expected).max()
    row.max_abs_diff = float(np.abs(delta).max())
    row.relative = row.max_abs_diff / max(float(reference), 1e-12)
    noise = float((delta ** 2).sum())
    row.snr_db = float(10 * np.log10(float((expected.astype(np.float64) ** 2).sum()) / noise)) if noise else float("inf")
    row.within = bool(row.relative <= tolerance) and bool(np.isfinite(aligned).all())
    return row


def _aligned(expected: np.ndarray, actual: np.ndarray) -> np.ndarray | None:
    """The converted values (N, values) in Keras' element order: as they are, or channels first
    (Core ML's NCHW for Keras' NHWC), whichever is closer."""
    n, shape = len(expected), expected.shape[1:]
    if actual.shape[1] != int(np.prod(shape)):
        return None
    flat = expected.reshape(n, -1).astype(np.float64)
    candidates = [actual]
    if len(shape) >= 2:   # (N, C, *spatial) back to (N, *spatial, C)
        channels_first = actual.reshape(n, shape[-1], *shape[:-1])
        candidates.append(np.moveaxis(channels_first, 1, -1).reshape(n, -1))
    return min(candidates, key=lambda c: float(np.nan_to_num(np.abs(c - flat), nan=np.inf).max()))


def _fp16_layers(groups, record, keras_values, converted, events) -> list[dict]:
    """The layers whose values leave float16's range: above 65504 in Keras (they overflow on fp16
    hardware), infinite or NaN in the fp16 run, or non-zero in Keras but all zero in fp16."""
    by_value = {v: l for l, v in record.items()}
    found = []
    for group in groups:
        name, expected = " + ".join(group), keras_values[group[-1]]
        peak = float(np.nanmax(np.abs(expected))) if expected.size else 0.0
        owner = next((layer for layer in reversed(group) if layer in record), None)
        actual = converted.get(record.get(owner, ""), None)
        if peak > FP16_MAX:
            found.append({"layer": name, "what": f"reaches {peak:.4g} in Keras, beyond float16's ±65504", "kind": "overflow"})
        elif actual is not None and not np.isfinite(actual).all():
            found.append({"layer": name, "what": "becomes inf/NaN in float16", "kind": "inf"})
        elif actual is not None and peak > FP16_TINY and not np.abs(actual).max() > 0:
            found.append({"layer": name, "what": "underflows to zero in float16 (all its values)", "kind": "underflow"})
    for value, kind in events:
        layer = by_value.get(value)
        if layer and not any(f["layer"].split(" + ")[0] == layer for f in found):
            found.append({"layer": layer, "what": f"{kind} in float16 (kerasml's runtime)", "kind": kind})
    return found


def _num(value, spec: str) -> str:
    return "-" if value is None else "inf" if value == float("inf") else format(value, spec)


def _shape(shape: tuple) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
