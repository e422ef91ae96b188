"""CUDA-only tests of unit 3 (a3_rnn_pytorch): the graders' checks on the GPU, the synchronised
timing path and the benchmark script at the course's GPU size. Skipped without CUDA."""
import importlib.util
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "a3_rnn_pytorch" / "a3_rnn_pytorch.ipynb"
CELLS = ["lstm_cell_function", "lstm_module", "rnn_module", "tbptt_step", "sample", "fast_lstm"]


def _solution_namespace(edits=()):
    """Execute the solution cells by grade_id, after (grade_id, find, replace) edits."""
    from helpers.text import tbptt_batches
    from instructor.course import exec_cells

    def edit(gid, source):
        for target, find, replace in edits:
            if target == gid:
                assert source.count(find) == 1, (gid, find)
                source = source.replace(find, replace)
        return source

    ns = {"math": math, "torch": torch, "nn": torch.nn, "F": torch.nn.functional, "tbptt_batches": tbptt_batches,
          "tqdm": lambda it, **kw: it}
    return exec_cells(NOTEBOOK, CELLS, ns, edit=edit)


@pytest.fixture(scope="module")
def ref():
    return _solution_namespace()


def test_checks_pass_on_cuda(ref):
    from graders import a3_rnn_pytorch as grader

    grader.check_lstm_cell_function(ref["LSTMCellFunction"], device="cuda")
    for cls in (ref["LSTM"], ref["FastLSTM"]):
        for with_state in (True, False):
            grader.check_lstm_module(cls, with_state=with_state, device="cuda")
    grader.check_rnn_module(ref["RNN"], with_state=False, device="cuda")
    grader.check_lstm_loader(ref["LSTM"], device="cuda")
    grader.check_rnn_loader(ref["RNN"], device="cuda")
    grader.check_tbptt_step(ref["tbptt_step"], device="cuda")
    grader.check_state_detached(ref["tbptt_step"], device="cuda")
    grader.check_sample(ref["sample"], device="cuda")


def test_cpu_zero_state_fails_the_visible_cuda_case():
    """torch.zeros(N, H) lives on the CPU: on a GPU the visible state=None case names the device."""
    from graders import a3_rnn_pytorch as grader
    from graders.core import CheckFailure

    ns = _solution_namespace([("lstm_module", "h, c = x.new_zeros(N, H), x.new_zeros(N, H)",
                               "h, c = torch.zeros(N, H), torch.zeros(N, H)")])
    grader.check_lstm_module(ns["LSTM"], device="cuda")
    with pytest.raises(CheckFailure, match=r"LSTM.forward: raised RuntimeError[\s\S]*state=None, dtype=float64, "
                                           r"device=cuda\)\.\nHint: with state=None, start from zeros"):
        grader.check_lstm_module(ns["LSTM"], with_state=False, device="cuda")


def test_time_callable_synchronises_on_cuda():
    from helpers.benchmark import time_callable

    a = torch.randn(2048, 2048, device="cuda")
    # 20 large matmuls are queued asynchronously; a synchronised clock must see their cost
    result = time_callable(lambda: [a @ a for _ in range(20)], warmup=1, repeats=3, device="cuda")
    assert result["median_ms"] > 0.1


def test_bench_script_full_size_on_cuda(capsys):
    spec = importlib.util.spec_from_file_location("bench_lstm_torch", ROOT / "scripts" / "bench_lstm_torch.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--device", "cuda", "--repeats", "3"])
    out = capsys.readouterr().out
    assert "T=100 N=64 D=512 H=512" in out
    ratios = {r["name"]: r["ratio"] for r in rows}
    assert ratios["nn.LSTM (cuDNN)"] == pytest.approx(1.0)
    print(out)
