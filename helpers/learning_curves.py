"""The learning-curve gallery of lecture 07: cached runs of the character LSTM, each made to show one
pathology on purpose, with the cause we know (we produced it) and the usual remedy.

Nothing here looks at a curve to decide what is wrong with it: every diagnosis below is the *known* cause
of a run that ``scripts/lecture07_runs.py`` produced deliberately (a shut-gate initialisation, a rate cut
at step 60, ...). The numbers quoted in the texts are read from the cached curves. Reading an unknown
curve is the student's job (assignment a6).

- ``CASES``: the pathologies (``bad_init``, ``plateau``, ``decay_too_early``, ``overfitting``,
  ``underfitting``, ``still_improving``) and the ``good`` reference: which cached run shows each, the
  run it is compared with, the diagnosis and the remedy
- ``curve_case(runs, name)``: the texts of one case with the measured numbers filled in
- ``plot_learning_curve(runs, name, ax=None)``: training and validation loss against the step
- ``curve_explorer(runs)``: the widget (a dropdown wired to the two functions above)

``runs`` is ``json["curves"]`` of ``datasets/lecture07_runs.json``: {run name: {"config", "steps",
"extra", "curve": {"eval_step", "train_eval_loss", "val_loss", ...}}}. Losses are in nats per character.
"""
import math

__all__ = ["CASES", "curve_case", "curve_explorer", "plot_learning_curve"]

#: name -> which cached run shows it ("run"), the run drawn beside it ("compare", or None), a short title,
#: how the run was made, what a reader should see, the cause (known) and the remedy. Texts are format
#: strings over the measured statistics of ``_stats`` (prefix ``r_`` for the run, ``c_`` for the comparison).
CASES = {
    "good": {
        "run": "good", "compare": None, "title": "a healthy run (the reference)",
        "made": "H = 64, AdamW at a constant learning rate of 0.01, 1000 steps, no regularisation.",
        "see": "The loss falls fast, then ever more slowly; validation follows training with a small gap "
               "(final validation {r_val_end:.3f}, training {r_train_end:.3f}, gap {r_gap_end:.3f}).",
        "cause": "Nothing is wrong: the learning rate, the size and the length of training suit each other.",
        "remedy": "Keep it as the baseline every change is measured against; a decaying learning rate at the "
                  "end would still help (see `plateau`).",
    },
    "bad_init": {
        "run": "bad_init", "compare": "good", "title": "flat, then a drop",
        "made": "The same model with its input gates initialised shut: both input-gate bias vectors set to "
                "-15, so every input gate is sigmoid(-30) ~ 1e-13; weight decay 0.3 (the same run without "
                "weight decay is `bad_init_no_decay` in the cache).",
        "see": "The validation loss only creeps from {r_val_start:.2f} to {r_val_at_250:.2f} in 250 steps, "
               "then drops (to {r_val_at_400:.2f} at step 400); the reference is already at "
               "{c_val_at_250:.2f} by step 250.",
        "cause": "Shut gates let nothing into the cells: only the read-out bias learns, i.e. the character "
                 "frequencies. The gradient through a sigmoid at -30 is below Adam's epsilon, so the "
                 "optimiser cannot open the gates; weight decay shrinks the biases until it can.",
        "remedy": "Fix the initialisation (PyTorch's default, or +1 on the forget-gate bias), and catch it "
                  "early: check the initial loss and look for saturated units before training long.",
    },
    "plateau": {
        "run": "plateau_constant_lr", "compare": "plateau_cosine_decay",
        "title": "the learning rate needs to decay",
        "made": "H = 64 at a constant learning rate of 0.03 for 1000 steps; beside it the same run with the "
                "rate decayed to 0 along a cosine.",
        "see": "At a constant rate the validation loss stalls near {r_val_end:.3f} (it changed by "
               "{r_val_last_quarter_change:+.3f} over the last quarter of the run); with cosine decay the same "
               "run ends at {c_val_end:.3f}.",
        "cause": "Large steps keep bouncing around the bottom of the valley: the noise of the updates, not "
                 "the model, sets the floor.",
        "remedy": "Decay the learning rate: a schedule (cosine, steps) or a cut when the validation loss "
                  "stops improving.",
    },
    "decay_too_early": {
        "run": "decay_too_early", "compare": "good", "title": "the rate was cut too soon",
        "made": "The reference run (0.01) with its learning rate divided by 10 at step 60.",
        "see": "After a good start the loss falls slowly from step 60 on; at step 1000 validation is "
               "{r_val_end:.3f} against {c_val_end:.3f} for the reference that kept its rate.",
        "cause": "The rate was cut while the loss was still falling fast at the higher rate: the model "
                 "then crawls.",
        "remedy": "Keep the initial rate longer; decay when the loss flattens, or decay over the whole run.",
    },
    "overfitting": {
        "run": "overfitting", "compare": None, "title": "the gap grows",
        "made": "A large model (H = 192) on only 15,000 training characters, 600 steps, no regularisation.",
        "see": "Training loss keeps falling (to {r_train_end:.3f}) while validation reaches its minimum "
               "{r_val_min:.3f} at step {r_val_min_step} and then rises to {r_val_end:.3f}: the gap ends at "
               "{r_gap_end:.3f}.",
        "cause": "The model memorises the small training text instead of learning what carries over to "
                 "new text.",
        "remedy": "More data, more regularisation (dropout, weight decay), early stopping at the validation "
                  "minimum; a smaller model only as a last resort.",
    },
    "underfitting": {
        "run": "underfitting", "compare": "good", "title": "no gap, both high",
        "made": "A tiny model (H = 4), otherwise the reference run.",
        "see": "Training and validation stay high together: {r_train_end:.3f} and {r_val_end:.3f} at the end "
               "(gap {r_gap_end:.3f}), against {c_val_end:.3f} validation for the reference H = 64.",
        "cause": "The model is too small to represent what the data holds; more steps barely help.",
        "remedy": "A bigger model, less regularisation, then train longer.",
    },
    "still_improving": {
        "run": "still_improving", "compare": None, "title": "still falling at the end",
        "made": "A low learning rate (5e-4) and only 400 steps.",
        "see": "Both losses are still falling steeply at the end: validation dropped by "
               "{r_val_last_quarter_drop:.3f} in the last quarter of the run, to {r_val_end:.3f}.",
        "cause": "Training stopped long before convergence.",
        "remedy": "Train longer (or raise the learning rate, see the range test).",
    },
}


def _check(runs, name):
    if name not in CASES:
        raise ValueError(f"name must be one of {sorted(CASES)}, got {name!r}")
    if not isinstance(runs, dict):
        raise ValueError(f"runs must be the dict json['curves'] of lecture07_runs.json, got {type(runs).__name__}")
    for key in (CASES[name]["run"], CASES[name]["compare"]):
        if key is not None and key not in runs:
            raise ValueError(f"runs has no run {key!r} (needed by {name!r}); it has {sorted(runs)}")


def _at(steps, values, step):
    """The value at the evaluation point closest to ``step``."""
    k = min(range(len(steps)), key=lambda i: abs(steps[i] - step))
    return values[k]


def _stats(run):
    """Measured statistics of one cached run (losses in nats per character)."""
    c = run["curve"]
    steps, train, val = c["eval_step"], c["train_eval_loss"], c["val_loss"]
    best = min(range(len(val)), key=val.__getitem__)
    quarter = _at(steps, val, 0.75 * steps[-1])
    return {"val_start": val[0], "val_end": val[-1], "train_end": train[-1], "gap_end": val[-1] - train[-1],
            "val_min": val[best], "val_min_step": steps[best], "val_last_quarter_drop": quarter - val[-1],
            "val_last_quarter_change": val[-1] - quarter,
            "val_at_250": _at(steps, val, 250), "val_at_400": _at(steps, val, 400), "last_step": steps[-1]}


def curve_case(runs, name):
    """One case of the gallery, its texts filled in with the numbers measured on the cached runs.

    Inputs: runs, ``json["curves"]`` of lecture07_runs.json; name, a key of ``CASES``.
    Returns: dict with "name", "title", "run" and "compare" (cached run names; compare may be None),
    "made", "see", "cause", "remedy" (strings) and "markdown" (all of them as one Markdown text).
    """
    _check(runs, name)
    case = CASES[name]
    values = {f"r_{k}": v for k, v in _stats(runs[case["run"]]).items()}
    if case["compare"] is not None:
        values.update({f"c_{k}": v for k, v in _stats(runs[case["compare"]]).items()})
    out = {"name": name, "title": case["title"], "run": case["run"], "compare": case["compare"]}
    for key in ("made", "see", "cause", "remedy"):
        out[key] = case[key].format(**values)
    out["markdown"] = (f"**`{name}`: {case['title']}**\n\n- *How it was made:* {out['made']}\n"
                       f"- *What you see:* {out['see']}\n- *Cause (known, we made it):* {out['cause']}\n"
                       f"- *Remedy:* {out['remedy']}")
    return out


def plot_learning_curve(runs, name, ax=None, ln_v=None):
    """Training and validation loss of a case against the training step (comparison run in grey).

    Inputs: runs and name as in ``curve_case``; ax, a matplotlib Axes (None: a new figure);
    ln_v, None or the loss of a uniform guess (drawn as a dotted line).
    Returns: the Axes.
    """
    import matplotlib.pyplot as plt

    _check(runs, name)
    case = CASES[name]
    if ax is None:
        ax = plt.subplots(figsize=(6.4, 3.8))[1]
    if case["compare"] is not None:
        c = runs[case["compare"]]["curve"]
        ax.plot(c["eval_step"], c["train_eval_loss"], color="0.6", lw=1, label=f"{case['compare']}: training")
        ax.plot(c["eval_step"], c["val_loss"], color="0.6", lw=1, ls="--", label=f"{case['compare']}: validation")
    r = runs[case["run"]]["curve"]
    ax.plot(r["eval_step"], r["train_eval_loss"], color="tab:blue", lw=2, label=f"{case['run']}: training")
    ax.plot(r["eval_step"], r["val_loss"], color="tab:orange", lw=2, ls="--", label=f"{case['run']}: validation")
    if ln_v is not None and math.isfinite(ln_v):
        ax.axhline(ln_v, color="k", lw=0.8, ls=":", label="ln V (uniform guess)")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats / character)")
    ax.set_title(f"{name}: {case['title']}")
    ax.legend(fontsize=8)
    return ax


def curve_explorer(runs, ln_v=None):
    """A dropdown of the cases; choosing one draws its curves and shows ``curve_case(...)['markdown']``.

    Returns: an ipywidgets.VBox (display it in a notebook).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    for name in CASES:
        _check(runs, name)
    choose = widgets.Dropdown(options=list(CASES), value="bad_init", description="curve:")
    output = widgets.Output()

    def show(change=None):
        output.clear_output(wait=True)
        with output:
            plot_learning_curve(runs, choose.value, ln_v=ln_v)
            plt.show()
            display(Markdown(curve_case(runs, choose.value)["markdown"]))

    choose.observe(show, names="value")
    show()
    return widgets.VBox([choose, output])
