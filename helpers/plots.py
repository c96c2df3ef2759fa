"""Figures the chapters draw again and again: image grids, training curves, confusion matrices.

Each function draws one new matplotlib figure and returns nothing; in a
notebook the figure shows below the cell.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

RIGHT_COLOR = "tab:blue"
WRONG_COLOR = "tab:red"


def show_images(
    images: np.ndarray,
    titles: Sequence[str],
    ncols: int = 6,
    title_colors: Sequence[str] | None = None,
    cmap: str = "gray_r",
) -> None:
    """Draw `images` (N, H, W) or (N, H, W, C) in a grid, each with its title; taught in chapter 01."""
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C); got {images.shape}.")
    if len(titles) != len(images):
        raise ValueError(f"Got {len(images)} images but {len(titles)} titles; give one title per image.")
    if title_colors is not None and len(title_colors) != len(images):
        raise ValueError(f"Got {len(images)} images but {len(title_colors)} title colours.")
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.8 * nrows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(images):
            continue
        ax.imshow(images[index].squeeze(), cmap=cmap if images.ndim == 3 or images.shape[-1] == 1 else None)
        color = title_colors[index] if title_colors is not None else "black"
        ax.set_title(titles[index], fontsize=8, color=color)
    fig.tight_layout()


def show_predictions(
    images: np.ndarray, true_labels: np.ndarray, predicted_labels: np.ndarray,
    class_names: Sequence[str], ncols: int = 6,
) -> None:
    """Grid of images titled "predicted (true)": right in blue, wrong in red; taught in chapter 01."""
    if not (len(images) == len(true_labels) == len(predicted_labels)):
        raise ValueError(
            f"images, true_labels and predicted_labels must have the same length; got "
            f"{len(images)}, {len(true_labels)}, {len(predicted_labels)}."
        )
    titles = [
        f"{class_names[p]}" + ("" if p == t else f"\n(true: {class_names[t]})")
        for t, p in zip(true_labels, predicted_labels)
    ]
    colors = [RIGHT_COLOR if p == t else WRONG_COLOR for t, p in zip(true_labels, predicted_labels)]
    show_images(images, titles, ncols=ncols, title_colors=colors)


def plot_history(histories: Mapping[str, Mapping[str, Sequence[float]]], metric: str = "accuracy") -> None:
    """Training and validation curves of `metric` and loss per epoch, one colour per run; taught in chapter 01.

    Args:
        histories: run name -> `History.history` dict (as returned by `model.fit`).
        metric: the metric to draw beside the loss.
    """
    fig, (ax_metric, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.5))
    for (name, history), color in zip(histories.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        for ax, key in ((ax_metric, metric), (ax_loss, "loss")):
            if key not in history:
                raise ValueError(f"Run {name!r} has no {key!r} in its history; it has {sorted(history)}.")
            epochs = np.arange(1, len(history[key]) + 1)
            ax.plot(epochs, history[key], color=color, linestyle="--", label=f"{name} train")
            if f"val_{key}" in history:
                ax.plot(epochs, history[f"val_{key}"], color=color, label=f"{name} validation")
    for ax, key in ((ax_metric, metric), (ax_loss, "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    ax_metric.legend(fontsize=8)
    fig.tight_layout()


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], title: str = "") -> None:
    """Heat map of a confusion matrix (rows: true class, columns: predicted) with counts; taught in chapter 01."""
    matrix = np.asarray(matrix)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise ValueError(f"matrix must be {n}x{n} for {n} class names; got shape {matrix.shape}.")
    fig, ax = plt.subplots(figsize=(0.55 * n + 2.5, 0.55 * n + 2))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    threshold = matrix.max() / 2
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center", fontsize=7,
                color="white" if count > threshold else "black")
    if title:
        ax.set_title(title)
    fig.tight_layout()
