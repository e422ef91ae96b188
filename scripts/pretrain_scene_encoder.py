"""Pretrain the scene encoder of unit 5 (lecture 06, a5) and write datasets/scene_encoder.pt and
datasets/scene_encoder.json (recipe, accuracy, time, checksum).

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 .venv/bin/python scripts/pretrain_scene_encoder.py

Data: 10,000 images of one object in a random cell, ``helpers.scenes.single_shapes(10000, seed=0)`` (drawn here
with ``make_scenes(10000, 0, n_objects=1)``, the same call, which also gives each object's cell); evaluation on
2,000 fresh ones, ``single_shapes(2000, seed=1)``.

Objective: ``helpers.scene_encoder.SceneEncoder``'s two heads name what every one of the 16 cells holds --
shape in {circle, square, triangle, empty}, colour in {red, green, blue, yellow, empty} -- with the sum of the two
cross-entropies averaged over all cells. Adam, one-cycle learning rate up to 3e-3, 4,000 steps of 64 images drawn
with a seeded generator, torch seed 0, one CPU thread. Afterwards the last convolution is divided by the standard
deviation of the learned channels on the training images (and the heads multiplied by it: the logits do not
change), so the grid features have unit scale.

Design choices, measured downstream with the attention captioner of the sizing work (the a5 layers: E = 16,
A = 32; Adam at 1e-2, batches of 64, 4,000 training scenes; exact match of greedy captions and localisation of
shape nouns on the 500 test scenes of ``scene_splits(4000, 500, 500, seed=0)``); all encoders had these layers:
- pretraining heads (H = 64, 1,000 steps, coordinates in [-1, 1], features at unit std): heads on the max over
  the grid 81.4 % exact / 89.2 % localisation; the same plus a per-cell "which cell holds the object" loss
  81.0 % / 94.0 %; per-cell heads with an "empty" class (shipped) 92.6 % / 97.6 %;
- the same per-cell encoder without the coordinate channels: 55.8 % (a convolution whose windows do not overlap
  cannot tell where a cell is, and the captions follow reading order); with the raw, unscaled features: 66.8 %;
- coordinates in [-1, 1] vs the shipped -6, -2, 2, 6 (H = 96, 600 steps, cosine decay, seeds 0-3): mean exact
  match 84.9 % (74.4-93.6) vs 94.5 % (92.4-98.6).

Measured (one thread of a shared 2-core machine, torch 2.13 CPU): about 37 s in all (data 7 s, training 27 s);
accuracy on the 2,000 test images: shape 99.9 %, colour 100 %, every cell's label (object or empty) 99.99 %.
Two runs give byte-identical weights (32 KB).
"""
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from helpers.scene_encoder import CHANNELS, LEARNED, SceneEncoder
from helpers.scenes import COLOURS, SHAPES, make_scenes, single_shapes

OUT = Path(__file__).resolve().parents[1] / "datasets"
RECIPE = {"n_train": 10000, "train_seed": 0, "n_test": 2000, "test_seed": 1, "torch_seed": 0, "steps": 4000,
          "batch_size": 64, "max_lr": 3e-3, "schedule": "OneCycleLR", "optimizer": "Adam", "threads": 1}


def one_object_data(n, seed):
    """Images float32 (n, 3, 64, 64) and per-cell targets int64 (n, 16) for shape (3 = empty) and colour
    (4 = empty): the images of ``single_shapes(n, seed)``."""
    scenes = make_scenes(n, seed, n_objects=1)
    shape = np.full((n, 16), len(SHAPES), dtype=np.int64)
    colour = np.full((n, 16), len(COLOURS), dtype=np.int64)
    for i, (obj,) in enumerate(scenes.objects):
        shape[i, obj.row * 4 + obj.col] = SHAPES.index(obj.shape)
        colour[i, obj.row * 4 + obj.col] = COLOURS.index(obj.colour)
    return torch.from_numpy(scenes.images), torch.from_numpy(shape), torch.from_numpy(colour)


def cell_loss(encoder, images, shape, colour):
    """Sum of the shape and colour cross-entropies, averaged over the 16 cells of every image."""
    shape_logits, colour_logits = encoder.cell_logits(encoder(images))
    return (F.cross_entropy(shape_logits.reshape(-1, shape_logits.shape[2]), shape.reshape(-1))
            + F.cross_entropy(colour_logits.reshape(-1, colour_logits.shape[2]), colour.reshape(-1)))


def train(encoder, images, shape, colour, r):
    optimizer = torch.optim.Adam(encoder.parameters(), lr=r["max_lr"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, r["max_lr"], total_steps=r["steps"])
    generator = torch.Generator().manual_seed(r["torch_seed"])
    encoder.train()
    for _ in range(r["steps"]):
        idx = torch.randint(0, len(images), (r["batch_size"],), generator=generator)
        loss = cell_loss(encoder, images[idx], shape[idx], colour[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return encoder.eval()


def fold_unit_scale(encoder, images):
    """Divide the last convolution by the std of the learned channels on ``images`` and multiply the heads by
    it (ReLU commutes with a positive factor, so the logits stay the same). Returns the std."""
    with torch.no_grad():
        std = torch.cat([encoder(images[i:i + 500])[:, :LEARNED] for i in range(0, len(images), 500)]).std()
        last = encoder.body[4]
        last.weight /= std
        last.bias /= std
        encoder.shape_head.weight *= std
        encoder.colour_head.weight *= std
    return float(std)


def evaluate(encoder, n, seed):
    """Accuracy of ``classify`` on ``single_shapes(n, seed)`` and share of all cells labelled right."""
    images, shapes, colours = (torch.from_numpy(a) for a in single_shapes(n, seed))
    _, cell_shape, cell_colour = one_object_data(n, seed)
    with torch.no_grad():
        pred_shape, pred_colour = encoder.classify(images)
        logits_shape, logits_colour = encoder.cell_logits(encoder(images))
    both = (logits_shape.argmax(2) == cell_shape) & (logits_colour.argmax(2) == cell_colour)
    return {"shape": (pred_shape == shapes).float().mean().item(),
            "colour": (pred_colour == colours).float().mean().item(), "cells": both.float().mean().item()}


def main():
    torch.set_num_threads(RECIPE["threads"])
    start = time.perf_counter()
    images, shape, colour = one_object_data(RECIPE["n_train"], RECIPE["train_seed"])
    torch.manual_seed(RECIPE["torch_seed"])
    encoder = train(SceneEncoder(), images, shape, colour, RECIPE)
    std = fold_unit_scale(encoder, images)
    accuracy = evaluate(encoder, RECIPE["n_test"], RECIPE["test_seed"])
    seconds = time.perf_counter() - start
    path = OUT / "scene_encoder.pt"
    torch.save({k: v.contiguous() for k, v in encoder.state_dict().items()}, path)
    info = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size,
            "channels": CHANNELS, "learned_channels": LEARNED, "grid": [4, 4],
            "parameters": sum(p.numel() for p in encoder.parameters()),
            "grid_parameters": sum(p.numel() for p in encoder.body.parameters()),
            "recipe": RECIPE, "folded_std": round(std, 6),
            "test_accuracy": {k: round(v, 4) for k, v in accuracy.items()},
            "seconds": round(seconds, 1), "torch": torch.__version__.split("+")[0],
            "command": "PYTHONHASHSEED=0 OMP_NUM_THREADS=1 .venv/bin/python scripts/pretrain_scene_encoder.py"}
    (OUT / "scene_encoder.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
