"""Benchmark: the reference NumPy LSTM (forward + backward) against one matrix multiply.

Not a timed test (a script in scripts/, which pytest does not collect). It loads the reference code straight
from the solution notebook -- the code cells with grade_ids ``sigmoid``, ``lstm_step_forward``,
``lstm_step_backward``, ``lstm_forward``, ``lstm_backward`` and the optional part's
``lstm_forward_fast`` / ``lstm_backward_fast`` -- checks that both versions agree, and times them
at T=50, N=64, D=H=256 in float64.

The LSTM's arithmetic is dominated by its matrix multiplies: forward x@Wx and h@Wh
(2*N*T*(D+H)*4H FLOPs), backward dx, dh, dWx, dWh (twice that). The baseline is ONE matmul with
the same FLOP count, (3*N*T, D+H) @ (D+H, 4H), on the same threads. The ratio
matmul_time / lstm_time is the fraction of matmul speed the LSTM reaches (goal: >= 50 % for the
fast version).

Usage (from the course root):
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_numpy_lstm.py
    .venv/bin/python scripts/bench_numpy_lstm.py            # default threads
    .venv/bin/python scripts/bench_numpy_lstm.py --T 20 --N 32 --D 128 --H 128 --repeat 3
"""
import argparse
import os
import time
from pathlib import Path

import numpy as np

from instructor.course import exec_cells

NOTEBOOK = Path(__file__).resolve().parents[1] / "solutions" / "a2_lstm_numpy" / "a2_lstm_numpy.ipynb"
CELLS = ["sigmoid", "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
         "lstm_forward_fast", "lstm_backward_fast"]


def load_reference(notebook=NOTEBOOK, cells=CELLS):
    """Execute the named code cells of the solution notebook; return their namespace."""
    try:
        return exec_cells(notebook, cells, {"np": np})
    except ValueError as error:
        raise SystemExit(str(error)) from None


def best_time(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in (("T", 50), ("N", 64), ("D", 256), ("H", 256), ("repeat", 5)):
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args(argv)
    T, N, D, H = args.T, args.N, args.D, args.H
    ref = load_reference()

    rng = np.random.default_rng(0)
    x, h0 = rng.normal(size=(N, T, D)), rng.normal(size=(N, H))
    Wx, Wh = rng.normal(size=(D, 4 * H)) / np.sqrt(D), rng.normal(size=(H, 4 * H)) / np.sqrt(H)
    b, dh = rng.normal(size=4 * H) * 0.1, rng.normal(size=(N, T, H))

    # The two versions must agree before their speed means anything.
    h_ref, cache_ref = ref["lstm_forward"](x[:4, :5], h0[:4], Wx, Wh, b)
    h_fast, cache_fast = ref["lstm_forward_fast"](x[:4, :5], h0[:4], Wx, Wh, b)
    worst = float(np.max(np.abs(h_ref - h_fast)))
    grads_ref = ref["lstm_backward"](dh[:4, :5], cache_ref)
    for g_ref, g_fast in zip(grads_ref, ref["lstm_backward_fast"](dh[:4, :5], cache_fast)):
        worst = max(worst, float(np.max(np.abs(g_ref - g_fast)) / max(1e-8, float(np.max(np.abs(g_ref))))))
    if worst > 1e-9:
        raise SystemExit(f"fast and reference LSTM disagree (max relative difference {worst:.1e})")

    flops = 3 * 2 * N * T * (D + H) * 4 * H
    A, B = rng.normal(size=(3 * N * T, D + H)), rng.normal(size=(D + H, 4 * H))
    t_matmul = best_time(lambda: A @ B, args.repeat)

    def run(fwd, bwd):
        def once():
            h, cache = fwd(x, h0, Wx, Wh, b)
            bwd(dh, cache)
        return once

    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"LSTM forward+backward, float64, T={T} N={N} D={D} H={H}; threads (OMP_NUM_THREADS): {threads}")
    print(f"matmul FLOPs: {flops / 1e9:.2f} GFLOP")
    print(f"  one matmul ({3 * N * T}x{D + H}) @ ({D + H}x{4 * H}): {1e3 * t_matmul:8.1f} ms  "
          f"{flops / t_matmul / 1e9:6.1f} GFLOP/s")
    for label, fwd, bwd in (("reference (Part 2: step functions)", ref["lstm_forward"], ref["lstm_backward"]),
                            ("fast (Part 8: fused, precomputed input projection)", ref["lstm_forward_fast"],
                             ref["lstm_backward_fast"])):
        t = best_time(run(fwd, bwd), args.repeat)
        print(f"  {label}: {1e3 * t:8.1f} ms  {flops / t / 1e9:6.1f} GFLOP/s  "
              f"ratio to matmul: {t_matmul / t:5.1%}")


if __name__ == "__main__":
    main()
