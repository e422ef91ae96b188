"""Regenerate datasets/lecture05_results.json: the longer experiments of lecture 05.

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 .venv/bin/python scripts/lecture05_cache.py [--quick]

It executes the lecture's model cell (the code cell that starts with ``# lecture-model``), so
the cached numbers come from exactly the model the lecture shows, and runs:

- "bottleneck": copy random digit strings of 4..40 digits; a plain encoder-decoder and one with
  dot-product attention (H = 64, same steps), held-out exact match per input length;
- "dot_vs_additive": dates with dot-product vs additive scores, validation exact match every
  20 steps and CPU milliseconds per training step;
- "teacher_forcing": dates with attention, trained with teacher forcing vs free running
  (the decoder fed its own argmax), same steps.

About 10-15 minutes of CPU on one core (``--quick``: a smoke run, does not write the file).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers import seed_everything  # noqa: E402
from helpers.attention import exact_match, fit, to_tensors  # noqa: E402
from helpers.data import PAD_ID, START_ID, Seq2SeqVocab, date_splits, date_vocabs, encode_pairs  # noqa: E402
from instructor.course import exec_cells  # noqa: E402

LECTURE = ROOT / "lectures" / "05_seq2seq_attention.ipynb"
OUT = ROOT / "datasets" / "lecture05_results.json"


def lecture_namespace():
    """Execute the lecture's model cell and return its namespace (TinySeq2Seq, ce_loss, greedy)."""
    ns = {"torch": torch, "nn": torch.nn, "F": F, "math": __import__("math"), "PAD_ID": PAD_ID,
          "START_ID": START_ID}
    exec_cells(LECTURE, ["lecture-model"], ns)
    return ns


def copy_pairs(n, seed, lengths):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.choice(lengths))
        digits = "".join(str(d) for d in rng.integers(0, 10, size=length))
        out.append((digits, digits))
    return out


def ms_per_step(history):
    return 1000.0 * history["seconds"] / max(1, history["steps"])


def bottleneck(ns, steps, quick):
    vocab = Seq2SeqVocab("0123456789")
    lengths = list(range(4, 41, 4))
    train = to_tensors(encode_pairs(copy_pairs(20000, 1, list(range(4, 41))), vocab, vocab))
    tests = {L: to_tensors(encode_pairs(copy_pairs(100 if quick else 300, 100 + L, [L]), vocab, vocab))
             for L in lengths}
    result = {"task": "copy digit strings of 4..40 digits", "lengths": lengths, "hidden": 64, "steps": steps}
    for name, attention in [("plain", None), ("attention", "dot")]:
        seed_everything(0)
        model = ns["TinySeq2Seq"](len(vocab), len(vocab), hidden=64, attention=attention)
        history = fit(model, ns["ce_loss"], train, steps=steps, batch_size=128, lr=5e-3, progress=False)
        result[name] = [exact_match(model, tests[L]) for L in lengths]
        result[f"{name}_ms_per_step"] = ms_per_step(history)
        print(name, [round(a, 3) for a in result[name]], f"{history['seconds']:.0f} s", flush=True)
    return result


def dates_data():
    src_vocab, tgt_vocab = date_vocabs()
    splits = date_splits(20000, n_val=1000, n_test=2000, seed=0)
    return (src_vocab, tgt_vocab, to_tensors(encode_pairs(splits["train"], src_vocab, tgt_vocab)),
            to_tensors(encode_pairs(splits["val"], src_vocab, tgt_vocab)))


def dot_vs_additive(ns, steps):
    src_vocab, tgt_vocab, train, val = dates_data()
    result = {}
    for name in ["dot", "additive"]:
        seed_everything(0)
        model = ns["TinySeq2Seq"](len(src_vocab), len(tgt_vocab), attention=name)
        history = fit(model, ns["ce_loss"], train, steps=steps, batch_size=256, lr=1e-2,
                      val=lambda m: exact_match(m, val), eval_every=20, progress=False)
        result[name] = {"val": history["val"], "ms_per_step": ms_per_step(history)}
        print(name, history["val"][-1], f"{ms_per_step(history):.0f} ms/step", flush=True)
    return result


def free_running_loss(model, batch):
    """Cross-entropy when the decoder is fed its own argmax instead of the true previous token."""
    hs, final = model.encode(batch["src"], batch["src_mask"])
    y, state, logits = batch["tgt_in"][:, :1], final[None], []
    for _ in range(batch["tgt_out"].shape[1]):
        step_logits, _, state = model.decode(y, state, hs, batch["src_mask"])
        logits.append(step_logits)
        y = step_logits.argmax(-1)
    logits = torch.cat(logits, 1)
    return F.cross_entropy(logits.flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=PAD_ID)


def teacher_forcing(ns, steps):
    src_vocab, tgt_vocab, train, val = dates_data()
    result = {}
    for name, loss in [("teacher forcing", ns["ce_loss"]), ("free running", free_running_loss)]:
        seed_everything(0)
        model = ns["TinySeq2Seq"](len(src_vocab), len(tgt_vocab), attention="dot")
        history = fit(model, loss, train, steps=steps, batch_size=256, lr=1e-2,
                      val=lambda m: exact_match(m, val), eval_every=20, progress=False)
        result[name] = {"val": history["val"], "ms_per_step": ms_per_step(history)}
        print(name, history["val"][-1], f"{ms_per_step(history):.0f} ms/step", flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few steps only; does not write the file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ns = lecture_namespace()
    start = time.process_time()
    results = {
        "made_by": "scripts/lecture05_cache.py",
        "torch": torch.__version__,
        "bottleneck": bottleneck(ns, 20 if args.quick else 2500, args.quick),
        "dot_vs_additive": dot_vs_additive(ns, 20 if args.quick else 300),
        "teacher_forcing": teacher_forcing(ns, 20 if args.quick else 300),
    }
    results["cpu_seconds"] = round(time.process_time() - start, 1)
    print(f"total {results['cpu_seconds']} s CPU")
    if not args.quick:
        OUT.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
