"""Regenerate datasets/lecture02_chunk_sweep.json: lecture 02's char-RNN trained with truncated BPTT at
several chunk (truncation) lengths k, for the lecture's chunk-length explorer.

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python scripts/lecture02_chunk_sweep.py [--only PART ...]

``--only`` reruns the named parts and keeps the others from the existing file (parts: memory, train).

The model, data and evaluation are those of lecture 02, section 6: CharRNN (embedding V -> 32, nn.RNN
with H = 128, linear H -> V) on datasets/shakespeare.txt split 90/10 by helpers.text.train_val_split;
N = 32 streams (helpers.text.tbptt_batches), hidden state carried and detached between chunks, Adam
(lr 3e-3), gradient norm clipped at 1. Every run reads the same number of training characters,
32 x 64 x 400 = 819,200 (the lecture's run: 400 chunks of k = 64), so a shorter chunk means more,
smaller updates. Validation loss (nats/char): the lecture's ``val_loss``, the first 40,000 validation
characters as 20 streams read from h_0 = 0, measured 8 times per run. Parts:
- memory: bytes the autograd graph of one training chunk (N = 32, k steps; forward and loss) keeps
  alive, counted by helpers.rnn_demos.saved_tensor_bytes (distinct storages), for every k;
- train: the runs, seeds 0-2 (the seed sets the initial weights; the data order is fixed).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from helpers.rnn_demos import saved_tensor_bytes
from helpers.text import CharVocab, load_corpus, tbptt_batches, train_val_split

OUT = Path(__file__).resolve().parents[1] / "datasets" / "lecture02_chunk_sweep.json"
CHUNK_LENS = (2, 4, 8, 16, 32, 64, 128, 256)
SEEDS = (0, 1, 2)
N, D, H, LR, CLIP = 32, 32, 128, 3e-3, 1.0
BUDGET = 32 * 64 * 400                     # training characters per run
EVALS = 8                                  # validation measurements per run
PARTS = ("memory", "train")


class CharRNN(torch.nn.Module):
    """Lecture 02's model: x (N, T) ids -> scores (N, T, V), h (1, N, H)."""

    def __init__(self, V, D=32, H=128):
        super().__init__()
        self.emb, self.rnn = torch.nn.Embedding(V, D), torch.nn.RNN(D, H, batch_first=True)  # same order as
        self.out = torch.nn.Linear(H, V)                                                     # the lecture: same init

    def forward(self, x, h=None):
        out, h = self.rnn(self.emb(x), h)
        return self.out(out), h


def val_loss(model, val_ids, V):
    """Lecture 02's validation loss: mean cross-entropy on 40,000 validation characters, 20 streams from h_0 = 0."""
    x, y = (torch.from_numpy(a) for a in next(tbptt_batches(val_ids[:40000], 20, 1999)))
    with torch.no_grad():
        scores, _ = model(x)
        return F.cross_entropy(scores.reshape(-1, V), y.reshape(-1)).item()


def memory(V):
    """Bytes kept alive by the graph of one training chunk, for every chunk length."""
    torch.manual_seed(0)
    model = CharRNN(V, D, H)
    rng = np.random.default_rng(0)
    result = {}
    for k in CHUNK_LENS:
        x = torch.from_numpy(rng.integers(0, V, (N, k)))
        y = torch.from_numpy(rng.integers(0, V, (N, k)))
        h = torch.zeros(1, N, H)

        def chunk(x=x, y=y, h=h):
            scores, _ = model(x, h)
            return F.cross_entropy(scores.reshape(-1, V), y.reshape(-1))

        result[str(k)], _ = saved_tensor_bytes(chunk)
    return result


def run(k, seed, train_ids, val_ids, V):
    """One training run at chunk length k: validation loss after every BUDGET / EVALS characters."""
    torch.manual_seed(seed)
    model = CharRNN(V, D, H)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    updates = BUDGET // (N * k)
    eval_steps = {updates * (i + 1) // EVALS for i in range(EVALS)}      # the last one is the end of the run
    h, curve, train_losses = None, [], []
    for step, (x, y) in enumerate(tbptt_batches(train_ids, N, k), 1):
        scores, h = model(torch.from_numpy(x), h)
        h = h.detach()
        loss = F.cross_entropy(scores.reshape(-1, V), torch.from_numpy(y).reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        train_losses.append(loss.item())
        if step in eval_steps:
            curve.append([step * N * k, round(val_loss(model, val_ids, V), 4)])
        if step == updates:
            break
    return {"updates": updates, "val_curve": curve, "val_loss": curve[-1][1],
            "train_loss_last_10pct": round(float(np.mean(train_losses[-max(1, updates // 10):])), 4)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="parts to (re)compute")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = json.loads(OUT.read_text()) if OUT.exists() and set(args.only) != set(PARTS) else {}
    seconds = result.get("cpu_seconds_parts", {})
    text = load_corpus("shakespeare.txt")
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = train_val_split(vocab.encode(text), val_fraction=0.1)
    result["settings"] = {"chunk_lens": list(CHUNK_LENS), "seeds": list(SEEDS), "N": N, "D": D, "H": H, "V": vocab.size,
                          "lr": LR, "clip": CLIP, "budget_chars": BUDGET, "val_chars": 40000,
                          "torch": torch.__version__}
    for part in PARTS:
        if part not in args.only:
            continue
        start = time.process_time()
        if part == "memory":
            result["memory_bytes"] = memory(vocab.size)
            print("memory", result["memory_bytes"], flush=True)
        else:
            runs = {}
            for k in CHUNK_LENS:
                runs[str(k)] = [run(k, seed, train_ids, val_ids, vocab.size) for seed in SEEDS]
                print(k, [r["val_loss"] for r in runs[str(k)]], f"{time.process_time() - start:.0f} CPU s", flush=True)
            result["runs"] = runs
        seconds[part] = round(time.process_time() - start, 1)
        result["cpu_seconds_parts"] = seconds
        OUT.write_text(json.dumps(result, indent=None, separators=(",", ":")) + "\n")
    result["cpu_seconds"] = round(sum(seconds.values()), 1)
    OUT.write_text(json.dumps(result, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT.name} ({OUT.stat().st_size:,} bytes); CPU s per part {seconds}")


if __name__ == "__main__":
    main()
