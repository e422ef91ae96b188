"""Unit tests of helpers.benchmark and of the LSTM benchmark script (CPU, tiny sizes)."""
import importlib.util
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
torch = pytest.importorskip("torch")

from helpers import benchmark as bm  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class FakeTimer:
    """A clock that advances by the next of ``steps`` (seconds) every time it is read twice."""

    def __init__(self, durations):
        self.durations, self.now, self.reads = list(durations), 0.0, 0

    def __call__(self):
        self.reads += 1
        if self.reads % 2 == 0:
            self.now += self.durations.pop(0)
        return self.now


def test_time_callable_warmup_repeats_and_median():
    calls = []
    timer = FakeTimer([0.003, 0.001, 0.002, 0.010])
    result = bm.time_callable(lambda: calls.append(1), warmup=3, repeats=4, timer=timer)
    assert len(calls) == 7  # 3 warm-up + 4 timed
    assert result["times_ms"] == pytest.approx([3.0, 1.0, 2.0, 10.0])
    assert result["median_ms"] == pytest.approx(2.5)
    assert result["min_ms"] == pytest.approx(1.0) and result["max_ms"] == pytest.approx(10.0)


def test_time_callable_real_clock():
    result = bm.time_callable(lambda: sum(range(1000)), warmup=0, repeats=3, device="cpu")
    assert len(result["times_ms"]) == 3 and result["median_ms"] >= 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(fn=None), "fn must be callable"),
    (dict(fn=lambda: None, warmup=-1), "warmup"),
    (dict(fn=lambda: None, repeats=0), "repeats"),
    (dict(fn=lambda: None, repeats=True), "repeats"),
    (dict(fn=lambda: None, timer=3), "timer"),
    (dict(fn=lambda: None, device=3.5), "device"),
])
def test_time_callable_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bm.time_callable(**kwargs)


def test_synchronize_is_a_noop_on_cpu():
    bm.synchronize(None)
    bm.synchronize("cpu")
    bm.synchronize(torch.device("cpu"))


def test_benchmark_ratios_against_baseline_and_fastest():
    fns = {"slow": lambda: None, "fast": lambda: None}
    rows = bm.benchmark(fns, baseline="fast", warmup=0, repeats=1, timer=FakeTimer([0.004, 0.001]))
    assert [r["name"] for r in rows] == ["slow", "fast"]
    assert rows[0]["ratio"] == pytest.approx(4.0) and rows[1]["ratio"] == pytest.approx(1.0)
    rows = bm.benchmark(fns, warmup=0, repeats=1, timer=FakeTimer([0.004, 0.002]))
    assert rows[0]["ratio"] == pytest.approx(2.0) and rows[1]["ratio"] == pytest.approx(1.0)
    rows = bm.benchmark(fns, baseline="slow", warmup=0, repeats=1, timer=FakeTimer([0.004, 0.002]))
    assert rows[1]["ratio"] == pytest.approx(0.5)


@pytest.mark.parametrize("fns, baseline, match", [
    ({}, None, "non-empty dict"),
    ([lambda: None], None, "non-empty dict"),
    ({"a": 1}, None, "callables"),
    ({"a": lambda: None}, "b", "baseline must be one of"),
])
def test_benchmark_bad_arguments(fns, baseline, match):
    with pytest.raises(ValueError, match=match):
        bm.benchmark(fns, baseline=baseline)


def test_format_table_and_plot():
    rows = [{"name": "loop", "median_ms": 12.5, "min_ms": 12.0, "max_ms": 13.0, "ratio": 5.0},
            {"name": "nn.LSTM", "median_ms": 2.5, "min_ms": 2.4, "max_ms": 2.6, "ratio": 1.0}]
    table = bm.format_table(rows, title="demo")
    lines = table.splitlines()
    assert lines[0] == "demo" and "median ms" in lines[1]
    assert "loop" in lines[3] and "12.50" in lines[3] and "5.00" in lines[3]
    ax = bm.plot_benchmark(rows, title="t")
    assert len(ax.patches) == 2 and ax.get_title() == "t"
    assert "ms" in ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.texts] == [" 1.00x", " 5.00x"]
    for bad in ([], [{"name": "x"}], "rows"):
        with pytest.raises(ValueError, match="rows"):
            bm.format_table(bad)
        with pytest.raises(ValueError, match="rows"):
            bm.plot_benchmark(bad)


def test_forward_backward_fn_runs_and_resets_gradients():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3)
    step = bm.forward_backward_fn(lstm, x)
    step()
    first = lstm.weight_hh_l0.grad.clone()
    step()
    assert torch.equal(lstm.weight_hh_l0.grad, first)  # not accumulated
    linear = torch.nn.Linear(3, 2)
    bm.forward_backward_fn(linear, x)()
    assert linear.weight.grad is not None
    with pytest.raises(ValueError, match="model"):
        bm.forward_backward_fn(lambda x: x, x)
    with pytest.raises(ValueError, match="x must be"):
        bm.forward_backward_fn(lstm, [1.0])



def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_lstm_torch", ROOT / "scripts" / "bench_lstm_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_script_loads_notebook_code_and_prints_ratios(capsys, monkeypatch):
    bench = _bench_module()
    LSTM, FastLSTM, pointwise = bench.load_implementations()
    assert issubclass(FastLSTM, LSTM) and callable(pointwise)
    monkeypatch.setitem(bench.SIZES, "small", dict(T=4, N=2, D=8, H=8))
    rows = bench.main(["--device", "cpu", "--repeats", "1", "--warmup", "0", "--numpy"])
    out = capsys.readouterr().out
    assert [r["name"] for r in rows][:3] == ["naive loop LSTM", "optimised FastLSTM", "nn.LSTM"]
    assert "naive / nn.LSTM" in out and "optimised / nn.LSTM" in out and "T=4 N=2 D=8 H=8" in out
    assert "NumPy LSTM" in out  # timed, or skipped with the reason
