"""The figures of lecture 07 (the hyperparameter workflow), drawn from cached results.

Nothing here trains, searches or picks anything: the runs were made by ``scripts/lecture07_runs.py``
(``datasets/lecture07_runs.json``) or by the lecture; these functions only draw them.

- ``plot_lr_range``: loss against an exponentially growing learning rate (log x axis)
- ``plot_lr_check``: the first 100 steps at a few learning rates
- ``plot_search_scores``: validation loss against each hyperparameter of a random search
- ``plot_best_so_far``: the best validation loss after each trial
- ``plot_lr_wd_plane``: trials on the learning-rate x weight-decay plane (log axes), coloured by loss
- ``plot_search_points``: grid, random and Sobol points in the unit square with their x projections
- ``plot_strategy_table``: distinct values of x and regret of the three strategies
- ``plot_pruning``: best validation loss found against training steps spent, with and without pruning
- ``plot_gains``: per-seed changes of the test loss of ensembles, snapshots and weight averaging

Losses are mean cross-entropies in nats per character.
"""
import math

import numpy as np

__all__ = ["plot_best_so_far", "plot_gains", "plot_lr_check", "plot_lr_range", "plot_lr_wd_plane", "plot_pruning",
           "plot_search_points", "plot_search_scores", "plot_strategy_table"]


def _axes(ax, figsize=(6.4, 3.8)):
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def plot_lr_range(runs, picked=None, ax=None, ylim=None):
    """Each run's raw training loss (thin) and smoothed loss (thick) against its learning rate.

    Inputs: runs, a list of dicts with "lr", "loss", "smoothed" (per step) and "seed"; picked, None or
    the chosen rate (a vertical line); ylim, None or (low, high). Returns the Axes.
    """
    ax = _axes(ax)
    for k, run in enumerate(runs):
        colour = f"C{k}"
        ax.plot(run["lr"][:len(run["loss"])], run["loss"], color=colour, lw=0.5, alpha=0.35)
        ax.plot(run["lr"][:len(run["smoothed"])], run["smoothed"], color=colour, lw=2,
                label=f"seed {run['seed']} (smoothed)")
        if "lr_at_min" in run:
            ax.plot([run["lr_at_min"]], [run["min_smoothed"]], "v", color=colour, ms=8)
    if picked is not None:
        ax.axvline(picked, color="k", ls="--", lw=1, label=f"chosen lr = {picked:g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (nats / character)")
    ax.set_title("LR range test: one run, learning rate growing every step")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8)
    return ax


def plot_lr_check(checks, ax=None, window=10):
    """Training loss (moving average over ``window`` steps) of short runs at a few learning rates.

    Inputs: checks, {name: {"lr", "train_loss" (per step)}}. Returns the Axes.
    """
    ax = _axes(ax)
    for name, run in checks.items():
        loss = np.asarray(run["train_loss"], dtype=float)
        avg = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(loss) + 1), avg, lw=2, label=f"{name}: lr = {run['lr']:g}")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"training loss, {window}-step average (nats / char)")
    ax.set_title("The first 100 steps from the same initialisation")
    ax.legend(fontsize=8)
    return ax


def _ylim(values, cap):
    values = np.asarray(values, dtype=float)
    return (values.min() - 0.05, min(values.max() + 0.05, cap))


def plot_search_scores(stages, space, cap=3.5, axes=None):
    """Best validation loss of every trial against each hyperparameter, one panel per hyperparameter.

    Inputs: stages, {label: list of rows {"config": {...}, "val_loss"}}; space, {name: (kind, low, high)}
    (log x axis for kind "log"); cap, the top of the y axis (worse trials are drawn at the cap).
    Returns the array of Axes.
    """
    import matplotlib.pyplot as plt

    names = list(space)
    if axes is None:
        axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), sharey=True, squeeze=False)[1][0]
    everything = [r["val_loss"] for rows in stages.values() for r in rows]
    for ax, name in zip(axes, names):
        for k, (label, rows) in enumerate(stages.items()):
            x = [r["config"][name] for r in rows]
            y = [min(r["val_loss"], cap) for r in rows]
            ax.scatter(x, y, s=28, color=f"C{k}", label=label, alpha=0.8, edgecolor="k", lw=0.4)
        if space[name][0] == "log":
            ax.set_xscale("log")
        ax.set_xlabel(name + (" (log scale)" if space[name][0] == "log" else ""))
        ax.set_title(f"loss vs {name}")
    axes[0].set_ylabel("best validation loss (nats / char)")
    axes[0].set_ylim(*_ylim(everything, cap))
    axes[0].legend(fontsize=8)
    return axes


def plot_best_so_far(stages, ax=None):
    """The best validation loss found after each trial, stages one after the other.

    Inputs: stages, {label: list of rows with "val_loss"} in the order they ran. Returns the Axes.
    """
    ax = _axes(ax)
    start = 0
    for k, (label, rows) in enumerate(stages.items()):
        losses = np.array([r["val_loss"] for r in rows], dtype=float)
        trials = np.arange(start + 1, start + len(losses) + 1)
        ax.plot(trials, losses, "o", color=f"C{k}", alpha=0.5, ms=4)
        ax.step(trials, np.minimum.accumulate(losses), where="post", color=f"C{k}", lw=2,
                label=f"{label}: best so far")
        start += len(losses)
    ax.set_xlabel("trial")
    ax.set_ylabel("validation loss (nats / char)")
    ax.set_title("Best so far against trials")
    ax.set_ylim(*_ylim([r["val_loss"] for rows in stages.values() for r in rows], 3.5))
    ax.legend(fontsize=8)
    return ax


def plot_lr_wd_plane(rows, ax=None, cap=3.0, products=(1e-5, 1e-4, 1e-3)):
    """Trials on the learning-rate x weight-decay plane (both log axes), coloured by validation loss.

    Inputs: rows, list of {"config": {"lr", "weight_decay"}, "val_loss"}; cap, losses above it share the
    worst colour; products, lr x weight decay values drawn as grey diagonals (AdamW shrinks the weights
    by a factor 1 - lr x wd per step, so these are lines of equal shrinking). Returns the Axes.
    """
    import matplotlib.pyplot as plt

    ax = _axes(ax, figsize=(5.6, 4.4))
    lr = np.array([r["config"]["lr"] for r in rows])
    wd = np.array([r["config"]["weight_decay"] for r in rows])
    loss = np.minimum(np.array([r["val_loss"] for r in rows], dtype=float), cap)
    order = np.argsort(-loss)
    points = ax.scatter(lr[order], wd[order], c=loss[order], cmap="viridis_r", s=40, edgecolor="k", lw=0.4)
    best = int(np.argmin(loss))
    ax.plot(lr[best], wd[best], "*", color="red", ms=16, mec="k", label="best trial")
    ax.set_xscale("log")
    ax.set_yscale("log")
    xs = np.array([lr.min() / 2, lr.max() * 2])
    for p in products:
        ax.plot(xs, p / xs, color="0.5", lw=0.8, ls=":")
        x = xs[-1] / 1.3
        if wd.min() / 2 < p / x < wd.max() * 2:
            ax.text(x, p / x, f"lr·wd = {p:g}", fontsize=7, color="0.4", ha="right", va="bottom", rotation=-30)
    ax.set_xlim(xs)
    ax.set_ylim(wd.min() / 2, wd.max() * 2)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("weight decay (log scale)")
    ax.set_title("Learning rate x weight decay")
    plt.colorbar(points, ax=ax, label=f"validation loss (nats / char, capped at {cap:g})")
    ax.legend(fontsize=8, loc="lower left")
    return ax


def plot_search_points(point_sets, x_star=None, axes=None):
    """Point sets in the unit square (x important, y unimportant) with their projections on x.

    Inputs: point_sets, {label: array (n, 2)}; x_star, None or the best x (a vertical line).
    Returns the array of Axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        axes = plt.subplots(1, len(point_sets), figsize=(3.4 * len(point_sets), 3.4), squeeze=False)[1][0]
    for ax, (label, points) in zip(axes, point_sets.items()):
        points = np.asarray(points)
        ax.scatter(points[:, 0], points[:, 1], s=30, color="tab:blue", edgecolor="k", lw=0.4)
        ax.plot(points[:, 0], np.full(len(points), -0.06), "|", color="tab:red", ms=12, mew=1.5)
        if x_star is not None:
            ax.axvline(x_star, color="tab:green", lw=1, ls="--")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.12, 1)
        ax.set_xlabel("x: important hyperparameter")
        ax.set_ylabel("y: unimportant hyperparameter")
        ax.set_title(f"{label}: {len(np.unique(points[:, 0]))} distinct x")
    return axes


def plot_strategy_table(table, axes=None):
    """Bars of the mean distinct values of x and of the mean regret per strategy.

    Inputs: table, the dict of ``helpers.search_demo.compare_strategies``. Returns the array of Axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        axes = plt.subplots(1, 2, figsize=(8, 3.2))[1]
    names = list(table)
    axes[0].bar(names, [table[n]["distinct_x"] for n in names], color=["C0", "C1", "C2"][:len(names)])
    axes[0].set_ylabel("distinct values of x tried (mean)")
    axes[0].set_title("Values of the important hyperparameter seen")
    axes[1].bar(names, [table[n]["regret"] for n in names], color=["C0", "C1", "C2"][:len(names)])
    axes[1].set_ylabel("regret: 1 - best score found (mean)")
    axes[1].set_title("How far the best trial is from the optimum")
    for ax in axes:
        ax.set_xlabel("search strategy")
    return axes


def plot_pruning(studies, ax=None):
    """Best validation loss found against cumulative training steps, one line per study.

    Inputs: studies, {name: {"trials": [{"state", "value", "steps"}, ...]}} in trial order; names
    containing "median" are drawn solid, others dashed; pruned trials are marked with an x.
    Returns the Axes.
    """
    ax = _axes(ax, figsize=(7, 4))
    for k, (name, study) in enumerate(studies.items()):
        spent, best, xs, ys, px = 0, math.inf, [], [], []
        for t in study["trials"]:
            spent += t["steps"]
            if t["state"] == "COMPLETE" and t["value"] is not None:
                best = min(best, t["value"])
            elif t["state"] == "PRUNED":
                px.append(spent)
            xs.append(spent)
            ys.append(best)
        pruned = "median" in name
        seed = name.rsplit("seed", 1)[-1]
        colour = f"C{int(seed) if seed.isdigit() else k}"
        ax.step(xs, ys, where="post", color=colour, lw=2, ls="-" if pruned else "--",
                label=f"{'MedianPruner' if pruned else 'no pruning'}, sampler seed {seed}")
        if px:
            ax.plot(px, [ys[xs.index(p)] for p in px], "x", color=colour, ms=5)
    ax.set_xlabel("training steps spent (all trials so far)")
    ax.set_ylabel("best validation loss so far (nats / char)")
    ax.set_title("Optuna TPE with and without pruning (x: a pruned trial)")
    ax.legend(fontsize=7)
    return ax


def plot_gains(gains, ax=None, xlabel="change in test loss (nats / char; negative = better)"):
    """One row per method, one dot per seed (or per model count), and the mean as a bar.

    Inputs: gains, {label: list of changes}. Returns the Axes.
    """
    ax = _axes(ax, figsize=(7, 0.5 + 0.55 * len(gains)))
    for k, values in enumerate(gains.values()):
        values = np.asarray(values, dtype=float)
        ax.barh(k, values.mean(), color=f"C{k}", alpha=0.35)
        ax.plot(values, np.full(len(values), k), "o", color=f"C{k}", mec="k", mew=0.5)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(gains)), list(gains))
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title("After training: gains over seeds (dots) and their mean (bars)")
    return ax
