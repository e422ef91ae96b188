"""Unit tests of graders.a6_hyperparameters.

The notebook's solution cells are run through every check (they must pass); typical mistakes other
than the pipeline's mutants (tests/mutants/a6_hyperparameters.py), written here, must fail with a
message that names the output and helps; bad arguments to a check raise a ValueError naming them.
The synthetic cases of the grader are tested for the property they exist for: the mistake they
target gives another answer on every case the notebook uses. Nothing here runs a real tune.
"""
import copy
import inspect
import json
import math
from pathlib import Path

import grading
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from graders import a6_hyperparameters as grader  # noqa: E402
from graders.core import CheckFailure, self_check  # noqa: E402
from helpers.charlm import CharLSTM, random_windows  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "a6_hyperparameters" / "a6_hyperparameters.ipynb"
SOLUTION_CELLS = ("sample_config", "random_search", "lr_range_test", "pick_lr", "diagnose", "ema", "train_with_ema")
SEARCH_SPACE = {k: v for k, v in grader.SPACE.items() if k != "cell"}  # check_random_search's default space
HIDDEN_SPACE = {"a": ("log_uniform", 1e-6, 1.0), "n": ("int", 1, 3), "m": ("choice", [8, 16, 32, 64]),
                "u": ("uniform", -1.0, 2.0)}
# (seed, steps, nan_at_end, beta, factor) of every check_pick_lr call of the notebook
PICK_CASES = ((0, 50, False, 0.9, 10.0), (0, 50, True, 0.9, 10.0), (3, 80, False, 0.8, 4.0), (5, 30, True, 0.0, 10.0))


@pytest.fixture(scope="module")
def ref():
    """The solution notebook's setup and solution cells, executed in one namespace."""
    return grading.solution_namespace(NOTEBOOK, SOLUTION_CELLS)


def fails(check, *args, match, **kwargs):
    with pytest.raises(CheckFailure, match=match):
        check.__wrapped__(*args, **kwargs)


# ============================================================================ sample_config
def test_sample_config_reference_passes(ref):
    results = grader.check_sample_config.__wrapped__(ref["sample_config"])
    assert set(results) == set(grader.SPACE) | {"unknown kind"}
    results = grader.check_sample_config.__wrapped__(ref["sample_config"], seed=7, space=copy.deepcopy(HIDDEN_SPACE))
    assert "chi-square" in results["m"] and "Kolmogorov-Smirnov" in results["a"]


def _sampler(bug):
    def sample_config(rng, space):
        config = {}
        for name, spec in space.items():
            kind = spec[0]
            if kind == "log_uniform":
                config[name] = float(np.exp(rng.uniform(np.log(spec[1]), np.log(spec[2]))))
                if bug == "array":
                    config[name] = np.exp(rng.uniform(np.log(spec[1]), np.log(spec[2]), size=1))
            elif kind == "uniform":
                high = 2 * spec[2] if bug == "out of bounds" else spec[2]
                config[name] = float(rng.uniform(spec[1], high))
            elif kind == "int":
                value = int(rng.integers(spec[1], spec[2] + 1))
                config[name] = {"string": str(value), "float": float(value)}.get(bug, value)
            elif kind == "choice":
                if bug == "shuffles the space":
                    rng.shuffle(spec[1])
                    config[name] = spec[1][0]
                    continue
                index = int(rng.integers(len(spec[1])))
                config[name] = index if bug == "index" else spec[1][index]
            elif bug == "TypeError":
                raise TypeError(f"unknown kind {kind}")
            elif bug == "no error":
                config[name] = None
            else:
                raise ValueError(f"{name}: unknown kind {kind!r}")
        if bug == "tuples to lists":
            for name in space:
                space[name] = list(space[name])
        return config

    return sample_config


@pytest.mark.parametrize("bug, match", [
    ("array", r"'lr': expected a float, got ndarray"),
    ("string", r"'hidden_size': expected an int, got str"),
    ("float", r"'hidden_size': expected an int, got float"),
    ("index", r"'cell': 0 is not one of the choices|'cell': 1 is not one of the choices"),
    ("out of bounds", r"'dropout': .* is outside \[0.0, 0.5\]"),
    ("TypeError", r"unknown kind should raise ValueError, got TypeError"),
    ("no error", r"must raise ValueError"),
    ("tuples to lists", r"changed the space it was given"),
])
def test_sample_config_mistakes_fail(bug, match):
    fails(grader.check_sample_config, _sampler(bug), space=copy.deepcopy(dict(grader.SPACE)), match=match)


def test_sample_config_type_hint_says_what_each_kind_returns():
    with pytest.raises(CheckFailure, match=r"(?s)Hint: int -> an int in \[low, high\]"):
        grader.check_sample_config.__wrapped__(_sampler("string"), space=copy.deepcopy(dict(grader.SPACE)))


def test_sample_config_in_place_shuffle_of_the_space_is_caught():
    with_list = {**dict(grader.SPACE), "cell": ("choice", ["lstm", "gru"])}  # SPACE's own choices are a tuple
    fails(grader.check_sample_config, _sampler("shuffles the space"), space=with_list, match="changed the space")
    fails(grader.check_sample_config, _sampler("shuffles the space"), seed=7, space=copy.deepcopy(HIDDEN_SPACE),
          match="changed the space")


def test_sample_config_reused_dict_gets_a_clear_message(ref):
    shared = {}

    def reuses(rng, space):
        shared.update(ref["sample_config"](rng, space))
        return shared

    fails(grader.check_sample_config, reuses, match="new dict|same dict|same object")


def test_sample_config_stub_and_exception_are_reported():
    def stub(rng, space):
        raise NotImplementedError

    def broken(rng, space):
        raise KeyError("lr")

    fails(grader.check_sample_config, stub, match="not implemented yet")
    fails(grader.check_sample_config, broken, match=r"sample_config: raised KeyError: 'lr' \(case: seed=0")


# ============================================================================ random_search
@pytest.mark.parametrize("n_trials, seed", [(12, 0), (1, 0), (25, 3), (2, 5)])
def test_random_search_reference_passes(ref, n_trials, seed):
    results = grader.check_random_search.__wrapped__(ref["random_search"], n_trials=n_trials, seed=seed)
    assert ("none finite" in results["trials"]) == (n_trials <= 2)


def _search(ref, bug):
    def random_search(train_fn, space, n_trials, rng):
        trials = []
        for _ in range(n_trials):
            config = ref["sample_config"](rng, space)
            metrics = train_fn(config)
            trials.append({"config": config} if bug == "no metrics" else {"config": config, **metrics})
        finite = [t for t in trials if math.isfinite(t["val_loss"])] if bug != "no metrics" else trials
        if bug == "max":
            best = max(finite, key=lambda t: t["val_loss"])
        elif bug == "non-finite as best":  # the sentinel of a failed run has the wrong sign
            best = min(trials, key=lambda t: t["val_loss"] if math.isfinite(t["val_loss"]) else -math.inf)
        elif bug == "nan_to_num":  # NaN -> 0.0, inf -> 1.8e308: the diverged run looks best
            best = trials[int(np.argmin(np.nan_to_num([t["val_loss"] for t in trials])))]
        elif bug == "always a best":
            best = trials[0] if not finite else min(finite, key=lambda t: t["val_loss"])
        else:
            best = min(finite, key=lambda t: t.get("val_loss", 0)) if finite else None
        if bug == "config":
            best = best["config"]
        return (tuple(trials) if bug == "tuple" else trials), best

    return random_search


@pytest.mark.parametrize("bug, kwargs, match", [
    ("no metrics", {}, r"(?s)trial 0: train_loss = None, but train_fn returned nan.*Hint: each trial is"),
    ("config", {}, r"best should be trial 11 .*got \{'lr'"),
    ("max", {}, r"(?s)best should be trial 11.*take the smallest val_loss"),
    ("non-finite as best", {"n_trials": 25, "seed": 3}, r"(?s)best should be trial 18.*math.isfinite"),
    ("nan_to_num", {}, r"(?s)best should be trial 11 .*got \{'config'.*math.isfinite"),
    ("always a best", {"n_trials": 1}, r"no trial has a finite val_loss, so best must be None"),
    ("tuple", {}, r"expected a list of 12 trials, got tuple"),
])
def test_random_search_mistakes_fail(ref, bug, kwargs, match):
    fails(grader.check_random_search, _search(ref, bug), match=match, **kwargs)


def test_random_search_wrong_calls_fail(ref):
    def twice(train_fn, space, n_trials, rng):
        trials = []
        for _ in range(n_trials):
            config = ref["sample_config"](rng, space)
            train_fn(config)
            trials.append({"config": config, **train_fn(config)})
        return trials, None

    def other_config(train_fn, space, n_trials, rng):
        trials = []
        for _ in range(n_trials):
            metrics = train_fn(ref["sample_config"](rng, space))
            trials.append({"config": ref["sample_config"](rng, space), **metrics})
        return trials, None

    fails(grader.check_random_search, twice, match=r"train_fn was called 24 times for n_trials=12")
    fails(grader.check_random_search, other_config, match=r"trial 0: config .* is not the one train_fn was called")
    fails(grader.check_random_search, lambda f, s, n, r: [], match=r"expected a tuple of 2 values \(trials, best\)")


def _reference_sampler(rng, space):
    """The documented distributions, drawn in the notebook's order (independent of the grader)."""
    out = {}
    for name, (kind, low, high) in space.items():
        if kind == "log_uniform":
            out[name] = math.exp(rng.uniform(math.log(low), math.log(high)))
        elif kind == "uniform":
            out[name] = rng.uniform(low, high)
        else:
            out[name] = int(rng.integers(low, high + 1))
    return out


def _alternative_sampler(rng, space):
    """Another correct sampler (powers of ten, rng.random, rng.choice): other draws from the same seed."""
    out = {}
    for name, (kind, low, high) in space.items():
        if kind == "log_uniform":
            out[name] = 10 ** rng.uniform(math.log10(low), math.log10(high))
        elif kind == "uniform":
            out[name] = low + (high - low) * rng.random()
        else:
            out[name] = int(rng.choice(np.arange(low, high + 1)))
    return out


@pytest.mark.parametrize("sampler", [_reference_sampler, _alternative_sampler])
@pytest.mark.parametrize("n_trials, seed", [(12, 0), (25, 3)])
def test_synthetic_objective_separates_validation_from_training(sampler, n_trials, seed):
    """On the notebook's cases the first trial is NaN, the second inf, and the best trial by training loss
    (or by a min() that does not skip NaN) is not the best by validation loss."""
    rng, calls = np.random.default_rng(seed), []
    train_fn = grader.synthetic_train_fn(calls)
    trials = [{"config": c, **train_fn(c)} for c in (sampler(rng, SEARCH_SPACE) for _ in range(n_trials))]
    assert math.isnan(trials[0]["val_loss"]) and math.isnan(trials[0]["train_loss"])
    assert trials[1]["val_loss"] == math.inf and math.isfinite(trials[1]["train_loss"])
    finite = [i for i, t in enumerate(trials) if math.isfinite(t["val_loss"])]
    by_val = min(finite, key=lambda i: trials[i]["val_loss"])
    by_train = min(finite, key=lambda i: trials[i]["train_loss"])
    by_train_all = min(range(1, n_trials), key=lambda i: trials[i]["train_loss"])
    assert by_val not in (by_train, by_train_all)
    assert trials[by_train]["val_loss"] > trials[by_val]["val_loss"] + 1e-3
    assert min(trials, key=lambda t: t["val_loss"]) is trials[0]  # a min() over NaN keeps the NaN trial


def test_synthetic_objective_of_two_trials_has_no_finite_one():
    calls = []
    train_fn = grader.synthetic_train_fn(calls)
    results = [train_fn(_reference_sampler(np.random.default_rng(5), SEARCH_SPACE)) for _ in range(2)]
    assert not any(math.isfinite(r["val_loss"]) for r in results)


# ============================================================================ lr_range_test
def _range_test(bug):
    def lr_range_test(model_fn, data, lr_min, lr_max, steps, batch_size=32, seq_len=64, seed=0):
        model = model_fn()
        if bug == "model_fn twice":
            model = model_fn()
        model.train()
        cls = torch.optim.SGD if bug == "SGD" else torch.optim.Adam
        optimizer = cls(model.parameters(), lr=lr_min)
        generator = torch.Generator().manual_seed(seed)
        lrs, losses = [], []
        for k in range(steps):
            lr = lr_min * (lr_max / lr_min) ** (k / (steps - 1))
            if bug != "lr after step":
                for group in optimizer.param_groups:
                    group["lr"] = lr
            if bug == "generator every step":
                generator = torch.Generator().manual_seed(seed)
            x, y = random_windows(data.train_ids, batch_size, seq_len, generator)
            scores = model(x)[0]
            loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), y.reshape(-1))
            lrs.append(lr)
            stop = not math.isfinite(loss.item()) or loss.item() > 4 * min(losses + [loss.item()])
            if bug != "loss after update":
                losses.append(loss.item())
            if stop:
                if bug == "drops the diverged loss":
                    losses.pop()
                    lrs.pop()
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if bug == "loss after update":
                with torch.no_grad():
                    scores = model(x)[0]
                losses.append(F.cross_entropy(scores.reshape(-1, scores.shape[-1]), y.reshape(-1)).item())
            if bug == "lr after step":
                for group in optimizer.param_groups:
                    group["lr"] = lr
        if bug == "all lrs":
            lrs = [lr_min * (lr_max / lr_min) ** (k / (steps - 1)) for k in range(steps)]
        return np.array(lrs), np.array(losses)

    return lr_range_test


def test_lr_range_test_reference_passes(ref):
    results = grader.check_lr_range_test.__wrapped__(ref["lr_range_test"])
    assert results["steps"] == "40 of 40" and results["losses"] < 1e-3
    results = grader.check_lr_range_test.__wrapped__(ref["lr_range_test"], lr_max=30.0, steps=30)
    assert "stopped at divergence" in results["steps"]
    grader.check_lr_range_test.__wrapped__(ref["lr_range_test"], seed=4, hidden_size=8, lr_min=1e-5, lr_max=3.0,
                                           steps=25, batch_size=3, seq_len=5)
    grader.check_lr_range_test.__wrapped__(ref["lr_range_test"], seed=2, steps=2, batch_size=1, seq_len=1)


def test_lr_range_test_written_out_passes():
    """This file's own implementation (the base of the mistakes below) is correct."""
    grader.check_lr_range_test.__wrapped__(_range_test(None), lr_max=30.0, steps=30)


@pytest.mark.parametrize("bug, kwargs, match", [
    ("model_fn twice", {}, r"called model_fn 2 times; call it once"),
    ("all lrs", {"lr_max": 30.0, "steps": 30}, r"lrs \(30,\) and losses \(29,\) must have the same length"),
    ("loss after update", {}, r"(?s)lr_range_test: losses up to their minimum: relative error.*before the update"),
    ("SGD", {}, r"lr_range_test: losses up to their minimum: relative error"),
    ("lr after step", {},
     r"(?s)lr_range_test: losses up to their minimum: relative error.*set the learning rate of step k before"),
    ("generator every step", {}, r"lr_range_test: losses up to their minimum: relative error"),
    ("drops the diverged loss", {"lr_max": 30.0, "steps": 30},
     r"(?s)stopped after 28 of 30 steps although no loss.*record the loss first"),
])
def test_lr_range_test_mistakes_fail(bug, kwargs, match):
    fails(grader.check_lr_range_test, _range_test(bug), match=match, **kwargs)


def test_lr_range_test_wrong_losses_on_a_diverging_run_name_the_losses():
    fails(grader.check_lr_range_test, _range_test("lr after step"), lr_max=30.0, steps=30,
          match=r"(?s)losses.*set the learning rate of step k before")


def test_lr_range_test_bad_return_values_fail(ref):
    def lists_2d(model_fn, data, lr_min, lr_max, steps, batch_size=32, seq_len=64, seed=0):
        lrs, losses = ref["lr_range_test"](model_fn, data, lr_min, lr_max, steps, batch_size, seq_len, seed)
        return lrs[None], losses[None]

    def none(model_fn, data, lr_min, lr_max, steps, batch_size=32, seq_len=64, seed=0):
        model_fn()
        return None, None

    fails(grader.check_lr_range_test, lists_2d, steps=3, match=r"lrs must be 1-D with 1 to steps=3 entries")
    fails(grader.check_lr_range_test, none, steps=3, match=r"lr_range_test: lrs: got None")


def test_lr_range_test_bad_steps_is_a_value_error(ref):
    with pytest.raises(ValueError, match="steps"):
        grader.check_lr_range_test(ref["lr_range_test"], steps=1)


# ============================================================================ pick_lr
def _smoothed(losses, beta):
    avg, out = 0.0, []
    for k, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (k + 1)))
    return np.array(out)


@pytest.mark.parametrize("seed, steps, nan_at_end, beta, factor", PICK_CASES)
def test_pick_lr_reference_passes(ref, seed, steps, nan_at_end, beta, factor):
    results = grader.check_pick_lr.__wrapped__(ref["pick_lr"], seed=seed, steps=steps, nan_at_end=nan_at_end,
                                               beta=beta, factor=factor)
    lrs, losses = grader.synthetic_range_curve(seed, steps, nan_at_end)
    n = steps - 1 if nan_at_end else steps
    want = lrs[int(np.argmin(_smoothed(losses[:n], beta)))] / factor
    assert results["lr"].startswith(f"{want:.3g} ")


@pytest.mark.parametrize("seed, steps, nan_at_end, beta, factor", PICK_CASES)
def test_synthetic_range_curve_spike_fools_only_the_raw_minimum(seed, steps, nan_at_end, beta, factor):
    """The one-step spike is the raw minimum, below the smoothed curve's minimum, which lies elsewhere (at
    the notebook's beta, or at the default 0.9 where the notebook uses beta = 0, for which smoothing is
    the identity)."""
    lrs, losses = grader.synthetic_range_curve(seed, steps, nan_at_end)
    assert np.isnan(losses[-1]) == nan_at_end and np.isfinite(losses[:-1]).all()
    finite = losses[:steps - 1] if nan_at_end else losses
    spike = int(0.5 * steps)
    assert int(np.argmin(finite)) == spike
    beta = beta or 0.9
    smoothed = _smoothed(finite, beta)
    assert finite[spike] < smoothed.min()
    best = int(np.argmin(smoothed))
    assert best != spike and not math.isclose(lrs[best], lrs[spike], rel_tol=1e-3)
    # the curve rises to divergence: the minimum is not at either end
    assert 0 < best < len(finite) - 1


def test_pick_lr_mistakes_fail(ref):
    def keeps_nan(lrs, losses, beta=0.9, factor=10.0):
        return float(lrs[int(np.argmin(_smoothed(losses, beta)))] / factor)

    def argmax(lrs, losses, beta=0.9, factor=10.0):
        n = len(losses) - (0 if math.isfinite(losses[-1]) else 1)
        return float(lrs[int(np.argmax(_smoothed(losses[:n], beta)))] / factor)

    def array(lrs, losses, beta=0.9, factor=10.0):
        return np.array([ref["pick_lr"](lrs, losses, beta, factor)])

    fails(grader.check_pick_lr, keeps_nan, nan_at_end=True, match=r"(?s)pick_lr: relative error.*skip a NaN last")
    fails(grader.check_pick_lr, argmax, match=r"(?s)pick_lr: relative error.*take the lr at its minimum")
    fails(grader.check_pick_lr, array, match=r"pick_lr: expected shape \(\), got \(1,\)")
    fails(grader.check_pick_lr, lambda lrs, losses, beta=0.9, factor=10.0: None, match="got None")


def test_pick_lr_trains_reference_passes_and_an_array_fails(ref):
    results = grader.check_pick_lr_trains.__wrapped__(ref["pick_lr"])
    assert "required <= 3.0" in results["training"]
    fails(grader.check_pick_lr_trains, lambda lrs, losses: np.array([1e-3]),
          match=r"expected a learning rate in \(0, 1\), got array")


# ============================================================================ diagnose
def test_diagnose_reference_passes_both_splits(ref):
    for split in ("visible", "held_out"):
        results = grader.check_diagnose.__wrapped__(ref["diagnose"], split=split)
        assert int(results["accuracy"].split("%")[0]) >= 80


def test_diagnose_mistakes_fail(ref):
    fails(grader.check_diagnose, lambda t, v: "overfit",
          match=r"returned 'overfit' \(str\) for curve 0; expected one of")
    fails(grader.check_diagnose, lambda t, v: None, match=r"returned None \(NoneType\) for curve 0")
    fails(grader.check_diagnose, lambda t, v: 3, match=r"returned 3 \(int\) for curve 0")
    for label in grader.LABELS:  # a constant label is right on one class in six
        fails(grader.check_diagnose, lambda t, v, label=label: label,
              match=rf"(?s)accuracy 17% \(required >= 80%\) on the 30 visible curves.*{label} 5/5.*Hint: look at")
    with pytest.raises(CheckFailure, match=r"accuracy 17% \(required >= 80%\) on the 42 held-out curves"):
        grader.check_diagnose.__wrapped__(lambda t, v: "plateau", split="held_out")


def _lookup(curves, default="plateau", never=None):
    """A 'diagnose' that knows the labels of ``curves`` by heart (and never says ``never``)."""
    known = {tuple(c["val_loss"]): c["label"] for c in curves}

    def diagnose(train_curve, val_curve):
        label = known.get(tuple(val_curve), default)
        return default if label == never else label

    return diagnose


def test_diagnose_that_never_says_one_label_fails_despite_its_accuracy():
    """25 of 30 right (83% >= 80%) but overfitting never recognised: the per-label recall fails it."""
    never_overfits = _lookup(grader.load_curves(), never="overfitting")
    fails(grader.check_diagnose, never_overfits,
          match=r"(?s)overfitting recognised on fewer than 50% of the curves of that label on the 30 visible "
                r"curves; right per label: .*overfitting 0/5")
    assert "83%" in grader.check_diagnose.__wrapped__(never_overfits, min_recall=0.0)["accuracy"]


def test_diagnose_gets_copies_of_the_curves(ref):
    """A diagnose that changes its inputs in place changes nothing the grader uses."""
    seen = []

    def vandal(train_curve, val_curve):
        label = ref["diagnose"](train_curve, val_curve)
        seen.append((train_curve, val_curve))
        train_curve[:] = np.nan
        val_curve *= 0
        return label

    curves = grader.load_curves()
    kept = copy.deepcopy(curves)
    assert grader.diagnose_all(vandal, curves) == grader.diagnose_all(ref["diagnose"], kept)
    for curve, original, (t, v) in zip(curves, kept, seen):
        assert np.array_equal(curve["train_loss"], original["train_loss"])
        assert np.array_equal(curve["val_loss"], original["val_loss"])
        assert not np.shares_memory(t, curve["train_loss"]) and not np.shares_memory(v, curve["val_loss"])
    assert grader.check_diagnose.__wrapped__(vandal) == grader.check_diagnose.__wrapped__(ref["diagnose"])
    fresh = grader.load_curves()
    assert all(np.array_equal(a["val_loss"], b["val_loss"]) for a, b in zip(fresh, kept))


def test_diagnose_memorising_the_visible_curves_fails_on_held_out():
    lookup = _lookup(grader.load_curves())
    assert grader.check_diagnose.__wrapped__(lookup)["accuracy"].startswith("100%")
    fails(grader.check_diagnose, lookup, split="held_out", match=r"accuracy 17% .* on the 42 held-out curves")


def test_diagnose_bad_arguments(ref):
    with pytest.raises(ValueError, match="split"):
        grader.check_diagnose(ref["diagnose"], split="test")
    for arg in ("minimum", "min_recall"):
        for value in (-0.1, 1.5, float("nan"), "0.8", None, True):
            with pytest.raises(ValueError, match=arg):
                grader.check_diagnose(ref["diagnose"], **{arg: value})


def _curve_files():
    return {split: json.loads((grader.DATASETS / name).read_text())
            for split, name in grader.CURVE_FILES.items()}


def test_curve_files_cover_every_label_on_disjoint_seeds():
    files = _curve_files()
    lengths = set()
    for split, content in files.items():
        curves = content["curves"]
        assert {c["label"] for c in curves} == set(grader.LABELS), split
        counts = {label: sum(c["label"] == label for c in curves) for label in grader.LABELS}
        assert len(set(counts.values())) == 1 and min(counts.values()) >= 5, (split, counts)
        for c in curves:
            lengths.add((len(c["train_loss"]), len(c["val_loss"]), len(c["eval_step"])))
            assert np.isfinite(c["train_loss"]).all() and np.isfinite(c["val_loss"]).all()
        assert len({c["seed"] for c in curves}) == len(curves), split
    assert len(lengths) == 1 and len(set(next(iter(lengths)))) == 1 and next(iter(lengths))[0] >= 10
    visible_seeds = {c["seed"] for c in files["visible"]["curves"]}
    held_seeds = {c["seed"] for c in files["held_out"]["curves"]}
    assert not visible_seeds & held_seeds
    held_values = {tuple(c["val_loss"]) for c in files["held_out"]["curves"]}
    assert not held_values & {tuple(c["val_loss"]) for c in files["visible"]["curves"]}


def test_load_curves_reaches_only_the_visible_split():
    assert not inspect.signature(grader.load_curves).parameters
    curves = grader.load_curves()
    files = _curve_files()
    assert [c["seed"] for c in curves] == [c["seed"] for c in files["visible"]["curves"]]
    held_seeds = {c["seed"] for c in files["held_out"]["curves"]}
    assert not held_seeds & {c["seed"] for c in curves}
    assert all(isinstance(c["val_loss"], np.ndarray) and c["label"] in grader.LABELS for c in curves)


# ============================================================================ EMA
@pytest.mark.parametrize("kwargs", [{}, {"decay": 0.5, "steps": 1, "batch_norm": False},
                                    {"seed": 3, "decay": 0.99, "steps": 8, "dtype": torch.float32},
                                    {"seed": 4, "decay": 0.0, "steps": 3}])
def test_ema_reference_passes(ref, kwargs):
    tol = grader.TOL.float32 if kwargs.get("dtype") == torch.float32 else grader.TOL.forward
    assert grader.check_ema.__wrapped__(ref["EMA"], **kwargs)["weights and buffers"] <= tol


def _ema_with(bug):
    class EMA:
        def __init__(self, model, decay):
            self.module = copy.copy(model) if bug == "shallow copy" else copy.deepcopy(model)
            self.decay, self.n = decay, 0
            if bug == "named model":
                self.model, self.module = self.module, None

        def update(self, model):
            pairs = list(zip(self.module.state_dict().values(), model.state_dict().values()))
            if bug == "autograd, .data":  # a graph is built, but only .data is written: correct values
                for a, p in zip(self.module.parameters(), model.parameters()):
                    a.data = (self.decay * a + (1 - self.decay) * p).data if self.n else p.data.clone()
                pairs = list(zip(self.module.buffers(), model.buffers()))
            with torch.no_grad():
                for a, p in pairs:
                    if bug == "updates the model":
                        a, p = p, a
                    if not a.is_floating_point() or (self.n == 0 and bug != "no first copy"):
                        a.copy_(p)
                    elif bug == "copies buffers" and a.data_ptr() in {b.data_ptr() for b in self.module.buffers()}:
                        a.copy_(p)
                    elif bug == "lerp":
                        a.lerp_(p, 1 - self.decay)
                    elif bug == "difference form":
                        a.add_(p - a, alpha=1 - self.decay)
                    elif bug == "decay off by 1%":
                        a.mul_(self.decay * 1.01).add_(p, alpha=1 - self.decay * 1.01)
                    else:
                        a.mul_(self.decay).add_(p, alpha=1 - self.decay)
            self.n += 1

    return EMA


@pytest.mark.parametrize("bug", ["lerp", "difference form", "autograd, .data"])
def test_ema_correct_alternatives_pass(bug):
    for kwargs in ({}, {"seed": 3, "decay": 0.99, "steps": 8, "dtype": torch.float32}):
        grader.check_ema.__wrapped__(_ema_with(bug), **kwargs)


@pytest.mark.parametrize("bug, kwargs, match", [
    ("updates the model", {}, r"update changed the model's 0.weight; it must only read the model"),
    ("shallow copy", {}, r"update changed the model's"),
    ("no first copy", {}, r"(?s)EMA after update 1: 0.weight: relative error.*Hint: first update: copy"),
    ("copies buffers", {}, r"EMA after update 2: 1.running_(mean|var)"),
    ("decay off by 1%", {"seed": 3, "decay": 0.99, "steps": 8, "dtype": torch.float32},
     r"EMA after update 2: .*relative error .* above the tolerance 1e-04"),
    ("named model", {}, r"EMA before any update: expected an nn.Module, got NoneType"),
])
def test_ema_mistakes_fail(bug, kwargs, match):
    fails(grader.check_ema, _ema_with(bug), match=match, **kwargs)


def test_ema_in_place_average_with_autograd_on_is_reported():
    class EMA(_ema_with(None)):
        def update(self, model):
            for a, p in zip(self.module.parameters(), model.parameters()):
                a.mul_(self.decay).add_(p, alpha=1 - self.decay)

    fails(grader.check_ema, EMA, match=r"EMA.update: raised RuntimeError: .*in-place .*\(case: decay=0.9, steps=5")


# ============================================================================ train_with_ema
def test_train_with_ema_reference_passes(ref):
    results = grader.check_train_with_ema.__wrapped__(ref["train_with_ema"])
    assert results["averaged weights"] <= 1e-4
    grader.check_train_with_ema.__wrapped__(ref["train_with_ema"], seed=2, hidden_size=8, steps=12, lr=3e-2,
                                            decay=0.5, weight_decay=1e-3, eval_every=5)


def _train_with_ema(ref, bug):
    from helpers.charlm import train

    def train_with_ema(model, data, steps, lr, decay, weight_decay=0.0, seed=0, eval_every=50):
        ema = ref["EMA"](model, decay)
        every = eval_every if bug == "update at evaluations" else 1
        history = train(model, data, steps=steps, lr=lr, weight_decay=0.0 if bug == "no weight decay" else weight_decay,
                        seed=seed, eval_every=eval_every,
                        after_step=lambda m, k: ema.update(m) if (k + 1) % every == 0 or k % every == 0 else None,
                        eval_model=ema.module if bug == "module, not function" else (lambda: ema.module))
        if bug == "swapped":
            return history, ema.module
        return ema.module, history

    return train_with_ema


@pytest.mark.parametrize("bug, kwargs, match", [
    ("module, not function", {"steps": 3, "eval_every": 3},
     r"train_with_ema: raised ValueError: eval_model must be a zero-argument function"),
    ("swapped", {"steps": 3, "eval_every": 3}, r"the second value must be helpers.charlm.train's history"),
    ("update at evaluations", {"steps": 12, "eval_every": 5, "hidden_size": 8},
     r"(?s)train_with_ema: .*relative error.*update after every step"),
    ("no weight decay", {"seed": 2, "hidden_size": 8, "steps": 12, "lr": 3e-2, "decay": 0.5, "weight_decay": 1e-3,
                         "eval_every": 5}, r"train_with_ema: .*relative error"),
])
def test_train_with_ema_mistakes_fail(ref, bug, kwargs, match):
    fails(grader.check_train_with_ema, _train_with_ema(ref, bug), match=match, **kwargs)


# ============================================================================ tune
def _fake_tune(model=None, best=None, trials=None, n=3):
    def tune(data, rng):
        torch.manual_seed(0)
        made = CharLSTM(data.vocab.size, hidden_size=8) if model is None else model
        found = trials if trials is not None else [{"config": {"lr": 10.0 ** -k}, "val_loss": 4.0 - k / 10,
                                                    "train_loss": 4.0} for k in range(n)]
        return made, (found[-1]["config"] if best is None else best), found

    return tune


def test_tune_run_malformed_results_fail():
    with pytest.raises(CheckFailure, match=r"the model must be a helpers.charlm.CharLSTM, got dict"):
        grader.tune_run(_fake_tune(model={"weights": 1}))
    with pytest.raises(CheckFailure, match=r"list of search trials \(dicts\), at least 2"):
        grader.tune_run(_fake_tune(n=1))
    with pytest.raises(CheckFailure, match=r"best_config must be the config of the trial with the lowest finite"):
        grader.tune_run(_fake_tune(best={"lr": 1.0}))
    nan_trials = [{"config": {"lr": 1e-3}, "val_loss": math.nan}, {"config": {"lr": 1e-2}, "val_loss": math.inf}]
    with pytest.raises(CheckFailure, match=r"best_config must be the config"):
        grader.tune_run(_fake_tune(trials=nan_trials, best={"lr": 1e-3}))
    with pytest.raises(CheckFailure, match=r"tune: expected a tuple of 3 values \(model, best_config, trials\)"):
        grader.tune_run(lambda data, rng: (nn.Linear(2, 2), {}))


def test_untrained_tuned_model_fails_check_tuned():
    run = grader.tune_run(_fake_tune())
    assert run["n_trials"] == 3 and run["best_config"] == {"lr": 0.01}
    with pytest.raises(CheckFailure, match=r"(?s)tune: validation loss 4\.\d+ vs the default's [23]\.\d+: required "
                                           r"at least 0.4 lower.*Hint: search the learning rate"):
        grader.check_tuned.__wrapped__(run)
    with pytest.raises(CheckFailure, match=r"the returned model cannot be evaluated on the validation text"):
        grader.check_tuned.__wrapped__(dict(run, model=nn.Linear(3, 3)))
    with pytest.raises(ValueError, match="split"):
        grader.check_tuned(run, split="val")


def test_check_tuned_bad_run_is_a_value_error():
    for run in (None, {"model": nn.Linear(2, 2)}, [1, 2]):
        with pytest.raises(ValueError, match="run"):
            grader.check_tuned(run)


def test_tune_run_trial_without_a_number_is_a_check_failure():
    trials = [{"config": {"lr": 1e-3}, "val_loss": 3.0}, {"config": {"lr": 1e-2}, "val_loss": None}]
    with pytest.raises(CheckFailure, match="val_loss"):
        grader.tune_run(_fake_tune(trials=trials, best={"lr": 1e-3}))


def _untrained_run():
    torch.manual_seed(0)
    vocab_size = grader.workflow_data().vocab.size
    return {"model": CharLSTM(vocab_size, hidden_size=8), "best_config": {}, "n_trials": 2}


def test_check_tuned_negative_margin_is_a_value_error():
    with pytest.raises(ValueError, match="margin"):
        grader.check_tuned(_untrained_run(), margin=-1.0)


def test_check_tuned_run_without_model_is_a_value_error():
    run = _untrained_run()
    del run["model"]
    with pytest.raises(ValueError, match="run"):
        grader.check_tuned(run)


def test_default_losses_are_what_the_default_measures():
    """check_tuned compares with DEFAULT_LOSSES instead of training the default in every grading run:
    training DEFAULT_CONFIG with default_run must reproduce them (torch's CPU kernels; 2e-3 allows other builds)."""
    from helpers.charlm import evaluate

    model = grader.default_run(grader.workflow_data())
    measured = {"validation": evaluate(model, grader._data().val_ids)["loss"],
                "test": evaluate(model, grader._test_ids())["loss"]}
    for split, loss in measured.items():
        assert abs(loss - grader.DEFAULT_LOSSES[split]) < 2e-3, (split, loss)
    assert set(measured) == set(grader.DEFAULT_LOSSES)


# ============================================================================ self-check
def test_self_check_prints_fail_instead_of_raising(capsys):
    self_check(grader.check_sample_config, _sampler("string"), space=copy.deepcopy(dict(grader.SPACE)))
    assert capsys.readouterr().out.startswith("FAIL  sample_config: 'hidden_size': expected an int, got str")


# ============================================================================ mistakes the pipeline leaves out
@pytest.mark.parametrize("cell, find, replace, check, name, kwargs, match", [
    ("sample_config", "float(rng.uniform(spec[1], spec[2]))", "float(np.random.uniform(spec[1], spec[2]))",
     "check_sample_config", "sample_config", {}, "same seed gave different"),
    ("random_search", "for _ in range(n_trials):", "for _ in range(n_trials - 1):",
     "check_random_search", "random_search", {}, "called 11 times"),
    ("lr_range_test", "        optimizer.zero_grad()\n", "", "check_lr_range_test", "lr_range_test", {}, "losses"),
    ("pick_lr", "lrs[int(np.argmin(smoothed))] / factor", "lrs[int(np.argmin(smoothed))]",
     "check_pick_lr", "pick_lr", {}, "relative error"),
    ("ema", "\n        self.module = copy.deepcopy(model)\n", "\n        self.module = model\n", "check_ema", "EMA", {},
     "deep copy"),
], ids=["global generator", "one trial too few", "gradients never zeroed", "no division", "EMA is the model"])
def test_mistakes_moved_out_of_the_pipeline_fail(cell, find, replace, check, name, kwargs, match):
    """Typical mistakes that the pipeline does not run (each would re-run the tune), checked here."""
    edited = grading.solution_namespace(NOTEBOOK, SOLUTION_CELLS, edit=(cell, find, replace))
    fails(getattr(grader, check), edited[name], match=match, **kwargs)


# ============================================================================ a red team's attacks
class _AlwaysEqual(str):
    """A string that claims to equal anything."""

    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


def test_objects_that_equal_anything_earn_nothing(ref):
    fails(grader.check_diagnose, lambda t, v: _AlwaysEqual("plateau"), match=r"\(_AlwaysEqual\)")

    def search_without_picking(train_fn, space, n_trials, rng):
        trials, _ = ref["random_search"](train_fn, space, n_trials, rng)
        return trials, _AlwaysEqual("best")

    fails(grader.check_random_search, search_without_picking, match=r"best should be trial")

    def fake_losses(train_fn, space, n_trials, rng):
        trials, best = ref["random_search"](train_fn, space, n_trials, rng)
        return [dict(t, val_loss=_AlwaysEqual("0")) for t in trials], best

    fails(grader.check_random_search, fake_losses, match=r"trial 0: val_loss")


class _ReadsTheTargets(CharLSTM):
    """Scores the next character of its own input: perfect on any text, learnt nothing."""

    def forward(self, x, state=None):
        scores = torch.full((*x.shape, self.out.out_features), -30.0)
        scores[:, :-1].scatter_(2, x[:, 1:, None], 30.0)
        return scores, state


def test_a_model_that_reads_its_targets_is_measured_with_the_course_forward():
    data = grader.workflow_data()
    torch.manual_seed(0)
    cheat = _ReadsTheTargets(data.vocab.size, hidden_size=8)
    with pytest.raises(CheckFailure, match=r"must be a helpers.charlm.CharLSTM, got _ReadsTheTargets"):
        grader.tune_run(_fake_tune(model=cheat))
    patched = CharLSTM(data.vocab.size, hidden_size=8)
    patched.forward = _ReadsTheTargets.forward.__get__(patched)   # an instance whose own forward cheats
    run = grader.tune_run(_fake_tune(model=patched))
    with pytest.raises(CheckFailure, match=r"validation loss 4\.\d+ vs the default's"):
        grader.check_tuned.__wrapped__(run)


def test_changing_the_data_given_to_tune_changes_nothing_in_the_grader():
    data = grader.workflow_data()
    before = grader._test_ids().copy()
    for ch in list(data.vocab.stoi):
        data.vocab.stoi[ch] = 0
    data.val_ids[:] = 0
    assert np.array_equal(grader._test_ids(), before) and grader.workflow_data().val_ids.any()
