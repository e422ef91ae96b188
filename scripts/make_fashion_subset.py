"""Rebuild datasets/fashion_mnist_subset.npz: a class-balanced subset of Fashion-MNIST for unit 5
(lecture 06, a5): 1,000 training images per class drawn from the official training file and
200 test images per class from the official test file, all 10 classes (12,000 images).

    apt-get install dataset-fashion-mnist      # Debian package, files in /usr/share/datasets/fashion-mnist/
    .venv/bin/python scripts/make_fashion_subset.py

Source: Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, Zalando Research), MIT (Expat) license,
copyright 2017 Zalando SE. Seed 0 (NumPy default_rng): the same files give the same bytes.

The npz holds
- train_images uint8 (10000, 28, 28), train_labels uint8 (10000,), train_index int32 (10000,)
- test_images uint8 (2000, 28, 28), test_labels uint8 (2000,), test_index int32 (2000,)
- class_names <U11 (10,)
where *_index are the positions of the images in the official files (sorted, so classes are mixed).
"""
import gzip
import hashlib
import zipfile
from pathlib import Path

import numpy as np

SOURCE = Path("/usr/share/datasets/fashion-mnist")
OUT = Path(__file__).resolve().parents[1] / "datasets" / "fashion_mnist_subset.npz"
SEED = 0
PER_CLASS = {"train": 1000, "test": 200}
FILES = {"train": "train", "test": "t10k"}  # split -> prefix of the official file names
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path, header_bytes):
    """The uint8 payload of a gzipped idx file (images: 16-byte header, labels: 8-byte header)."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header_bytes)


def balanced_subset(labels, per_class, rng):
    """Sorted positions of ``per_class`` images of every class, drawn without replacement."""
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(picks)).astype(np.int32)


def save_npz(path, arrays):
    """Like np.savez_compressed, but with a fixed time stamp in the zip, so the bytes (and the
    sha256 in datasets/README.md) are the same on every run; np.load reads it as usual."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, array, allow_pickle=False)


def main():
    rng = np.random.default_rng(SEED)
    arrays = {}
    for split, prefix in FILES.items():
        images = read_idx(SOURCE / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
        labels = read_idx(SOURCE / f"{prefix}-labels-idx1-ubyte.gz", 8)
        index = balanced_subset(labels, PER_CLASS[split], rng)
        arrays.update({f"{split}_images": images[index], f"{split}_labels": labels[index], f"{split}_index": index})
        print(f"{split}: {len(index)} of {len(labels)} images, {PER_CLASS[split]} per class")
    arrays["class_names"] = np.array(CLASS_NAMES)
    save_npz(OUT, arrays)
    data = OUT.read_bytes()
    print(f"wrote {OUT}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
