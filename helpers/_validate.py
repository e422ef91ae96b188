"""Argument checks shared by the helpers: every error names the argument."""
from numbers import Real

import numpy as np


def to_numpy(value, arg):
    """Return ``value`` as a NumPy array; torch tensors are detached and moved to CPU.

    Raises ValueError naming ``arg`` when ``value`` is not array-like.
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, (np.ndarray, np.generic, Real, list, tuple)) and not isinstance(value, bool):
        array = np.asarray(value)
        if array.dtype == object:
            raise ValueError(f"{arg} must be a numeric array, got an array of objects")
        return array
    raise ValueError(f"{arg} must be a NumPy array, a torch tensor or a number, got {type(value).__name__}")


def positive_number(value, arg):
    """Return ``value`` as a float, raising ValueError naming ``arg`` unless it is > 0."""
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
        raise ValueError(f"{arg} must be a positive number, got {value!r}")
    return float(value)


def same_shape(a, b, arg_a, arg_b):
    """Raise ValueError naming both arguments when the shapes of ``a`` and ``b`` differ."""
    if a.shape != b.shape:
        raise ValueError(f"{arg_a} has shape {a.shape} but {arg_b} has shape {b.shape}; they must match")
