"""The converted model's interface, decided from the options, the training record and the Keras
model: the image input's size, colour, scale and bias, and the class labels."""

from __future__ import annotations

from kerasml.model.keras_models import LoadedModel
from kerasml.data.labels import parse_labels
from kerasml.errors import KerasmlError
from kerasml.record import DEFAULT_SCALE, DIGITS, Preprocessing, TrainingRecord


def resolve_labels(spec: str | None, record: TrainingRecord | None) -> list[str] | None:
    if spec is None or spec == "auto":
        if record and record.labels:
            return list(record.labels)
        if spec == "auto":
            raise KerasmlError("--labels auto needs the model's training record (<name>.training.json) "
                               "beside it; pass the labels instead, e.g. --labels digits")
        return None
    return parse_labels(spec)



def labels_for_outputs(labels: list[str] | None, model: LoadedModel, source, notes: list[str]) -> list[str]:
    """One label per output of the model: the given ones, or digits 0-9 for a 10-output model."""
    if labels is None:
        if model.output_size != 10:
            raise KerasmlError(f"{source} has {model.output_size} outputs and no training record with "
                               "labels; pass --labels (e.g. @labels.txt or a,b,c)")
        labels = list(DIGITS)
        notes.append("note: no labels given; assuming digits 0-9 (pass --labels to choose)")
    if len(labels) != model.output_size:
        raise KerasmlError(f"{len(labels)} labels given but the model has {model.output_size} outputs; "
                           "give one label per output")
    return labels


def rescales_itself(model: LoadedModel) -> bool:
    """A model that starts with a `Rescaling` layer takes raw 0-255 pixels."""
    layers = getattr(model.keras_model, "layers", None) or []
    return bool(layers) and type(layers[0]).__name__ == "Rescaling"


def resolve_preprocessing(options, record: TrainingRecord | None,
                           shape: tuple[int, int, int], notes: list[str],
                           rescales_itself: bool = False) -> Preprocessing:
    height, width, channels = shape
    if record:
        recorded = record.preprocessing
        if (recorded.height, recorded.width, recorded.channels) != shape:
            raise KerasmlError(f"the training record says {recorded.height}x{recorded.width}x"
                               f"{recorded.channels} images but the model takes {height}x{width}x{channels}; "
                               "is the record beside the model the right one?")
        scale, bias, ink = recorded.scale, list(recorded.bias), recorded.ink
    else:
        scale, bias, ink = DEFAULT_SCALE, [0.0] * channels, "white-on-black" if channels == 1 else "natural colour"
        if rescales_itself:
            scale = 1.0
            if options.scale is None and options.bias is None:
                notes.append("note: the model starts with a Rescaling layer, so Core ML passes raw "
                             "0-255 pixels (scale 1, bias 0)")
        elif options.scale is None and options.bias is None:
            notes.append("note: no training record beside the model; assuming pixels scaled to 0-1 "
                         "(scale 1/255, bias 0); pass --scale/--bias if it was trained otherwise")
    if options.scale is not None:
        if not options.scale > 0:
            raise KerasmlError(f"--scale {options.scale} must be positive (1/255 = 0.00392157 maps 0-255 to 0-1)")
        scale = options.scale
    if options.bias is not None:
        try:
            values = [float(v) for v in options.bias.split(",")]
        except ValueError:
            raise KerasmlError(f"--bias {options.bias!r} must be a number or one number per channel") from None
        if len(values) not in (1, channels):
            raise KerasmlError(f"--bias has {len(values)} values for {channels} channels")
        bias = values * channels if len(values) == 1 else values
    order = record.preprocessing.channel_order if record else "rgb"
    return Preprocessing(height=height, width=width, channels=channels, scale=scale, bias=bias, ink=ink,
                         channel_order=order)


def core_ml_labels(labels: list[str]) -> list:
    """Digit labels become Int64 class labels, exactly like Apple's MNISTClassifier."""
    return [int(label) for label in labels] if int_labels(labels) else list(labels)


def int_labels(labels: list[str]) -> bool:
    return labels == DIGITS


def bias_text(bias: list[float]) -> str:
    return f"{bias[0]:g}" if len(set(bias)) == 1 else ", ".join(f"{b:g}" for b in bias)
