"""Regenerate datasets/lecture04_runs.json: the cached experiments of lecture 04 (LSTM: the gradient highway).

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python scripts/lecture04_runs.py [--only PART ...]

``--only`` reruns the named parts and keeps the others from the existing file. Parts:
- cause: why does the LSTM (forget-gate bias 5) fail the delayed-recall task at gaps 60-80 within
  300 steps while the GRU does not? Five seeds at gaps 60 and 80, each an intervention on the
  lecture's LSTM (``helpers.tasks.train_recall``, H = 32, Adam lr 1e-2, batches of 32): the
  baseline; a 5x larger step budget (1500 steps); no leak (forget bias 8: sigma(8)^80 = 0.97);
  small writes (forget bias 5 as the baseline, input-gate bias -3: every write starts at 5 % of
  the candidate, so the cell does not fill up with distractors). Plus the initial-cell statistics
  (``final_cell_stats``) of each configuration.
- bias_sweep: the slider of lecture 04: accuracy against the gap (10-80) for forget-gate biases
  0-8, with the input-gate bias at torch's default and at -3, three seeds, 300 steps.
- ladder: one character language model (``helpers.charlm.StackedCharLM``, H = 128) on the first
  30,000 characters of datasets/shakespeare.txt (validation: the next 20,000), improved one step at a
  time: 1 layer -> 2 layers -> dropout 0.3 between layers -> locked dropout instead -> weight drop
  0.3 on W_hh -> tied embedding and read-out. Each rung: 400 AdamW steps (lr 1e-2, 32 windows of 64
  characters, gradient norm clipped at 1), two seeds, validation loss every 50 steps
  (``helpers.charlm.train``).
Everything is seeded; torch on one CPU thread.
"""
import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from helpers.charlm import StackedCharLM, char_lm_data, train
from helpers.tasks import delayed_recall, final_cell_stats, make_recurrent_classifier, recall_input_size, train_recall

OUT = Path(__file__).resolve().parents[1] / "datasets" / "lecture04_runs.json"
PARTS = ("cause", "bias_sweep", "ladder")
RECALL = {"hidden_size": 32, "batch_size": 32, "lr": 1e-2, "n_symbols": 4, "n_noise": 16}
CAUSE_GAPS, CAUSE_SEEDS = [60, 80], [0, 1, 2, 3, 4]
CAUSE = {"baseline": {"memory_bias": 5.0, "input_gate_bias": None, "steps": 300},
         "budget x5": {"memory_bias": 5.0, "input_gate_bias": None, "steps": 1500},
         "no leak": {"memory_bias": 8.0, "input_gate_bias": None, "steps": 300},
         "small writes": {"memory_bias": 5.0, "input_gate_bias": -3.0, "steps": 300}}
SWEEP_GAPS, SWEEP_SEEDS = [10, 20, 40, 60, 80], [0, 1, 2]
SWEEP_FORGET = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]
SWEEP_INPUT = {"input gate: default init": None, "input gate: bias -3": -3.0}
LADDER_DATA = {"train_chars": 30_000, "val_chars": 20_000}
LADDER_TRAIN = {"steps": 400, "lr": 1e-2, "batch_size": 32, "seq_len": 64, "eval_every": 50}
LADDER_SEEDS, LADDER_H, DROP = [0, 1], 128, 0.3
LADDER = [("1 layer", {"num_layers": 1}),
          ("2 layers", {"num_layers": 2}),
          ("+ dropout between layers", {"num_layers": 2, "dropout": DROP}),
          ("locked dropout instead", {"num_layers": 2, "dropout": DROP, "locked": True}),
          ("+ weight drop on W_hh", {"num_layers": 2, "dropout": DROP, "locked": True, "weight_drop": DROP}),
          ("+ tied weights", {"num_layers": 2, "dropout": DROP, "locked": True, "weight_drop": DROP, "tie": True})]

_memo = {}


def recall_run(gap, seed, memory_bias, input_gate_bias, steps):
    """One delayed-recall training run of an LSTM (memoised): accuracy, steps, block-mean losses."""
    key = (gap, seed, memory_bias, input_gate_bias, steps)
    if key not in _memo:
        r = train_recall("lstm", gap, steps=steps, memory_bias=memory_bias, input_gate_bias=input_gate_bias,
                         seed=seed, **RECALL)
        losses = r["losses"]
        _memo[key] = {"accuracy": round(r["accuracy"], 4), "steps": len(losses),
                      "loss_per_50": [round(float(np.mean(losses[i:i + 50])), 3) for i in range(0, len(losses), 50)]}
    return _memo[key]


def init_stats(gap, seeds, memory_bias, input_gate_bias):
    """Mean over seeds of ``final_cell_stats`` of the untrained LSTM on 256 test-like sequences."""
    x, y = delayed_recall(256, gap, seed=10**6 + 7)
    stats = [final_cell_stats(make_recurrent_classifier("lstm", recall_input_size(), RECALL["hidden_size"], 4,
                                                        memory_bias=memory_bias, seed=s,
                                                        input_gate_bias=input_gate_bias), x, y) for s in seeds]
    return {k: round(float(np.mean([s[k] for s in stats])), 4) for k in stats[0]}


def part_cause():
    out = {"gaps": CAUSE_GAPS, "seeds": CAUSE_SEEDS, "settings": RECALL, "configs": CAUSE, "runs": {}}
    for name, cfg in CAUSE.items():
        out["runs"][name] = {}
        for gap in CAUSE_GAPS:
            runs = [recall_run(gap, s, cfg["memory_bias"], cfg["input_gate_bias"], cfg["steps"]) for s in CAUSE_SEEDS]
            init = init_stats(gap, CAUSE_SEEDS, cfg["memory_bias"], cfg["input_gate_bias"])
            out["runs"][name][str(gap)] = {key: [r[key] for r in runs] for key in ("accuracy", "steps", "loss_per_50")}
            out["runs"][name][str(gap)]["init"] = init
            print("cause", name, gap, out["runs"][name][str(gap)]["accuracy"], flush=True)
    return out


def part_bias_sweep():
    out = {"gaps": SWEEP_GAPS, "seeds": SWEEP_SEEDS, "steps": 300, "settings": RECALL, "forget_biases": SWEEP_FORGET,
           "input_gate_biases": list(SWEEP_INPUT), "input_gate_values": SWEEP_INPUT, "runs": {}}
    for label, ib in SWEEP_INPUT.items():
        out["runs"][label] = {}
        for fb in SWEEP_FORGET:
            cell = out["runs"][label][str(fb)] = {}
            for gap in SWEEP_GAPS:
                runs = [recall_run(gap, s, fb, ib, 300) for s in SWEEP_SEEDS]
                cell[str(gap)] = {"accuracy": [r["accuracy"] for r in runs], "steps": [r["steps"] for r in runs],
                                  "init": init_stats(gap, SWEEP_SEEDS, fb, ib)}
            means = [round(float(np.mean(cell[str(g)]["accuracy"])), 2) for g in SWEEP_GAPS]
            print("sweep", label, fb, means, flush=True)
    return out


def part_ladder():
    data = char_lm_data(**LADDER_DATA)
    out = {"data": {**LADDER_DATA, "vocab_size": data.vocab.size, "ln_V": round(math.log(data.vocab.size), 4)},
           "train": LADDER_TRAIN, "hidden_size": LADDER_H, "seeds": LADDER_SEEDS, "rungs": []}
    for name, cfg in LADDER:
        rung = {"name": name, "config": cfg, "runs": []}
        for seed in LADDER_SEEDS:
            torch.manual_seed(seed)
            model = StackedCharLM(data.vocab.size, hidden_size=LADDER_H, **cfg)
            history = train(model, data, seed=seed, **LADDER_TRAIN)
            rung["params"] = sum(p.numel() for p in model.parameters())
            rung["runs"].append({"seed": seed, "eval_step": history["eval_step"],
                                 "val_loss": [round(v, 4) for v in history["val_loss"]],
                                 "train_eval_loss": [round(v, 4) for v in history["train_eval_loss"]],
                                 "cpu_seconds": round(history["seconds"], 1)})
            print("ladder", name, seed, rung["runs"][-1]["val_loss"][-1], f"{history['seconds']:.0f}s", flush=True)
        out["rungs"].append(rung)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, help="parts to rerun (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    result.setdefault("cpu_seconds_parts", {})
    for part in args.only or PARTS:
        start = time.process_time()
        result[part] = globals()[f"part_{part}"]()
        result["cpu_seconds_parts"][part] = round(time.process_time() - start)
    result["cpu_seconds"] = sum(result["cpu_seconds_parts"].values())
    result["torch"] = torch.__version__
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT.name}: {result['cpu_seconds_parts']} CPU seconds", flush=True)


if __name__ == "__main__":
    main()
