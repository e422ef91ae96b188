"""The shared core of every grader: comparisons, one set of tolerances, one self-check protocol,
student calls that report exceptions with a hint, and the NumPy-only guard.

Every check of ``graders.<assignment_id>`` is built from these pieces:

- ``compare(name, got, expected, tol, hint)`` -- relative error (DESIGN.md:
  ``max|a-b| / max(1e-8, max(|a|+|b|))``) against a trusted value; ``compare_exact`` for integers
  (token ids, counts), which are never compared with a tolerance.
- ``call(fn, *args, name=..., case=..., hint=...)`` -- runs a student's function. A stub's
  ``NotImplementedError`` and any other exception become a ``CheckFailure`` that names the
  function, the case (shapes, dtype, with/without state) and a hint, never a bare traceback.
  ``numpy_only=True`` fails the call when it executed any torch operation (``IntegrityFailure``).
- ``@check`` -- a check returns ``{output: relative error}``; decorated, it prints one ``ok`` line
  per output and returns None (nbgrader reads a number left as a test cell's value as a partial
  score). ``check_x.__wrapped__`` still returns the dict.
- ``self_check(check_x, *args)`` -- the self-check protocol: the same check on a visible case,
  printing ``ok``/``FAIL`` lines instead of raising. ``report`` prints one comparison.
"""
import contextlib
import functools
from dataclasses import dataclass

import numpy as np

from helpers.gradcheck import rel_error

INTEGRITY = "INTEGRITY"  # first word of every integrity failure; the autograde summary looks for it


@dataclass(frozen=True)
class Tolerances:
    """The course's tolerances on the relative error (float64 unless named otherwise)."""

    forward: float = 1e-7    # a forward pass against its oracle
    backward: float = 1e-6   # gradients against autograd or a numerical gradient
    float32: float = 1e-4    # float32 values (e.g. on a GPU) against a float64 oracle


TOL = Tolerances()


class CheckFailure(AssertionError):
    """A student's output is wrong. The message names the output and ends with a hint."""


class IntegrityFailure(CheckFailure):
    """A student's function used something the assignment forbids (e.g. torch in a NumPy part)."""


def fail(name, message, hint=None):
    """Raise ``CheckFailure("<name>: <message>\\nHint: <hint>")``."""
    raise CheckFailure(f"{name}: {message}" + (f"\nHint: {hint}" if hint else ""))


def describe(case):
    """'N=3, D=5, dtype=float64' from a dict (or the string itself); used in failure messages."""
    if isinstance(case, dict):
        return ", ".join(f"{key}={value}" for key, value in case.items())
    return str(case)


# ---------------------------------------------------------------- comparisons
def _as_array(value, name, expected_shape):
    """``value`` as a plain float64 ndarray; anything that is not numbers fails the check."""
    if value is None:
        fail(name, "got None. Did you forget a `return` (or to assign the variable)?")
    if type(value).__module__.startswith("torch"):
        import torch

        if type(value) is not torch.Tensor and not isinstance(value, torch.nn.Parameter):
            fail(name, f"expected a torch.Tensor, got {type(value).__name__}.")
        value = torch.Tensor.detach(value).cpu().numpy()
    if isinstance(value, bool) or not isinstance(value, (np.ndarray, np.generic, int, float, list, tuple)):
        fail(name, f"expected an array of shape {expected_shape}, got a {type(value).__name__}.")
    try:
        array = np.array(value, dtype=np.float64)  # a plain copy: subclasses lose their overrides
    except (TypeError, ValueError):
        fail(name, f"expected an array of numbers of shape {expected_shape}, got {type(value).__name__}.")
    if np.asarray(value).dtype == bool:
        fail(name, "expected numbers, got booleans.")
    return array


def compare(name, got, expected, tol, hint=None):
    """Fail unless ``rel_error(got, expected) <= tol``; return the relative error (float).

    Inputs:
    - name: str, what is compared (e.g. "rnn_forward: h")
    - got: the student's value: NumPy array, torch tensor or number of the shape of ``expected``
    - expected: trusted array-like (NumPy, torch or number)
    - tol: positive float, the largest accepted relative error (use ``TOL``)
    - hint: optional str, the usual mistake, appended to a failure
    Raises CheckFailure (wrong value, shape, None, NaN/inf); ValueError for a bad ``tol``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if hint is not None and not isinstance(hint, str):
        raise ValueError(f"hint must be a string or None, got {type(hint).__name__}")
    if type(expected).__module__.startswith("torch"):
        expected = expected.detach().cpu().numpy()
    try:
        if expected is None:
            raise TypeError
        expected = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"expected must be an array of numbers, got {type(expected).__name__}") from None
    got = _as_array(got, name, expected.shape)
    if got.shape != expected.shape:
        fail(name, f"expected shape {expected.shape}, got {got.shape}.", hint)
    if not np.all(np.isfinite(got)):
        fail(name, f"contains NaN or inf ({got.size - int(np.isfinite(got).sum())} of {got.size} entries).", hint)
    error = float(rel_error(got, expected))
    if not error <= tol:
        fail(name, f"relative error {error:.2e} is above the tolerance {tol:.0e}.", hint)
    return error


def assert_close(name, got, expected, tol, hint=None):
    """``compare`` for a test cell's last line: returns None, since nbgrader reads a number left
    as a test cell's value as a partial score."""
    compare(name, got, expected, tol, hint)


def compare_exact(name, got, expected, hint=None):
    """Fail unless the integers ``got`` equal ``expected`` exactly (same shape); return 0.

    For token ids, counts and lengths: a tolerance would let wrong ids pass.
    """
    expected = np.asarray(expected)
    if type(got).__module__.startswith("torch"):
        got = got.detach().cpu().numpy()
    if got is None:
        fail(name, "got None. Did you forget a `return`?")
    got = np.asarray(got)
    if got.shape != expected.shape:
        fail(name, f"expected shape {expected.shape}, got {got.shape}.", hint)
    if got.dtype.kind not in "iub":
        fail(name, f"expected integers, got dtype {got.dtype}.", hint)
    wrong = np.argwhere(got != expected)
    if len(wrong):
        where = tuple(int(i) for i in wrong[0])
        fail(name, f"{len(wrong)} of {expected.size} entries differ; first at index {where}: "
                   f"expected {expected[where]}, got {got[where]}.", hint)
    return 0.0


def unpack(result, n, name, names=None):
    """Check that a student's function returned a tuple (or list) of ``n`` values; return it."""
    if not isinstance(result, (tuple, list)) or len(result) != n:
        got = type(result).__name__ + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
        listed = f" ({', '.join(names)})" if names else ""
        fail(name, f"expected a tuple of {n} values{listed}, got {got}.")
    return tuple(result)


# ---------------------------------------------------------------- calling student code
@contextlib.contextmanager
def _no_torch(name):
    """Raise IntegrityFailure after the block when it ran any torch operation."""
    import torch
    from torch.overrides import TorchFunctionMode

    class Recorder(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.used = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.used.append(getattr(func, "__name__", repr(func)))
            return func(*args, **(kwargs or {}))

    with Recorder() as recorder:
        yield
    if recorder.used:
        raise IntegrityFailure(
            f"{INTEGRITY}: {name} ran torch operations ({', '.join(sorted(set(recorder.used))[:5])}); this part "
            "must be written in NumPy only, so it gets no credit and your instructor will review it.")
    del torch


def call(fn, *args, name, case=None, hint=None, numpy_only=False, **kwargs):
    """Call a student's ``fn(*args, **kwargs)`` and return its result.

    Inputs:
    - name: the function's name as the notebook writes it (e.g. "rnn_forward")
    - case: dict or str describing the inputs (shapes, dtype, state), shown on failure
    - hint: the usual mistake, shown when the call raises
    - numpy_only: fail (IntegrityFailure) when the call executed any torch operation
    Raises CheckFailure when the function is not callable, not implemented yet, or raises.
    """
    where = f" (case: {describe(case)})" if case is not None else ""
    if not callable(fn):
        fail(name, f"expected a function or class, got {type(fn).__name__}.")
    guard = _no_torch(name) if numpy_only else contextlib.nullcontext()
    try:
        with guard:
            return fn(*args, **kwargs)
    except CheckFailure:
        raise
    except NotImplementedError:
        fail(name, f"not implemented yet (it raises NotImplementedError){where}.")
    except Exception as error:  # noqa: BLE001 -- any student exception becomes a readable failure
        fail(name, f"raised {type(error).__name__}: {error}{where}.", hint)


# ---------------------------------------------------------------- printing protocol
def check(function):
    """Decorate a check returning ``{output: relative error}``: print ``ok`` lines, return None."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        results = function(*args, **kwargs) or {}
        label = function.__name__.removeprefix("check_")
        for output, error in results.items():
            shown = f"relative error {error:.1e}" if isinstance(error, float) else str(error)
            print(f"ok    {label}: {output} {shown}")

    return wrapper


def self_check(check_function, *args, **kwargs):
    """Run a check for a self-check cell: its ``ok`` lines, or one ``FAIL`` line instead of raising.

    Returns None, so the cell shows only the printed lines.
    """
    if not callable(check_function):
        raise ValueError(f"check_function must be one of the grader's checks, got {type(check_function).__name__}")
    try:
        check_function(*args, **kwargs)
    except NotImplementedError:
        print("FAIL  not implemented yet (NotImplementedError)")
    except AssertionError as failure:
        print(f"FAIL  {failure}")
    else:
        print("all checks passed")


def report(name, got, expected, tol):
    """Print one comparison for a self-check cell: ``ok``/``FAIL`` with the relative error."""
    try:
        error = compare(name, got, expected, tol)
    except CheckFailure as failure:
        print(f"FAIL  {failure}")
        return
    print(f"ok    {name}: relative error {error:.2e} (tolerance {tol:.0e})")
