"""The report's pictures: per-class accuracy, the most confident mistakes, first-layer filters and
feature maps (training curves and the confusion matrix come from plots.py, which train and
evaluate share)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kerasml.record import Preprocessing, model_stem
from kerasml.plots import plot_confusion, plot_history, pyplot, save_figure

MAX_MAPS = 32       # feature maps and filters shown at most


def write_figures(folder: Path, model: Path, keras_model, matrix: np.ndarray, labels: list[str],
                   accuracy: float, per_class: dict, mistakes: list, example, preprocessing: Preprocessing,
                   notes: list[str]) -> dict[str, Path]:
    """Every PNG of the report into `folder`; what cannot be drawn becomes a note instead."""
    pictures: dict[str, Path] = {}
    stem = model_stem(model)
    history = _history(model.with_name(stem + ".history.json"))
    if history:
        pictures["curves"] = plot_history(history, folder / "curves.png", title=f"Training of {model.name}")
    else:
        notes.append(f"note: no {stem}.history.json beside the model, so no training curves")
    pictures["confusion"] = plot_confusion(matrix, labels, folder / "confusion.png",
                                           title=f"Accuracy {accuracy:.2%} ({int(matrix.sum())} images)")
    pictures["per_class"] = _plot_per_class(per_class, folder / "per_class.png")
    if mistakes:
        pictures["mistakes"] = _plot_mistakes(mistakes, labels, folder / "mistakes.png")
    if keras_model is None:
        notes.append("note: no Keras model beside it (its com.kerasml.source_file), so no filters or feature maps")
        return pictures
    conv = _first_conv(keras_model)
    if conv is None:
        notes.append("note: the model has no Conv2D layer kerasml can show, so no filters or feature maps")
        return pictures
    pictures["filters"] = _plot_filters(conv, folder / "filters.png")
    maps = _feature_maps(keras_model, conv, preprocessing.scale_pixels(example[0][None]))
    if maps is None:
        notes.append(f"note: the first Conv2D layer ({conv.name}) is not on the model's main path "
                     "(nested or branched), so no feature maps")
    else:
        pictures["feature_maps"] = _plot_feature_maps(example[0], maps, conv.name, labels[example[1]],
                                                      folder / "feature_maps.png")
    return pictures


def _history(path: Path) -> dict | None:
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return history if isinstance(history, dict) and history.get("loss") else None


def _first_conv(model):
    """The first Conv2D layer, looking inside nested models too (Keras 3 or tf_keras)."""
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "Conv2D":
            return layer
        nested = _first_conv(layer)
        if nested is not None:
            return nested
    return None


def _feature_maps(model, conv, image: np.ndarray) -> np.ndarray | None:
    """Run the top-level layers up to and including `conv` on one image: (H, W, filters)."""
    x = image
    try:
        for layer in model.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            x = layer(x)
            if layer is conv:
                return np.asarray(x)[0]
    except (ValueError, TypeError):     # a branching graph: a layer wanted more than one input
        return None
    return None


def _grid(count: int, columns: int, cell: float = 1.4, title_room: float = 0.0):
    plt = pyplot()
    rows = max(1, -(-count // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * cell, rows * (cell + title_room) + 0.6),
                                squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    return figure, list(axes.flat)


def _show(axis, image: np.ndarray, **kwargs) -> None:
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        kwargs.setdefault("cmap", "gray")
    axis.imshow(image, **kwargs)


def _plot_per_class(per_class: dict, path: Path) -> Path:
    plt = pyplot()
    names = list(per_class)
    values = [100 * (accuracy or 0.0) for accuracy, _ in per_class.values()]
    figure, axis = plt.subplots(figsize=(7, max(2.5, 0.3 * len(names) + 1)))
    bars = axis.barh(range(len(names)), values, color="tab:blue")
    for bar, (accuracy, count) in zip(bars, per_class.values()):
        text = "no images" if accuracy is None else f"{accuracy:.1%} of {count}"
        inside = bar.get_width() > 70                   # long bars carry their label, in white
        axis.text(bar.get_width() + (-1 if inside else 1), bar.get_y() + bar.get_height() / 2, text,
                  va="center", ha="right" if inside else "left", fontsize=8, color="white" if inside else "black")
    axis.set_yticks(range(len(names)), names)
    axis.invert_yaxis()
    axis.set_xlim(0, 100)
    axis.set_xlabel("accuracy (%)")
    axis.set_title("Accuracy per class")
    figure.tight_layout()
    return save_figure(figure, path)


def _plot_mistakes(mistakes: list, labels: list[str], path: Path) -> Path:
    wrong = [m for m in mistakes if m[4] != m[3]]
    figure, axes = _grid(len(mistakes), columns=4, cell=2.0, title_room=0.4)
    for axis, (_, index, image, true, predicted, confidence) in zip(axes, mistakes):
        _show(axis, image, vmin=0, vmax=255)
        colour = "tab:red" if predicted != true else "tab:green"
        axis.set_title(f"#{index} true: {labels[true]}\npredicted: {labels[predicted]} {confidence:.0%}",
                       fontsize=8, color=colour)
    figure.suptitle("Most confident mistakes" if wrong else
                    "No mistakes: the least confident right answers")
    figure.tight_layout()
    return save_figure(figure, path)


def _normalised(array: np.ndarray) -> np.ndarray:
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def _plot_filters(conv, path: Path) -> Path:
    kernel = np.asarray(conv.get_weights()[0])          # (kh, kw, in, out)
    count = min(kernel.shape[3], MAX_MAPS * 2)
    figure, axes = _grid(count, columns=8, cell=1.0)
    for i, axis in zip(range(count), axes):
        weights = kernel[:, :, :, i]
        if weights.shape[2] != 3:
            weights = weights.mean(axis=2)              # grayscale input (or more channels): average
        _show(axis, _normalised(weights), interpolation="nearest")
    figure.suptitle(f"First convolution layer ({conv.name}): {count} of {kernel.shape[3]} "
                    f"{kernel.shape[0]}x{kernel.shape[1]} filters")
    figure.tight_layout()
    return save_figure(figure, path)


def _plot_feature_maps(image: np.ndarray, maps: np.ndarray, name: str, label: str, path: Path) -> Path:
    count = min(maps.shape[2], MAX_MAPS)
    figure, axes = _grid(count + 1, columns=8, cell=1.3, title_room=0.2)
    _show(axes[0], image, vmin=0, vmax=255)
    axes[0].set_title(f"input: {label}", fontsize=8)
    for i, axis in zip(range(count), axes[1:]):
        axis.imshow(maps[:, :, i], cmap="viridis")
        axis.set_title(str(i), fontsize=7)
    figure.suptitle(f"Feature maps of {name} for one image ({count} of {maps.shape[2]})")
    figure.tight_layout()
    return save_figure(figure, path)
