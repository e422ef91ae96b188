"""Unit tests of the helpers core: seeding, device, relative error, numerical gradients,
and dataset paths."""
import random

import numpy as np
import pytest
import torch

import helpers
from helpers import dataset_path, numerical_gradient, rel_error


# ------------------------------------------------------------------ seeding and device
def test_seed_everything_makes_all_generators_repeat():
    draws = []
    for _ in range(2):
        helpers.seed_everything(3)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]
    helpers.seed_everything(4)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) != draws[0]


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        helpers.seed_everything(seed)


def test_get_device_matches_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert helpers.get_device().type == expected
    assert helpers.get_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="prefer"):
        helpers.get_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without a GPU")
def test_get_device_refuses_cuda_without_gpu():
    with pytest.raises(ValueError, match="no CUDA device"):
        helpers.get_device("cuda")


# ------------------------------------------------------------------ rel_error
def test_rel_error_values():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    # max|a-b| = 0.5, max(|a|+|b|) = 2.5 + 2.0
    assert rel_error(np.array([1.0, 2.5]), np.array([1.0, 2.0])) == pytest.approx(0.5 / 4.5)
    assert rel_error(np.zeros(2), np.zeros(2)) == 0.0
    assert rel_error(torch.ones(2), np.ones(2)) == 0.0


def test_rel_error_ignores_tiny_entries_that_elementwise_error_would_blow_up():
    a, b = np.array([1.0, 1e-12]), np.array([1.0, 2e-12])
    assert rel_error(a, b) < 1e-11


def test_rel_error_shape_mismatch_names_arguments():
    with pytest.raises(ValueError, match=r"a has shape \(2, 3\) but b has shape \(3, 2\)"):
        rel_error(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="b must be"):
        rel_error(np.zeros(2), "zeros")


# ------------------------------------------------------------------ numerical_gradient
def test_numerical_gradient_of_array_valued_function_is_vjp():
    rng = np.random.default_rng(0)
    W, x, df = rng.normal(size=(4, 3)), rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    # d/dx sum(tanh(x W) * df) = ((1 - tanh^2) * df) W^T, computed by hand
    expected = ((1 - np.tanh(x @ W) ** 2) * df) @ W.T
    grad = numerical_gradient(lambda x: np.tanh(x @ W), x, df)
    assert rel_error(grad, expected) < 1e-8


def test_numerical_gradient_scalar_function_and_restores_input():
    x = np.array([1.0, -2.0, 3.0])
    before = x.copy()
    grad = numerical_gradient(lambda x: np.sum(x ** 2), x)
    assert rel_error(grad, 2 * before) < 1e-9
    assert np.array_equal(x, before)


def test_numerical_gradient_rejects_bad_arguments():
    with pytest.raises(ValueError, match="x must be a float NumPy array"):
        numerical_gradient(np.sum, np.array([1, 2]))
    with pytest.raises(ValueError, match="f must be callable"):
        numerical_gradient(3, np.zeros(2))
    with pytest.raises(ValueError, match=r"df has shape \(3,\) but f\(x\) has shape \(2,\)"):
        numerical_gradient(lambda x: x * 2, np.zeros(2), df=np.ones(3))
    with pytest.raises(ValueError, match="h must be a positive number"):
        numerical_gradient(np.sum, np.zeros(2), h=0)


# ------------------------------------------------------------------ datasets
def test_dataset_path_finds_files_and_explains_missing_ones(tmp_path, monkeypatch):
    (tmp_path / "corpus.txt").write_text("hello")
    monkeypatch.setenv("RNN_COURSE_DATASETS", str(tmp_path))
    assert dataset_path("corpus.txt").read_text() == "hello"
    with pytest.raises(FileNotFoundError, match="available: corpus.txt"):
        dataset_path("missing.txt")
    with pytest.raises(ValueError, match="inside datasets/"):
        dataset_path("../secret.txt")
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        dataset_path(3)


def test_datasets_dir_defaults_to_the_course_folder(monkeypatch):
    monkeypatch.delenv("RNN_COURSE_DATASETS", raising=False)
    folder = helpers.datasets_dir()
    assert folder.name == "datasets" and (folder / "README.md").is_file()
    monkeypatch.setenv("RNN_COURSE_DATASETS", "/nonexistent/folder")
    with pytest.raises(FileNotFoundError, match="RNN_COURSE_DATASETS"):
        helpers.datasets_dir()
