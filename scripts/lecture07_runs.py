"""Regenerate datasets/lecture07_runs.json: the long training runs of lecture 07 (the hyperparameter
workflow) on the course's character-level LSTM language model (helpers.charlm); the lecture plots them.

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python scripts/lecture07_runs.py

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
  evaluated at test time, each against single models, over seeds.
This script contains the techniques assignment a6 asks students to write: it is instructor-side.
"""
import copy
import json
import math
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


def pathologies(data):
    """One run per learning-curve pathology of the lecture (H = 64 unless stated)."""
    small = CharLMData(data.vocab, data.train_ids[:15_000], data.val_ids)
    good = {**DEFAULT, "lr": 1e-2}
    runs = {
        "good": (good, data, 1000, {}),
        "bad_init": (good, data, 1000, {"init_scale": 0.01}),
        "plateau_constant_lr": ({**good, "lr": 3e-2}, data, 1000, {}),
        "plateau_cosine_decay": ({**good, "lr": 3e-2}, data, 1000, {"cosine": 3e-2}),
        "decay_too_early": (good, data, 1000, {"step_decay_at": 60}),
        "overfitting": ({**good, "lr": 3e-3, "hidden_size": 192}, small, 600, {}),
        "underfitting": ({**good, "hidden_size": 4}, data, 1000, {}),
        "still_improving": ({**good, "lr": 5e-4}, data, 400, {}),
    }
    out = {}
    for name, (config, d, steps, extra) in runs.items():
        kwargs = {}
        if "cosine" in extra:
            kwargs["lr_at"] = lambda k, top=extra["cosine"], n=steps: top * 0.5 * (1 + math.cos(math.pi * k / n))
        if "step_decay_at" in extra:
            kwargs["lr_at"] = lambda k, at=extra["step_decay_at"], lr=config["lr"]: lr if k < at else lr / 10
        torch.manual_seed(0)
        model = CharLSTM(d.vocab.size, hidden_size=config["hidden_size"], dropout=config["dropout"])
        if "init_scale" in extra:
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(extra["init_scale"])
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


def main():
    torch.set_num_threads(1)
    start = time.process_time()
    data = char_lm_data(TRAIN_CHARS, VAL_CHARS)
    test = test_ids(data.vocab)
    print("coarse search", flush=True)
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
    print("pathologies", flush=True)
    curves = pathologies(data)
    print("after training", flush=True)
    after = after_training(data, test, {**DEFAULT, "lr": 1e-2}, 900)
    result = {"data": {"train_chars": TRAIN_CHARS, "val_chars": VAL_CHARS, "test_chars": TEST_CHARS,
                       "vocab_size": data.vocab.size, "ln_V": round(math.log(data.vocab.size), 4)},
              "search": {"coarse_space": COARSE, "coarse": coarse, "refined_space": space, "refined": refined,
                         "compare": compare},
              "curves": curves, "after": after, "cpu_seconds": round(time.process_time() - start, 1)}
    OUT.write_text(json.dumps(result, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes) in {result['cpu_seconds']} CPU s")


if __name__ == "__main__":
    main()
