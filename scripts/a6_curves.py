"""Regenerate datasets/a6_curves.json and datasets/a6_curves_heldout.json: learning curves of real
training runs of the course's character-level LSTM language model (helpers.charlm), each run made
to show one pathology of lecture 07. Assignment a6 asks students to write ``diagnose(train_curve,
val_curve)``: they design it on the visible curves and are graded on the held-out ones.

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python scripts/a6_curves.py

Every run: CharLSTM (E = 32) trained by helpers.charlm.train (AdamW, N = 32 windows of T = 64
characters, gradient norm clipped at 1) for 600 steps on the first 200,000 characters of
datasets/shakespeare.txt (or a prefix of them), measured every 25 steps (25 points, step 0
included) on the next 10,000 characters (validation) and on a training slice of the same size.
The knobs of each pathology are drawn at random (seeded) from ranges where it shows:
- bad_init: the LSTM's weights multiplied by 25-35 at initialisation (saturated gates: flat, then a drop);
- plateau: a constant, high learning rate (2e-2 to 4e-2) that the loss stalls under;
- decay_too_early: learning rate divided by 100-1000 after 40-100 of the 600 steps;
- overfitting: a large model (H = 96 or 128) on only 8,000-14,000 training characters;
- underfitting: a tiny model (H = 2 to 4) at a good learning rate (1e-2 to 2e-2);
- still_improving: a small learning rate (3e-4 to 8e-4), stopped while the loss still falls.
The held-out file uses other seeds than the visible one. Losses in nats per character, rounded to
4 decimals. About 10 CPU minutes.
"""
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from helpers.charlm import CharLMData, CharLSTM, char_lm_data, train

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
LABELS = ("bad_init", "plateau", "decay_too_early", "overfitting", "underfitting", "still_improving")
STEPS, EVAL_EVERY = 600, 25
RUNS = {"a6_curves.json": (5, 1000), "a6_curves_heldout.json": (7, 2000)}  # runs per label, first seed


def log_uniform(rng, low, high):
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def knobs(label, rng):
    """The configuration of one run showing ``label``."""
    config = {"hidden_size": 64, "lr": log_uniform(rng, 5e-3, 1.5e-2), "train_chars": 200_000}
    if label == "bad_init":
        config["init_scale"] = round(float(rng.uniform(25, 35)), 2)
    elif label == "plateau":
        config.update(lr=log_uniform(rng, 2e-2, 4e-2), hidden_size=int(rng.choice([64, 96])))
    elif label == "decay_too_early":
        config.update(decay_at=int(rng.integers(40, 101)), decay_factor=round(log_uniform(rng, 100, 1000), 1))
    elif label == "overfitting":
        config.update(hidden_size=int(rng.choice([96, 128])), lr=log_uniform(rng, 3e-3, 1e-2),
                      train_chars=int(rng.integers(8_000, 14_001)))
    elif label == "underfitting":
        config.update(hidden_size=int(rng.integers(2, 5)), lr=log_uniform(rng, 1e-2, 2e-2))
    elif label == "still_improving":
        config.update(lr=log_uniform(rng, 3e-4, 8e-4), hidden_size=int(rng.choice([64, 96])))
    return config


def run(config, data, seed):
    """Train one model with ``config``; returns its curves (rounded)."""
    torch.manual_seed(seed)
    model = CharLSTM(data.vocab.size, hidden_size=config["hidden_size"])
    if "init_scale" in config:
        with torch.no_grad():
            for p in model.lstm.parameters():
                p.mul_(config["init_scale"])
    def lr_at(k):
        late = "decay_at" in config and k >= config["decay_at"]
        return config["lr"] / config["decay_factor"] if late else config["lr"]
    subset = CharLMData(data.vocab, data.train_ids[:config["train_chars"]], data.val_ids)
    history = train(model, subset, steps=STEPS, lr=config["lr"], seed=seed, eval_every=EVAL_EVERY, lr_at=lr_at)
    return {"eval_step": history["eval_step"],
            "train_loss": [round(v, 4) for v in history["train_eval_loss"]],
            "val_loss": [round(v, 4) for v in history["val_loss"]]}


def main():
    torch.set_num_threads(1)
    data = char_lm_data(200_000, 10_000)
    for name, (per_label, first_seed) in RUNS.items():
        start, curves = time.process_time(), []
        for i, label in enumerate(LABELS):
            for j in range(per_label):
                seed = first_seed + 100 * i + j
                config = knobs(label, np.random.default_rng(seed))
                curves.append({"label": label, "seed": seed, "config": config, **run(config, data, seed)})
                print(f"{name} {label} {seed} {config} val {curves[-1]['val_loss'][::4]}", flush=True)
        order = np.random.default_rng(first_seed).permutation(len(curves))  # labels not in blocks
        result = {"labels": list(LABELS), "steps": STEPS, "eval_every": EVAL_EVERY,
                  "ln_V": round(math.log(data.vocab.size), 4), "curves": [curves[k] for k in order],
                  "cpu_seconds": round(time.process_time() - start, 1)}
        (DATASETS / name).write_text(json.dumps(result, separators=(",", ":")) + "\n")
        print(f"wrote {name}: {len(curves)} curves in {result['cpu_seconds']} CPU s", flush=True)


if __name__ == "__main__":
    main()
