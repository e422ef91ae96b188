"""Unit tests of helpers.scene_encoder: shapes and dtypes, locality (grid position r * 4 + c sees exactly cell
(r, c)), the coordinate channels, eval mode and no autograd in grid_features, the shipped weights (checksum,
size, accuracy on fresh images against datasets/scene_encoder.json) and the argument errors."""
import hashlib
import json

import numpy as np
import pytest
import torch

from helpers.data import dataset_path
from helpers.scene_encoder import SceneEncoder, grid_features, load_scene_encoder
from helpers.scenes import COLOURS, SHAPES, scenes_from_objects, single_shapes


@pytest.fixture(scope="module")
def encoder():
    return load_scene_encoder()


@pytest.fixture(scope="module")
def info():
    return json.loads(dataset_path("scene_encoder.json").read_text())


def random_encoder(seed=0):
    torch.manual_seed(seed)
    return SceneEncoder()


def test_shapes_and_dtypes(encoder):
    images = single_shapes(5, seed=3)[0]
    out = encoder(torch.from_numpy(images))
    assert out.shape == (5, 32, 4, 4) and out.dtype == torch.float32
    feats = grid_features(encoder, images, batch_size=2)
    assert isinstance(feats, torch.Tensor) and feats.shape == (5, 32, 4, 4) and feats.dtype == torch.float32
    assert torch.allclose(feats, grid_features(encoder, torch.from_numpy(images), batch_size=256), atol=1e-5)
    assert grid_features(encoder, images[:0]).shape == (0, 32, 4, 4)
    cells = feats.flatten(2).transpose(1, 2)                 # the documented reading-order view
    assert cells.shape == (5, 16, 32) and torch.equal(cells[:, 2 * 4 + 1], feats[:, :, 2, 1])


def test_each_position_sees_exactly_its_cell():
    """Changing the pixels of cell (r, c) changes the features at position (r, c) and nowhere else, for
    random weights too (a property of the layers, not of training)."""
    model = random_encoder().eval()
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 64, 64), dtype=np.float32))
    base = model(image).detach()
    for r, c in [(0, 0), (0, 3), (2, 1), (3, 3)]:
        changed = image.clone()
        changed[:, :, 16 * r:16 * r + 16, 16 * c:16 * c + 16] = torch.rand(1, 3, 16, 16)
        diff = (model(changed).detach() - base).abs().amax(dim=1)[0]   # (4, 4)
        assert diff[r, c] > 0
        diff[r, c] = 0
        assert diff.max() == 0, f"changing cell {(r, c)} moved other positions"


def test_object_cell_is_the_most_distinct_position(encoder):
    """With the shipped weights, the cell whose learned channels lie farthest from those of an empty cell (a
    plain background image) holds the object, for every cell, shape and colour."""
    empty = grid_features(encoder, np.full((1, 3, 64, 64), 0.1, dtype=np.float32))[0, :30, 0, 0]
    layouts = [[(SHAPES[i % 3], COLOURS[i % 4], r, c)] for i, (r, c) in enumerate(np.ndindex(4, 4))]
    feats = grid_features(encoder, scenes_from_objects(layouts, seed=5).images)[:, :30]
    distance = (feats - empty[None, :, None, None]).norm(dim=1).flatten(1)        # (16, 16 positions)
    assert distance.argmax(1).tolist() == list(range(16))


def test_coordinate_channels(encoder):
    feats = grid_features(encoder, single_shapes(3, seed=4)[0])
    steps = torch.tensor([-6.0, -2.0, 2.0, 6.0])
    assert torch.allclose(feats[:, 30], steps[None, :, None].expand(3, 4, 4))    # row
    assert torch.allclose(feats[:, 31], steps[None, None, :].expand(3, 4, 4))    # column


def test_eval_mode_frozen_and_no_grad(encoder):
    assert not encoder.training and all(not p.requires_grad for p in encoder.parameters())
    model = random_encoder().train()
    feats = grid_features(model, single_shapes(4, seed=0)[0])
    assert not feats.requires_grad and feats.grad_fn is None
    assert model.training, "grid_features must restore the encoder's mode"


def test_shipped_weights_match_their_record(info):
    path = dataset_path("scene_encoder.pt")
    assert path.stat().st_size <= 512 * 1024 and path.stat().st_size == info["bytes"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"]
    state = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float32 for v in state.values())
    assert sum(v.numel() for v in state.values()) == info["parameters"] == 7013


def test_shipped_accuracy_on_fresh_images(encoder, info):
    images, shapes, colours = single_shapes(1000, seed=11)
    with torch.no_grad():
        pred_shape, pred_colour = encoder.classify(torch.from_numpy(images))
    assert abs((pred_shape.numpy() == shapes).mean() - info["test_accuracy"]["shape"]) <= 0.01
    assert abs((pred_colour.numpy() == colours).mean() - info["test_accuracy"]["colour"]) <= 0.01
    assert info["test_accuracy"]["shape"] >= 0.99


def test_learned_channels_have_unit_scale(encoder):
    feats = grid_features(encoder, single_shapes(500, seed=12)[0])
    assert 0.9 < feats[:, :30].std().item() < 1.1


@pytest.mark.parametrize("images", [np.zeros((2, 3, 32, 32), np.float32), np.zeros((3, 64, 64), np.float32),
                                    np.zeros((2, 1, 64, 64), np.float32), np.zeros((2, 3, 64, 64), np.int64),
                                    [[0.0]]])
def test_bad_images(encoder, images):
    with pytest.raises(ValueError, match="images"):
        grid_features(encoder, images)


def test_bad_arguments(encoder):
    with pytest.raises(ValueError, match="images"):
        encoder(torch.zeros(2, 3, 48, 48))
    with pytest.raises(ValueError, match="batch_size"):
        grid_features(encoder, np.zeros((2, 3, 64, 64), np.float32), batch_size=0)
