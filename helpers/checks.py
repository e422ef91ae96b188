"""The graders' checks. Test cells call these so that a failure tells the student which
output is wrong, how wrong, and what the usual mistake is."""
import numpy as np

from ._validate import positive_number, to_numpy
from .gradcheck import rel_error


def assert_close(name, got, expected, tol, hint=None):
    """Assert that a student's output ``got`` matches ``expected`` within relative error ``tol``.

    Inputs:
    - name: str, what is being checked (e.g. "rnn_step_forward: next_h")
    - got: the student's value, array-like of shape S (anything else fails the check)
    - expected: trusted array-like of shape S (NumPy array, torch tensor or number)
    - tol: positive float, the largest accepted ``rel_error(got, expected)``
    - hint: optional str, printed when the check fails (the common mistake)
    Returns None (a test cell whose last value is a number would be read by nbgrader as a
    partial score), raises AssertionError with a readable message. See ``check_error``.
    """
    check_error(name, got, expected, tol, hint)


def check_error(name, got, expected, tol, hint=None):
    """``assert_close`` that returns the relative error (float) when the check passes."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    expected = to_numpy(expected, "expected")
    tol = positive_number(tol, "tol")
    if hint is not None and not isinstance(hint, str):
        raise ValueError(f"hint must be a string or None, got {type(hint).__name__}")

    def fail(message):
        raise AssertionError(f"{name}: {message}" + (f"\nHint: {hint}" if hint else ""))

    if got is None:
        fail("got None. Did you forget a `return` (or to assign the variable)?")
    try:
        got = to_numpy(got, "got")
    except ValueError:
        fail(f"expected an array of shape {expected.shape}, got a {type(got).__name__}.")
    if got.shape != expected.shape:
        fail(f"expected shape {expected.shape}, got {got.shape}.")
    if not np.issubdtype(got.dtype, np.number):
        fail(f"expected numbers, got an array of dtype {got.dtype}.")
    if not np.all(np.isfinite(got)):
        fail(f"contains NaN or inf ({np.size(got) - np.isfinite(got).sum()} of {got.size} entries).")
    error = rel_error(got, expected)
    if not error <= tol:
        fail(f"relative error {error:.2e} is above the tolerance {tol:.0e}.")
    return error


def report(name, got, expected, tol):
    """Print the relative error of ``got`` against ``expected`` and whether it is within ``tol``.

    The non-raising twin of ``assert_close`` for the self-check cells students run.
    Inputs as in ``assert_close``. Returns None (so a notebook shows only the printed line).
    """
    try:
        error = check_error(name, got, expected, tol)
    except AssertionError as failure:
        print(f"FAIL  {failure}")
        return
    print(f"ok    {name}: relative error {error:.2e} (tolerance {tol:.0e})")
