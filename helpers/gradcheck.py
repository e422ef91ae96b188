"""Relative error and centred-difference numerical gradients."""
import numpy as np

from ._validate import positive_number, same_shape, to_numpy


def rel_error(a, b):
    """Relative error ``max|a - b| / max(1e-8, max(|a| + |b|))`` between two arrays.

    The largest absolute difference is divided by the largest magnitude, so entries that
    are almost zero in both arrays do not blow the error up.

    Inputs:
    - a, b: arrays (NumPy or torch) of the same shape, any dtype that converts to float
    Returns: a Python float (0.0 for identical arrays)
    """
    a = to_numpy(a, "a").astype(np.float64)
    b = to_numpy(b, "b").astype(np.float64)
    same_shape(a, b, "a", "b")
    if a.size == 0:
        return 0.0
    scale = max(1e-8, float(np.max(np.abs(a) + np.abs(b))))
    return float(np.max(np.abs(a - b)) / scale)


def numerical_gradient(f, x, df=None, h=1e-5):
    """Centred-difference gradient of ``sum(f(x) * df)`` with respect to ``x``.

    Works for array-valued ``f``: ``df`` is the upstream gradient of ``f``'s output, so the
    result is the vector-Jacobian product a backward pass should return. ``x`` is perturbed
    in place, one entry at a time, and restored.

    Inputs:
    - f: callable ``f(x)`` returning an array of any shape S, or a scalar
    - x: float ndarray of shape X, the input to differentiate with respect to
    - df: array of shape S, upstream gradient; default ones (gradient of ``sum(f)``)
    - h: step size, a positive float
    Returns: ndarray of shape X
    """
    if not callable(f):
        raise ValueError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a float NumPy array (it is perturbed in place), got {type(x).__name__}"
                         + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else ""))
    h = positive_number(h, "h")
    out_shape = np.shape(f(x))
    df = np.ones(out_shape) if df is None else to_numpy(df, "df")
    if df.shape != out_shape:
        raise ValueError(f"df has shape {df.shape} but f(x) has shape {out_shape}; they must match")

    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = np.array(f(x), dtype=np.float64, copy=True)
        x[i] = old - h
        minus = np.array(f(x), dtype=np.float64, copy=True)
        x[i] = old
        grad[i] = np.sum((plus - minus) * df) / (2 * h)
    return grad

