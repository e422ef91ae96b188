"""Argument checks shared by the helpers: every error names the argument."""
from numbers import Integral, Real

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


def probability(value, arg):
    """Return ``value`` as a float, raising ValueError naming ``arg`` unless it is in [0, 1) (a dropout rate)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
        raise ValueError(f"{arg} must be a number in [0, 1), got {value!r}")
    return float(value)


def same_shape(a, b, arg_a, arg_b):
    """Raise ValueError naming both arguments when the shapes of ``a`` and ``b`` differ."""
    if a.shape != b.shape:
        raise ValueError(f"{arg_a} has shape {a.shape} but {arg_b} has shape {b.shape}; they must match")


def integer(value, arg, minimum=1):
    """Return ``value`` as an int, raising ValueError naming ``arg`` unless it is an int >= minimum."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{arg} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def function(fn, arg):
    """Return ``fn``, raising ValueError naming ``arg`` unless it is callable."""
    if not callable(fn):
        raise ValueError(f"{arg} must be a function, got {type(fn).__name__}")
    return fn


def numeric_array(value, arg, ndim):
    """Return ``value`` as a float64 array, raising ValueError naming ``arg`` unless it is a
    numeric array with ``ndim`` dimensions."""
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.number) or array.ndim != ndim:
        raise ValueError(f"{arg} must be a {ndim}-D numeric array, got shape {array.shape} and dtype {array.dtype}")
    return array.astype(np.float64)
