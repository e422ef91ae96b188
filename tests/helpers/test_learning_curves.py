"""helpers.learning_curves: the gallery of cached learning curves of lecture 07 (known causes, not a
classifier) and helpers.workflow_plots: its figures drawn from cached results."""
import json

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from helpers import dataset_path  # noqa: E402
from helpers import learning_curves as lc  # noqa: E402
from helpers import workflow_plots as wp  # noqa: E402

PATHOLOGIES = {"bad_init", "plateau", "decay_too_early", "overfitting", "underfitting", "still_improving"}


def run(train, val, every=50):
    steps = [every * k for k in range(len(val))]
    return {"config": {}, "steps": steps[-1], "extra": {},
            "curve": {"eval_step": steps, "train_eval_loss": train, "val_loss": val}}


@pytest.fixture
def runs():
    """Synthetic runs under every name the cases need, with known statistics."""
    base = run([4.3, 2.0, 1.8, 1.7, 1.6, 1.5, 1.4, 1.3, 1.2], [4.3, 2.1, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.35])
    out = {name: base for name in ("good", "bad_init", "plateau_constant_lr", "plateau_cosine_decay",
                                   "decay_too_early", "underfitting", "still_improving")}
    out["overfitting"] = run([4.3, 2.5, 2.0, 1.5, 1.0, 0.8], [4.3, 2.6, 2.3, 2.25, 2.5, 2.9])
    return out


@pytest.fixture(scope="module")
def cached():
    return json.loads(dataset_path("lecture07_runs.json").read_text())


def test_the_cases_are_the_assignments_pathologies_plus_a_reference():
    assert set(lc.CASES) == PATHOLOGIES | {"good"}
    for case in lc.CASES.values():
        assert {"run", "compare", "title", "made", "see", "cause", "remedy"} <= set(case)


def test_every_case_has_its_runs_in_the_cache_and_fills_every_number(cached):
    for name in lc.CASES:
        case = lc.curve_case(cached["curves"], name)
        assert case["name"] == name and case["run"] in cached["curves"]
        for key in ("made", "see", "cause", "remedy", "markdown"):
            assert "{" not in case[key] and "}" not in case[key], (name, key)
        assert f"`{name}`" in case["markdown"] and case["remedy"] in case["markdown"]


def test_the_numbers_in_the_text_are_those_of_the_run(runs):
    case = lc.curve_case(runs, "overfitting")
    assert "2.250 at step 150" in case["see"]         # minimum of validation and its step
    assert "rises to 2.900" in case["see"] and "gap ends at 2.100" in case["see"]
    assert "to 0.800" in case["see"]                   # final training loss
    plateau = lc.curve_case(runs, "plateau")
    drop = 1.5 - 1.35                                  # validation at step 300 (3/4 of 400) minus the end
    assert f"{drop:.3f}" in plateau["see"]


def test_the_texts_do_not_depend_on_the_curve_shape_only_on_the_name(runs):
    """The gallery states known causes: swapping the runs changes the numbers, never the diagnosis."""
    swapped = dict(runs, bad_init=runs["overfitting"])
    assert lc.curve_case(swapped, "bad_init")["cause"] == lc.curve_case(runs, "bad_init")["cause"]


def test_bad_arguments_say_what_is_wrong(runs):
    with pytest.raises(ValueError, match="name must be one of"):
        lc.curve_case(runs, "exploding")
    with pytest.raises(ValueError, match="no run 'overfitting'"):
        lc.curve_case({k: v for k, v in runs.items() if k != "overfitting"}, "overfitting")
    with pytest.raises(ValueError, match="runs must be the dict"):
        lc.curve_case([], "good")


def test_plot_draws_the_run_its_comparison_and_labels(runs):
    ax = lc.plot_learning_curve(runs, "plateau", ln_v=4.29)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:2] == ["plateau_cosine_decay: training", "plateau_cosine_decay: validation"]
    assert "plateau_constant_lr: validation" in labels and "ln V (uniform guess)" in labels
    np.testing.assert_allclose(ax.get_lines()[3].get_ydata(), runs["plateau_constant_lr"]["curve"]["val_loss"])
    assert ax.get_xlabel() == "training step" and "nats" in ax.get_ylabel() and "plateau" in ax.get_title()
    assert len(lc.plot_learning_curve(runs, "overfitting").get_lines()) == 2
    plt.close("all")


def test_explorer_wires_a_dropdown_of_all_cases(runs):
    box = lc.curve_explorer(runs)
    dropdown = box.children[0]
    assert list(dropdown.options) == list(lc.CASES) and dropdown.value == "bad_init"
    dropdown.value = "overfitting"                     # redraws without error
    plt.close("all")


def test_workflow_plots_draw_the_cached_results(cached):
    rng_runs = cached["lr_range"]["runs"]
    ax = wp.plot_lr_range(rng_runs, picked=cached["lr_range"]["picked"])
    assert ax.get_xscale() == "log" and "learning rate" in ax.get_xlabel()
    search = cached["search"]
    axes = wp.plot_search_scores({"coarse": search["coarse"]}, search["coarse_space"])
    assert [a.get_xscale() for a in axes] == ["log", "log", "linear", "linear"]
    ax = wp.plot_best_so_far({"coarse": search["coarse"], "refined": search["refined"]})
    best = ax.get_lines()[1].get_ydata()
    assert np.all(np.diff(best) <= 0) and best[-1] == min(r["val_loss"] for r in search["coarse"])
    ax = wp.plot_lr_wd_plane(search["coarse"])
    assert ax.get_xscale() == ax.get_yscale() == "log"
    axes = wp.plot_search_points({"grid": np.array([[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]])})
    assert "2 distinct x" in axes[0].get_title()
    plt.close("all")


def test_plot_pruning_counts_steps_and_keeps_the_best(runs):
    studies = {"charlm-median-seed0": {"trials": [
        {"state": "COMPLETE", "value": 2.0, "steps": 300}, {"state": "PRUNED", "value": None, "steps": 100},
        {"state": "COMPLETE", "value": 1.9, "steps": 300}]}}
    ax = wp.plot_pruning(studies)
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [300, 400, 700] and list(line.get_ydata()) == [2.0, 2.0, 1.9]
    assert "MedianPruner" in line.get_label()
    plt.close("all")


def test_plot_gains_draws_one_row_per_method_with_its_mean():
    ax = wp.plot_gains({"EMA": [-0.02, -0.01, -0.03], "snapshot": [0.05, 0.07]})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["EMA", "snapshot"]
    bars = [p.get_width() for p in ax.patches]
    np.testing.assert_allclose(bars, [-0.02, 0.06])
    plt.close("all")
