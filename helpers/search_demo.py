"""Grid, random and quasi-random search on a toy objective with one important and one
unimportant hyperparameter (lecture 07): how many distinct values of the important one each
strategy tries, and how close its best trial gets, for the same number of trials.

The setting is Bergstra & Bengio, "Random search for hyper-parameter optimization" (JMLR 2012),
figure 1: the score depends strongly on x (a narrow peak at an unknown x*) and barely on y.
A grid of k x k trials tries only k values of x; random and Sobol points try one per trial.
Sobol points come from scipy's ``scipy.stats.qmc.Sobol`` (scrambled, so every repeat differs).

Typical use::

    from helpers.search_demo import compare_strategies
    table = compare_strategies(n_trials=16, repeats=500, seed=0)
    table["random"]["distinct_x"], table["grid"]["regret"]

Points live in the unit square [0, 1]^2: column 0 is x (important), column 1 is y.
"""
import math

import numpy as np
from scipy.stats import qmc

from ._validate import integer as _int_arg

__all__ = ["STRATEGIES", "compare_strategies", "grid_points", "random_points", "score", "sobol_points"]

STRATEGIES = ("grid", "random", "sobol")
PEAK_WIDTH = 0.05      # standard deviation of the peak in x (the important hyperparameter)
Y_WEIGHT = 0.02        # how much the unimportant y moves the score at most


def _side(n_trials):
    """k with k * k = n_trials; ValueError otherwise (a grid needs a square number of trials)."""
    n_trials = _int_arg(n_trials, "n_trials", 1)
    side = math.isqrt(n_trials)
    if side * side != n_trials:
        raise ValueError(f"n_trials must be a square number (a k x k grid), got {n_trials}")
    return side


def grid_points(n_trials):
    """The k x k grid of cell centres of the unit square, k = sqrt(n_trials): array (n_trials, 2)."""
    side = _side(n_trials)
    ticks = (np.arange(side) + 0.5) / side
    x, y = np.meshgrid(ticks, ticks, indexing="ij")
    return np.column_stack([x.ravel(), y.ravel()])


def random_points(n_trials, rng):
    """n_trials points drawn uniformly from the unit square with ``rng`` (np.random.Generator)."""
    n_trials = _int_arg(n_trials, "n_trials", 1)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng.random((n_trials, 2))


def sobol_points(n_trials, seed):
    """The first n_trials points of a scrambled 2-D Sobol sequence (scipy.stats.qmc.Sobol):
    array (n_trials, 2). Balanced when n_trials is a power of two."""
    n_trials = _int_arg(n_trials, "n_trials", 1)
    sampler = qmc.Sobol(d=2, scramble=True, seed=_int_arg(seed, "seed", 0))
    m = math.ceil(math.log2(n_trials))
    return sampler.random_base2(m)[:n_trials]


def score(points, x_star):
    """The toy objective (higher is better, at most 1): a Gaussian peak of width PEAK_WIDTH at
    x = x_star, plus up to Y_WEIGHT from y. ``points`` (n, 2) -> scores (n,)."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {points.shape}")
    peak = np.exp(-0.5 * ((points[:, 0] - x_star) / PEAK_WIDTH) ** 2)
    return (1 - Y_WEIGHT) * peak + Y_WEIGHT * points[:, 1]


def _points(strategy, n_trials, rng):
    if strategy == "grid":
        return grid_points(n_trials)
    if strategy == "random":
        return random_points(n_trials, rng)
    return sobol_points(n_trials, int(rng.integers(2**31)))


def compare_strategies(n_trials=16, repeats=500, seed=0):
    """Each strategy against the same ``repeats`` objectives, x* drawn uniformly in [0.1, 0.9].

    Returns {strategy: {"distinct_x": distinct values of x tried (mean over repeats),
    "best": best score found (mean), "best_std": its standard deviation, "regret": mean of
    (best possible score - best score found)}} for "grid", "random" and "sobol".
    """
    _side(n_trials)
    repeats = _int_arg(repeats, "repeats", 1)
    rng = np.random.default_rng(_int_arg(seed, "seed", 0))
    x_stars = rng.uniform(0.1, 0.9, size=repeats)
    table = {}
    for strategy in STRATEGIES:
        distinct, best = [], []
        for x_star in x_stars:
            points = _points(strategy, n_trials, rng)
            distinct.append(len(np.unique(points[:, 0])))
            best.append(score(points, x_star).max())
        best = np.array(best)
        table[strategy] = {"distinct_x": float(np.mean(distinct)), "best": float(best.mean()),
                           "best_std": float(best.std()), "regret": float(np.mean(1.0 - best))}
    return table
