"""CUDA-only tests of unit 3 (a3_rnn_pytorch): the graders' checks on the GPU, the synchronised
timing path and the benchmark script at the course's GPU size. Skipped without CUDA."""
import importlib.util
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "solutions" / "a3_rnn_pytorch" / "a3_rnn_pytorch.ipynb"


@pytest.fixture(scope="module")
def ref():
    from helpers.benchmark import load_solution_cells
    from helpers.text import tbptt_batches

    ns = {"math": math, "torch": torch, "nn": torch.nn, "F": torch.nn.functional, "tbptt_batches": tbptt_batches,
          "tqdm": lambda it, **kw: it}
    return load_solution_cells(NOTEBOOK, ["lstm_cell_function", "lstm_module", "rnn_module", "tbptt_step", "sample",
                                          "fast_lstm"], ns)


def test_checks_pass_on_cuda(ref):
    from helpers import checks_torch as ct

    ct.check_lstm_cell_function(ref["LSTMCellFunction"], device="cuda")
    for cls in (ref["LSTM"], ref["FastLSTM"]):
        ct.check_lstm_module(cls, device="cuda")
    ct.check_rnn_module(ref["RNN"], device="cuda")
    ct.check_lstm_loader(ref["LSTM"], device="cuda")
    ct.check_rnn_loader(ref["RNN"], device="cuda")
    ct.check_tbptt_step(ref["tbptt_step"], device="cuda")
    ct.check_sample(ref["sample"], device="cuda")


def test_time_callable_synchronises_on_cuda():
    from helpers.benchmark import time_callable

    a = torch.randn(2048, 2048, device="cuda")
    # 20 large matmuls are queued asynchronously; a synchronised clock must see their cost
    result = time_callable(lambda: [a @ a for _ in range(20)], warmup=1, repeats=3, device="cuda")
    assert result["median_ms"] > 0.1


def test_bench_script_full_size_on_cuda(capsys):
    spec = importlib.util.spec_from_file_location("bench_lstm_torch", ROOT / "tests" / "benchmarks" / "bench_lstm_torch.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--device", "cuda", "--repeats", "3"])
    out = capsys.readouterr().out
    assert "T=100 N=64 D=512 H=512" in out
    ratios = {r["name"]: r["ratio"] for r in rows}
    assert ratios["nn.LSTM (cuDNN)"] == pytest.approx(1.0)
    print(out)
