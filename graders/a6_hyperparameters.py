"""The grader of assignment a6_hyperparameters: sampling a search space, random search, the learning-rate
range test and its pick rule, reading learning curves, an exponential moving average (EMA) of the weights,
and the whole tuning workflow on the course's character-level LSTM language model (helpers.charlm).

Oracles are independent of any solution:

- ``sample_config``: the documented distributions, tested statistically on 2,000 draws with a fixed seed
  (Kolmogorov-Smirnov on log-values / values, chi-square on integers and choices, p >= 1e-4), bounds,
  types, and that the draws come from the ``rng`` passed in;
- ``random_search``: a synthetic objective with a known best trial, a diverged (NaN) first trial and an
  infinite one; every call of ``train_fn`` is recorded and compared with the trials returned;
- ``lr_range_test``: the documented procedure written out (``oracle_lr_range_test``) on an identical
  fresh model and the same batches;
- ``pick_lr``: the debiased moving average computed with ``scipy.signal.lfilter``, and a real run: the
  learning rate picked from the oracle's range test must train a fresh model in 100 steps;
- ``diagnose``: accuracy on learning curves of real runs made by ``scripts/a6_curves.py``: the visible set
  (``datasets/a6_curves.json``) and a held-out set of other seeds (``datasets/a6_curves_heldout.json``);
- ``EMA``: ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn`` and ``use_buffers=True``;
- ``train_with_ema``: ``helpers.charlm.train`` with that oracle updated after every step;
- ``tune``: the validation (and, hidden, test-text) loss of the returned model, measured by
  ``helpers.charlm.evaluate``, against those of ``DEFAULT_CONFIG`` trained for the same final steps
  (``default_run``; measured once, ``DEFAULT_LOSSES``).
"""
import copy
import json
import math
from numbers import Integral, Real
from pathlib import Path
from types import MappingProxyType

import numpy as np
import scipy.signal
import scipy.stats
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from helpers.charlm import CharLMData, CharLSTM, char_lm_data, evaluate, random_windows, train
from helpers.text import load_corpus

from . import core
from .core import TOL, self_check  # noqa: F401 (the notebook's self-check cells: grader.self_check)

NUMPY_ONLY = False
DATASETS = Path(__file__).resolve().parents[1] / "datasets"

#: The search space of the visible tests (every kind of ``sample_config``).
SPACE = MappingProxyType({"lr": ("log_uniform", 1e-4, 1e-1), "weight_decay": ("log_uniform", 1e-6, 1e-2),
         "dropout": ("uniform", 0.0, 0.5), "hidden_size": ("int", 16, 64), "cell": ("choice", ("lstm", "gru"))})
KINDS = ("log_uniform", "uniform", "int", "choice")
#: The learning-curve pathologies of lecture 07, the labels ``diagnose`` returns.
LABELS = ("bad_init", "plateau", "decay_too_early", "overfitting", "underfitting", "still_improving")
CURVE_FILES = MappingProxyType({"visible": "a6_curves.json", "held_out": "a6_curves_heldout.json"})
#: The workflow: the untuned default, the final training length, the data sizes and the model the
#: range test and pick rule are checked on. (The public constants are read-only: test cells read them.)
DEFAULT_CONFIG = MappingProxyType({"lr": 1e-3, "weight_decay": 0.0, "dropout": 0.0, "hidden_size": 32})
WORKFLOW = MappingProxyType({"train_chars": 100_000, "val_chars": 10_000, "test_chars": 10_000, "final_steps": 150,
                             "seed": 0, "eval_every": 50})
#: The untuned default's losses (nats/char) after WORKFLOW["final_steps"] steps of ``default_run`` on the
#: validation text and on the test text after it, measured once (CPU, torch 2.13) and re-measured by
#: tests/graders/test_a6_hyperparameters.py, so that no grading run spends time training the default again.
DEFAULT_LOSSES = MappingProxyType({"validation": 2.9002, "test": 2.9037})
P_MIN = 1e-4  # smallest accepted p-value of the distribution tests (fixed seeds: deterministic)


# ============================================================================ 1. sample_config
def _is_option(value, option):
    """``value`` is ``option`` (NumPy scalars such as rng.choice's np.str_ count; True is not 1)."""
    try:
        return value is option or (isinstance(value, bool) == isinstance(option, bool) and bool(value == option))
    except (TypeError, ValueError):
        return False


def _space_value_problem(spec, value):
    """Why ``value`` is not a valid draw of ``spec`` (None when it is)."""
    kind = spec[0]
    if kind == "choice":
        return None if any(_is_option(value, o) for o in spec[1]) else f"{value!r} is not one of the choices {spec[1]}"
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, Integral):
            return f"expected an int, got {type(value).__name__} {value!r}"
    elif isinstance(value, bool) or not isinstance(value, Real) or isinstance(value, Integral):
        return f"expected a float, got {type(value).__name__} {value!r}"
    low, high = spec[1], spec[2]
    if not (math.isfinite(value) and low <= value <= high):
        return f"{value!r} is outside [{low}, {high}]"
    return None


def _check_config(config, space, name):
    """Fail unless ``config`` is a dict with the keys of ``space`` and a valid value for each."""
    if not isinstance(config, dict):
        core.fail(name, f"expected a dict {{name: value}}, got {type(config).__name__}.")
    if set(config) != set(space):
        core.fail(name, f"expected the keys {sorted(space)}, got {sorted(map(str, config))}.")
    for key, spec in space.items():
        problem = _space_value_problem(spec, config[key])
        if problem:
            core.fail(name, f"{key!r}: {problem}.", "int -> an int in [low, high] (both included); log_uniform "
                                                     "and uniform -> a float in [low, high]; choice -> one option")


def _distribution_p(spec, values):
    """(p-value, test name) that ``values`` follow ``spec``'s distribution."""
    kind = spec[0]
    if kind in ("log_uniform", "uniform"):
        f = np.log if kind == "log_uniform" else (lambda v: np.asarray(v, dtype=float))
        u = (f(np.asarray(values, dtype=float)) - f(spec[1])) / (f(spec[2]) - f(spec[1]))
        return scipy.stats.kstest(u, "uniform").pvalue, "Kolmogorov-Smirnov"
    options = list(range(spec[1], spec[2] + 1)) if kind == "int" else spec[1]
    counts = [sum(1 for v in values if _is_option(v, o)) for o in options]
    if min(counts) == 0:
        return 0.0, f"value {options[counts.index(0)]!r} never drawn"
    return scipy.stats.chisquare(counts).pvalue, "chi-square"


HINTS = {"log_uniform": "draw u uniformly in [log(low), log(high)] and return exp(u): every factor of 10 equally "
                        "likely",
         "uniform": "rng.uniform(low, high)",
         "int": "both ends are included: rng.integers(low, high + 1)",
         "choice": "every option equally likely; return the option itself (not its index)"}


def _expect_value_error(sample_config, name):
    space = {"x": ("gaussian", 0.0, 1.0)}
    try:
        sample_config(np.random.default_rng(0), space)
    except ValueError:
        return
    except NotImplementedError:
        core.fail(name, "not implemented yet (it raises NotImplementedError).")
    except Exception as error:  # noqa: BLE001 -- a student's exception becomes a readable failure
        core.fail(name, f"an unknown kind should raise ValueError, got {type(error).__name__}: {error}.")
    core.fail(name, "an unknown kind ('gaussian') must raise ValueError naming the hyperparameter.")


@core.check
def check_sample_config(sample_config, space=None, seed=0, n=2000):
    """Draw ``n`` configurations of ``space`` (default SPACE) with ``np.random.default_rng(seed)`` and
    check keys, types, bounds and each hyperparameter's distribution; the same seed must give the same
    draws, ``space`` must be left unchanged, and an unknown kind must raise ValueError.
    Raises CheckFailure.
    """
    space = dict(SPACE) if space is None else space
    name, case = "sample_config", {"seed": seed, "space": space}
    untouched = copy.deepcopy(space)
    rng = np.random.default_rng(seed)
    configs = [core.call(sample_config, rng, space, name=name, case=case) for _ in range(n)]
    if space != untouched:
        core.fail(name, "changed the space it was given.")
    if len({id(config) for config in configs}) < len(configs):
        core.fail(name, "returned the same dict object twice; return a new dict on every call.")
    for config in configs[:200]:
        _check_config(config, space, name)
    again = [core.call(sample_config, np.random.default_rng(seed), space, name=name, case=case) for _ in range(2)]
    if again[0] != configs[0] or again[1] != configs[0]:
        core.fail(name, "two generators with the same seed gave different configurations.",
                  "draw every value from the rng argument (rng.uniform, rng.integers, ...), never from np.random "
                  "or the random module")
    if core.call(sample_config, np.random.default_rng(seed + 1), space, name=name, case=case) == configs[0]:
        core.fail(name, "generators with different seeds gave the same configuration.", "use the rng argument")
    results = {}
    for key, spec in space.items():
        p, test = _distribution_p(spec, [c[key] for c in configs])
        if not p >= P_MIN:
            core.fail(name, f"{key!r} ({spec[0]}) does not follow its distribution over {n} draws: {test} "
                            f"p = {p:.1e} < {P_MIN:.0e}.", HINTS[spec[0]])
        results[key] = f"{spec[0]}: {test} p = {p:.2f}"
    _expect_value_error(sample_config, name)
    results["unknown kind"] = "raises ValueError"
    return results


# ============================================================================ 2. random_search
def synthetic_train_fn(calls):
    """A stand-in for training: ``val_loss`` is smallest near lr = 10**-2.5 and dropout = 0.1, ``train_loss``
    prefers a larger lr and no dropout (so the best trial by training loss is another one); the first
    call diverges (NaN) and the second returns inf. Appends (a copy of the config, the result) to ``calls``."""
    def train_fn(config):
        calls.append((copy.deepcopy(config), None))
        x, d = math.log10(config["lr"]), config["dropout"]
        val = (x + 2.5) ** 2 + 4 * (d - 0.1) ** 2 + 0.01 * config["hidden_size"] / 64
        result = {"train_loss": (x + 1.2) ** 2 + d, "val_loss": val, "seconds": 0.01 * len(calls)}
        if len(calls) == 1:
            result.update(train_loss=float("nan"), val_loss=float("nan"))
        elif len(calls) == 2:
            result["val_loss"] = float("inf")
        calls[-1] = (calls[-1][0], dict(result))
        return result
    return train_fn


def _same(a, b):
    """``a`` equals ``b`` with the same built-in types all the way down (NaN equals NaN): an object whose
    ``__eq__`` always answers True does not pass for a number, a string or a dict."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) in (str, int, bool, type(None)) and a == b


def _check_trials(trials, calls, name):
    if not isinstance(trials, list) or len(trials) != len(calls):
        got = f"a list of {len(trials)}" if isinstance(trials, list) else type(trials).__name__
        core.fail(name, f"train_fn was called {len(calls)} times; expected a list of {len(calls)} trials, got {got}.")
    for i, (trial, (config, metrics)) in enumerate(zip(trials, calls)):
        if type(trial) is not dict or "config" not in trial:
            core.fail(name, f"trial {i} must be a dict {{'config': ..., **metrics}}, got {trial!r:.80}.")
        if not _same(trial["config"], config):
            core.fail(name, f"trial {i}: config {trial['config']} is not the one train_fn was called with ({config}).")
        for key, value in metrics.items():
            if not _same(trial.get(key), value):
                core.fail(name, f"trial {i}: {key} = {trial.get(key)!r}, but train_fn returned {value!r}.",
                          "each trial is {'config': config, **train_fn(config)}")


@core.check
def check_random_search(random_search, n_trials=12, seed=0, space=None):
    """Run ``random_search(train_fn, space, n_trials, rng)`` on ``synthetic_train_fn`` and check that
    every call is one trial (in order, with its metrics), the configs lie in the space and the best
    trial is the one with the lowest finite validation loss. Raises CheckFailure.
    """
    space = {k: v for k, v in SPACE.items() if k != "cell"} if space is None else space
    name, case, calls = "random_search", {"n_trials": n_trials, "seed": seed}, []
    result = core.call(random_search, synthetic_train_fn(calls), space, n_trials, np.random.default_rng(seed),
                       name=name, case=case)
    trials, best = core.unpack(result, 2, name, ("trials", "best"))
    if len(calls) != n_trials:
        core.fail(name, f"train_fn was called {len(calls)} times for n_trials={n_trials}.",
                  "one call of train_fn per trial: for _ in range(n_trials)")
    _check_trials(trials, calls, name)
    for config, _ in calls:
        _check_config(config, space, name)
    finite = [i for i, t in enumerate(trials) if math.isfinite(t["val_loss"])]
    expected = min(finite, key=lambda i: trials[i]["val_loss"]) if finite else None
    if expected is None:
        if best is not None:
            core.fail(name, f"no trial has a finite val_loss, so best must be None; got {best!r:.80}.")
        return {"trials": f"{n_trials} trials, none finite, best None"}
    if not (best is trials[expected] or _same(best, trials[expected])):
        by_train = min(finite, key=lambda i: trials[i]["train_loss"])
        hint = ("the best trial is chosen by validation loss, never training loss"
                if best is trials[by_train] or _same(best, trials[by_train]) else
                "ignore trials whose val_loss is NaN or inf (math.isfinite), then take the smallest val_loss")
        core.fail(name, f"best should be trial {expected} (val_loss {trials[expected]['val_loss']:.4f}), "
                        f"got {best!r:.120}.", hint)
    return {"trials": f"{n_trials} trials, best is trial {expected} (val_loss {trials[expected]['val_loss']:.4f})"}


# ============================================================================ 3. LR range test
def range_test_model(vocab_size=None, hidden_size=32, seed=0):
    """The model the range-test checks use: ``CharLSTM(V, emb_size=16, hidden_size)`` initialised with ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CharLSTM(vocab_size or _data().vocab.size, emb_size=16, hidden_size=hidden_size)


def oracle_lr_range_test(model, data, lr_min, lr_max, steps, batch_size=32, seq_len=64, seed=0, stop_factor=4.0):
    """The documented range test, written out: Adam, geometric learning rates, stop on divergence."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr_min)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.as_tensor(np.asarray(data.train_ids))
    lrs, losses = np.geomspace(lr_min, lr_max, steps), []
    model.train()
    for lr in lrs:
        for group in optimizer.param_groups:
            group["lr"] = float(lr)
        x, y = random_windows(ids, batch_size, seq_len, generator)
        scores = model(x)[0]
        loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), y.reshape(-1))
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or losses[-1] > stop_factor * min(losses):
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return lrs[:len(losses)], np.array(losses)


_DATA = {}


def _data():
    """The workflow's data (cached): WORKFLOW's training and validation characters of Shakespeare."""
    if "data" not in _DATA:
        _DATA["data"] = char_lm_data(WORKFLOW["train_chars"], WORKFLOW["val_chars"])  # never handed out
    return _DATA["data"]


def workflow_data():
    """CharLMData of the workflow: the first 100,000 characters of Shakespeare for training, the next
    10,000 for validation (a fresh copy: changing it changes nothing in the grader)."""
    data = _data()
    return CharLMData(copy.deepcopy(data.vocab), data.train_ids.copy(), data.val_ids.copy())


def _test_ids():
    """The WORKFLOW["test_chars"] characters after the validation text (hidden tests only)."""
    start = WORKFLOW["train_chars"] + WORKFLOW["val_chars"]
    return _data().vocab.encode(load_corpus()[start:start + WORKFLOW["test_chars"]])


def _range_arrays(result, name, steps):
    lrs, losses = core.unpack(result, 2, name, ("lrs", "losses"))
    arrays = []
    for label, value in (("lrs", lrs), ("losses", losses)):
        value = core._as_array(value, f"{name}: {label}", f"(n,) with n <= {steps}")
        if value.ndim != 1 or not 1 <= len(value) <= steps:
            core.fail(name, f"{label} must be 1-D with 1 to steps={steps} entries, got shape {value.shape}.")
        arrays.append(value)
    if arrays[0].shape != arrays[1].shape:
        core.fail(name, f"lrs {arrays[0].shape} and losses {arrays[1].shape} must have the same length.")
    return arrays


STOP_HINT = ("record the loss first; stop (without updating) when it is not finite or above 4 x the smallest loss so "
             "far; otherwise take the step")


def _check_stop(losses, steps, name):
    """The run must stop at the first loss that is not finite or above 4 x the smallest so far, and only there."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(losses) | (losses > 4 * np.minimum.accumulate(losses))
    first = int(np.argmax(bad)) if bad.any() else None
    if first is not None and first < len(losses) - 1:
        core.fail(name, f"loss {first} ({losses[first]:.3g}) is above 4 x the smallest so far, but the test went on "
                        f"to {len(losses)} steps.", STOP_HINT)
    if first is None and len(losses) < steps:
        core.fail(name, f"stopped after {len(losses)} of {steps} steps although no loss was above 4 x the smallest.",
                  STOP_HINT)


def _range_args(lr_min, lr_max, steps, batch_size, seq_len, seed):
    for arg, value in (("lr_min", lr_min), ("lr_max", lr_max)):
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < math.inf:
            raise ValueError(f"{arg} must be a positive number, got {value!r}")
    if not lr_min < lr_max:
        raise ValueError(f"lr_min must be below lr_max, got {lr_min!r} and {lr_max!r}")
    for arg, value, low in (("steps", steps, 2), ("batch_size", batch_size, 1), ("seq_len", seq_len, 1),
                            ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            raise ValueError(f"{arg} must be an integer >= {low}, got {value!r}")


@core.check
def check_lr_range_test(lr_range_test, seed=0, hidden_size=16, lr_min=1e-4, lr_max=1.0, steps=40, batch_size=8,
                        seq_len=16):
    """Run ``lr_range_test(model_fn, data, lr_min, lr_max, steps, batch_size, seq_len, seed)`` with a
    ``model_fn`` making identical fresh models, and compare with ``oracle_lr_range_test``. Raises CheckFailure.
    """
    _range_args(lr_min, lr_max, steps, batch_size, seq_len, seed)
    name = "lr_range_test"
    case = {"lr_min": lr_min, "lr_max": lr_max, "steps": steps, "N": batch_size, "T": seq_len, "seed": seed}
    data, made = workflow_data(), []

    def model_fn():
        made.append(range_test_model(data.vocab.size, hidden_size, seed))
        return made[-1]

    result = core.call(lr_range_test, model_fn, data, lr_min, lr_max, steps, batch_size=batch_size, seq_len=seq_len,
                       seed=seed, name=name, case=case)
    if len(made) != 1:
        core.fail(name, f"called model_fn {len(made)} times; call it once, for the one fresh model the test trains.")
    lrs, losses = _range_arrays(result, name, steps)
    _, want_losses = oracle_lr_range_test(range_test_model(data.vocab.size, hidden_size, seed), data, lr_min,
                                                 lr_max, steps, batch_size, seq_len, seed)
    # The losses are compared up to the oracle's minimum: past it the rate is so large that rounding
    # differences between correct implementations grow into different losses. The stopping rule is then
    # checked on the student's own losses.
    m = int(np.argmin(want_losses)) + 1
    if len(lrs) < m:
        core.fail(name, f"stopped after {len(lrs)} steps, before the loss reached its minimum (step {m - 1}).",
                  STOP_HINT)
    errors = {"lrs": core.compare(f"{name}: lrs", lrs, np.geomspace(lr_min, lr_max, steps)[:len(lrs)], 1e-9,
                                  "lr_k = lr_min * (lr_max / lr_min) ** (k / (steps - 1)), k = 0 .. steps - 1"),
              "losses": core.compare(f"{name}: losses up to their minimum", losses[:m], want_losses[:m], 1e-3,
                                     "set the learning rate of step k before its update; zero the gradients every "
                                     "step; record each batch's loss before the update")}
    _check_stop(losses, steps, name)
    errors["steps"] = f"{len(lrs)} of {steps} (stopped at divergence)" if len(lrs) < steps else f"{steps} of {steps}"
    return errors


# ============================================================================ 4. pick_lr
def oracle_smoothed(losses, beta):
    """Debiased exponential moving average of ``losses`` (scipy.signal.lfilter)."""
    losses = np.asarray(losses, dtype=float)
    return scipy.signal.lfilter([1 - beta], [1, -beta], losses) / (1 - beta ** np.arange(1, len(losses) + 1))


def oracle_pick_lr(lrs, losses, beta=0.9, factor=10.0):
    losses = np.asarray(losses, dtype=float)
    n = len(losses) - (0 if math.isfinite(losses[-1]) else 1)
    return float(np.asarray(lrs)[int(np.argmin(oracle_smoothed(losses[:n], beta)))] / factor)


def synthetic_range_curve(seed=0, steps=50, nan_at_end=False, spike=True):
    """(lrs, losses) shaped like a range test: flat, falling, a minimum, then blowing up; with one
    one-step spike below the minimum (only a smoothed curve ignores it) and an optional NaN last loss."""
    rng = np.random.default_rng(seed)
    lrs = np.geomspace(1e-5, 1.0, steps)
    x = np.log10(lrs)
    losses = 4.0 - 1.6 / (1 + np.exp(-3 * (x + 3.2))) + 0.4 * np.exp(2.2 * (x + 0.6))
    losses += 0.03 * rng.standard_normal(steps)
    if spike:
        losses[int(0.5 * steps)] = losses.min() - 0.5
    if nan_at_end:
        losses[-1] = np.nan
    return lrs, losses


@core.check
def check_pick_lr(pick_lr, seed=0, steps=50, nan_at_end=False, beta=0.9, factor=10.0):
    """Compare ``pick_lr(lrs, losses, beta, factor)`` with the oracle on ``synthetic_range_curve``.
    Raises CheckFailure."""
    lrs, losses = synthetic_range_curve(seed, steps, nan_at_end)
    got = core.call(pick_lr, lrs.copy(), losses.copy(), beta=beta, factor=factor, name="pick_lr",
                    case={"seed": seed, "steps": steps, "NaN last loss": nan_at_end})
    want = oracle_pick_lr(lrs, losses, beta, factor)
    error = core.compare("pick_lr", got, want, 1e-9,
                         "smooth first: avg_k = beta * avg_(k-1) + (1 - beta) * loss_k (avg_(-1) = 0), divided by "
                         "1 - beta**(k+1); take the lr at its minimum and divide it by factor; skip a NaN last loss")
    return {"lr": f"{float(got):.3g} (relative error {error:.1e})"}


@core.check
def check_pick_lr_trains(pick_lr, hidden_size=32, steps=60, maximum=3.0, seed=0):
    """The real test: pick a learning rate from the oracle's range test (lr 1e-5 to 1, ``steps`` steps) of
    a fresh CharLSTM, then train a fresh model at it for 100 steps (helpers.charlm.train): its validation
    loss must be <= ``maximum`` nats (ln V = 4.29 at the start). Raises CheckFailure."""
    data = _data()
    lrs, losses = oracle_lr_range_test(range_test_model(data.vocab.size, hidden_size, seed), data, 1e-5, 1.0, steps,
                                       seed=seed)
    lr = core.call(pick_lr, lrs, losses, name="pick_lr", case="the range test of a CharLSTM")
    if isinstance(lr, bool) or not isinstance(lr, Real) or not 0 < lr < 1:
        core.fail("pick_lr", f"expected a learning rate in (0, 1), got {lr!r}.")
    model = range_test_model(data.vocab.size, hidden_size, seed)
    history = train(model, data, steps=100, lr=float(lr), seed=seed, eval_every=100)
    val = history["val_loss"][-1]
    if not val <= maximum:
        core.fail("pick_lr", f"trained 100 steps at the picked lr {lr:.3g}: validation loss {val:.3f} > {maximum}.",
                  "the pick rule takes the minimum of the SMOOTHED loss and divides its lr by factor")
    return {"training": f"lr {lr:.3g}: validation loss {history['val_loss'][0]:.2f} -> {val:.2f} in 100 steps "
                        f"(required <= {maximum})"}


# ============================================================================ 5. diagnose
def _load_curves(split):
    curves = json.loads((DATASETS / CURVE_FILES[split]).read_text())["curves"]
    for curve in curves:
        curve["train_loss"], curve["val_loss"] = np.array(curve["train_loss"]), np.array(curve["val_loss"])
    return curves


def load_curves():
    """The 30 labelled learning curves to design ``diagnose`` on (the held-out ones are the grader's).

    Returns a list of dicts: "label" (one of LABELS), "train_loss" and "val_loss" (float arrays (25,),
    nats per character at "eval_step" 0, 25, ..., 600), "eval_step", "seed" and "config" (the run's knobs).
    """
    return _load_curves("visible")


def diagnose_all(diagnose, curves):
    """The student's label of every curve (fresh copies of the arrays); fails on a label not in LABELS."""
    labels = []
    for i, curve in enumerate(curves):
        label = core.call(diagnose, curve["train_loss"].copy(), curve["val_loss"].copy(), name="diagnose",
                          case=f"curve {i}")
        if type(label) is not str or label not in LABELS:
            core.fail("diagnose", f"returned {label!r} ({type(label).__name__}) for curve {i}; expected one of the "
                                  f"strings {LABELS}.")
        labels.append(label)
    return labels


def _recalls(curves, labels):
    """{label: (right, total)} over ``curves`` given the predicted ``labels``."""
    return {name: (sum(c["label"] == name == g for c, g in zip(curves, labels)),
                   sum(c["label"] == name for c in curves)) for name in LABELS}


@core.check
def check_diagnose(diagnose, split="visible", minimum=0.8, min_recall=0.5):
    """On the curves of ``split``, ``diagnose`` must be right on at least ``minimum`` of them and on at least
    ``min_recall`` of the curves of every label (a rule that never says "overfitting" is not a diagnosis).
    Raises CheckFailure; ValueError for bad arguments."""
    for arg, value in (("minimum", minimum), ("min_recall", min_recall)):
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value <= 1:
            raise ValueError(f"{arg} must be a number in [0, 1], got {value!r}")
    if split not in CURVE_FILES:
        raise ValueError(f"split must be one of {sorted(CURVE_FILES)}, got {split!r}")
    curves = _load_curves(split)
    labels = diagnose_all(diagnose, curves)
    accuracy = float(np.mean([c["label"] == g for c, g in zip(curves, labels)]))
    recalls = _recalls(curves, labels)
    per_label = ", ".join(f"{name} {right}/{total}" for name, (right, total) in recalls.items())
    where = f"the {len(curves)} {split.replace('_', '-')} curves"
    weak = [name for name, (right, total) in recalls.items() if right < min_recall * total]
    if not accuracy >= minimum or weak:
        problem = (f"accuracy {accuracy:.0%} (required >= {minimum:.0%})" if not accuracy >= minimum else
                   f"{', '.join(weak)} recognised on fewer than {min_recall:.0%} of the curves of that label")
        core.fail("diagnose", f"{problem} on {where}; right per label: {per_label}.",
                  "look at grader.load_curves() curve by curve (lecture 07's plots): where does your rule go wrong?")
    return {"accuracy": f"{accuracy:.0%} on {where} (required >= {minimum:.0%}, and >= {min_recall:.0%} of each "
                        f"label); right per label: {per_label}"}


# ============================================================================ 6. EMA
def _ema_model(seed, batch_norm, dtype):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = [nn.Linear(3, 5), nn.BatchNorm1d(5) if batch_norm else nn.Identity(), nn.Tanh(), nn.Linear(5, 2)]
        return nn.Sequential(*layers).to(dtype)


def _floating_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


def _compare_states(name, got_module, want_module, tol, hint):
    if not isinstance(got_module, nn.Module):
        core.fail(name, f"expected an nn.Module, got {type(got_module).__name__}.")
    got, want = _floating_state(got_module), _floating_state(want_module)
    if set(got) != set(want):
        core.fail(name, f"its state has the entries {sorted(got)}, expected {sorted(want)}.")
    return max(core.compare(f"{name}: {key}", got[key], value, tol, hint) for key, value in want.items())


EMA_HINT = ("first update: copy the weights; then ema = decay * ema + (1 - decay) * weights, for every floating-point "
            "parameter AND buffer (batch norm's running statistics)")


@core.check
def check_ema(EMA, seed=0, decay=0.9, steps=5, batch_norm=True, dtype=torch.float64):
    """Train a small MLP (with batch norm when ``batch_norm``) ``steps`` SGD steps, updating the student's
    ``EMA(model, decay)`` and ``AveragedModel(..., multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)``
    after every step; compare every floating-point parameter and buffer after each step. Raises CheckFailure."""
    name = "EMA"
    case = {"decay": decay, "steps": steps, "batch norm": batch_norm, "dtype": str(dtype).replace("torch.", "")}
    model = _ema_model(seed, batch_norm, dtype)
    ema = core.call(EMA, model, decay, name=name, case=case)
    oracle = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    if getattr(ema, "module", None) is model:
        core.fail(name, "ema.module is the model itself; it must be a deep copy (copy.deepcopy(model)).")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    generator = torch.Generator().manual_seed(seed)
    tol = TOL.forward if dtype == torch.float64 else TOL.float32
    error = _compare_states(f"{name} before any update", getattr(ema, "module", None), oracle.module, tol,
                            "self.module = copy.deepcopy(model)")
    for step in range(1, steps + 1):
        x = torch.randn(8, 3, generator=generator, dtype=dtype)
        loss = (model(x) - 1).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        before = _floating_state(model)
        core.call(ema.update, model, name="EMA.update", case={**case, "step": step})
        oracle.update_parameters(model)
        for key, value in _floating_state(model).items():
            if not torch.equal(value, before[key]):
                core.fail(name, f"update changed the model's {key}; it must only read the model.")
        error = max(error, _compare_states(f"{name} after update {step}", ema.module, oracle.module, tol, EMA_HINT))
    return {"weights and buffers": error}


def oracle_train_with_ema(model, data, steps, lr, decay, weight_decay, seed, eval_every):
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    history = train(model, data, steps=steps, lr=lr, weight_decay=weight_decay, seed=seed, eval_every=eval_every,
                    after_step=lambda m, k: averaged.update_parameters(m), eval_model=lambda: averaged.module)
    return averaged.module, history


@core.check
def check_train_with_ema(train_with_ema, seed=0, hidden_size=16, steps=30, lr=1e-2, decay=0.9, weight_decay=0.0,
                         eval_every=10):
    """Compare ``train_with_ema(model, data, steps, lr, decay, weight_decay, seed, eval_every)`` with the
    oracle (helpers.charlm.train + AveragedModel): the returned averaged weights and the validation losses
    of its history (measured on the averaged weights). Raises CheckFailure."""
    name = "train_with_ema"
    case = {"steps": steps, "lr": lr, "decay": decay, "weight_decay": weight_decay, "seed": seed}
    data = workflow_data()
    model = range_test_model(data.vocab.size, hidden_size, seed)
    result = core.call(train_with_ema, model, data, steps, lr, decay, weight_decay=weight_decay, seed=seed,
                       eval_every=eval_every, name=name, case=case)
    averaged, history = core.unpack(result, 2, name, ("averaged model", "history"))
    want_model, want_history = oracle_train_with_ema(range_test_model(data.vocab.size, hidden_size, seed), data,
                                                     steps, lr, decay, weight_decay, seed, eval_every)
    if averaged is model:
        core.fail(name, "returned the trained model itself; return the averaged copy (ema.module).",
                  "the averaged weights are what you evaluate and keep")
    if not isinstance(history, dict) or "val_loss" not in history:
        core.fail(name, "the second value must be helpers.charlm.train's history dict.")
    weights = _compare_states(name, averaged, want_model, 1e-4, EMA_HINT + "; update after every step")
    val = core.compare(f"{name}: history['val_loss']", history["val_loss"], want_history["val_loss"], 1e-4,
                       "measure the averaged weights: train(..., eval_model=lambda: ema.module)")
    return {"averaged weights": weights, "validation losses of the averaged model": val}


# ============================================================================ 7. the workflow
def default_run(data, steps=None, seed=None):
    """Train DEFAULT_CONFIG (CharLSTM, E = 32) for WORKFLOW["final_steps"] steps with helpers.charlm.train."""
    steps, seed = steps or WORKFLOW["final_steps"], WORKFLOW["seed"] if seed is None else seed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CharLSTM(data.vocab.size, hidden_size=DEFAULT_CONFIG["hidden_size"], dropout=DEFAULT_CONFIG["dropout"])
    train(model, data, steps=steps, lr=DEFAULT_CONFIG["lr"], weight_decay=DEFAULT_CONFIG["weight_decay"], seed=seed,
          eval_every=steps)
    return model


def _graders_copy(model):
    """A CharLSTM built by the grader holding ``model``'s weights: the loss is measured with the course's
    forward pass, never the returned object's own (which could read the targets it is scored on)."""
    if type(model) is not CharLSTM:
        core.fail("tune", f"the model must be a helpers.charlm.CharLSTM, got {type(model).__name__}.",
                  "build it with build_model(config, V) and return the averaged copy (ema.module)")
    try:
        copy_ = CharLSTM(model.out.out_features, emb_size=model.embedding.embedding_dim,
                         hidden_size=model.lstm.hidden_size)
        copy_.load_state_dict({k: torch.Tensor(v).detach().clone() for k, v in model.state_dict().items()})
    except Exception as error:  # noqa: BLE001 -- a tampered model fails the check, never the grader
        core.fail("tune", f"the model's weights do not fit a CharLSTM of its sizes: {type(error).__name__}: {error}.")
    return copy_


def _tuned_loss(model, ids, where):
    try:
        return evaluate(model, ids)["loss"]
    except Exception as error:  # noqa: BLE001 -- a student's model that cannot be evaluated fails the check
        core.fail("tune", f"the returned model cannot be evaluated on {where}: {type(error).__name__}: {error}.",
                  "return a module mapping int64 (N, T) to (scores (N, T, V), state), like CharLSTM")


def tune_run(tune, seed=None):
    """Call the student's ``tune(data, rng)`` on ``workflow_data()`` with ``np.random.default_rng(seed)``;
    returns a dict for ``check_tuned``. Raises CheckFailure."""
    seed = WORKFLOW["seed"] if seed is None else seed
    data = workflow_data()
    result = core.call(tune, data, np.random.default_rng(seed), name="tune", case={"seed": seed})
    model, best_config, trials = core.unpack(result, 3, "tune", ("model", "best_config", "trials"))
    model = _graders_copy(model)
    if not isinstance(trials, list) or len(trials) < 2 or not all(isinstance(t, dict) for t in trials):
        core.fail("tune", "the third value must be the list of search trials (dicts), at least 2.")
    if not all(isinstance(t.get("val_loss"), Real) for t in trials):
        core.fail("tune", "every trial must have a number as its val_loss (NaN for a diverged run).")
    finite = [t for t in trials if math.isfinite(t["val_loss"])]
    if not finite or min(finite, key=lambda t: t["val_loss"]).get("config") != best_config:
        core.fail("tune", "best_config must be the config of the trial with the lowest finite val_loss.")
    return {"model": model, "best_config": best_config, "trials": trials, "n_trials": len(trials)}


@core.check
def check_tuned(run, margin=0.4, split="validation"):
    """The tuned model's loss on ``split`` ("validation", or "test": the 10,000 characters after it) must be
    at least ``margin`` nats below the default's (DEFAULT_LOSSES). Raises CheckFailure."""
    if split not in ("validation", "test"):
        raise ValueError(f"split must be 'validation' or 'test', got {split!r}")
    if not isinstance(run, dict) or not {"model", "best_config", "n_trials"} <= set(run):
        raise ValueError("run must be the dict that tune_run returns")
    if isinstance(margin, bool) or not isinstance(margin, Real) or not 0 <= margin < math.inf:
        raise ValueError(f"margin must be a number >= 0, got {margin!r}")
    ids = _data().val_ids if split == "validation" else _test_ids()
    tuned, default = _tuned_loss(run["model"], ids, f"the {split} text"), DEFAULT_LOSSES[split]
    if not tuned <= default - margin:
        core.fail("tune", f"{split} loss {tuned:.3f} vs the default's {default:.3f}: required at least {margin} lower.",
                  "search the learning rate on a log scale around the range test's pick; train the best config "
                  "with EMA for the final steps")
    return {split: f"tuned {tuned:.3f} vs default {default:.3f} nats/char (best config {run['best_config']}, "
                   f"{run['n_trials']} trials; required >= {margin} lower)"}
