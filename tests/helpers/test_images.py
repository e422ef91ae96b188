"""Unit tests of the unit-5 images of helpers.data: the Fashion-MNIST subset and the digits."""
import hashlib
import re

import numpy as np
import pytest

from helpers.data import FASHION_CLASSES, FASHION_FILE, dataset_path, digits_8x8, fashion_mnist


@pytest.mark.parametrize("split, per_class", [("train", 1000), ("test", 200)])
def test_fashion_mnist_shapes_dtypes_ranges_and_balance(split, per_class):
    images, labels = fashion_mnist(split)
    assert images.shape == (10 * per_class, 1, 28, 28) and images.dtype == np.float32
    assert labels.shape == (10 * per_class,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    assert np.array_equal(np.bincount(labels, minlength=10), np.full(10, per_class))


def test_fashion_mnist_classes_keeps_and_relabels_in_the_given_order():
    images, labels = fashion_mnist("test")
    sub_images, sub_labels = fashion_mnist("test", classes=(9, 5))   # Ankle boot -> 0, Sandal -> 1
    keep = np.isin(labels, (9, 5))
    assert np.array_equal(sub_images, images[keep])
    assert np.array_equal(sub_labels, np.where(labels[keep] == 9, 0, 1))
    assert sub_labels.dtype == np.int64
    _, target = fashion_mnist("train", classes=(5, 6, 7, 8, 9))
    assert np.array_equal(np.bincount(target), np.full(5, 1000))


def test_fashion_classes_match_the_file():
    assert len(FASHION_CLASSES) == 10 and FASHION_CLASSES[0] == "T-shirt/top" and FASHION_CLASSES[9] == "Ankle boot"
    with np.load(dataset_path(FASHION_FILE)) as npz:
        assert tuple(npz["class_names"]) == FASHION_CLASSES
        assert npz["train_images"].dtype == np.uint8


def test_fashion_subset_matches_its_readme_row():
    path = dataset_path(FASHION_FILE)
    row = next(line for line in (path.parent / "README.md").read_text().splitlines()
               if line.startswith(f"| `{FASHION_FILE}`"))
    size, head, tail = re.search(r"([\d,]+) bytes \(sha256 `([0-9a-f]+)…([0-9a-f]+)`\)", row).groups()
    data = path.read_bytes()
    assert len(data) == int(size.replace(",", ""))
    digest = hashlib.sha256(data).hexdigest()
    assert digest.startswith(head) and digest.endswith(tail)


@pytest.mark.parametrize("size", [28, 16])
def test_digits_are_upsampled_into_unit_range(size):
    images, labels = digits_8x8(size)
    assert images.shape == (1797, 1, size, size) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64 and set(labels.tolist()) == set(range(10))
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.9
    assert (images.reshape(1797, -1).max(axis=1) > 0).all()   # no image lost its ink


@pytest.mark.parametrize("call, message", [
    (lambda: fashion_mnist("val"), "split must be 'train' or 'test'"),
    (lambda: fashion_mnist("train", classes=[1, 1]), "distinct labels in 0..9"),
    (lambda: fashion_mnist("train", classes=[10]), "distinct labels in 0..9"),
    (lambda: fashion_mnist("train", classes=3), "distinct labels in 0..9"),
    (lambda: digits_8x8(4), "size must be an integer >= 8"),
])
def test_bad_arguments_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
