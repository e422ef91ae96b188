"""Regenerate datasets/lecture05_results.json: the longer experiments of lecture 05.

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 .venv/bin/python scripts/lecture05_cache.py [--quick]
        [--only PART ...] [--models MODEL ...]

It executes the lecture's model cell (the code cell that starts with ``# lecture-model``), so
the cached numbers come from exactly the model the lecture shows, and runs (parts):

- "bottleneck": copy random digit strings of 4..40 digits (trained on all lengths mixed, 2500
  steps, H = 64); held-out exact match per input length for four models: "plain" (the context c
  only as s_0), "reversed" (plain, input read backwards), "peeky" (c also at every decoder step)
  and "attention" (dot product). ``--models`` recomputes only some of them;
- "capacity": the plain model trained on 12-digit strings only, for 8000 steps: validation exact
  match every 500 steps (can the 64-number context hold 12 digits, given time?);
- "dates_tricks": dates, 300 steps, the same four models: validation exact match every 20 steps,
  held-out exact match, CPU milliseconds per step;
- "dot_vs_additive": dates with dot-product vs additive scores, validation exact match every
  20 steps and CPU milliseconds per training step;
- "teacher_forcing": dates with attention, trained with teacher forcing vs free running
  (the decoder fed its own argmax), same steps.

``--only`` reruns the named parts (and ``--models`` the named bottleneck models) and keeps
everything else from the existing file. About 14 minutes of CPU on one core for all parts
(``--quick``: a smoke run with a few steps, does not write the file).
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


# name -> (attention, peeky, reversed input): the four models the lecture compares
MODELS = {"plain": (None, False, False), "reversed": (None, False, True), "peeky": (None, True, False),
          "attention": ("dot", False, False)}


def make_model(ns, name, src_size, tgt_size):
    attention, peeky, _ = MODELS[name]
    return ns["TinySeq2Seq"](src_size, tgt_size, hidden=64, attention=attention, peeky=peeky)


def bottleneck(ns, steps, quick, models, old):
    vocab = Seq2SeqVocab("0123456789")
    lengths = list(range(4, 41, 4))
    pairs = copy_pairs(20000, 1, list(range(4, 41)))
    tests = {L: copy_pairs(100 if quick else 300, 100 + L, [L]) for L in lengths}
    result = {**old, "task": "copy digit strings of 4..40 digits", "lengths": lengths, "hidden": 64,
              "steps": steps}
    for name in models:
        reverse = MODELS[name][2]
        train = to_tensors(encode_pairs(pairs, vocab, vocab, reverse_source=reverse))
        seed_everything(0)
        model = make_model(ns, name, len(vocab), len(vocab))
        history = fit(model, ns["ce_loss"], train, steps=steps, batch_size=128, lr=5e-3, progress=False)
        result[name] = [exact_match(model, to_tensors(encode_pairs(tests[L], vocab, vocab, reverse_source=reverse)))
                        for L in lengths]
        result[f"{name}_ms_per_step"] = ms_per_step(history)
        print(name, [round(a, 3) for a in result[name]], f"{history['seconds']:.0f} s", flush=True)
    return result


def capacity(ns, steps, quick, length=12):
    """The plain model on one length only, trained longer: is the sweep's collapse a capacity limit?"""
    vocab = Seq2SeqVocab("0123456789")
    train = to_tensors(encode_pairs(copy_pairs(20000, 1, [length]), vocab, vocab))
    test = to_tensors(encode_pairs(copy_pairs(100 if quick else 300, 100 + length, [length]), vocab, vocab))
    seed_everything(0)
    model = make_model(ns, "plain", len(vocab), len(vocab))
    history = fit(model, ns["ce_loss"], train, steps=steps, batch_size=128, lr=5e-3, progress=False,
                  val=lambda m: exact_match(m, test), eval_every=max(1, steps // 16))
    print("capacity", history["val"][-1], f"{history['seconds']:.0f} s", flush=True)
    return {"task": f"copy {length}-digit strings only", "length": length, "hidden": 64, "steps": steps,
            "val": history["val"], "ms_per_step": ms_per_step(history)}


def dates_data(reverse=False, with_test=False):
    src_vocab, tgt_vocab = date_vocabs()
    splits = date_splits(20000, n_val=1000, n_test=2000, seed=0)
    parts = ["train", "val", "test"] if with_test else ["train", "val"]
    return (src_vocab, tgt_vocab,
            *[to_tensors(encode_pairs(splits[p], src_vocab, tgt_vocab, reverse_source=reverse)) for p in parts])


def dates_tricks(ns, steps):
    """Dates, the lecture's recipe (300 steps): plain, reversed input, peeky and attention side by side."""
    result = {}
    for name in MODELS:
        src_vocab, tgt_vocab, train, val, test = dates_data(reverse=MODELS[name][2], with_test=True)
        seed_everything(0)
        model = make_model(ns, name, len(src_vocab), len(tgt_vocab))
        history = fit(model, ns["ce_loss"], train, steps=steps, batch_size=256, lr=1e-2,
                      val=lambda m, val=val: exact_match(m, val), eval_every=20, progress=False)
        result[name] = {"val": history["val"], "test": exact_match(model, test), "ms_per_step": ms_per_step(history)}
        print(name, history["val"][-1], f"test {result[name]['test']:.3f}", f"{ms_per_step(history):.0f} ms/step",
              flush=True)
    return result


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


PARTS = ["bottleneck", "capacity", "dates_tricks", "dot_vs_additive", "teacher_forcing"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps only; does not write the file")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="parts to (re)compute")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                        help="bottleneck models to (re)compute")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ns = lecture_namespace()
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    results = {**old, "made_by": "scripts/lecture05_cache.py", "torch": torch.__version__}
    seconds = results.pop("cpu_seconds_parts", {})
    if not seconds and "cpu_seconds" in old:           # the first run, before parts were timed apart
        seconds["bottleneck (plain, attention), dot_vs_additive, teacher_forcing (first run)"] = old["cpu_seconds"]
    runs = {
        "bottleneck": lambda: bottleneck(ns, 20 if args.quick else 2500, args.quick, args.models,
                                         {k: v for k, v in old.get("bottleneck", {}).items()
                                          if k.split("_ms")[0] in MODELS and k.split("_ms")[0] not in args.models}),
        "capacity": lambda: capacity(ns, 40 if args.quick else 8000, args.quick),
        "dates_tricks": lambda: dates_tricks(ns, 20 if args.quick else 300),
        "dot_vs_additive": lambda: dot_vs_additive(ns, 20 if args.quick else 300),
        "teacher_forcing": lambda: teacher_forcing(ns, 20 if args.quick else 300),
    }
    for part in PARTS:
        if part not in args.only:
            continue
        start = time.process_time()
        results[part] = runs[part]()
        key = part if part != "bottleneck" else f"bottleneck ({', '.join(args.models)})"
        seconds[key] = round(time.process_time() - start, 1)
    results["cpu_seconds_parts"] = seconds
    results["cpu_seconds"] = round(sum(seconds.values()), 1)
    print(f"total {results['cpu_seconds']} s CPU (all parts, as last computed)")
    if not args.quick:
        OUT.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
