"""Regenerate datasets/lecture07_runs.json: the long training runs of lecture 07 (the hyperparameter
workflow) on the course's character-level LSTM language model (helpers.charlm); the lecture plots them.

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python scripts/lecture07_runs.py [--only PART ...]

``--only`` reruns the named parts and keeps the others from the existing file (parts: search, curves,
bad_init, lr_range, optuna, after, snapshot).

Data: Shakespeare (datasets/shakespeare.txt), the first 200,000 characters for training, the next
20,000 for validation (every choice below is made on it) and the 20,000 after those as a test text
that only the final comparisons read. Every run is CharLSTM (E = 32) trained by helpers.charlm.train
(AdamW, random windows of N = 32 x T = 64 characters, gradient norm clipped at 1), seeded; losses in
nats per character. Parts:
- search: coarse random search (log-uniform learning rate and weight decay, uniform dropout and
  hidden size), short runs; then a refined search in ranges narrowed around the best coarse trials,
  with longer runs; the untuned default trained as long as the refined trials for comparison;
- curves: the learning-curve pathologies of the lecture, each produced on the model (bad
  initialisation, plateau at a constant learning rate vs cosine decay, decay too early,
  overfitting, underfitting, still improving);
- after: an ensemble of independently seeded models, a snapshot ensemble from one run with cosine
  restarts, and an exponential moving average of the weights (torch.optim.swa_utils.AveragedModel)
  evaluated at test time, each against single models, over seeds;
- bad_init: the bad-initialisation curve (input gates initialised shut) and the same init without
  weight decay (never recovers);
- lr_range: a learning-rate range test (exponentially increasing rate, one run per seed), the rate it
  picks and 100-step runs at that rate and at the default;
- optuna: the same search space searched by Optuna (TPE sampler, seeded; SQLite storage in a
  temporary folder), once with a MedianPruner and once with no pruning, for several sampler seeds:
  training steps spent against the best validation loss found;
- snapshot: snapshot ensembles with longer cycles and a higher peak rate, against one cosine run of
  the same budget, over seeds.
This script contains the techniques assignment a6 asks students to write: it is instructor-side.
"""
import argparse
import copy
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from helpers.charlm import EVAL_SEQ_LEN, CharLMData, CharLSTM, char_lm_data, evaluate, train
from helpers.text import load_corpus

OUT = Path(__file__).resolve().parents[1] / "datasets" / "lecture07_runs.json"
TRAIN_CHARS, VAL_CHARS, TEST_CHARS = 200_000, 20_000, 20_000
EVAL_EVERY = 50
DEFAULT = {"lr": 1e-3, "weight_decay": 0.0, "dropout": 0.0, "hidden_size": 64}
COARSE = {"lr": ("log", 1e-4, 1e-1), "weight_decay": ("log", 1e-6, 1e-1), "dropout": ("linear", 0.0, 0.5),
          "hidden_size": ("int", 32, 192)}
COARSE_TRIALS, COARSE_STEPS, REFINE_TRIALS, REFINE_STEPS = 20, 300, 8, 900
SEEDS = (0, 1, 2)
BAD_INIT_BIAS, BAD_INIT_WD = -15.0, 0.3


def test_ids(vocab):
    """The TEST_CHARS characters after the validation text, as ids."""
    text = load_corpus()[TRAIN_CHARS + VAL_CHARS:TRAIN_CHARS + VAL_CHARS + TEST_CHARS]
    return vocab.encode(text)


def draw(rng, space):
    """One configuration from a search space {name: (kind, low, high)}."""
    config = {}
    for name, (kind, low, high) in space.items():
        if kind == "log":
            config[name] = float(math.exp(rng.uniform(math.log(low), math.log(high))))
        elif kind == "int":
            config[name] = int(rng.integers(low, high + 1))
        else:
            config[name] = float(rng.uniform(low, high))
    return config


def fit(config, data, steps, seed=0, **kwargs):
    """Train a fresh CharLSTM with ``config``; returns (model, history)."""
    torch.manual_seed(seed)
    model = CharLSTM(data.vocab.size, hidden_size=config["hidden_size"], dropout=config["dropout"])
    history = train(model, data, steps=steps, lr=config["lr"], weight_decay=config["weight_decay"], seed=seed,
                    eval_every=EVAL_EVERY, diverge_above=2 * math.log(data.vocab.size), **kwargs)
    return model, history


def curve(history):
    """The parts of a history the lecture plots (rounded)."""
    keys = ("eval_step", "train_eval_loss", "train_eval_acc", "val_loss", "val_acc")
    out = {k: [round(v, 4) if isinstance(v, float) else v for v in history[k]] for k in keys}
    return {**out, "diverged": history["diverged"], "seconds": round(history["seconds"], 1)}


def search(data, space, trials, steps, seed):
    """Random search: ``trials`` configurations from ``space``, each trained ``steps`` steps."""
    rng = np.random.default_rng(seed)
    rows = []
    for trial in range(trials):
        config = draw(rng, space)
        _, history = fit(config, data, steps, seed=trial)
        rows.append({"config": config, "val_loss": round(min(history["val_loss"]), 4), "curve": curve(history)})
        print(f"  trial {trial:2d} {config} -> best val {rows[-1]['val_loss']:.3f}", flush=True)
    return rows


def refined_space(rows, top=5):
    """Ranges spanning the ``top`` best coarse trials (a little wider), same kinds."""
    best = sorted(rows, key=lambda r: r["val_loss"])[:top]
    space = {}
    for name, (kind, low, high) in COARSE.items():
        values = [r["config"][name] for r in best]
        if kind == "log":
            space[name] = (kind, max(low, min(values) / 2), min(high, max(values) * 2))
        elif kind == "int":
            space[name] = (kind, max(low, min(values) - 16), min(high, max(values) + 16))
        else:
            space[name] = (kind, max(low, min(values) - 0.05), min(high, max(values) + 0.05))
    return space


def log_probs(model, ids):
    """Log-probabilities (K, T, V) of the next characters over evaluate's windows (eval mode)."""
    ids = torch.as_tensor(ids)
    k = (len(ids) - 1) // EVAL_SEQ_LEN
    x = ids[:k * EVAL_SEQ_LEN].view(k, EVAL_SEQ_LEN)
    model.eval()
    with torch.no_grad():
        return torch.log_softmax(model(x)[0], dim=-1)


def ensemble_loss(models, ids):
    """Cross-entropy (nats/char) of the average of the models' predicted probabilities."""
    ids = torch.as_tensor(ids)
    k = (len(ids) - 1) // EVAL_SEQ_LEN
    y = ids[1:k * EVAL_SEQ_LEN + 1].view(k, EVAL_SEQ_LEN)
    mean = torch.logsumexp(torch.stack([log_probs(m, ids) for m in models]), dim=0) - math.log(len(models))
    return float(-mean.gather(-1, y[..., None]).mean())


def shut_input_gates(model, bias):
    """The bad initialisation: both LSTM bias vectors of the input gate set to ``bias`` (e.g. -15,
    i = sigmoid(-30) ~ 1e-13): nothing enters the cells, the model can only learn the output bias."""
    hidden = model.lstm.hidden_size
    with torch.no_grad():
        model.lstm.bias_ih_l0[:hidden].fill_(bias)
        model.lstm.bias_hh_l0[:hidden].fill_(bias)


def pathologies(data, names=None):
    """One run per learning-curve pathology of the lecture (H = 64 unless stated); ``names``: only these."""
    small = CharLMData(data.vocab, data.train_ids[:15_000], data.val_ids)
    good = {**DEFAULT, "lr": 1e-2}
    runs = {
        "good": (good, data, 1000, {}),
        "bad_init": ({**good, "weight_decay": BAD_INIT_WD}, data, 1000, {"gate_bias": BAD_INIT_BIAS}),
        "plateau_constant_lr": ({**good, "lr": 3e-2}, data, 1000, {}),
        "plateau_cosine_decay": ({**good, "lr": 3e-2}, data, 1000, {"cosine": 3e-2}),
        "decay_too_early": (good, data, 1000, {"step_decay_at": 60}),
        "overfitting": ({**good, "lr": 3e-3, "hidden_size": 192}, small, 600, {}),
        "underfitting": ({**good, "hidden_size": 4}, data, 1000, {}),
        "still_improving": ({**good, "lr": 5e-4}, data, 400, {}),
    }
    runs["bad_init_no_decay"] = (good, data, 1000, {"gate_bias": BAD_INIT_BIAS})
    out = {}
    for name, (config, d, steps, extra) in runs.items():
        if names is not None and name not in names:
            continue
        kwargs = {}
        if "cosine" in extra:
            kwargs["lr_at"] = lambda k, top=extra["cosine"], n=steps: top * 0.5 * (1 + math.cos(math.pi * k / n))
        if "step_decay_at" in extra:
            kwargs["lr_at"] = lambda k, at=extra["step_decay_at"], lr=config["lr"]: lr if k < at else lr / 10
        torch.manual_seed(0)
        model = CharLSTM(d.vocab.size, hidden_size=config["hidden_size"], dropout=config["dropout"])
        if "gate_bias" in extra:
            shut_input_gates(model, extra["gate_bias"])
        history = train(model, d, steps=steps, lr=config["lr"], weight_decay=config["weight_decay"], seed=0,
                        eval_every=25 if steps <= 600 else EVAL_EVERY, **kwargs)
        out[name] = {"config": config, "steps": steps, "extra": extra, "curve": curve(history)}
        print(f"  {name}: final val {history['val_loss'][-1]:.3f} train {history['train_eval_loss'][-1]:.3f}",
              flush=True)
    return out


def snapshot_run(config, data, test, steps, seed, cycles=3):
    """One run with cosine restarts (``cycles`` cycles), a snapshot at the end of each cycle (where
    the learning rate reaches 0): the final model's test loss and the snapshot ensemble's."""
    cycle, saved = steps // cycles, []

    def restarts(k):
        return config["lr"] * 0.5 * (1 + math.cos(math.pi * ((k - 1) % cycle + 1) / cycle))

    def save(model, k):
        if k % cycle == 0:
            saved.append(copy.deepcopy(model))

    final, _ = fit(config, data, steps, seed=seed, lr_at=restarts, after_step=save)
    return {"seed": seed, "final_test": round(evaluate(final, test)["loss"], 4),
            "snapshots_test": round(ensemble_loss(saved, test), 4), "n_snapshots": len(saved)}


def ema_run(config, data, test, steps, seed, decay=0.99):
    """One run whose weights are also averaged (EMA, updated after every step): the test loss of
    the trained weights and of their average."""
    torch.manual_seed(seed)
    model = CharLSTM(data.vocab.size, hidden_size=config["hidden_size"], dropout=config["dropout"])
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
    history = train(model, data, steps=steps, lr=config["lr"], weight_decay=config["weight_decay"], seed=seed,
                    eval_every=EVAL_EVERY, after_step=lambda m, k: averaged.update_parameters(m))
    return {"seed": seed, "decay": decay, "raw_test": round(evaluate(model, test)["loss"], 4),
            "ema_test": round(evaluate(averaged.module, test)["loss"], 4), "raw_curve": curve(history)}


def after_training(data, test, config, steps):
    """Ensemble, snapshot ensemble and EMA against single models (test loss)."""
    models = [fit(config, data, steps, seed=s)[0] for s in range(5)]
    ensemble = {"single_test": [round(evaluate(m, test)["loss"], 4) for m in models],
                "ensemble_test": {n: round(ensemble_loss(models[:n], test), 4) for n in (2, 3, 5)}}
    print(f"  ensemble {ensemble}", flush=True)
    snapshot = [snapshot_run(config, data, test, steps, seed) for seed in SEEDS]
    ema = [ema_run(config, data, test, steps, seed) for seed in SEEDS]
    print(f"  snapshot {snapshot}\n  ema {[(e['raw_test'], e['ema_test']) for e in ema]}", flush=True)
    return {"config": config, "steps": steps, "ensemble": ensemble, "snapshot": snapshot, "ema": ema}


def bad_init_runs(data):
    """The bad-initialisation curve (input gates shut, weight decay slowly opens them) and the same
    initialisation without weight decay."""
    return pathologies(data, names=("bad_init", "bad_init_no_decay"))


LR_RANGE = {"lr_min": 1e-5, "lr_max": 1.0, "steps": 300, "smoothing": 0.95, "hidden_size": 64}


def smooth(values, beta):
    """Exponential moving average with bias correction (the usual smoothing of a range test)."""
    out, avg = [], 0.0
    for k, v in enumerate(values, start=1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** k))
    return out


def lr_range(data):
    """LR range test per seed: the rate grows exponentially from lr_min to lr_max over ``steps``
    steps of one run; the rule picks a tenth of the rate at the lowest smoothed loss. Then 100-step
    runs from a fresh initialisation at the picked rate, at the default 1e-3 and at the rate of the
    minimum itself."""
    cfg, out = LR_RANGE, {"settings": LR_RANGE, "runs": []}
    ratio = cfg["lr_max"] / cfg["lr_min"]
    for seed in SEEDS:
        torch.manual_seed(seed)
        model = CharLSTM(data.vocab.size, hidden_size=cfg["hidden_size"])
        history = train(model, data, steps=cfg["steps"], lr=cfg["lr_min"], seed=seed, eval_every=10 ** 6,
                        lr_at=lambda k: cfg["lr_min"] * ratio ** ((k - 1) / (cfg["steps"] - 1)),
                        diverge_above=2 * math.log(data.vocab.size))
        smoothed = smooth(history["train_loss"], cfg["smoothing"])
        best = int(np.argmin(smoothed))
        slopes = np.gradient(np.array(smoothed), np.log(np.array(history["lr"])))
        row = {"seed": seed, "lr": [float(f"{v:.4g}") for v in history["lr"]],
               "loss": [round(v, 4) for v in history["train_loss"]], "smoothed": [round(v, 4) for v in smoothed],
               "lr_at_min": history["lr"][best], "min_smoothed": round(smoothed[best], 4),
               "lr_steepest": history["lr"][int(np.argmin(slopes[:best + 1]))], "diverged": history["diverged"]}
        row["picked"] = row["lr_at_min"] / 10
        out["runs"].append(row)
        print(f"  seed {seed}: minimum at lr {row['lr_at_min']:.3g}, picked {row['picked']:.3g}, "
              f"steepest {row['lr_steepest']:.3g}", flush=True)
    picked = float(np.exp(np.mean([np.log(r["picked"]) for r in out["runs"]])))
    out["picked"] = float(f"{picked:.2g}")
    checks = {}
    for name, lr in (("picked", out["picked"]), ("default", DEFAULT["lr"]),
                     ("at_minimum", float(f"{out['runs'][0]['lr_at_min']:.2g}"))):
        torch.manual_seed(0)
        model = CharLSTM(data.vocab.size, hidden_size=cfg["hidden_size"])
        history = train(model, data, steps=100, lr=lr, seed=0, eval_every=50)
        checks[name] = {"lr": lr, "train_loss": [round(v, 4) for v in history["train_loss"]],
                        "eval_step": history["eval_step"], "val_loss": [round(v, 4) for v in history["val_loss"]]}
        print(f"  100 steps at {name} lr {lr:.3g}: val {history['val_loss']}", flush=True)
    out["check_100_steps"] = checks
    return out


OPTUNA_SPACE = {"lr": ("log", 1e-4, 1e-1), "weight_decay": ("log", 1e-6, 1e-1), "dropout": ("linear", 0.0, 0.5),
                "hidden_size": ("int", 32, 64)}
OPTUNA = {"trials": 24, "steps": 300, "report_every": 50, "seeds": SEEDS, "tpe_startup_trials": 10,
          "pruner": "MedianPruner(n_startup_trials=5, n_warmup_steps=100)"}


def suggest(trial, space):
    """One configuration from ``space`` through Optuna's suggest API."""
    config = {}
    for name, (kind, low, high) in space.items():
        if kind == "log":
            config[name] = trial.suggest_float(name, low, high, log=True)
        elif kind == "int":
            config[name] = trial.suggest_int(name, low, high)
        else:
            config[name] = trial.suggest_float(name, low, high)
    return config


def optuna_study(data, storage, seed, prune):
    """One Optuna study (TPE, seeded) of OPTUNA_SPACE in ``storage``: trials of OPTUNA["steps"] steps
    reporting the validation loss every OPTUNA["report_every"] steps; a MedianPruner or none."""
    import optuna

    steps, every = OPTUNA["steps"], OPTUNA["report_every"]
    spent = {}

    def objective(trial):
        config = suggest(trial, OPTUNA_SPACE)
        torch.manual_seed(trial.number)
        model = CharLSTM(data.vocab.size, hidden_size=config["hidden_size"], dropout=config["dropout"])

        def report(m, k):
            spent[trial.number] = k
            if k % every == 0 and k < steps:
                trial.report(evaluate(m, data.val_ids)["loss"], k)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        history = train(model, data, steps=steps, lr=config["lr"], weight_decay=config["weight_decay"],
                        seed=trial.number, eval_every=steps, after_step=report,
                        diverge_above=2 * math.log(data.vocab.size))
        spent[trial.number] = len(history["step"])
        return history["val_loss"][-1] if history["diverged"] is None else evaluate(model, data.val_ids)["loss"]

    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=100) if prune \
        else optuna.pruners.NopPruner()
    name = f"charlm-{'median' if prune else 'nop'}-seed{seed}"
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=OPTUNA["tpe_startup_trials"])
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True, direction="minimize",
                                sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=OPTUNA["trials"])
    trials = [{"number": t.number, "state": t.state.name, "params": t.params,
               "value": None if t.value is None else round(t.value, 4),
               "intermediate": {str(k): round(v, 4) for k, v in sorted(t.intermediate_values.items())},
               "steps": spent[t.number]} for t in study.trials]
    best = study.best_trial
    print(f"  {name}: best {best.value:.4f} {best.params}, steps {sum(t['steps'] for t in trials)}, "
          f"pruned {sum(t['state'] == 'PRUNED' for t in trials)}", flush=True)
    return {"study_name": name, "trials": trials, "best_value": round(best.value, 4), "best_params": best.params,
            "steps_total": sum(t["steps"] for t in trials)}


def optuna_part(data):
    """Pruning vs no pruning, per sampler seed, both studies in one SQLite file (a temporary folder)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = {"settings": {**OPTUNA, "space": OPTUNA_SPACE, "optuna_version": optuna.__version__}, "studies": {}}
    with tempfile.TemporaryDirectory() as folder:
        storage = f"sqlite:///{folder}/lecture07.db"
        for seed in OPTUNA["seeds"]:
            for prune in (False, True):
                study = optuna_study(data, storage, seed, prune)
                out["studies"][study["study_name"]] = study
    return out


SNAPSHOT_VARIANTS = {"3x300_peak0.01": (900, 3, 1e-2), "3x300_peak0.03": (900, 3, 3e-2),
                     "3x600_peak0.02": (1800, 3, 2e-2)}


def cosine_run(config, data, test, steps, cycles, peak, seed):
    """One run with ``cycles`` cosine cycles from ``peak`` to 0 (1 cycle = plain cosine decay), a
    snapshot at the end of each cycle: test losses of the final model, of the ensemble of all
    snapshots and of the last two."""
    cycle, saved = steps // cycles, []

    def rate(k):
        return peak * 0.5 * (1 + math.cos(math.pi * ((k - 1) % cycle + 1) / cycle))

    def save(model, k):
        if k % cycle == 0:
            saved.append(copy.deepcopy(model))

    torch.manual_seed(seed)
    model = CharLSTM(data.vocab.size, hidden_size=config["hidden_size"], dropout=config["dropout"])
    train(model, data, steps=steps, lr=peak, weight_decay=config["weight_decay"], seed=seed, eval_every=steps,
          lr_at=rate, after_step=save)
    row = {"seed": seed, "final_test": round(evaluate(model, test)["loss"], 4),
           "snapshot_tests": [round(evaluate(m, test)["loss"], 4) for m in saved]}
    if cycles > 1:
        row["snapshots_test"] = round(ensemble_loss(saved, test), 4)
        row["last2_test"] = round(ensemble_loss(saved[-2:], test), 4)
    return row


def snapshot_part(data, test):
    """Snapshot ensembles (3 cosine cycles) against one cosine cycle of the same budget and peak."""
    config = {**DEFAULT, "lr": 1e-2}
    out = {"config": config, "variants": {}}
    for name, (steps, cycles, peak) in SNAPSHOT_VARIANTS.items():
        rows = []
        for seed in SEEDS:
            row = cosine_run(config, data, test, steps, cycles, peak, seed)
            row["one_cycle_test"] = cosine_run(config, data, test, steps, 1, peak, seed)["final_test"]
            rows.append(row)
            print(f"  {name} seed {seed}: {row}", flush=True)
        out["variants"][name] = {"steps": steps, "cycles": cycles, "peak": peak, "runs": rows}
    return out


PARTS = ("search", "curves", "bad_init", "lr_range", "optuna", "after", "snapshot")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="parts to (re)compute")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = json.loads(OUT.read_text()) if OUT.exists() and set(args.only) != set(PARTS) else {}
    seconds = result.get("cpu_seconds_parts", {})
    if not seconds and "cpu_seconds" in result:         # the first run, before parts were timed apart
        seconds["search, curves, after (first run)"] = result["cpu_seconds"]
    data = char_lm_data(TRAIN_CHARS, VAL_CHARS)
    test = test_ids(data.vocab)
    result["data"] = {"train_chars": TRAIN_CHARS, "val_chars": VAL_CHARS, "test_chars": TEST_CHARS,
                      "vocab_size": data.vocab.size, "ln_V": round(math.log(data.vocab.size), 4)}
    for part in PARTS:
        if part not in args.only:
            continue
        print(part, flush=True)
        start = time.process_time()
        if part == "search":
            coarse = search(data, COARSE, COARSE_TRIALS, COARSE_STEPS, seed=0)
            space = refined_space(coarse)
            print("refined search", space, flush=True)
            refined = search(data, space, REFINE_TRIALS, REFINE_STEPS, seed=1)
            best = min(refined, key=lambda r: r["val_loss"])["config"]
            default_model, default_history = fit(DEFAULT, data, REFINE_STEPS)
            best_model, best_history = fit(best, data, REFINE_STEPS)
            compare = {name: {"config": cfg, "val_loss": round(min(h["val_loss"]), 4),
                              "test_loss": round(evaluate(m, test)["loss"], 4), "curve": curve(h)}
                       for name, cfg, m, h in [("default", DEFAULT, default_model, default_history),
                                               ("tuned", best, best_model, best_history)]}
            print("compare", {k: (v["val_loss"], v["test_loss"]) for k, v in compare.items()}, flush=True)
            result["search"] = {"coarse_space": COARSE, "coarse": coarse, "refined_space": space,
                                "refined": refined, "compare": compare}
        elif part == "curves":
            result["curves"] = pathologies(data)
        elif part == "bad_init":
            result.setdefault("curves", {}).update(bad_init_runs(data))
        elif part == "lr_range":
            result["lr_range"] = lr_range(data)
        elif part == "optuna":
            result["optuna"] = optuna_part(data)
        elif part == "after":
            result["after"] = after_training(data, test, {**DEFAULT, "lr": 1e-2}, 900)
        elif part == "snapshot":
            result["snapshot"] = snapshot_part(data, test)
        seconds[part] = round(time.process_time() - start, 1)
        result["cpu_seconds_parts"] = seconds
        OUT.write_text(json.dumps(result, indent=None, separators=(",", ":")) + "\n")
    result["cpu_seconds"] = round(sum(seconds.values()), 1)
    OUT.write_text(json.dumps(result, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes); CPU s per part {seconds}, total {result['cpu_seconds']}")


if __name__ == "__main__":
    main()
