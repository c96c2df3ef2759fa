"""helpers.plots: each function draws one figure, and rejects inputs that do not fit."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_show_images_draws_one_titled_panel_per_image_and_hides_the_spare_ones():
    plots.show_images(np.zeros((5, 28, 28)), [f"image {i}" for i in range(5)], ncols=3)

    axes = plt.gcf().axes
    assert len(axes) == 6
    assert [ax.get_title() for ax in axes[:5]] == [f"image {i}" for i in range(5)]
    assert not axes[5].images


def test_show_images_rejects_a_title_count_that_does_not_match():
    with pytest.raises(ValueError, match="3 images but 2 titles"):
        plots.show_images(np.zeros((3, 8, 8)), ["a", "b"])


def test_show_images_rejects_a_flat_array():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        plots.show_images(np.zeros((3, 64)), ["a", "b", "c"])


def test_show_predictions_colours_mistakes_and_names_the_true_class():
    plots.show_predictions(np.zeros((2, 8, 8)), np.array([0, 1]), np.array([0, 0]), ["cat", "dog"], ncols=2)

    right, wrong = plt.gcf().axes
    assert right.get_title() == "cat" and right.title.get_color() == plots.RIGHT_COLOR
    assert wrong.get_title() == "cat\n(true: dog)" and wrong.title.get_color() == plots.WRONG_COLOR


def test_plot_history_draws_train_and_validation_curves_per_run():
    history = {"accuracy": [0.5, 0.6], "val_accuracy": [0.4, 0.5], "loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}
    plots.plot_history({"A": history, "B": history})

    accuracy_axes, loss_axes = plt.gcf().axes
    assert len(accuracy_axes.lines) == len(loss_axes.lines) == 4


def test_plot_history_names_the_missing_metric():
    with pytest.raises(ValueError, match="no 'auc'"):
        plots.plot_history({"A": {"loss": [1.0]}}, metric="auc")


def test_plot_confusion_matrix_writes_every_count():
    plots.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"])

    texts = [t.get_text() for t in plt.gcf().axes[0].texts]
    assert texts == ["3", "1", "0", "4"]


def test_plot_confusion_matrix_rejects_a_shape_that_does_not_match_the_names():
    with pytest.raises(ValueError, match="must be 3x3"):
        plots.plot_confusion_matrix(np.zeros((2, 2), dtype=int), ["a", "b", "c"])
