"""`kerasml diff`: where a converted model departs from its Keras model, layer by Keras layer.

Both models see the same raw images (compare.py). Keras gives every layer's output; the converted
model gives the value each Keras layer became, by the record convert wrote into it
(`com.kerasml.layers`): kerasml's runtime reads any value of a Core ML model, Apple's runtime the
values of a Core AI model (coreai/intermediates.py). A Keras layer conversion fused into the one
before (a batch normalisation into its convolution, a dropout) has no value of its own: its row
joins that layer's, named for the group. Each row gives the largest difference, the difference
relative to the largest Keras value there, and the signal-to-noise ratio; the first row beyond the
tolerance is where the converted model departs.

A Core ML model that computes in float16 runs as the GPU and Neural Engine run it (kerasml's runtime:
an ML Program converted with --precision fp16 in the types it declares; with `--compute fp16` also a
NeuralNetwork, every value rounded to float16), and the layers whose values leave float16's range —
above 65504, infinite or NaN, or a layer that was not zero in Keras underflowing to zero — are
listed: where it starts, and the layers to keep in float32 (those, and the layers that read them).
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
    fp32_layers: list[str] = dataclasses.field(default_factory=list)   # the fix: keep these in float32
    top1_changed: int | None = None          # images whose best class differs from Keras'
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def first_divergent_layer(self) -> str | None:
        return next((row.layer for row in self.rows if row.within is False), None)

    def to_dict(self) -> dict:
        """As JSON holds it: inf and NaN (float16 overflow, an exact match's SNR) as strings."""
        data = dataclasses.asdict(self)
        data["first_divergent_layer"] = self.first_divergent_layer
        for row in data["rows"]:
            for key, value in row.items():
                if isinstance(value, float) and not np.isfinite(value):
                    row[key] = str(value)
        return data

    def lines(self) -> list[str]:
        first = self.first_divergent_layer
        lines = [f"diff {self.converted} ({self.runtime}, {self.compute}) against {self.keras}, layer by layer, "
                 f"on {self.samples} {self.images}; tolerance {self.tolerance:g} relative to each layer's largest value",
                 *self.notes,
                 f"  {'layer':<34} {'shape':<16} {'max |Δ|':>10} {'relative':>10} {'SNR dB':>8}"]
        for row in self.rows:
            mark = "  <- first beyond tolerance" if row.layer == first else ""
            status = {True: "✓", False: "x", None: "-"}[row.within]
            numbers = (f"{_num(row.max_abs_diff, '.2e'):>10} {_num(row.relative, '.2e'):>10} "
                       f"{_num(row.snr_db, '.1f'):>8}" if row.within is not None else f"  {row.note}")
            lines.append(f"{status} {_short(row.layer, 34):<34} {_shape(row.shape):<16} {numbers}{mark}")
        causes = [e for e in self.fp16_overflow_layers if e["kind"] != "follows"]
        for event in causes:
            lines.append(f"fp16: {event['layer']} {event['what']}")
        following = [e["layer"] for e in self.fp16_overflow_layers if e["kind"] == "follows"]
        if following:
            lines.append(f"fp16: {len(following)} later layer{'s' if len(following) > 1 else ''} become inf/NaN "
                         f"from there ({_short(', '.join(following), 60)})")
        if self.top1_changed is not None:
            lines.append(f"top-1 differs from Keras on {self.top1_changed} of {self.samples} images")
        if first is None:
            lines.append("no layer departs from Keras beyond the tolerance")
        else:
            lines.append(f"first departs at {first}")
        if self.fp32_layers:   # a NeuralNetwork cannot keep layers in float32 on the GPU: an ML Program can
            program = " --format mlpackage" if self.converted.endswith(".mlmodel") else ""
            lines.append(f"fix: keep them and the layers that read them in float32: kerasml convert {self.keras}"
                         f"{program} --precision fp16 --fp32-layers {','.join(self.fp32_layers)} (then diff the new model)")
        return lines


def diff(keras_path: Path, converted_path: Path, data: Path | None = None, samples: int | None = None,
         compute: str = "fp32", tolerance: float | None = None, unsafe: bool = False) -> DiffResult:
    from kerasml.checks.compare import image_preprocessing, load_classifier
    from kerasml.model.images import comparison_images
    from kerasml.model.keras_models import load_keras_model

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
    notes = []
    declares_fp16 = bool(getattr(model, "declares_fp16", False))
    if compute == "fp16" and getattr(model, "model_type", "") == "mlProgram" and not declares_fp16:
        notes.append("note: this ML Program computes in float32 on every compute unit (Core ML runs a program "
                     "in the types it declares), so it has no float16 values to check; convert it with "
                     "--precision fp16 and diff that model")
    in_fp16 = declares_fp16 or (compute == "fp16" and not notes)
    if in_fp16 and compute != "fp16":
        notes.append("note: the program computes in float16 (it was converted with float16 compute), so it is "
                     "run as float16 hardware runs it")
    keras_model = load_keras_model(keras_path, unsafe=unsafe)
    image = model.image
    images, labels, source = comparison_images((image.height, image.width, image.channels), data, samples or 100)
    pixels = image_preprocessing(image).scale_pixels(images).reshape((len(images), *keras_model.input_shape))
    keras_values, groups, readers = _keras_layers(keras_model, pixels, record)
    if in_fp16:   # overflow is recorded, not refused, and is what fp16 hardware computes
        from kerasml.runtime import load_model
        model = load_model(converted_path, compute="fp16")
    converted, events = _converted_values(model, converted_path, images, [v for v in record.values()])
    if tolerance is None:   # float16 departs from Keras by its rounding at every layer
        tolerance = TOLERANCES["fp16" if in_fp16 else "fp32"]
    rows = [_row(group, record, keras_values, converted, tolerance) for group in groups]
    result = DiffResult(str(keras_path), str(converted_path), f"{model.runtime_name}", len(images), source,
                        "fp16" if in_fp16 else "fp32", tolerance, rows, notes=notes)
    if in_fp16:
        found = _fp16_layers(groups, record, keras_values, converted, events)
        result.fp16_overflow_layers = found
        result.fp32_layers = _fp32_fix(found, groups, readers)
        expected, actual = keras_model.predict(pixels), model.predict_probabilities(images)
        result.top1_changed = int((expected.argmax(1) != actual.argmax(1)).sum())
    return result


# -- the converted model's side ----------------------------------------------------------------------
def _layer_record(model, path: Path) -> dict[str, str]:
    from kerasml.model.layer_record import KEY, read

    record = read(model.creator_defined)
    if not record:
        raise KerasmlError(f"{path} has no record of which Keras layer each of its values came from ({KEY}); "
                           "convert the model again with this kerasml")
    return record


def _check_source(model, keras_path: Path, converted_path: Path) -> None:
    from kerasml.files import sha256_of
    from kerasml.record import metadata_key

    recorded = model.creator_defined.get(metadata_key("source_sha256"))
    if recorded and keras_path.exists() and sha256_of(keras_path) != recorded:
        raise KerasmlError(f"{converted_path} was not converted from {keras_path} (its source was "
                           f"{model.creator_defined.get(metadata_key('source_file'), 'another file')}); "
                           "pass the Keras model it came from")


def _converted_values(model, path: Path, images: np.ndarray, names: list[str]):
    """({value name: (N, values)}, fp16 events [(value, kind)])."""
    if model.kind == "Core AI":
        from kerasml.coreai.intermediates import intermediates

        return intermediates(path, _nhwc(images), names), []
    values = model.intermediates(images, [n for n in names if n])
    events = list(getattr(model, "fp16_events", []))
    return {name: np.asarray(v, np.float64).reshape(len(images), -1) for name, v in values.items()}, events


def _nhwc(images: np.ndarray) -> np.ndarray:
    return images[..., None] if images.ndim == 3 else images


# -- the Keras side ------------------------------------------------------------------------------------
def _keras_layers(loaded, pixels: np.ndarray, record: dict[str, str]):
    """({layer: output (N, ...)}, groups, {layer: the layers that read its output}): each group a
    list of consecutive layers whose last has the converted value, the others fused into it by
    conversion."""
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
    return by_name, _groups(kept, record), _readers(keras_model)


def _readers(keras_model) -> dict[str, list[str]]:
    """{layer: the layers that take its output}, from the model's config (the layers' own tensors
    are no guide: a loaded Sequential model is built more than once)."""
    config = keras_model.get_config()
    entries = config if isinstance(config, list) else config.get("layers", [])
    names = [entry.get("config", {}).get("name") or entry.get("name") for entry in entries]
    found: dict[str, list[str]] = {}
    if type(keras_model).__name__ == "Sequential":   # each layer reads the one before
        chain = [name for name, entry in zip(names, entries) if entry.get("class_name") != "InputLayer"]
        for before, after in zip(chain, chain[1:]):
            found.setdefault(before, []).append(after)
        return found
    for name, entry in zip(names, entries):
        for source in dict.fromkeys(_inbound(entry.get("inbound_nodes", []), set(names))):
            found.setdefault(source, []).append(name)
    return found


def _inbound(nodes, names: set[str]):
    """The layer names a layer's `inbound_nodes` config refers to: Keras 3's `keras_history` of each
    tensor, or Keras 2's `[layer, node, tensor, kwargs]` lists."""
    if isinstance(nodes, dict):
        history = nodes.get("config", {}).get("keras_history") if nodes.get("class_name") == "__keras_tensor__" else None
        if history:
            yield history[0]
            return
        for value in nodes.values():
            yield from _inbound(value, names)
    elif isinstance(nodes, list | tuple):
        if len(nodes) >= 3 and isinstance(nodes[0], str) and nodes[0] in names and isinstance(nodes[1], int):
            yield nodes[0]
            return
        for value in nodes:
            yield from _inbound(value, names)


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
    with np.errstate(over="ignore", invalid="ignore"):   # inf/NaN values (float16 overflow) give inf/NaN here
        noise = float((delta ** 2).sum())
    signal = float((expected.astype(np.float64) ** 2).sum())
    row.snr_db = (float("inf") if noise == 0 else float(10 * np.log10(signal / noise)) if np.isfinite(noise) and signal
                  else float("-inf"))
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
    """Where float16 fails, in layer order: a layer whose Keras values exceed ±65504 and that
    overflows ("overflow"),
    that becomes inf/NaN although its Keras values fit ("inf"), or that is not zero in Keras but all
    zero in float16 ("underflow"); inf/NaN in the layers after one of those is "follows"."""
    by_value = {v: layer for layer, v in record.items()}
    event_kinds: dict[str, set[str]] = {}
    for value, kind in events:
        if value in by_value:
            event_kinds.setdefault(by_value[value], set()).add(kind)
    found: list[dict] = []
    for group in groups:
        name, expected = " + ".join(group), keras_values[group[-1]]
        peak = float(np.nanmax(np.abs(expected))) if expected.size else 0.0
        owner = next((layer for layer in reversed(group) if layer in record), None)
        actual = converted.get(record.get(owner, ""), None)
        kinds = event_kinds.get(owner, set())
        broken = (actual is not None and not np.isfinite(actual).all()) or bool(kinds & {"overflow", "nan"})
        if peak > FP16_MAX and broken:   # a layer kept in float32 holds such values
            found.append({"layer": name, "what": f"reaches {peak:.4g} in Keras, beyond float16's ±65504",
                          "kind": "overflow"})
        elif broken and any(f["kind"] in ("overflow", "inf") for f in found):
            found.append({"layer": name, "what": "becomes inf/NaN (from an earlier layer)", "kind": "follows"})
        elif broken:
            found.append({"layer": name, "what": "becomes inf/NaN in float16 although its Keras values fit "
                          "(something inside it overflows)", "kind": "inf"})
        elif peak > FP16_TINY and ((actual is not None and not np.abs(actual).max() > 0) or "underflow" in kinds):
            found.append({"layer": name, "what": "underflows to zero in float16", "kind": "underflow"})
    return found


def _fp32_fix(found: list[dict], groups: list[list[str]], readers: dict[str, list[str]]) -> list[str]:
    """The Keras layers --fp32-layers needs: each group where float16 fails, and for overflow the
    groups that read its values (a float16 op there would take them as inf)."""
    group_of = {layer: group for group in groups for layer in group}
    keep: dict[str, None] = {}
    for event in found:
        if event["kind"] == "follows":
            continue
        group = event["layer"].split(" + ")
        keep.update(dict.fromkeys(group))
        if event["kind"] in ("overflow", "inf"):
            for reader in readers.get(group[-1], []):
                keep.update(dict.fromkeys(group_of.get(reader, [reader])))
    return list(keep)


def _num(value, spec: str) -> str:
    return "-" if value is None else "inf" if value == float("inf") else format(value, spec)


def _shape(shape: tuple) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
