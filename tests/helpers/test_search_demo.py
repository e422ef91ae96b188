"""helpers.search_demo: the grid / random / Sobol comparison of lecture 07."""
import numpy as np
import pytest

from helpers import search_demo as sd


def test_grid_is_k_by_k_cell_centres():
    points = sd.grid_points(16)
    assert points.shape == (16, 2)
    for column in points.T:
        np.testing.assert_allclose(np.unique(column), [0.125, 0.375, 0.625, 0.875])
    assert len({tuple(p) for p in points}) == 16


def test_random_points_are_uniform_in_the_square_and_seeded():
    points = sd.random_points(4000, np.random.default_rng(3))
    assert points.shape == (4000, 2) and points.min() >= 0 and points.max() < 1
    assert abs(points.mean() - 0.5) < 0.02  # standard error of the mean about 0.003
    np.testing.assert_array_equal(points[:5], sd.random_points(5, np.random.default_rng(3)))


def test_sobol_points_stratify_each_axis():
    """The first 2^m points of a (scrambled) Sobol sequence put exactly one point in each interval
    [i / 2^m, (i + 1) / 2^m) of either axis: the property random points lack."""
    points = sd.sobol_points(16, seed=5)
    assert points.shape == (16, 2)
    for column in points.T:
        assert sorted(np.floor(column * 16).astype(int)) == list(range(16))
    assert not np.array_equal(points, sd.sobol_points(16, seed=6))
    assert sd.sobol_points(9, seed=5).shape == (9, 2)


def test_score_peaks_at_x_star_and_barely_depends_on_y():
    assert sd.score([[0.4, 1.0]], x_star=0.4)[0] == pytest.approx(1.0)
    ys = np.linspace(0, 1, 11)
    at_peak = sd.score(np.column_stack([np.full(11, 0.4), ys]), x_star=0.4)
    assert at_peak.max() - at_peak.min() == pytest.approx(sd.Y_WEIGHT)
    far = sd.score([[0.4 + 4 * sd.PEAK_WIDTH, 1.0]], x_star=0.4)[0]
    assert far < 0.05  # four widths away from the peak: only y's share is left


def test_grid_result_matches_the_expectation_over_x_star():
    """The Monte Carlo mean of the grid's best score against the same expectation computed by
    averaging over a fine, even sweep of x* (the grid itself is fixed, so nothing is random)."""
    table = sd.compare_strategies(n_trials=16, repeats=2000, seed=1)
    sweep = np.linspace(0.1, 0.9, 4001)
    expected = np.mean([sd.score(sd.grid_points(16), x).max() for x in sweep])
    standard_error = table["grid"]["best_std"] / np.sqrt(2000)
    assert abs(table["grid"]["best"] - expected) < 4 * standard_error
    assert table["grid"]["distinct_x"] == 4


def test_random_and_sobol_try_every_trial_on_x_and_find_better_peaks():
    table = sd.compare_strategies(n_trials=16, repeats=400, seed=0)
    assert table["random"]["distinct_x"] == table["sobol"]["distinct_x"] == 16
    assert table["random"]["best"] > table["grid"]["best"] + 0.15
    assert table["sobol"]["regret"] < table["random"]["regret"]
    for row in table.values():
        assert row["regret"] == pytest.approx(1 - row["best"])


@pytest.mark.parametrize("call, arg", [
    (lambda: sd.grid_points(10), "n_trials"),
    (lambda: sd.compare_strategies(n_trials=12), "n_trials"),
    (lambda: sd.random_points(4, rng=0), "rng"),
    (lambda: sd.sobol_points(0, seed=0), "n_trials"),
    (lambda: sd.score(np.zeros((3, 3)), 0.5), "points"),
    (lambda: sd.compare_strategies(repeats=0), "repeats"),
])
def test_bad_arguments_name_the_argument(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()
