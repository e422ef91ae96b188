"""Timing helpers for the speed benchmarks (assignment a3 and ``scripts/``).

GPU work is asynchronous: a CUDA call returns before the kernel has finished. Timing it
honestly needs (1) warm-up calls (cuDNN picks algorithms, caches fill, torch.compile
compiles), (2) ``torch.cuda.synchronize()`` before starting and before stopping the clock, and
(3) several repeats summarised by the median, which ignores the odd slow run.

Typical use::

    fns = {"nn.LSTM": forward_backward_fn(lstm, x), "mine": forward_backward_fn(mine, x)}
    rows = benchmark(fns, baseline="nn.LSTM", device=x.device)
    print(format_table(rows))
    plot_benchmark(rows)
"""
import statistics
import time
from numbers import Integral


def _int_arg(value, arg, minimum):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{arg} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _device_type(device):
    if device is None:
        return "cpu"
    kind = getattr(device, "type", device)
    if not isinstance(kind, str):
        raise ValueError(f"device must be None, a torch.device or a string like 'cuda', got {device!r}")
    return kind.split(":")[0]


def synchronize(device=None):
    """Wait for all queued CUDA work when ``device`` is a CUDA device; a no-op on CPU."""
    if _device_type(device) == "cuda":
        import torch

        torch.cuda.synchronize(device)


def time_callable(fn, warmup=2, repeats=7, device=None, timer=time.perf_counter):
    """Time ``fn()`` the careful way: warm-up calls, synchronised clock, median of repeats.

    Inputs:
    - fn: callable taking no arguments (e.g. one forward+backward pass)
    - warmup: int >= 0, untimed calls first
    - repeats: int >= 1, timed calls
    - device: where ``fn`` runs (None / "cpu" / "cuda" / torch.device); on CUDA the clock is
      read only after ``torch.cuda.synchronize()``
    - timer: clock returning seconds (default ``time.perf_counter``; tests pass a fake one)
    Returns: dict with ``median_ms``, ``min_ms``, ``max_ms`` (floats) and ``times_ms`` (list of
    ``repeats`` floats), all in milliseconds per call.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    warmup = _int_arg(warmup, "warmup", 0)
    repeats = _int_arg(repeats, "repeats", 1)
    if not callable(timer):
        raise ValueError(f"timer must be callable, got {type(timer).__name__}")
    _device_type(device)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = timer()
        fn()
        synchronize(device)
        times.append((timer() - start) * 1000.0)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
            "times_ms": times}


def forward_backward_fn(model, x, state=None):
    """A no-argument callable doing one forward and one backward pass of ``model`` on ``x``.

    ``model(x)`` (or ``model(x, state)``) may return a tensor or a tuple whose first entry is
    the output sequence (as ``nn.LSTM`` and the course's LSTM do). The loss is
    ``(out * g).sum()`` for a fixed random ``g``; parameter gradients are reset before every
    call so they do not pile up.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    upstream = {}

    def step():
        model.zero_grad(set_to_none=True)
        out = model(x) if state is None else model(x, state)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if "g" not in upstream:
            gen = torch.Generator().manual_seed(0)
            upstream["g"] = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
        (out * upstream["g"]).sum().backward()

    return step


def benchmark(fns, baseline=None, warmup=2, repeats=7, device=None, timer=time.perf_counter):
    """Time several callables with ``time_callable`` and compare them with a baseline.

    Inputs:
    - fns: dict name -> no-argument callable (insertion order is kept)
    - baseline: None or one of the names; each row's ``ratio`` is its median time divided by
      the baseline's median (the baseline's ratio is 1.0); None = the fastest entry
    - warmup, repeats, device, timer: as in ``time_callable``
    Returns: list of dicts with keys ``name``, ``median_ms``, ``min_ms``, ``max_ms``, ``ratio``.
    """
    if not isinstance(fns, dict) or not fns:
        raise ValueError("fns must be a non-empty dict name -> callable")
    for name, fn in fns.items():
        if not isinstance(name, str) or not callable(fn):
            raise ValueError(f"fns must map names (str) to callables, got {name!r} -> {type(fn).__name__}")
    if baseline is not None and baseline not in fns:
        raise ValueError(f"baseline must be one of {list(fns)}, got {baseline!r}")
    rows = []
    for name, fn in fns.items():
        result = time_callable(fn, warmup=warmup, repeats=repeats, device=device, timer=timer)
        rows.append({"name": name, "median_ms": result["median_ms"], "min_ms": result["min_ms"],
                     "max_ms": result["max_ms"]})
    reference = (min(r["median_ms"] for r in rows) if baseline is None
                 else next(r["median_ms"] for r in rows if r["name"] == baseline))
    for row in rows:
        row["ratio"] = row["median_ms"] / reference if reference > 0 else float("inf")
    return rows


def _check_rows(rows):
    keys = {"name", "median_ms", "ratio"}
    if not isinstance(rows, (list, tuple)) or not rows or not all(isinstance(r, dict) and keys <= set(r) for r in rows):
        raise ValueError("rows must be the non-empty list of dicts returned by benchmark()")


def format_table(rows, title=None):
    """The rows of ``benchmark`` as a fixed-width text table (name, median ms, min ms, ratio)."""
    _check_rows(rows)
    width = max(10, max(len(r["name"]) for r in rows))
    lines = [title] if title else []
    lines.append(f"{'variant':<{width}}  {'median ms':>10}  {'min ms':>10}  {'x baseline':>10}")
    lines.append("-" * (width + 36))
    for r in rows:
        lines.append(f"{r['name']:<{width}}  {r['median_ms']:>10.2f}  {r.get('min_ms', r['median_ms']):>10.2f}"
                     f"  {r['ratio']:>10.2f}")
    return "\n".join(lines)


def plot_benchmark(rows, ax=None, title="Forward + backward time per batch"):
    """Horizontal bar chart of the median times of ``benchmark`` rows, ratio written on each bar.

    Returns the matplotlib Axes.
    """
    _check_rows(rows)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.6 * len(rows) + 1.2))
    names = [r["name"] for r in rows][::-1]
    times = [r["median_ms"] for r in rows][::-1]
    ratios = [r["ratio"] for r in rows][::-1]
    bars = ax.barh(names, times, color="tab:blue")
    for bar, ratio in zip(bars, ratios):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {ratio:.2f}x", va="center")
    ax.set_xlabel("median time per forward + backward (ms)")
    ax.set_ylabel("implementation")
    ax.set_title(title)
    ax.set_xlim(0, max(times) * 1.25 if max(times) > 0 else 1)
    return ax
