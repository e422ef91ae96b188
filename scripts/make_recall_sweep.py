"""Regenerate datasets/recall_sweep.json: delayed-recall accuracy against the gap for a vanilla
RNN, an LSTM and a GRU (torch, hidden size 32, 3 seeds each), and the LSTM's forget-gate-bias
study at gap 40. Lecture 04 plots it (training all of it live would take minutes).

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 .venv/bin/python scripts/make_recall_sweep.py
"""
import json
import time
from pathlib import Path

import torch

from helpers.tasks import train_recall

GAPS = [5, 10, 20, 30, 40, 60, 80]
SEEDS = [0, 1, 2]
MODELS = {"rnn": {"kind": "rnn"},
          "lstm": {"kind": "lstm", "memory_bias": 5.0},   # forget gate starts at sigma(5) = 0.993
          "gru": {"kind": "gru", "memory_bias": 5.0}}     # update gate z starts at 0.993 (keep h)
FORGET_BIASES = [None, 1.0, 3.0, 5.0]                      # None = torch's default initialisation
SETTINGS = {"hidden_size": 32, "steps": 300, "batch_size": 32, "lr": 1e-2, "n_symbols": 4, "n_noise": 16}


def main():
    torch.set_num_threads(1)
    start = time.time()
    out = {"settings": SETTINGS, "gaps": GAPS, "seeds": SEEDS,
           "models": {name: {"config": {k: v for k, v in cfg.items()}, "accuracy": {}, "steps": {}}
                      for name, cfg in MODELS.items()},
           "forget_bias": {"gap": 40, "accuracy": {}, "steps": {}}}
    for name, cfg in MODELS.items():
        for gap in GAPS:
            runs = [train_recall(gap=gap, seed=s, **cfg, **SETTINGS) for s in SEEDS]
            out["models"][name]["accuracy"][str(gap)] = [round(r["accuracy"], 4) for r in runs]
            out["models"][name]["steps"][str(gap)] = [len(r["losses"]) for r in runs]
            out["models"][name]["params"] = runs[0]["params"]
            print(name, gap, out["models"][name]["accuracy"][str(gap)], f"{time.time() - start:.0f}s", flush=True)
    for fb in FORGET_BIASES:
        runs = [train_recall("lstm", 40, memory_bias=fb, seed=s, **SETTINGS) for s in SEEDS]
        key = "default" if fb is None else str(fb)
        out["forget_bias"]["accuracy"][key] = [round(r["accuracy"], 4) for r in runs]
        out["forget_bias"]["steps"][key] = [len(r["losses"]) for r in runs]
        print("forget bias", key, out["forget_bias"]["accuracy"][key], flush=True)
    out["seconds"] = round(time.time() - start)
    path = Path(__file__).resolve().parents[1] / "datasets" / "recall_sweep.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path} in {out['seconds']} s")


if __name__ == "__main__":
    main()
