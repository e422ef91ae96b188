"""LSTM speed benchmark of the course (assignment a3_rnn_pytorch, Part 5).

Times one forward + backward pass of
  (a) the loop LSTM of a3 Part 2 (`LSTM`),
  (b) the optimised `FastLSTM` of Part 5 (input projection of all steps in one matmul, fused
      gates), optionally with its cell function `lstm_pointwise` compiled by torch.compile,
  (c) torch.nn.LSTM (cuDNN on a GPU),
and prints naive / nn.LSTM and optimised / nn.LSTM. The implementations are not copied here:
they are executed from the solution notebook's solution cells (grade_ids `lstm_module` and
`fast_lstm`), so the benchmark always measures the code students are graded on.

Sizes: on CUDA the course benchmark size, T=100, N=64, D=H=512, float32. On a CPU a smaller
problem by default (T=50, N=16, D=H=128; `--size full` for the GPU size). Goals on a GPU:
naive <= 6x and optimised <= 1.5x of nn.LSTM.

    .venv/bin/python scripts/bench_lstm_torch.py              # current device
    .venv/bin/python scripts/bench_lstm_torch.py --compile    # + torch.compile(cell)
    .venv/bin/python scripts/bench_lstm_torch.py --numpy      # + a2's NumPy LSTM on CPU
    .venv/bin/python scripts/bench_lstm_torch.py --device cpu --size full --repeats 3
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_lstm_torch.py --clock process   # CPU time
"""
import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.benchmark import benchmark, format_table, forward_backward_fn  # noqa: E402
from instructor.course import exec_cells  # noqa: E402

NOTEBOOK = ROOT / "solutions" / "a3_rnn_pytorch" / "a3_rnn_pytorch.ipynb"
A2_FOLDER = ROOT / "solutions" / "a2_lstm_numpy"
SIZES = {"full": dict(T=100, N=64, D=512, H=512), "small": dict(T=50, N=16, D=128, H=128)}
GOALS = {"naive": 6.0, "optimised": 1.5}  # on a GPU, times nn.LSTM


def load_implementations():
    """LSTM, FastLSTM and lstm_pointwise from the solution notebook's solution cells."""
    namespace = {"__name__": "a3_solution", "math": math, "torch": torch, "nn": nn, "F": F, "np": np}
    exec_cells(NOTEBOOK, ["lstm_module", "fast_lstm"], namespace)
    return namespace["LSTM"], namespace["FastLSTM"], namespace["lstm_pointwise"]


A2_CELLS = ["sigmoid", "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward"]


def load_numpy_lstm():
    """(lstm_forward, lstm_backward) from a2's solution notebook (cells by grade_id), or a reason why not."""
    notebooks = sorted(A2_FOLDER.glob("*.ipynb")) if A2_FOLDER.is_dir() else []
    if not notebooks:
        return None, f"{A2_FOLDER.relative_to(ROOT)} has no notebook"
    try:
        namespace = exec_cells(notebooks[0], A2_CELLS, {"__name__": "a2_solution", "np": np})
    except ValueError as error:
        return None, str(error)
    return (namespace["lstm_forward"], namespace["lstm_backward"]), None


def numpy_fn(funcs, lstm, x):
    """forward + backward of a2's NumPy LSTM with nn.LSTM's weights (float32, CPU)."""
    forward, backward = funcs
    Wx = lstm.weight_ih_l0.detach().T.cpu().numpy().copy()
    Wh = lstm.weight_hh_l0.detach().T.cpu().numpy().copy()
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().cpu().numpy()
    xn = x.detach().cpu().numpy()
    h0 = np.zeros((xn.shape[0], Wh.shape[0]), dtype=xn.dtype)
    dout = np.random.default_rng(0).standard_normal((xn.shape[0], xn.shape[1], Wh.shape[0])).astype(xn.dtype)

    def step():
        h, cache = forward(xn, h0, Wx, Wh, b)
        backward(dout, cache)

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--size", choices=["auto", "full", "small"], default="auto",
                        help="full: T=100 N=64 D=H=512 (default on CUDA); small: T=50 N=16 D=H=128 (default on CPU)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 10 on CUDA, 5 on CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 3 on CUDA, 1 on CPU)")
    parser.add_argument("--compile", action="store_true", help="also time FastLSTM with torch.compile(lstm_pointwise)")
    parser.add_argument("--numpy", action="store_true", help="also time a2's NumPy LSTM on the CPU")
    parser.add_argument("--clock", choices=["wall", "process"], default="wall",
                        help="process: CPU time of this process (CPU only; steadier on a shared, busy machine)")
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    device = torch.device("cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    size = SIZES[args.size if args.size != "auto" else ("full" if device.type == "cuda" else "small")]
    repeats = args.repeats or (10 if device.type == "cuda" else 5)
    warmup = args.warmup if args.warmup is not None else (3 if device.type == "cuda" else 1)
    T, N, D, H = size["T"], size["N"], size["D"], size["H"]
    if args.clock == "process" and device.type != "cpu":
        parser.error("--clock process measures CPU time: use it with --device cpu")
    timer = time.process_time if args.clock == "process" else time.perf_counter

    LSTM, FastLSTM, lstm_pointwise = load_implementations()
    torch.manual_seed(0)
    ref = nn.LSTM(D, H, batch_first=True).to(device)
    x = torch.randn(N, T, D, device=device)
    models = {"naive loop LSTM": LSTM.from_torch(ref), "optimised FastLSTM": FastLSTM.from_torch(ref)}
    fns = {name: forward_backward_fn(m, x) for name, m in models.items()}
    if args.compile:
        compiled = FastLSTM.from_torch(ref)
        compiled.pointwise = torch.compile(lstm_pointwise)
        start = time.perf_counter()
        forward_backward_fn(compiled, x)()
        print(f"torch.compile of the cell: first call {time.perf_counter() - start:.1f} s")
        fns["FastLSTM + compile(cell)"] = forward_backward_fn(compiled, x)
    fns["nn.LSTM" + (" (cuDNN)" if device.type == "cuda" else "")] = forward_backward_fn(ref, x)
    baseline = list(fns)[-1]
    if args.numpy:
        funcs, why = load_numpy_lstm()
        if funcs is None:
            print(f"NumPy LSTM skipped: {why}")
        else:
            step = numpy_fn(funcs, ref, x)
            try:
                step()
            except Exception as error:  # a2 is another unit's notebook: report, do not crash
                print(f"NumPy LSTM skipped: a2's lstm_forward / lstm_backward failed ({type(error).__name__}: {error})")
            else:
                fns["NumPy LSTM (a2, CPU, float32)"] = step

    threads = torch.get_num_threads()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} torch thread(s)"
    print(f"torch {torch.__version__}, {name}")
    rows = benchmark(fns, baseline=baseline, warmup=warmup, repeats=repeats, device=device, timer=timer)
    print(format_table(rows, title=f"forward + backward, T={T} N={N} D={D} H={H}, float32, {device.type}, "
                                   f"median of {repeats} ({args.clock} clock)"))
    ratio = {r["name"]: r["ratio"] for r in rows}
    naive, optimised = ratio["naive loop LSTM"], ratio["optimised FastLSTM"]
    goal = f"   (goal on a GPU <= {GOALS['naive']}x)" if device.type == "cuda" else ""
    print(f"naive / nn.LSTM     = {naive:.2f}x" + goal)
    print(f"optimised / nn.LSTM = {optimised:.2f}x" + (f"   (goal on a GPU <= {GOALS['optimised']}x)"
                                                       if device.type == "cuda" else ""))
    if args.compile:
        print(f"optimised + compile / nn.LSTM = {ratio['FastLSTM + compile(cell)']:.2f}x")
    return rows


if __name__ == "__main__":
    main()
