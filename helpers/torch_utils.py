"""Seeding and device selection (torch is imported lazily: NumPy-only notebooks stay fast)."""
import os
import random

import numpy as np


def seed_everything(seed=0):
    """Seed Python's ``random``, NumPy and (if installed) torch, CPU and CUDA.

    Inputs:
    - seed: non-negative int
    Returns: None. Thread counts are fixed by the environment (OMP_NUM_THREADS), not here.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)  # seeds CUDA too when present


def get_device(prefer=None):
    """Return the torch device to run on: CUDA when available, else CPU.

    Inputs:
    - prefer: None (auto), "cpu" or "cuda"; asking for "cuda" without a GPU raises
    Returns: torch.device
    """
    import torch

    if prefer not in (None, "cpu", "cuda"):
        raise ValueError(f"prefer must be None, 'cpu' or 'cuda', got {prefer!r}")
    if prefer == "cuda" and not torch.cuda.is_available():
        raise ValueError("prefer='cuda' but no CUDA device is available; use prefer=None or 'cpu'")
    if prefer == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def to_tensor64(array, grad=False):
    """A float64 torch tensor (a copy) of an array-like, optionally requiring grad."""
    import torch

    return torch.tensor(np.asarray(array, dtype=np.float64), dtype=torch.float64).requires_grad_(grad)


def to_numpy64(tensor):
    """A float64 NumPy array (a copy) of a torch tensor, detached and on the CPU."""
    return tensor.detach().cpu().numpy().astype(np.float64)
