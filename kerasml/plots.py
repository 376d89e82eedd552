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


def plot_layer_errors(result, path: Path) -> Path:
    """`kerasml diff`'s rows as a picture: each Keras layer's |Δ| relative to its largest value, on a
    log scale, with the tolerance line and the first layer beyond it marked."""
    plt = pyplot()
    rows = [row for row in result.rows if row.relative is not None]
    first = result.first_divergent_layer
    figure, axis = plt.subplots(figsize=(min(24.0, max(6.0, 0.28 * len(rows) + 2)), 4.5))
    x = np.arange(len(rows))
    values = np.array([row.relative for row in rows], dtype=np.float64)
    broken = ~np.isfinite(values)     # float16 overflow: inf or NaN, drawn as a hatched bar at the top
    finite = values[~broken]
    top = 10 * max([1.0, result.tolerance, *finite.tolist()])
    values = np.where(broken, top, np.maximum(values, 1e-12))
    colours = ["#c0392b" if not row.within else "#2e86c1" for row in rows]
    bars = axis.bar(x, values, color=colours)
    for bar, is_broken in zip(bars, broken):
        if is_broken:
            bar.set_hatch("//")
            bar.set_edgecolor("white")
    axis.set_yscale("log")
    # the tolerance line always in view, and room above the tallest bar for the "first departs" label
    axis.set_ylim(min(values.min(), result.tolerance) / 3, values.max() * 30)
    axis.axhline(result.tolerance, color="black", linestyle="--", linewidth=1, label=f"tolerance {result.tolerance:g}")
    if first is not None:
        index = next(i for i, row in enumerate(rows) if row.layer == first)
        axis.annotate(f"first departs: {first}", (index, values[index]), xytext=(0, 18), textcoords="offset points",
                      ha="center", fontsize=8, arrowprops={"arrowstyle": "->"})
    axis.set_xticks(x)
    axis.set_xticklabels([row.layer if len(row.layer) <= 28 else row.layer[:27] + "…" for row in rows],
                         rotation=70, ha="right", fontsize=7 if len(rows) <= 60 else 4)
    axis.set_ylabel("max |Δ| / largest Keras value")
    axis.set_title(f"{Path(result.converted).name} against Keras ({result.compute}), layer by layer")
    handles, _ = axis.get_legend_handles_labels()
    if broken.any():
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor="#c0392b", edgecolor="white", hatch="//", label="inf or NaN"))
    axis.legend(handles=handles, loc="upper right", fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    with atomic_output(Path(path), force=True) as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    plt.close(figure)
    return Path(path)
