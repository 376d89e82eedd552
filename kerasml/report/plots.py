"""PNG figures shared by train, evaluate and report (matplotlib, no display needed); report's own
figures are in figures.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasml.files import atomic_output


def pyplot():
    """matplotlib.pyplot drawing into files only (Agg)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: works on servers and CI without a display
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: dict[str, list[float]], path: Path, title: str = "Training") -> Path:
    """Loss and accuracy per epoch, training against validation."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + metric)
            if values:
                axis.plot(epochs[: len(values)], values, style, marker="o", markersize=3,
                          label="validation" if prefix else "training")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(metric)
        axis.set_title(metric.capitalize())
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> Path:
    plt = pyplot()
    size = max(5.0, 0.5 * len(labels) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    if len(labels) <= 30:  # numbers in cells stay legible only for small label sets
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, column), count in np.ndenumerate(matrix):
            axis.text(column, row, str(count), ha="center", va="center", fontsize=8,
                      color="white" if count > threshold else "black")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.tight_layout()
    return save_figure(figure, path)


def save_figure(figure, path: Path) -> Path:
    """Write `figure` as a PNG at `path` (atomically) and close it."""
    plt = pyplot()
    try:
        with atomic_output(Path(path), force=True) as temporary:
            figure.savefig(temporary, format="png", dpi=100)
    finally:
        plt.close(figure)
    return Path(path)
