"""Regenerate datasets/lecture06_captioners.pt and .json: the three small captioners of lecture 06.

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 .venv/bin/python scripts/lecture06_captioners.py [--quick]

It executes the lecture's model cell (the code cell tagged ``lecture-model``: ``Describer`` and
``train_describer``), so the stored weights come from exactly the code the lecture shows, and trains on the
4,000 training scenes of ``helpers.scenes.scene_splits(4000, 0, 500, seed=0)`` (grid features of the frozen,
pretrained ``helpers.scene_encoder``, computed once):

- "glance": ``Describer(look=False)``, the image only as the mean cell vector (in h_0 and at every step);
- "attend": ``Describer(look=True)``, additive attention over the 16 cells;
- "attend_biased": the same attention model trained on ``scene_splits(..., bias={"red": "circle"})``, whose
  training split holds no red square or triangle (the test split is the same unbiased one).

Recipe (RECIPE): 600 Adam steps of 64 scenes, lr 1e-2 with a cosine decay to 0, gradient norm clipped at 5,
weights seeded with ``helpers.seed_everything(0)``, one CPU thread. The JSON records the recipe, the loss every
50 steps, the training time and the test exact match of every model (the lecture recomputes the latter from the
weights and checks it against this record). About 40 s of one CPU core; two runs write byte-identical weights.
``--quick`` trains 20 steps each and writes nothing (a smoke test).
"""
import argparse
import collections
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers import seed_everything  # noqa: E402
from helpers.scene_encoder import grid_features, load_scene_encoder  # noqa: E402
from helpers.scenes import NULL_ID, START_ID, CaptionVocab, scene_splits  # noqa: E402
from instructor.course import exec_cells  # noqa: E402

LECTURE = ROOT / "lectures" / "06_transfer_learning.ipynb"
OUT_WEIGHTS = ROOT / "datasets" / "lecture06_captioners.pt"
OUT_INFO = ROOT / "datasets" / "lecture06_captioners.json"
SPLIT = {"n_train": 4000, "n_val": 0, "n_test": 500, "seed": 0}
BIAS = {"red": "circle"}
RECIPE = {"emb": 16, "hidden": 64, "attn": 32, "steps": 600, "batch": 64, "lr": 1e-2, "seed": 0,
          "optimizer": "Adam, cosine decay to 0, gradient norm clipped at 5"}
MODELS = {"glance": {"look": False, "bias": None}, "attend": {"look": True, "bias": None},
          "attend_biased": {"look": True, "bias": BIAS}}


def lecture_namespace():
    """Execute the lecture's model cell; return its namespace (Describer, train_describer)."""
    ns = {"torch": torch, "nn": nn, "F": F, "np": np, "NULL_ID": NULL_ID, "START_ID": START_ID}
    return exec_cells(LECTURE, ["lecture-model"], ns)


def cells_of(encoder, scenes):
    """Grid features as cells in reading order: float32 (N, 16, 32)."""
    return grid_features(encoder, scenes.images).flatten(2).transpose(1, 2).contiguous()


def exact_match(model, cells, scenes, vocab):
    """Greedy exact match (overall and by number of objects) on ``scenes``."""
    with torch.no_grad():
        logits, _ = model(cells, steps=vocab.encode(scenes.captions).shape[1] - 1)
    captions = vocab.decode(logits.argmax(-1))
    hit = np.array([c == r for c, r in zip(captions, scenes.captions)])
    count = np.array([len(o) for o in scenes.objects])
    return {"all": round(float(hit.mean()), 4),
            "by_objects": {str(k): round(float(hit[count == k].mean()), 4) for k in (1, 2, 3)}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 steps per model, write nothing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ns, vocab, encoder = lecture_namespace(), CaptionVocab(), load_scene_encoder()
    recipe = dict(RECIPE, steps=20) if args.quick else RECIPE
    data = {}
    for bias in (None, BIAS):
        splits = scene_splits(**SPLIT, bias=bias)
        data[json.dumps(bias)] = splits
    test = data["null"]["test"]
    test_cells = cells_of(encoder, test)
    weights, info = {}, {"recipe": recipe, "split": SPLIT, "models": {}, "torch": torch.__version__,
                         "command": "PYTHONHASHSEED=0 OMP_NUM_THREADS=1 .venv/bin/python "
                                    "scripts/lecture06_captioners.py"}
    for name, spec in MODELS.items():
        train = data[json.dumps(spec["bias"])]["train"]
        train_cells, ids = cells_of(encoder, train), torch.from_numpy(vocab.encode(train.captions))
        seed_everything(recipe["seed"])
        model = ns["Describer"](train_cells.shape[2], len(vocab), emb=recipe["emb"], hidden=recipe["hidden"],
                                attn=recipe["attn"], look=spec["look"])
        start = time.process_time()
        model, losses = ns["train_describer"](model, train_cells, ids, steps=recipe["steps"], batch=recipe["batch"],
                                              lr=recipe["lr"], seed=recipe["seed"])
        seconds = time.process_time() - start
        red = collections.Counter(o.shape for objects in train.objects for o in objects if o.colour == "red")
        info["models"][name] = {
            "look": spec["look"], "bias": spec["bias"], "train_scenes": len(train), "cpu_seconds": round(seconds, 1),
            "parameters": sum(p.numel() for p in model.parameters()), "loss_every_50_steps": losses,
            "train_red_shapes": dict(sorted(red.items())), "test_exact": exact_match(model, test_cells, test, vocab)}
        weights[name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        print(f"{name}: {seconds:.1f} s CPU, final loss {losses[-1]:.3f}, test exact "
              f"{info['models'][name]['test_exact']}", flush=True)
    if args.quick:
        return
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    OUT_WEIGHTS.write_bytes(buffer.getvalue())
    info["file"], info["bytes"] = OUT_WEIGHTS.name, len(buffer.getvalue())
    info["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    OUT_INFO.write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {OUT_WEIGHTS.name} ({info['bytes']:,} bytes, sha256 {info['sha256'][:12]}) and {OUT_INFO.name}")


if __name__ == "__main__":
    main()
