"""Unit tests of helpers.transfer_plots: summaries and tables of per-seed accuracies, the 2 x 2 guide's winners,
the attention step-through logic, caption error kinds and the figures of lecture 06."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from helpers.transfer_plots import (  # noqa: E402
    attention_step,
    caption_error_kind,
    curve_markdown,
    guide_winners,
    plot_attention_overlay,
    plot_caption_attention,
    plot_class_examples,
    plot_guide,
    plot_image_rows,
    plot_source_quality,
    plot_transfer_curve,
    summarise,
)

CURVE = {"probe": {"5": [60.0, 62.0, 64.0], "100": [80.0, 80.0, 80.0]},
         "scratch": {"100": [70.0, 74.0], "5": [40.0, 50.0]}}
GUIDE = {"similar": {"little": {"scratch": [50, 52], "probe": [66, 68], "finetune": [60, 60]},
                     "lots": {"scratch": [77, 77], "probe": [80, 81], "finetune": [79, 80]}},
         "different": {"little": {"scratch": [28, 30], "probe": [41, 41], "finetune": [36, 38]},
                       "lots": {"scratch": [58, 58], "probe": [60, 60], "finetune": [61, 62]}}}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------------ summaries
def test_summarise_values():
    s = summarise([1.0, 2.0, 3.0])
    assert s == {"mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0, "n": 3}   # ddof=1: sqrt(2 / 2) = 1
    assert summarise([5])["std"] == 0.0 and summarise([5])["mean"] == 5.0


@pytest.mark.parametrize("bad", [[], [[1.0, 2.0]], "abc", None])
def test_summarise_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="values"):
        summarise(bad)


def test_curve_markdown_rows_and_columns():
    table = curve_markdown(CURVE, [5, 100]).splitlines()
    assert table[0] == "| method | 5 per class | 100 per class |"
    assert table[2] == "| linear probe (frozen features) | 62.0 ± 2.0 | 80.0 ± 0.0 |"
    # scratch: mean 45, std sqrt(50) = 7.07; mean 72, std sqrt(8) = 2.83
    assert table[3] == "| from scratch | 45.0 ± 7.1 | 72.0 ± 2.8 |"
    assert curve_markdown(CURVE, ["5"], methods=["scratch"], names={"scratch": "S"}).splitlines()[2] == \
        "| S | 45.0 ± 7.1 |"


def test_curve_markdown_errors_name_the_argument():
    with pytest.raises(ValueError, match="methods"):
        curve_markdown(CURVE, [5], methods=["nope"])
    with pytest.raises(ValueError, match="ks"):
        curve_markdown(CURVE, [7])
    with pytest.raises(ValueError, match="ks"):
        curve_markdown(CURVE, [])
    with pytest.raises(ValueError, match="curve"):
        curve_markdown({}, [5])


def test_guide_winners():
    w = guide_winners(GUIDE)
    assert set(w) == {("similar", "little"), ("similar", "lots"), ("different", "little"), ("different", "lots")}
    cell = w[("similar", "little")]
    assert (cell["best"], cell["runner_up"]) == ("probe", "finetune")
    assert cell["margin"] == pytest.approx(7.0) and cell["means"]["scratch"] == pytest.approx(51.0)
    assert cell["stds"]["finetune"] == 0.0 and cell["stds"]["probe"] == pytest.approx(np.sqrt(2.0))
    lots = w[("different", "lots")]
    assert (lots["best"], lots["runner_up"], lots["margin"]) == ("finetune", "probe", pytest.approx(1.5))
    assert guide_winners(GUIDE, methods=["scratch", "finetune"])[("similar", "lots")]["best"] == "finetune"


def test_guide_winners_errors():
    with pytest.raises(ValueError, match="guide"):
        guide_winners({"similar": {}})
    with pytest.raises(ValueError, match="methods"):
        guide_winners(GUIDE, methods=["probe", "pixels"])
    with pytest.raises(ValueError, match="methods"):
        guide_winners(GUIDE, methods=["probe"])


# ------------------------------------------------------------------------------------------ widget logic
WORDS = ["a", "red", "circle", "<END>"]


def _weights(peaks, grid=4, extra_rows=0):
    """Rows that put 0.7 on the given cell and spread 0.3 evenly over the others."""
    rows = np.full((len(peaks) + extra_rows, grid * grid), 0.3 / (grid * grid - 1))
    for t, cell in enumerate(peaks):
        rows[t, cell] = 0.7
    return rows


def test_attention_step_returns_word_cell_and_weights():
    weights = _weights([0, 6, 6, 15], extra_rows=2)         # more rows than words: padding steps are ignored
    view = attention_step(WORDS, weights, 1)
    assert view["word"] == "red" and view["prefix"] == "a" and view["step"] == 1
    assert view["cell"] == (1, 2) and view["peak"] == pytest.approx(0.7)    # cell 6 = row 1, col 2
    assert view["weights"].shape == (4, 4) and view["weights"][1, 2] == pytest.approx(0.7)
    assert view["weights"][0, 0] == pytest.approx(0.02)
    last = attention_step(WORDS, weights, 3)
    assert (last["word"], last["prefix"], last["cell"]) == ("<END>", "a red circle", (3, 3))
    first = attention_step(WORDS, weights, 0)
    assert (first["prefix"], first["cell"]) == ("", (0, 0))


def test_attention_step_other_grid():
    weights = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.1, 0.2, 0.2]])
    view = attention_step(["x", "y"], weights, 0, grid=2)
    assert view["cell"] == (1, 1) and view["peak"] == pytest.approx(0.4)
    np.testing.assert_allclose(view["weights"], [[0.1, 0.2], [0.3, 0.4]])


@pytest.mark.parametrize("step", [-1, 4, 1.0, True, "1"])
def test_attention_step_rejects_bad_step(step):
    with pytest.raises(ValueError, match="step"):
        attention_step(WORDS, _weights([0, 1, 2, 3]), step)


def test_attention_step_rejects_bad_arguments():
    with pytest.raises(ValueError, match="weights"):
        attention_step(WORDS, _weights([0, 1, 2]), 0)                 # fewer rows than words
    with pytest.raises(ValueError, match="weights"):
        attention_step(WORDS, np.ones((4, 9)) / 9, 0)                 # 9 cells on a 4 x 4 grid
    with pytest.raises(ValueError, match="weights"):
        attention_step(WORDS, np.ones(16), 0)
    with pytest.raises(ValueError, match="words"):
        attention_step([], _weights([0]), 0)
    with pytest.raises(ValueError, match="words"):
        attention_step(["a", 3], _weights([0, 1]), 0)
    with pytest.raises(ValueError, match="grid"):
        attention_step(WORDS, _weights([0, 1, 2, 3]), 0, grid=0)


# ------------------------------------------------------------------------------------------ caption errors
@pytest.mark.parametrize("reference, generated, kind", [
    ("a red circle above a blue square", "a red circle above a blue square", "correct"),
    ("a red circle", "a red circle above a blue square", "object count"),
    ("a red circle left of a blue square", "a blue square left of a red circle", "order"),
    ("a red circle above a blue square", "a red circle above a green square", "colour"),
    ("a red circle above a blue square", "a red triangle above a blue square", "shape"),
    ("a red circle left of a green square", "a red circle left of a red circle", "colour and shape"),
    ("a red circle left of a blue square", "a red circle above a blue square", "relation"),
    ("a red circle", "a red circle circle", "object count"),
])
def test_caption_error_kind(reference, generated, kind):
    assert caption_error_kind(reference, generated) == kind


def test_caption_error_kind_rejects_non_strings():
    with pytest.raises(ValueError, match="reference"):
        caption_error_kind(None, "a red circle")
    with pytest.raises(ValueError, match="generated"):
        caption_error_kind("a red circle", ["a", "red", "circle"])


# ------------------------------------------------------------------------------------------ figures
def test_plot_transfer_curve_draws_means_spread_and_seeds():
    ax = plot_transfer_curve(CURVE, chance=20)
    assert ax.get_xscale() == "log"
    assert "per class" in ax.get_xlabel() and "%" in ax.get_ylabel() and ax.get_title()
    lines = {line.get_label(): line for line in ax.get_lines()}
    probe = lines["linear probe (frozen features)"]
    np.testing.assert_allclose(probe.get_xdata(), [5, 100])
    np.testing.assert_allclose(probe.get_ydata(), [62, 80])
    np.testing.assert_allclose(lines["from scratch"].get_ydata(), [45, 72])     # keys sorted numerically
    assert "chance (20 %)" in lines
    dots = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert dots == 3 + 3 + 2 + 2                                               # every seed is a dot


def test_plot_transfer_curve_rejects_unknown_method_and_bad_k():
    with pytest.raises(ValueError, match="methods"):
        plot_transfer_curve(CURVE, methods=["nope"])
    with pytest.raises(ValueError, match="keys"):
        plot_transfer_curve({"probe": {"five": [1.0]}})


def test_plot_guide_panels_and_bars():
    axes = plot_guide(GUIDE, k={"little": 5, "lots": 100}, chance={"similar": 20, "different": 10})
    assert axes.shape == (2, 2)
    assert axes[0, 0].get_title() == "similar domain, little data (5 per class)"
    assert axes[1, 1].get_title() == "different domain, lots data (100 per class)"
    heights = [bar.get_height() for bar in axes[0, 0].patches]
    np.testing.assert_allclose(heights, [51, 67, 60])
    with pytest.raises(ValueError, match="axes"):
        plot_guide(GUIDE, axes=[plt.gca()])


def test_plot_source_quality():
    points = [{"source_test_accuracy": 60.0, "target_probe": [50.0, 52.0], "source_steps": 10},
              {"source_test_accuracy": 80.0, "target_probe": [70.0, 74.0]}]
    ax = plot_source_quality(points, reference=30.0)
    mean_line = [line for line in ax.get_lines() if line.get_label() == "mean over seeds"][0]
    np.testing.assert_allclose(mean_line.get_xdata(), [60, 80])
    np.testing.assert_allclose(mean_line.get_ydata(), [51, 72])
    assert ax.get_xlabel() == "source test accuracy (%)"
    with pytest.raises(ValueError, match="target_probe_k100"):
        plot_source_quality(points, field="target_probe_k100")
    with pytest.raises(ValueError, match="checkpoints"):
        plot_source_quality([])


def test_plot_attention_overlay_dims_cells_by_weight():
    image = np.ones((3, 8, 8), dtype=np.float32)
    ax = plot_attention_overlay(image, np.array([[1.0, 0.0], [0.0, 0.5]]), title="red")
    shown = ax.images[0].get_array()
    assert shown.shape == (8, 8, 3)
    assert shown[0, 0, 0] == pytest.approx(1.0)            # the peak keeps its brightness
    assert shown[0, 7, 1] == pytest.approx(0.2)            # zero weight: dimmed to 20 %
    assert shown[7, 7, 2] == pytest.approx(0.6)            # half the peak: 0.2 + 0.8 * 0.5
    frame = ax.patches[0]
    assert frame.get_xy() == (-0.5, -0.5) and frame.get_width() == 4 and ax.get_title() == "red"


def test_plot_attention_overlay_rejects_bad_grids():
    with pytest.raises(ValueError, match="weights"):
        plot_attention_overlay(np.ones((3, 8, 8)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="grid"):
        plot_attention_overlay(np.ones((3, 8, 8)), np.ones((3, 3)))


def test_plot_caption_attention_one_panel_per_word():
    image = np.zeros((3, 64, 64), dtype=np.float32)
    axes = plot_caption_attention(image, WORDS, _weights([0, 6, 6, 15]), title="scene 7")
    assert [ax.get_title() for ax in axes] == ["scene 7", "a (0.70)", "red (0.70)", "circle (0.70)", "<END> (0.70)"]
    _, row = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="axes"):
        plot_caption_attention(image, WORDS, _weights([0, 6, 6, 15]), axes=row)


def test_plot_image_rows_and_class_examples():
    images = np.linspace(0, 1, 6 * 4 * 4, dtype=np.float32).reshape(6, 1, 4, 4)
    fig = plot_image_rows([[images[0], images[1]], [images[2]]], ["one", "two"], [["a", "b"], ["c"]], title="t")
    assert len(fig.axes) == 4 and fig.axes[1].get_title() == "b" and fig.axes[0].get_ylabel() == "one"
    assert not fig.axes[3].axison                           # the empty slot of the shorter row is hidden
    with pytest.raises(ValueError, match="row_titles"):
        plot_image_rows([[images[0]]], ["one", "two"])
    with pytest.raises(ValueError, match="cell_titles"):
        plot_image_rows([[images[0]]], ["one"], [["a", "b"]])
    labels = np.array([0, 1, 0, 1, 1, 0])
    fig = plot_class_examples(images, labels, ["zero", "one"], per_class=3)
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == ["zero", "one"]
    with pytest.raises(ValueError, match="per_class"):
        plot_class_examples(images, labels, ["zero", "one"], per_class=4)
    with pytest.raises(ValueError, match="per_class"):
        plot_class_examples(images, labels, ["zero", "one"], per_class=0)
