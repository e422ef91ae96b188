"""Unit tests of the transfer-learning material of unit 5: the rotated images and few-shot draws of
helpers.data, helpers.cnn.SmallCNN and its shipped checkpoints, and the cached sweep
datasets/transfer_sweep.json that lecture 06 plots."""
import json
import re

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from helpers import cnn
from helpers.cnn import FEATURE_DIM, SmallCNN, load_pretrained, pretrained_checkpoints
from helpers.data import (
    ROTATED_SIZE,
    SOURCE_CLASSES,
    TARGET_CLASSES,
    dataset_path,
    fashion_mnist,
    few_shot_indices,
    rotate_images,
    rotated_digits,
    rotated_fashion,
)


@pytest.fixture(scope="module")
def pictures():
    """Six Fashion-MNIST test images (6, 1, 28, 28) and the same padded by hand to 36 x 36."""
    images = fashion_mnist("test")[0][::331][:6]
    return images, np.pad(images, ((0, 0), (0, 0), (4, 4), (4, 4)))


# ------------------------------------------------------------------------------------- rotation
def test_rotated_images_are_36_by_36_float32_in_unit_range(pictures):
    images, _ = pictures
    out = rotate_images(images, seed=0)
    assert ROTATED_SIZE == 36 and out.shape == (6, 1, 36, 36) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6 and out.max() > 0.5
    small = rotate_images(np.ones((2, 1, 8, 8), np.float32), degrees=[0.0, 0.0])
    assert small.shape == (2, 1, 36, 36) and small.sum() == pytest.approx(2 * 64, abs=1e-3)


def test_angle_zero_is_the_padded_image(pictures):
    images, padded = pictures
    assert np.abs(rotate_images(images, degrees=np.zeros(6)) - padded).max() < 1e-5
    assert np.abs(rotate_images(images, degrees=np.full(6, 360.0)) - padded).max() < 1e-4


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_quarter_turns_match_numpy_rot90_counter_clockwise(pictures, quarter_turns):
    images, padded = pictures
    out = rotate_images(images, degrees=np.full(6, 90.0 * quarter_turns))
    expected = np.rot90(padded, k=quarter_turns, axes=(2, 3))   # counter-clockwise on screen
    assert np.abs(out - expected).max() < 1e-4
    if quarter_turns != 2:
        assert np.abs(out - np.rot90(padded, k=-quarter_turns, axes=(2, 3))).max() > 0.5   # not clockwise


def test_rotation_mostly_keeps_the_ink(pictures):
    images, padded = pictures
    out = rotate_images(images, degrees=[10.0, 33.0, 45.0, 100.0, 200.0, 300.0])
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), padded.sum(axis=(1, 2, 3)), rtol=0.05)


def test_seeded_angles_are_the_documented_draws_and_deterministic(pictures):
    images, _ = pictures
    a, b = rotate_images(images, seed=7), rotate_images(images, seed=7)
    assert np.array_equal(a, b)
    drawn = np.random.default_rng(7).uniform(0.0, 360.0, 6)
    assert np.abs(a - rotate_images(images, degrees=drawn)).max() < 1e-6
    assert np.abs(a - rotate_images(images, seed=8)).max() > 0.1


@pytest.mark.parametrize("kwargs, message", [
    ({"images": np.zeros((2, 1, 28, 28)), "seed": 0}, "images must be a float32 array"),
    ({"images": np.zeros((2, 28, 28), np.float32), "seed": 0}, "images must be a float32 array"),
    ({"images": np.zeros((2, 1, 28, 20), np.float32), "seed": 0}, "images must be a float32 array"),
    ({"images": np.zeros((2, 1, 38, 38), np.float32), "seed": 0}, "images must have an even side"),
    ({"images": np.zeros((2, 1, 27, 27), np.float32), "seed": 0}, "images must have an even side"),
    ({"images": np.zeros((2, 1, 28, 28), np.float32)}, "exactly one of seed"),
    ({"images": np.zeros((2, 1, 28, 28), np.float32), "seed": 0, "degrees": [0, 0]}, "exactly one of seed"),
    ({"images": np.zeros((2, 1, 28, 28), np.float32), "seed": -1}, "seed must be an integer >= 0"),
    ({"images": np.zeros((2, 1, 28, 28), np.float32), "degrees": [0.0]}, "degrees must be 2 finite angles"),
    ({"images": np.zeros((2, 1, 28, 28), np.float32), "degrees": [0.0, np.nan]}, "degrees must be 2 finite"),
])
def test_rotate_images_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rotate_images(**kwargs)


# ----------------------------------------------------------------------------- rotated datasets
def test_rotated_fashion_shapes_labels_and_documented_angles():
    x, y = rotated_fashion("train", TARGET_CLASSES)
    assert x.shape == (5000, 1, 36, 36) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(np.bincount(y), np.full(5, 1000))
    for split, angle_seed in (("test", 1), ("train", 6)):   # 2 * seed + 1 for test, 2 * seed for train
        seed = 0 if split == "test" else 3
        x, y = rotated_fashion(split, (9, 5), seed=seed)
        plain, plain_y = fashion_mnist(split, (9, 5))
        all_labels = fashion_mnist(split)[1]
        degrees = np.random.default_rng(angle_seed).uniform(0.0, 360.0, len(all_labels))[np.isin(all_labels, (9, 5))]
        assert np.array_equal(y, plain_y)                   # Ankle boot -> 0, Sandal -> 1
        assert np.abs(x - rotate_images(plain, degrees=degrees)).max() < 1e-6


def test_a_picture_keeps_its_angle_whatever_classes_are_asked_for():
    x_all, y_all = rotated_fashion("test", TARGET_CLASSES)
    x_one, y_one = rotated_fashion("test", (7,))
    assert x_one.shape == (200, 1, 36, 36) and set(y_one.tolist()) == {0}
    assert np.array_equal(x_one, x_all[y_all == TARGET_CLASSES.index(7)])


def test_rotated_digits_split_100_per_class_and_relabel():
    x, y = rotated_digits("train")
    assert x.shape == (1000, 1, 36, 36) and x.dtype == np.float32 and np.array_equal(np.bincount(y), np.full(10, 100))
    x_test, y_test = rotated_digits("test")
    assert x_test.shape == (797, 1, 36, 36)
    assert np.array_equal(np.bincount(y_test, minlength=10), np.bincount(load_digits().target) - 100)
    x5, y5 = rotated_digits("test", classes=(5, 6, 7, 8, 9))
    assert np.array_equal(x5, x_test[y_test >= 5]) and np.array_equal(y5, y_test[y_test >= 5] - 5)
    assert np.abs(rotated_digits("train", seed=1)[0] - x).max() > 0.1


@pytest.mark.parametrize("call, message", [
    (lambda: rotated_fashion("val", TARGET_CLASSES), "split must be 'train' or 'test'"),
    (lambda: rotated_fashion("train", None), "classes must be a sequence"),
    (lambda: rotated_fashion("train", (5, 5)), "distinct labels in 0..9"),
    (lambda: rotated_fashion("train", TARGET_CLASSES, seed=-2), "seed must be an integer >= 0"),
    (lambda: rotated_digits("dev"), "split must be 'train' or 'test'"),
    (lambda: rotated_digits("train", classes=(10,)), "distinct digits in 0..9"),
])
def test_rotated_datasets_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------------- few-shot draws
def test_few_shot_indices_draw_exactly_per_class_without_replacement():
    labels = np.array([2, 0, 1, 2, 2, 0, 1, 1, 0, 2, 1, 0, 2])   # 4 zeros, 4 ones, 5 twos
    idx = few_shot_indices(labels, 3, seed=0)
    assert idx.dtype == np.int64 and np.array_equal(idx, np.sort(idx)) and len(set(idx.tolist())) == 9
    assert np.array_equal(np.bincount(labels[idx]), [3, 3, 3])
    assert np.array_equal(few_shot_indices(labels, 3, seed=0), idx)
    draws = {tuple(few_shot_indices(labels, 3, seed=s)) for s in range(10)}
    assert len(draws) > 1
    every_one = few_shot_indices(labels, 4, seed=5)            # all of classes 0 and 1
    assert set(np.flatnonzero(labels < 2)) <= set(every_one.tolist())
    with pytest.raises(ValueError, match="per_class=5 but class 0 has only 4"):
        few_shot_indices(labels, 5, seed=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": np.zeros((2, 3), int), "per_class": 1, "seed": 0}, "labels must be a non-empty 1-D integer"),
    ({"labels": np.array([0.0, 1.0]), "per_class": 1, "seed": 0}, "labels must be a non-empty 1-D integer"),
    ({"labels": np.array([0, 1]), "per_class": 0, "seed": 0}, "per_class must be an integer >= 1"),
    ({"labels": np.array([0, 1]), "per_class": 1, "seed": -1}, "seed must be an integer >= 0"),
])
def test_few_shot_indices_reject_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        few_shot_indices(**kwargs)


# ------------------------------------------------------------------------------------ the model
def test_small_cnn_is_body_then_head_with_the_documented_size():
    torch.manual_seed(0)
    model = SmallCNN(n_classes=7).eval()
    x = torch.rand(3, 1, 36, 36)
    features = model.body(x)
    assert FEATURE_DIM == 128 and features.shape == (3, 128)
    assert torch.equal(model.head(features), model(x)) and model(x).shape == (3, 7)
    assert model.body(torch.rand(2, 1, 28, 28)).shape == (2, 128)
    convs = 9 * (1 * 32 + 32 * 64 + 64 * 128)            # 3 x 3 kernels, no bias
    norms = 2 * (32 + 64 + 128)                           # batch-norm scale and shift
    assert sum(p.numel() for p in SmallCNN().parameters()) == convs + norms + 128 * 5 + 5 == 93541


@pytest.mark.parametrize("call, message", [
    (lambda: SmallCNN(n_classes=1), "n_classes must be an integer >= 2"),
    (lambda: SmallCNN(n_classes=2.0), "n_classes must be an integer >= 2"),
    (lambda: SmallCNN(dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (lambda: SmallCNN()(torch.zeros(2, 36, 36)), r"x must have shape \(N, 1, H, W\)"),
    (lambda: SmallCNN()(torch.zeros(2, 3, 36, 36)), r"x must have shape \(N, 1, H, W\)"),
    (lambda: load_pretrained("resnet50"), "name must be one of"),
])
def test_model_rejects_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_pretrained_checkpoints_reach_their_recorded_source_accuracy(monkeypatch):
    loads = []
    real_load = torch.load
    monkeypatch.setattr(cnn.torch, "load", lambda *a, **kw: loads.append(kw) or real_load(*a, **kw))
    images, labels = map(torch.from_numpy, rotated_fashion("test", SOURCE_CLASSES, seed=0))
    checkpoints = pretrained_checkpoints()
    recorded = [c["source_test_accuracy"] for c in checkpoints]
    assert [c["name"] for c in checkpoints] == [f"source_cnn_{k}" for k in range(1, 5)]
    assert recorded == sorted(recorded) and len(set(recorded)) == 4 and recorded[-1] > 80
    for c in checkpoints:
        model = load_pretrained(c["name"])
        assert not model.training and next(model.parameters()).device.type == "cpu"
        with torch.no_grad():
            predicted = torch.cat([model(chunk).argmax(1) for chunk in images.split(100)])
        accuracy = 100 * (predicted == labels).float().mean().item()
        assert abs(accuracy - c["source_test_accuracy"]) <= 0.5, c["name"]
    assert len(loads) == 4 and all(kw.get("weights_only") is True for kw in loads)


def test_shipped_files_sizes_and_readme_rows():
    checkpoints = pretrained_checkpoints()
    sizes = {c["file"]: dataset_path(c["file"]).stat().st_size for c in checkpoints}
    assert sum(sizes.values()) <= 2 * 10 ** 6 and all(c["bytes"] == sizes[c["file"]] for c in checkpoints)
    readme = dataset_path("README.md").read_text()
    for name in ["source_cnn.json", "transfer_sweep.json", *sizes]:
        assert f"`{name}`" in readme, name
    row = next(line for line in readme.splitlines() if line.startswith("| `source_cnn_1.pt`"))
    stated = [int(s.replace(",", "")) for s in re.findall(r"([\d,]+) bytes", row)]
    assert stated and stated[0] == sizes["source_cnn_1.pt"]


# ----------------------------------------------------------------------------- the cached sweep
@pytest.fixture(scope="module")
def sweep():
    return json.loads(dataset_path("transfer_sweep.json").read_text())


def _per_seed(values, n_seeds):
    return isinstance(values, list) and len(values) == n_seeds and all(0 <= v <= 100 for v in values)


def test_sweep_has_every_curve_cell(sweep):
    k, seeds = sweep["k"], sweep["seeds"]
    assert k == [1, 2, 5, 10, 20, 50, 100] and len(seeds) == 3
    for method in ("scratch", "probe", "finetune", "probe_finetune", "pixels"):
        for per_class in k:
            values = sweep["curve"][method][str(per_class)]
            assert _per_seed(values, 3), (method, per_class)
            assert sweep["curve_summary"][method][str(per_class)]["mean"] == pytest.approx(np.mean(values), abs=0.01)
    for method in ("scratch", "finetune", "probe_finetune"):
        assert {"steps", "batch", "weight_decay"} <= set(sweep["recipes"][method])
    assert sweep["recipes"]["finetune"]["body_lr"] == pytest.approx(sweep["recipes"]["finetune"]["head_lr"] / 10)
    goals = sweep["goals"]
    curve = sweep["curve"]
    assert goals["probe_minus_scratch_at_5"] == pytest.approx(
        np.mean(curve["probe"]["5"]) - np.mean(curve["scratch"]["5"]), abs=0.01)
    assert goals["finetune_minus_probe_at_100"] == pytest.approx(
        np.mean(curve["finetune"]["100"]) - np.mean(curve["probe"]["100"]), abs=0.01)
    assert sweep["wall_seconds"] > 0 and sweep["tuning"]


def test_sweep_has_the_guide_the_high_learning_rate_and_the_pipeline(sweep):
    guide = sweep["guide_2x2"]
    for domain in ("similar", "different"):
        for size in ("little", "lots"):
            for method in ("scratch", "probe", "finetune"):
                assert _per_seed(guide[domain][size][method], 3), (domain, size, method)
    assert guide["similar"]["little"]["probe"] == sweep["curve"]["probe"]["5"]
    high = sweep["too_high_lr"]
    assert high["recipe"]["body_lr"] == high["recipe"]["head_lr"] >= 0.03
    for field in ("accuracy", "feature_probe_after", "finetune_accuracy", "feature_probe_after_finetune"):
        for per_class in ("5", "100"):
            assert _per_seed(high[field][per_class], 3), (field, per_class)
    assert 0 <= high["feature_probe_random_init"] <= high["feature_probe_pretrained"] <= 100
    quality = sweep["source_quality"]
    assert [r["name"] for r in quality["checkpoints"]] == [c["name"] for c in pretrained_checkpoints()]
    assert all(_per_seed(r["target_probe"], 3) for r in quality["checkpoints"])
    assert -1 <= quality["pearson_means"]["r"] <= 1 and quality["pearson_means"]["n"] == 4
    stages = sweep["multi_stage"]["stages"]
    for stage in ("source_only", "source_then_intermediate"):
        assert _per_seed(stages[stage]["probe"], 3) and _per_seed(stages[stage]["finetune"], 3)
    assert _per_seed(sweep["multi_stage"]["scratch"], 3)
