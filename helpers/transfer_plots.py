"""Plots and small pure functions of lecture 06 (transfer learning and image captioning).

Nothing here trains or evaluates a model: the lecture measures, these functions summarise and draw what
it measured (the cached sweep of ``scripts/transfer_sweep.py`` and the captions of its captioners).

- ``summarise``, ``curve_markdown``, ``guide_winners``: per-seed accuracies -> means, spreads, tables, winners
- ``plot_class_examples``, ``plot_image_rows``: images with their labels
- ``plot_transfer_curve``, ``plot_guide``, ``plot_source_quality``: the transfer-learning figures
- ``attention_step``: the logic of the attention step-through widget (which word, where the model looked)
- ``plot_attention_overlay``, ``plot_caption_attention``: attention maps drawn over a scene
- ``caption_error_kind``: what a wrong template caption got wrong (count, order, colour, shape, relation)

Accuracies are in % and stored per seed, as in ``datasets/transfer_sweep.json``: ``curve[method][str(k)]`` is
a list with one test accuracy per seed.
"""
from numbers import Integral

import numpy as np

from ._validate import to_numpy

__all__ = ["METHODS", "attention_step", "caption_error_kind", "curve_markdown", "guide_winners",
           "plot_attention_overlay", "plot_caption_attention", "plot_class_examples", "plot_guide",
           "plot_image_rows", "plot_source_quality", "plot_transfer_curve", "summarise"]

#: Display name, colour and marker of each method of the transfer sweep.
METHODS = {
    "scratch": ("from scratch", "tab:gray", "s"),
    "pixels": ("pixels + logistic regression", "tab:brown", "v"),
    "probe": ("linear probe (frozen features)", "tab:blue", "o"),
    "finetune": ("fine-tune", "tab:orange", "^"),
    "probe_finetune": ("probe, then fine-tune", "tab:green", "D"),
}


def summarise(values):
    """Mean, standard deviation (ddof=1; 0.0 for one value), minimum and maximum of per-seed values.

    Inputs: values, a non-empty 1-D sequence of numbers (e.g. accuracies in %, one per seed).
    Returns: dict with float "mean", "std", "min", "max" and int "n".
    Raises ValueError when values is empty, not 1-D or not numeric.
    """
    array = to_numpy(values, "values")
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"values must be a non-empty 1-D sequence of numbers, got shape {array.shape}")
    array = array.astype(np.float64)
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "min": float(array.min()), "max": float(array.max()),
            "n": int(array.size)}


def _check_curve(curve, methods):
    if not isinstance(curve, dict) or not curve:
        raise ValueError("curve must be a non-empty dict method -> {str(k): [accuracy per seed]}")
    methods = list(curve) if methods is None else list(methods)
    missing = [m for m in methods if m not in curve]
    if not methods or missing:
        raise ValueError(f"methods must be keys of curve {sorted(curve)}, got {methods}")
    return methods


def _ks(per_k):
    try:
        return sorted(per_k, key=lambda k: float(k))
    except (TypeError, ValueError):
        raise ValueError(f"the keys of curve[method] must be numbers of examples per class, "
                         f"got {list(per_k)}") from None


def curve_markdown(curve, ks, methods=None, names=None):
    """A Markdown table of "mean ± std" (over seeds) of each method at the given numbers of examples per class.

    Inputs:
    - curve: dict method -> {str(k): [accuracy per seed]}
    - ks: list of k (int or str) to show, e.g. [5, 100]
    - methods: the rows, default every method of curve
    - names: optional dict method -> row label (default METHODS' display names, else the key)
    Returns: str, a Markdown table with one row per method and one column per k.
    Raises ValueError for an unknown method or a k missing from a method.
    """
    methods = _check_curve(curve, methods)
    if not isinstance(ks, (list, tuple)) or not ks:
        raise ValueError(f"ks must be a non-empty list of numbers of examples per class, got {ks!r}")
    names = names or {}
    lines = ["| method | " + " | ".join(f"{k} per class" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for method in methods:
        cells = []
        for k in ks:
            if str(k) not in curve[method]:
                raise ValueError(f"ks holds {k!r}, which curve[{method!r}] lacks (it has {_ks(curve[method])})")
            s = summarise(curve[method][str(k)])
            cells.append(f"{s['mean']:.1f} ± {s['std']:.1f}")
        label = names.get(method, METHODS.get(method, (method,))[0])
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_transfer_curve(curve, methods=None, ax=None, chance=None, title=None):
    """Accuracy against labelled examples per class (log x): the mean over seeds as a line, the spread
    (min..max over seeds) as a band and every seed as a dot, one colour per method.

    Inputs:
    - curve: dict method -> {str(k): [accuracy in % per seed]}
    - methods: methods to draw (default: all of curve), keys of METHODS or any other name
    - ax: matplotlib Axes or None (a new figure); chance: accuracy of guessing in %, drawn dashed, or None
    - title: str or None
    Returns: the Axes.
    """
    import matplotlib.pyplot as plt

    methods = _check_curve(curve, methods)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.6))
    for i, method in enumerate(methods):
        label, colour, marker = METHODS.get(method, (method, f"C{i}", "o"))
        ks = _ks(curve[method])
        x = np.array([float(k) for k in ks])
        stats = [summarise(curve[method][k]) for k in ks]
        mean = np.array([s["mean"] for s in stats])
        ax.fill_between(x, [s["min"] for s in stats], [s["max"] for s in stats], color=colour, alpha=0.15, lw=0)
        ax.plot(x, mean, marker=marker, color=colour, label=label, lw=1.8, ms=5)
        # every seed: a small dot, nudged sideways per method so the methods' dots do not hide each other
        nudge = 1.0 + 0.03 * (i - (len(methods) - 1) / 2)
        for k, xk in zip(ks, x):
            seeds = np.asarray(curve[method][k], dtype=float)
            ax.scatter(np.full(len(seeds), xk * nudge), seeds, s=9, color=colour, alpha=0.6, lw=0)
    if chance is not None:
        ax.axhline(chance, color="k", ls=":", lw=1, label=f"chance ({chance:g} %)")
    ax.set_xscale("log")
    ks = sorted({float(k) for m in methods for k in curve[m]})
    ax.set_xticks(ks, [f"{k:g}" for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images per class (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "Transfer curve: mean over seeds (line), spread (band), each seed (dots)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return ax


_DOMAINS, _SIZES = ("similar", "different"), ("little", "lots")


def _check_guide(guide, methods):
    try:
        cells = {(d, s): guide[d][s] for d in _DOMAINS for s in _SIZES}
    except (KeyError, TypeError):
        raise ValueError("guide must be a dict domain ('similar', 'different') -> size ('little', 'lots') -> "
                         "{method: [accuracy per seed]}") from None
    methods = list(methods)
    for key, cell in cells.items():
        missing = [m for m in methods if m not in cell]
        if missing:
            raise ValueError(f"methods {missing} are missing from guide[{key[0]!r}][{key[1]!r}]")
    return cells, methods


def guide_winners(guide, methods=("scratch", "probe", "finetune")):
    """The best method of every cell of the 2 x 2 guide, by mean accuracy over seeds.

    Inputs:
    - guide: dict domain ("similar" / "different") -> size ("little" / "lots") -> {method: [accuracy per seed]}
    - methods: the methods to compare
    Returns: dict (domain, size) -> {"best": method, "runner_up": method, "margin": best mean - runner-up mean,
    "means": {method: mean}, "stds": {method: std over seeds}}.
    Raises ValueError for a malformed guide or a method missing from a cell.
    """
    cells, methods = _check_guide(guide, methods)
    if len(methods) < 2:
        raise ValueError(f"methods must name at least two methods to compare, got {methods}")
    out = {}
    for key, cell in cells.items():
        stats = {m: summarise(cell[m]) for m in methods}
        ranked = sorted(methods, key=lambda m: -stats[m]["mean"])
        out[key] = {"best": ranked[0], "runner_up": ranked[1],
                    "margin": stats[ranked[0]]["mean"] - stats[ranked[1]]["mean"],
                    "means": {m: stats[m]["mean"] for m in methods}, "stds": {m: stats[m]["std"] for m in methods}}
    return out


def plot_guide(guide, methods=("scratch", "probe", "finetune"), k=None, axes=None, chance=None):
    """The 2 x 2 guide as four bar panels (rows: domain similar / different; columns: little / lots of data):
    mean accuracy per method as a bar, every seed as a dot.

    Inputs: guide as in guide_winners; methods to draw; k: optional dict size -> examples per class (titles);
    axes: a 2 x 2 array of Axes or None (a new figure); chance: optional dict domain -> chance accuracy in %.
    Returns: the 2 x 2 array of Axes.
    """
    import matplotlib.pyplot as plt

    cells, methods = _check_guide(guide, methods)
    if axes is None:
        _, axes = plt.subplots(2, 2, figsize=(9, 6.4), sharey=True)
    axes = np.asarray(axes)
    if axes.shape != (2, 2):
        raise ValueError(f"axes must be a 2 x 2 array of Axes, got shape {axes.shape}")
    for (r, domain), (c, size) in ((a, b) for a in enumerate(_DOMAINS) for b in enumerate(_SIZES)):
        ax, cell = axes[r, c], cells[(domain, size)]
        for i, method in enumerate(methods):
            label, colour, _ = METHODS.get(method, (method, f"C{i}", "o"))
            seeds = np.asarray(cell[method], dtype=float)
            ax.bar(i, seeds.mean(), color=colour, alpha=0.75)
            ax.scatter(i + np.linspace(-0.15, 0.15, len(seeds)), seeds, s=14, color="k", zorder=3)
            ax.text(i, seeds.max() + 1.5, f"{seeds.mean():.1f}", ha="center", fontsize=8)
        if chance and domain in chance:
            ax.axhline(chance[domain], color="k", ls=":", lw=1)
        ax.set_xticks(range(len(methods)), [METHODS.get(m, (m,))[0].split(" (")[0] for m in methods], fontsize=8)
        per = f" ({k[size]} per class)" if k and size in k else ""
        ax.set_title(f"{domain} domain, {size} data{per}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if c == 0:
            ax.set_ylabel("test accuracy (%)")
    return axes


def plot_source_quality(checkpoints, field="target_probe", ax=None, reference=None, title=None):
    """Target accuracy against source accuracy, one point per seed and a line through the means.

    Inputs:
    - checkpoints: list of dicts with "source_test_accuracy" (%), ``field`` (list of target accuracies per seed)
      and optionally "source_steps" (used as a label)
    - field: the key of the target accuracies, e.g. "target_probe" (5 per class) or "target_probe_k100"
    - ax: Axes or None; reference: optional target accuracy (%) of a randomly initialised body, drawn dashed
    Returns: the Axes. Raises ValueError when a checkpoint lacks a key.
    """
    import matplotlib.pyplot as plt

    if not isinstance(checkpoints, (list, tuple)) or not checkpoints:
        raise ValueError("checkpoints must be a non-empty list of dicts")
    for point in checkpoints:
        if not isinstance(point, dict) or "source_test_accuracy" not in point or field not in point:
            raise ValueError(f"every checkpoint needs 'source_test_accuracy' and {field!r}, got {point!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    x = np.array([float(p["source_test_accuracy"]) for p in checkpoints])
    means = np.array([np.mean(p[field]) for p in checkpoints])
    for xi, point in zip(x, checkpoints):
        ax.scatter(np.full(len(point[field]), xi), point[field], s=16, color="tab:blue", alpha=0.6, lw=0)
        if "source_steps" in point:
            ax.annotate(f"{point['source_steps']} steps", (xi, np.mean(point[field])), textcoords="offset points",
                        xytext=(6, -10), fontsize=8)
    ax.plot(x, means, "o-", color="tab:blue", label="mean over seeds")
    if reference is not None:
        ax.axhline(reference, color="tab:gray", ls="--", lw=1, label=f"random-init body ({reference:.1f} %)")
    ax.set_xlabel("source test accuracy (%)")
    ax.set_ylabel("target probe accuracy (%)")
    ax.set_title(title or "Better source model, better transfer?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def _gray(image):
    image = to_numpy(image, "images").astype(np.float64)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    if image.ndim not in (2, 3):
        raise ValueError(f"images must hold (1, H, W), (3, H, W) or (H, W) pictures, got shape {image.shape}")
    return image


def plot_image_rows(rows, row_titles, cell_titles=None, size=1.1, title=None):
    """A grid of images: one row per list in ``rows``.

    Inputs:
    - rows: list of R lists of images, each (1, H, W), (3, H, W) or (H, W) in [0, 1]; rows may differ in length
    - row_titles: list of R strings, written left of each row
    - cell_titles: None or a list of R lists of strings (one per image)
    - size: inches per image; title: str or None (above the grid)
    Returns: the Figure.
    """
    import matplotlib.pyplot as plt

    if not isinstance(rows, (list, tuple)) or not rows or not all(isinstance(r, (list, tuple)) and r for r in rows):
        raise ValueError("rows must be a non-empty list of non-empty lists of images")
    if not isinstance(row_titles, (list, tuple)) or len(row_titles) != len(rows):
        raise ValueError(f"row_titles must be a list of {len(rows)} strings, got {row_titles!r}")
    if cell_titles is not None and (len(cell_titles) != len(rows)
                                    or any(len(t) != len(r) for t, r in zip(cell_titles, rows))):
        raise ValueError("cell_titles must hold one title per image of every row")
    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(size * cols + 1.2, size * len(rows) + 0.3), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(row):
                ax.axis("off")
                continue
            ax.imshow(_gray(row[c]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if cell_titles is not None:
                ax.set_title(cell_titles[r][c], fontsize=7)
        axes[r, 0].set_ylabel(row_titles[r], fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_class_examples(images, labels, class_names, per_class=4, title=None, size=1.1):
    """``per_class`` images of every class, one row per class, for a quick look at a data set.

    Inputs: images (N, 1, H, W) or (N, 3, H, W); labels int (N,) in 0..len(class_names)-1; class_names: list of
    str; per_class: int >= 1 (the first images of each class, in data-set order); title: str or None; size: inches
    per image.
    Returns: the Figure. Raises ValueError when a class has fewer than per_class images.
    """
    labels = to_numpy(labels, "labels")
    if isinstance(per_class, bool) or not isinstance(per_class, Integral) or per_class < 1:
        raise ValueError(f"per_class must be an integer >= 1, got {per_class!r}")
    if len(labels) != len(images):
        raise ValueError(f"images has {len(images)} entries but labels has {len(labels)}")
    rows = []
    for c, name in enumerate(class_names):
        where = np.flatnonzero(labels == c)[:per_class]
        if len(where) < per_class:
            raise ValueError(f"class {c} ({name}) has {len(where)} images, fewer than per_class={per_class}")
        rows.append([images[i] for i in where])
    return plot_image_rows(rows, list(class_names), size=size, title=title)


def attention_step(words, weights, step, grid=4):
    """The logic of the attention step-through: what the captioner wrote at ``step`` and where it looked.

    Inputs:
    - words: list of T generated tokens, e.g. ["a", "red", "circle", "<END>"]
    - weights: array-like (T', L) with T' >= T and L = grid * grid: row t = the attention weights over the cells
      (in reading order, row * grid + col) of the step that wrote words[t]
    - step: int in 0..T-1
    - grid: int >= 1, cells per side
    Returns: dict with "step", "word" (words[step]), "prefix" (the caption so far, words before step, as one str),
    "weights" (float ndarray (grid, grid)), "cell" ((row, col) of the largest weight), "peak" (that weight).
    Raises ValueError naming the argument: step outside 0..T-1, weights not (>= T, grid * grid), no words.
    """
    if not isinstance(words, (list, tuple)) or not words or not all(isinstance(w, str) for w in words):
        raise ValueError(f"words must be a non-empty list of str, got {words!r}")
    if isinstance(grid, bool) or not isinstance(grid, Integral) or grid < 1:
        raise ValueError(f"grid must be an integer >= 1, got {grid!r}")
    weights = to_numpy(weights, "weights").astype(np.float64)
    if weights.ndim != 2 or weights.shape[0] < len(words) or weights.shape[1] != grid * grid:
        raise ValueError(f"weights must have shape (>= {len(words)}, {grid * grid}) for {len(words)} words on a "
                         f"{grid} x {grid} grid, got {weights.shape}")
    if isinstance(step, bool) or not isinstance(step, Integral) or not 0 <= step < len(words):
        raise ValueError(f"step must be an integer in 0..{len(words) - 1}, got {step!r}")
    row = weights[step].reshape(grid, grid)
    r, c = np.unravel_index(int(np.argmax(row)), row.shape)
    return {"step": int(step), "word": words[step], "prefix": " ".join(words[:step]), "weights": row,
            "cell": (int(r), int(c)), "peak": float(row[r, c])}


def plot_attention_overlay(image, weights, ax=None, title=None, box=True):
    """A scene with its attention: cells dimmed in proportion to how little weight they got, the cell with the
    largest weight framed.

    Inputs: image (3, H, W) in [0, 1] (or (H, W, 3)); weights (g, g) attention over a g x g grid of equal cells
    (H and W divisible by g); ax: Axes or None; title: str or None; box: frame the largest weight.
    Returns: the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    picture = _gray(image)
    weights = to_numpy(weights, "weights").astype(np.float64)
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError(f"weights must be a square grid (g, g), got shape {weights.shape}")
    g = weights.shape[0]
    height, width = picture.shape[:2]
    if height % g or width % g:
        raise ValueError(f"image of {height} x {width} pixels cannot be cut into a {g} x {g} grid of equal cells")
    if ax is None:
        _, ax = plt.subplots(figsize=(2.2, 2.2))
    scale = weights / max(weights.max(), 1e-12)
    light = np.kron(0.2 + 0.8 * scale, np.ones((height // g, width // g)))
    ax.imshow(np.clip(picture * (light[..., None] if picture.ndim == 3 else light), 0, 1), interpolation="nearest")
    if box:
        r, c = np.unravel_index(int(np.argmax(weights)), weights.shape)
        ax.add_patch(Rectangle((c * width / g - 0.5, r * height / g - 0.5), width / g, height / g, fill=False,
                               edgecolor="white", lw=1.5))
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)
    return ax


def plot_caption_attention(image, words, weights, grid=4, axes=None, title=None):
    """One panel per generated word: the scene dimmed by the attention of the step that wrote the word.

    Inputs: image (3, H, W); words: list of T tokens; weights (>= T, grid * grid); axes: a sequence of at least
    T + 1 Axes or None (a new figure; the first panel shows the plain scene); title: str or None (first panel).
    Returns: the list of Axes used.
    """
    import matplotlib.pyplot as plt

    views = [attention_step(words, weights, t, grid) for t in range(len(words))]
    if axes is None:
        _, axes = plt.subplots(1, len(words) + 1, figsize=(1.1 * (len(words) + 1), 1.5))
    axes = list(np.ravel(axes))
    if len(axes) < len(words) + 1:
        raise ValueError(f"axes must hold at least {len(words) + 1} Axes (the scene + one per word), got {len(axes)}")
    plot_attention_overlay(image, np.ones((grid, grid)), ax=axes[0], title=title or "scene", box=False)
    for ax, view in zip(axes[1:], views):
        plot_attention_overlay(image, view["weights"], ax=ax, title=f"{view['word']} ({view['peak']:.2f})")
    for ax in axes[len(words) + 1:]:
        ax.axis("off")
    return axes[:len(words) + 1]


def _parse_caption(caption, arg):
    """Objects [(colour, shape)] and relations ["above" / "left of"] of a template caption."""
    if not isinstance(caption, str):
        raise ValueError(f"{arg} must be a caption string, got {type(caption).__name__}")
    words, objects, relations, i = caption.split(), [], [], 0
    while i < len(words):
        if words[i] == "a" and i + 2 < len(words):
            objects.append(tuple(words[i + 1:i + 3]))
            i += 3
        elif words[i] == "above":
            relations.append("above")
            i += 1
        elif words[i:i + 2] == ["left", "of"]:
            relations.append("left of")
            i += 2
        else:
            objects.append(("?", words[i]))
            i += 1
    return objects, relations


def caption_error_kind(reference, generated):
    """What a generated template caption got wrong, compared with the reference.

    Inputs: reference, generated: captions like "a red circle above a blue square".
    Returns: one of "correct"; "object count" (a different number of objects); "order" (the same objects in
    another order); "colour" (only colour words differ); "shape" (only shape nouns differ); "colour and shape";
    "relation" (same objects, only above / left of differ). Words outside the template count as objects of
    their own, e.g. "a red circle circle" has two.
    Raises ValueError when an argument is not a string.
    """
    ref_objects, ref_relations = _parse_caption(reference, "reference")
    gen_objects, gen_relations = _parse_caption(generated, "generated")
    if reference.split() == generated.split():
        return "correct"
    if len(ref_objects) != len(gen_objects):
        return "object count"
    if ref_objects == gen_objects:
        return "relation"
    if sorted(ref_objects) == sorted(gen_objects):
        return "order"
    wrong = [(a, b) for a, b in zip(ref_objects, gen_objects) if a != b]
    colour = any(a[0] != b[0] for a, b in wrong)
    shape = any(a[1] != b[1] for a, b in wrong)
    return "colour and shape" if colour and shape else "colour" if colour else "shape"
