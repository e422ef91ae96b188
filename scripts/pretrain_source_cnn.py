"""Pretrain helpers.cnn.SmallCNN on the SOURCE task of unit 5 and ship its weights: the 5
Fashion-MNIST classes T-shirt/top, Trouser, Pullover, Dress, Coat (labels 0-4) photographed at any
orientation (every image padded to 36 x 36 and rotated by a random angle, helpers.data.rotate_images).
Lecture 06 and a5 transfer it to the target classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot)
and to rotated digits (scripts/transfer_sweep.py).

    apt-get install dataset-fashion-mnist      # Debian package, files in /usr/share/datasets/fashion-mnist/
    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python scripts/pretrain_source_cnn.py
    ... scripts/pretrain_source_cnn.py --budgets 20 40 --out /tmp/x   # a dry run elsewhere

Training data: all 30,000 images of classes 0-4 in the official training file (the Debian package;
only this script needs it, the course reads the weights), each batch rotated afresh (angles from
NumPy default_rng(SEED), uniform in [0, 360)), so the model sees every picture at many angles.
Source accuracy: on the 1,000 test images of classes 0-4 of datasets/fashion_mnist_subset.npz,
rotated as ``rotated_fashion("test", SOURCE_CLASSES, seed=0)`` (from the official test file: never
trained on).

The same recipe runs with four training budgets (BUDGETS, in optimiser steps), from a barely
trained to the best model, for the experiment "better source models transfer better": Adam with a
one-cycle learning rate (peak 3e-3) over the budget, batches of 64, seed 0, one CPU thread,
channels-last memory layout (twice as fast on a CPU; the saved tensors are contiguous). Each
budget starts afresh, so every checkpoint has finished its own schedule. Writes
datasets/source_cnn_<k>.pt (state_dict, k = 1..4, worst to best, about 380 KB each) and
datasets/source_cnn.json (steps, images seen, source test accuracy, seed, seconds).

Measured (one CPU core of the course machine, shared):
    checkpoint     steps  epochs  source test accuracy  seconds
    source_cnn_1      60    0.13               62.70 %      6.6
    source_cnn_2     150    0.32               72.90 %     21.6
    source_cnn_3     500    1.07               79.80 %     68.4
    source_cnn_4    3000    6.40               86.30 %    324.7
425 s in all (7 min 8 s wall, on a loaded machine), 382,697 bytes per checkpoint (1.53 MB in all).
The weights are byte-identical from run to run on the same machine and torch version.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from helpers.cnn import CHECKPOINTS_FILE, SmallCNN
from helpers.data import ROTATED_SIZE, SOURCE_CLASSES, rotate_images, rotated_fashion
from helpers.torch_utils import seed_everything

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fashion_subset import SOURCE, read_idx  # noqa: E402  (the Debian package's files)

OUT = Path(__file__).resolve().parents[1] / "datasets"
SEED = 0
BATCH = 64
BUDGETS = [60, 150, 500, 3000]  # optimiser steps; one pass over the 30,000 source images is 469 steps
PEAK_LR = 3e-3
CL = torch.channels_last


def source_train_images():
    """All training images of SOURCE_CLASSES in the official file: float32 (30000, 1, 28, 28) in
    [0, 1] and labels int64 (30000,) in 0..4."""
    images = read_idx(SOURCE / "train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = read_idx(SOURCE / "train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    keep = np.isin(labels, SOURCE_CLASSES)
    return (images[keep] / np.float32(255)).astype(np.float32), labels[keep]


def accuracy(model, x, y, chunk=100):
    """Accuracy in % of model (in eval mode) on images x and labels y (torch tensors)."""
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(c.contiguous(memory_format=CL)).argmax(1) for c in x.split(chunk)])
    return 100 * (pred == y).float().mean().item()


def train(steps, images, labels):
    """A fresh SmallCNN trained for ``steps`` optimiser steps on freshly rotated batches (whole
    shuffled epochs, then a partial one)."""
    seed_everything(SEED)
    rng = np.random.default_rng(SEED)
    model = SmallCNN(n_classes=len(SOURCE_CLASSES)).to(memory_format=CL)
    opt = torch.optim.Adam(model.parameters(), lr=PEAK_LR)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=PEAK_LR, total_steps=steps)
    y_all = torch.from_numpy(labels)
    model.train()
    done = 0
    while done < steps:
        order = rng.permutation(len(images))
        for idx in [order[i:i + BATCH] for i in range(0, len(order), BATCH)][:steps - done]:
            x = rotate_images(images[idx], degrees=rng.uniform(0.0, 360.0, len(idx)))
            loss = F.cross_entropy(model(torch.from_numpy(x).contiguous(memory_format=CL)), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            done += 1
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=BUDGETS, help="steps per checkpoint (dry runs)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder to write to (default: datasets/)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    images, labels = source_train_images()
    test_x, test_y = map(torch.from_numpy, rotated_fashion("test", SOURCE_CLASSES, seed=0))
    steps_per_epoch = -(-len(images) // BATCH)
    checkpoints, total = [], time.time()
    for k, steps in enumerate(args.budgets, start=1):
        start = time.time()
        model = train(steps, images, labels)
        seconds = round(time.time() - start, 1)
        entry = {"name": f"source_cnn_{k}", "file": f"source_cnn_{k}.pt", "steps": steps,
                 "train_images_seen": steps * BATCH, "epochs": round(steps / steps_per_epoch, 2), "seed": SEED,
                 "train_seconds": seconds, "source_test_accuracy": round(accuracy(model, test_x, test_y), 2)}
        torch.save({name: t.contiguous() for name, t in model.state_dict().items()}, args.out / entry["file"])
        entry["bytes"] = (args.out / entry["file"]).stat().st_size
        checkpoints.append(entry)
        print(f"wrote {args.out / entry['file']}: {steps} steps ({entry['epochs']} epochs), source test accuracy "
              f"{entry['source_test_accuracy']:.2f} %, {seconds} s", flush=True)
    info = {"source_classes": list(SOURCE_CLASSES), "image_size": ROTATED_SIZE, "batch_size": BATCH,
            "optimizer": "Adam, one-cycle learning rate", "peak_lr": PEAK_LR,
            "augmentation": "every batch rotated afresh, uniform angle in [0, 360) degrees",
            "train_images": len(images), "train_source": "official Fashion-MNIST training file, classes 0-4",
            "test_images": len(test_x), "test_source": "rotated_fashion('test', SOURCE_CLASSES, seed=0)",
            "torch": torch.__version__, "total_seconds": round(time.time() - total, 1), "checkpoints": checkpoints}
    (args.out / CHECKPOINTS_FILE).write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.out / CHECKPOINTS_FILE} ({info['total_seconds']} s in all)")


if __name__ == "__main__":
    main()
