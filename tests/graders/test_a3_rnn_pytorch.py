"""Unit tests of graders.a3_rnn_pytorch, the grader of assignment a3_rnn_pytorch.

The correct implementations are executed from the solution notebook (never copied here); the
wrong ones are small textual edits of them or short stand-ins, so each test shows that a check
passes the reference and catches one specific mistake with a helpful message.
"""
import ast
import inspect
import math
import re
from pathlib import Path

import nbformat
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from graders import a3_rnn_pytorch as grader  # noqa: E402
from graders.core import TOL, CheckFailure  # noqa: E402
from helpers.text import tbptt_batches  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[2] / "solutions" / "a3_rnn_pytorch" / "a3_rnn_pytorch.ipynb"
CELLS = ["lstm_cell_function", "lstm_module", "rnn_module", "p4_model", "tbptt_step", "sample", "train_char_lm",
         "fast_lstm"]
IMPORT = "from graders import a3_rnn_pytorch as grader"
FLOAT32_ZEROS = {  # the known bug: a float32 zero state for state=None
    "lstm_module": ("h, c = x.new_zeros(N, H), x.new_zeros(N, H)", "h, c = torch.zeros(N, H), torch.zeros(N, H)"),
    "rnn_module": ("x.new_zeros(N, self.H) if h0", "torch.zeros(N, self.H) if h0"),
    "fast_lstm": ("h, c = x.new_zeros(N, H), x.new_zeros(N, H)", "h, c = torch.zeros(N, H), torch.zeros(N, H)"),
}


def _cells():
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nbformat.read(NOTEBOOK, 4).cells if "nbgrader" in c.metadata}


def _namespace(edits=()):
    """Execute the solution cells, after applying (grade_id, find, replace) edits."""
    sources = {gid: cell.source for gid, cell in _cells().items()}
    for gid, find, replace in edits:
        assert sources[gid].count(find) == 1, (gid, find)
        sources[gid] = sources[gid].replace(find, replace)
    ns = {"math": math, "torch": torch, "nn": nn, "F": F, "tbptt_batches": tbptt_batches,
          "tqdm": lambda it, **kw: __import__("tqdm").tqdm(it, disable=True)}
    for gid in CELLS:
        exec(compile(sources[gid], gid, "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def ref():
    return _namespace()


def _fails(check, *args, match, **kwargs):
    with pytest.raises(CheckFailure, match=match):
        check(*args, **kwargs)


def test_module_conventions():
    assert grader.NUMPY_ONLY is False
    assert grader.self_check is grader.core.self_check


# ---------------------------------------------------------------- LSTMCellFunction
def test_cell_function_reference_passes(ref, capsys):
    assert grader.check_lstm_cell_function(ref["LSTMCellFunction"]) is None
    assert "ok    lstm_cell_function: db relative error" in capsys.readouterr().out
    grader.check_lstm_cell_function(ref["LSTMCellFunction"].apply, N=1, D=2, H=3, seed=4)
    errors = grader.check_lstm_cell_function.__wrapped__(ref["LSTMCellFunction"], N=4, D=6, H=2, seed=2)
    assert errors.pop("torch.autograd.gradcheck") == "passed"
    assert len(errors) == 14 and max(errors.values()) < 1e-12


@pytest.mark.parametrize("find, replace, match", [
    ("dprev_c = dc * f", "dprev_c = dc", r"dprev_c[\s\S]*forget gate"),
    ("dc = dnext_c + dnext_h * o", "dc = dnext_h * o", "backward: dx: relative error"),
    ("g = torch.tanh(a[:, 2 * H:3 * H])\n        o = torch.sigmoid(a[:, 3 * H:])",
     "o = torch.sigmoid(a[:, 2 * H:3 * H])\n        g = torch.tanh(a[:, 3 * H:])", "gate order"),
    # autograd would sum an (N, 4H) db silently; the documented shape is (4H,)
    ("db = da.sum(dim=0)", "db = da", r"backward: db: expected shape \(20,\), got \(3, 20\)[\s\S]*da.sum"),
    ("dWx = x.T @ da", "dWx = da.T @ x", r"dWx: expected shape \(4, 20\), got \(20, 4\)"),
])
def test_cell_function_catches_mistakes(find, replace, match):
    ns = _namespace([("lstm_cell_function", find, replace)])
    _fails(grader.check_lstm_cell_function, ns["LSTMCellFunction"], match=match)


def test_cell_function_catches_swapped_gradients_of_equal_shape():
    ns = _namespace([("lstm_cell_function", "return dx, dprev_h, dprev_c", "return dprev_h, dx, dprev_c")])
    _fails(grader.check_lstm_cell_function, ns["LSTMCellFunction"], D=5, H=5, match="backward: dx")


def _function(forward_result=None, backward_error=None, n_grads=6):
    class Student(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, prev_h, prev_c, Wx, Wh, b):
            if forward_result == "blank":
                raise NotImplementedError()
            return prev_h * 2, prev_c * 2

        @staticmethod
        def backward(ctx, dnext_h, dnext_c):
            if backward_error:
                raise backward_error
            return (dnext_h,) * n_grads

    return Student


def test_cell_function_exceptions_name_function_case_and_hint():
    _fails(grader.check_lstm_cell_function, _function("blank"), match="LSTMCellFunction.forward: not implemented yet")
    # a forward with the wrong values fails before backward runs
    _fails(grader.check_lstm_cell_function, _function(), match="next_c: relative error")


def test_cell_function_backward_exception_and_count(ref, monkeypatch):
    broken = _function(backward_error=RuntimeError("boom"))
    monkeypatch.setattr(broken, "forward", ref["LSTMCellFunction"].forward)
    _fails(grader.check_lstm_cell_function, broken,
           match=r"LSTMCellFunction.backward: raised RuntimeError: boom \(case: N=3, D=4, H=5, dtype=float64, "
                 r"device=cpu, upstream=both\)\.\nHint: backward\(ctx, dnext_h, dnext_c\) returns")
    five = _function(n_grads=5)
    monkeypatch.setattr(five, "forward", ref["LSTMCellFunction"].forward)
    _fails(grader.check_lstm_cell_function, five, match="expected a tuple of 6 values")


def test_cell_function_bad_arguments(ref):
    with pytest.raises(ValueError, match="function"):
        grader.check_lstm_cell_function(42)
    with pytest.raises(ValueError, match="function"):
        grader.check_lstm_cell_function(nn.Linear)
    with pytest.raises(ValueError, match="N must be"):
        grader.check_lstm_cell_function(ref["LSTMCellFunction"], N=0)
    with pytest.raises(ValueError, match="seed must be"):
        grader.check_lstm_cell_function(ref["LSTMCellFunction"], seed=-1)
    with pytest.raises(ValueError, match="device"):
        grader.check_lstm_cell_function(ref["LSTMCellFunction"], device="not-a-device")


# ---------------------------------------------------------------- modules
@pytest.mark.parametrize("with_state", [True, False])
def test_modules_reference_pass(ref, with_state):
    grader.check_lstm_module(ref["LSTM"], with_state=with_state)
    grader.check_lstm_module(ref["FastLSTM"], N=1, T=1, D=3, H=2, with_state=with_state)
    grader.check_rnn_module(ref["RNN"], N=1, T=1, D=3, H=2, with_state=with_state)
    errors = grader.check_rnn_module.__wrapped__(ref["RNN"], with_state=with_state)
    assert ("backward (state given): dh0" in errors) == with_state and max(errors.values()) < 1e-12


@pytest.mark.parametrize("cell, cls, check", [
    ("lstm_module", "LSTM", grader.check_lstm_module),
    ("rnn_module", "RNN", grader.check_rnn_module),
    ("fast_lstm", "FastLSTM", grader.check_lstm_module),
])
def test_float32_zero_state_fails_the_visible_state_none_case(cell, cls, check, capsys):
    """The known bug: torch.zeros(N, H) for state=None passes every case with a state and fails in
    float64 with state=None: the visible case names the dtype and says how to make the zeros."""
    ns = _namespace([(cell, *FLOAT32_ZEROS[cell])])
    check(ns[cls], device="cpu")  # with a state: not affected
    _fails(check, ns[cls], with_state=False,
           match=rf"{cls}.forward: raised RuntimeError: .*(float != double|Float and Double).* \(case: N=2, T=3, "
                 r"D=4, H=5, state=None, dtype=float64, device=cpu\)\.\nHint: with state=None, start from zeros of "
                 r"x's dtype and device: x.new_zeros\(N, H\)")
    assert grader.self_check(check, ns[cls], with_state=False) is None  # the self-check prints, never raises
    out = capsys.readouterr().out
    assert "FAIL  " in out and "state=None, dtype=float64" in out and "all checks passed" not in out


def test_output_dtype_and_device_must_follow_x(ref):
    class Float32Out(ref["LSTM"]):
        def forward(self, x, state=None):
            out, (h, c) = super().forward(x, state)
            return out.float(), (h, c)

    _fails(grader.check_lstm_module, Float32Out, with_state=False,
           match=r"Float32Out.forward \(state=None\): out: returned float32 on cpu for float64 input on cpu[\s\S]*"
                 r"x.new_zeros")


def test_lstm_module_catches_ignored_state():
    ns = _namespace([("lstm_module", "            h, c = state\n",
                      "            h, c = x.new_zeros(N, H), x.new_zeros(N, H)\n")])
    _fails(grader.check_lstm_module, ns["LSTM"], match=r"forward \(state given\): out")
    grader.check_lstm_module(ns["LSTM"], with_state=False)  # the zero-state case still agrees


def test_rnn_module_catches_off_by_one():
    step = "            h = torch.tanh(x[:, t] @ self.Wx + h @ self.Wh + self.b)\n"
    append = "            outs.append(h)\n"
    ns = _namespace([("rnn_module", step + append, append + step)])
    _fails(grader.check_rnn_module, ns["RNN"], match="out: relative error")


def test_module_exceptions_name_function_case_and_hint(ref):
    class Raises(ref["LSTM"]):
        def forward(self, x, state=None):
            raise ValueError("bad shape")

    _fails(grader.check_lstm_module, Raises,
           match=r"Raises.forward: raised ValueError: bad shape \(case: N=2, T=3, D=4, H=5, state=given, "
                 r"dtype=float64, device=cpu\)\.\nHint: x\[:, t\] is \(N, D\)")

    class BrokenInit(ref["RNN"]):
        def __init__(self, D, H):
            raise TypeError("missing argument")

    _fails(grader.check_rnn_module, BrokenInit, match=r"BrokenInit\(4, 5\): raised TypeError: missing argument")

    class InPlace(ref["RNN"]):  # tanh saves its output for backward: changing it in place breaks backward
        def forward(self, x, h0=None):
            h, outs = h0, []
            for x_t in x.unbind(1):
                h = torch.tanh(x_t @ self.Wx + h @ self.Wh + self.b)
                h.mul_(1.0)
                outs.append(h)
            return torch.stack(outs, 1), h

    _fails(grader.check_rnn_module, InPlace, match=r"InPlace backward \(autograd through your forward\): raised "
                                                   r"RuntimeError[\s\S]*in-place")


def test_module_parameter_shapes_are_checked():
    class Transposed(nn.Module):
        def __init__(self, D, H):
            super().__init__()
            self.Wx = nn.Parameter(torch.zeros(4 * H, D))
            self.Wh = nn.Parameter(torch.zeros(H, 4 * H))
            self.b = nn.Parameter(torch.zeros(4 * H))

    _fails(grader.check_lstm_module, Transposed, match=r"Wx: expected shape \(4, 20\)")

    class NotParameters(nn.Module):
        def __init__(self, D, H):
            super().__init__()
            self.Wx, self.Wh, self.b = torch.zeros(D, H), torch.zeros(H, H), torch.zeros(H)

    _fails(grader.check_rnn_module, NotParameters, match="nn.Parameter")


def test_module_bad_arguments(ref):
    with pytest.raises(ValueError, match="cls must be an nn.Module"):
        grader.check_lstm_module(lambda D, H: None)
    with pytest.raises(ValueError, match="T must be"):
        grader.check_rnn_module(ref["RNN"], T=0)
    with pytest.raises(ValueError, match="with_state"):
        grader.check_rnn_module(ref["RNN"], with_state="yes")
    with pytest.raises(ValueError, match="device"):
        grader.check_lstm_loader(ref["LSTM"], device=3.5)


# ---------------------------------------------------------------- loaders
def test_loaders_reference_pass(ref):
    grader.check_lstm_loader(ref["LSTM"])
    grader.check_rnn_loader(ref["RNN"], D=3, H=3)
    errors = grader.check_lstm_loader.__wrapped__(ref["LSTM"], D=2, H=6, seed=2)
    assert set(errors) == {"Wx", "Wh", "b", "Wx after changing the nn.LSTM"} and max(errors.values()) == 0.0


def test_loader_catches_transpose_bias_and_shared_storage():
    ns = _namespace([("rnn_module", "model.Wh.copy_(rnn.weight_hh_l0.T)", "model.Wh.copy_(rnn.weight_hh_l0)")])
    _fails(grader.check_rnn_loader, ns["RNN"], match=r"RNN.from_torch: Wh")
    ns = _namespace([("lstm_module", "model.b.copy_(lstm.bias_ih_l0 + lstm.bias_hh_l0)",
                      "model.b.copy_(lstm.bias_ih_l0)")])
    _fails(grader.check_lstm_loader, ns["LSTM"], match=r"b = b_ih \+ b_hh")
    ns = _namespace([("lstm_module", "model.Wx.copy_(lstm.weight_ih_l0.T)",
                      "model.Wx = nn.Parameter(lstm.weight_ih_l0.T)")])
    _fails(grader.check_lstm_loader, ns["LSTM"], match="share storage")


def test_loader_keeps_dtype_and_reports_exceptions(ref):
    class Float32Loader(ref["LSTM"]):
        @classmethod
        def from_torch(cls, lstm):
            return cls(lstm.input_size, lstm.hidden_size)

    _fails(grader.check_lstm_loader, Float32Loader, match=r"Wx: returned float32 on cpu for float64 input[\s\S]*\.to")

    class NotClassmethod(ref["RNN"]):
        def from_torch(self, rnn):
            return self

    _fails(grader.check_rnn_loader, NotClassmethod,
           match=r"NotClassmethod.from_torch: raised TypeError.*\(case: D=4, H=5, dtype=float64, device=cpu\)"
                 r"[\s\S]*@classmethod")

    class Missing(nn.Module):
        pass

    _fails(grader.check_rnn_loader, Missing, match="Missing.from_torch: is missing")


# ---------------------------------------------------------------- truncated BPTT
def test_tbptt_reference_passes(ref):
    grader.check_tbptt_step(ref["tbptt_step"])
    grader.check_tbptt_step(ref["tbptt_step"], N=1, T=1, chunks=2, max_norm=100.0, seed=3)
    grader.check_state_detached(ref["tbptt_step"])
    errors = grader.check_tbptt_step.__wrapped__(ref["tbptt_step"], N=2, T=6, V=5, seed=2)
    assert max(errors.values()) <= TOL.forward


def test_tbptt_keeps_the_global_rng(ref):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    grader.check_tbptt_step(ref["tbptt_step"])
    assert torch.equal(torch.rand(3), expected)


def _step(retain=False, detach=True, clip="torch", zero_state=None):
    def step(model, optimizer, x, y, state, max_norm):
        if state is None and zero_state is not None:
            H = model.rnn.hidden_size
            state = (zero_state(1, x.shape[0], H), zero_state(1, x.shape[0], H))
        logits, new_state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad()
        if clip == "before":  # clips what zero_grad left (nothing), then backward: never clipped
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        loss.backward(retain_graph=retain)
        if clip == "torch":
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        elif clip == "always":  # always rescaled to max_norm, also when the norm is smaller
            norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
            for p in model.parameters():
                p.grad.mul_(max_norm / norm)
        optimizer.step()
        return loss.item(), (tuple(s.detach() for s in new_state) if detach else new_state)

    return step


def test_tbptt_catches_state_not_detached():
    _fails(grader.check_tbptt_step, _step(retain=True, detach=False), match="still attached to the graph")
    _fails(grader.check_state_detached, _step(retain=True, detach=False), match="still attached")
    # caught on the first chunk, before the second backward would fail inside the student's code
    _fails(grader.check_tbptt_step, _step(detach=False), match="chunk 1 of 3: new_state h: is still")


def test_tbptt_rescaling_that_never_stops_fails_the_visible_no_clipping_case():
    grader.check_tbptt_step(_step(clip="always"))  # the gradient norm is above max_norm=0.05 every time
    _fails(grader.check_tbptt_step, _step(clip="always"), N=1, T=1, chunks=2, max_norm=100.0,
           match="parameter .* after the update")


@pytest.mark.parametrize("clip", ["none", "before"])
def test_tbptt_catches_missing_or_misplaced_clipping(clip):
    _fails(grader.check_tbptt_step, _step(clip=clip), match="parameter .* after the update")


def test_tbptt_float32_zero_state_is_named():
    _fails(grader.check_tbptt_step, _step(zero_state=torch.zeros),
           match=r"tbptt_step: raised RuntimeError.*\(case: N=3, T=5, V=7, chunk=1 of 3, state=None, max_norm=0.05, "
                 r"dtype=float64, device=cpu\)\.\nHint: with state=None the model starts from zeros")
    grader.check_tbptt_step(_step(zero_state=lambda *shape: torch.zeros(*shape, dtype=torch.float64)))


@pytest.mark.parametrize("find, replace", [
    ("    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n", ""),
    ("    optimizer.zero_grad()\n", ""),
    ("logits, new_state = model(x, state)", "logits, new_state = model(x, None)"),
    ("    loss.backward()\n    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n",
     "    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n    loss.backward()\n"),
])
def test_tbptt_catches_wrong_updates(find, replace):
    ns = _namespace([("tbptt_step", find, replace)])
    _fails(grader.check_tbptt_step, ns["tbptt_step"], match="tbptt_step, chunk")


def test_tbptt_loss_must_be_a_number(ref):
    def returns_tensor(*args):
        loss, state = ref["tbptt_step"](*args)
        return torch.tensor([loss, loss]), state

    _fails(grader.check_tbptt_step, returns_tensor, match="must be a number")

    def returns_graph(model, optimizer, x, y, state, max_norm):
        logits, new_state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        ref["tbptt_step"](model, optimizer, x, y, state, max_norm)
        return loss, tuple(s.detach() for s in new_state)

    _fails(grader.check_tbptt_step, returns_graph, match=r"still holds the graph[\s\S]*loss.item\(\)")


def test_tbptt_exception_names_case():
    def raises(model, optimizer, x, y, state, max_norm):
        raise KeyError("oops")

    _fails(grader.check_tbptt_step, raises, match=r"tbptt_step: raised KeyError: 'oops' \(case: N=3, T=5, V=7, "
                                                  r"chunk=1 of 3, state=None")
    _fails(grader.check_state_detached, raises, match=r"tbptt_step: raised KeyError")


def test_tbptt_bad_arguments(ref):
    with pytest.raises(ValueError, match="max_norm"):
        grader.check_tbptt_step(ref["tbptt_step"], max_norm=0)
    with pytest.raises(ValueError, match="V must be"):
        grader.check_tbptt_step(ref["tbptt_step"], V=1)
    with pytest.raises(ValueError, match="chunks"):
        grader.check_state_detached(ref["tbptt_step"], chunks=1)
    with pytest.raises(ValueError, match="tbptt_step must be a function"):
        grader.check_tbptt_step(None)


# ---------------------------------------------------------------- sampling
def test_sample_reference_passes(ref):
    grader.check_sample(ref["sample"])
    grader.check_sample(ref["sample"], V=4, prefix_len=1, length=1)
    errors = grader.check_sample.__wrapped__(ref["sample"], V=9, prefix_len=6, length=1, seed=2)
    assert errors["greedy ids (temperature=0)"] == "all 1 equal"


@pytest.mark.parametrize("V, prefix_len, length, seed", [(7, 4, 12, 0), (4, 1, 1, 0), (5, 1, 20, 1), (9, 6, 1, 2)])
def test_greedy_cases_have_no_near_ties(V, prefix_len, length, seed):
    """The notebook's greedy cases never hinge on two almost equal logits (argmax ties)."""
    model = grader._tiny_char_lm(V, seed, torch.device("cpu"), H=8)
    with torch.no_grad():
        model.head.weight.mul_(6.0)
    prefix = torch.randint(0, V, (prefix_len,), generator=torch.Generator().manual_seed(seed + 3)).tolist()
    _, margin = grader.oracle_greedy(model, prefix, length)
    assert margin > 1e-3


@pytest.mark.parametrize("find, replace, match", [
    ("logits, state = model(x, state)", "logits, _ = model(x, None)", r"temperature=0\)[\s\S]*differ"),
    ("if temperature == 0:", "if temperature < 0:",  # no greedy branch: softmax(logits / 0)
     r"sample: raised RuntimeError[\s\S]*temperature=0\)\.\nHint"),
    ("scores / temperature", "scores * temperature", "temperature=0.5"),
    ("x = torch.tensor([list(prefix)], dtype=torch.long, device=device)",
     "x = torch.tensor([list(prefix)[-1:]], dtype=torch.long, device=device)", "feed the whole prefix"),
    ("new_ids.append(next_id)", "new_ids.append(float(next_id))", "expected a list of ints, got an entry of type"),
])
def test_sample_catches_mistakes(find, replace, match):
    ns = _namespace([("sample", find, replace)])
    _fails(grader.check_sample, ns["sample"], match=match)


def test_sample_must_return_only_new_ids_and_names_exceptions(ref):
    def with_prefix(model, prefix, length, **kw):
        return list(prefix) + ref["sample"](model, prefix, length, **kw)

    _fails(grader.check_sample, with_prefix, match="not the prefix")

    def raises(model, prefix, length, **kw):
        raise IndexError("out of range")

    _fails(grader.check_sample, raises,
           match=r"sample: raised IndexError: out of range \(case: V=7, prefix_len=4, length=12, dtype=float64, "
                 r"device=cpu, temperature=0\)")


def test_sample_accepts_a_tensor_of_ids(ref):
    grader.check_sample(lambda *a, **kw: torch.tensor(ref["sample"](*a, **kw)))


# ---------------------------------------------------------------- char-LM training
class _Uniform(nn.Module):
    """Equal scores for every character: cross-entropy ln V everywhere."""

    def __init__(self, V):
        super().__init__()
        self.V = V
        self.w = nn.Parameter(torch.zeros(1))
        self.calls = []

    def forward(self, idx, state=None):
        self.calls.append(state)
        n, t = idx.shape
        return self.w.expand(n, t, self.V) * 0.0, ("carried", len(self.calls))


class _Confident(nn.Module):
    """Huge logits (1e4) on the right next id of the sequence i -> (i + 1) mod V: loss 0, no overflow."""

    def __init__(self, V):
        super().__init__()
        self.V = V
        self.scale = nn.Parameter(torch.tensor(1e4))

    def forward(self, idx, state=None):
        return F.one_hot((idx + 1) % self.V, self.V).float() * self.scale, state


def test_evaluate_char_lm_uniform_model_state_carry_and_huge_logits():
    model = _Uniform(5)
    ids = torch.arange(1000) % 5
    assert grader.evaluate_char_lm(model, ids, seq_len=10, batch_size=4) == pytest.approx(math.log(5), rel=1e-12)
    assert model.calls[0] is None and model.calls[1] == ("carried", 1)
    assert len(model.calls) == (1000 // 4 - 1) // 10  # the chunks of tbptt_batches: the partial one is dropped
    assert model.training  # mode restored
    assert grader.evaluate_char_lm(_Confident(5), ids, seq_len=10, batch_size=4) == 0.0
    with pytest.raises(ValueError, match="ids has 2 entries"):
        grader.evaluate_char_lm(model, [1, 2], batch_size=4)
    with pytest.raises(ValueError, match="seq_len"):
        grader.evaluate_char_lm(model, ids, seq_len=0)


def test_evaluate_char_lm_reads_the_text_like_the_specified_evaluate_loss(ref):
    torch.manual_seed(0)
    model = ref["CharLM"](11, E=4, H=8)
    ids = (torch.arange(3000) * 7 % 11).numpy()
    expected = ref["evaluate_loss"](model, ids, batch_size=16, seq_len=64)
    assert grader.evaluate_char_lm(model, ids, seq_len=64, batch_size=16) == pytest.approx(expected, rel=1e-6)


def test_check_char_lm_training_thresholds_and_history():
    model, ids = _Uniform(5), torch.arange(2000) % 5
    history = {"train_loss": [1.6, 1.5, 1.4], "val_loss": [1.6, math.log(5)], "val_step": [2, 3]}
    errors = grader.check_char_lm_training.__wrapped__(model, history, ids, max_val_loss=math.log(5) + 0.01,
                                                       steps=3, eval_every=2)
    assert errors.pop("validation loss") == f"{math.log(5):.3f} nats/char (< {math.log(5) + 0.01})"
    assert list(errors) == ["evaluate_loss"] and errors["evaluate_loss"] < 1e-15
    float32 = math.log(5) * (1 + 0.5 * TOL.float32)  # the student's float32 evaluation may round differently
    grader.check_char_lm_training(model, dict(history, val_loss=[1.6, float32]), ids, max_val_loss=2.0)
    _fails(grader.check_char_lm_training, model, dict(history, val_loss=[1.6, 1.5]), ids, max_val_loss=2.0,
           match=r"history\['val_loss'\]\[-1\] \(your evaluate_loss after the last step\): relative error[\s\S]*"
                 r"grader measures 1.6094 nats/char")
    measured = grader.evaluate_char_lm(model, ids)
    _fails(grader.check_char_lm_training, model, history, ids, max_val_loss=measured, match="validation loss")  # tie
    _fails(grader.check_char_lm_training, model, {"train_loss": [1.0]}, ids, max_val_loss=2.0, match="val_loss")
    _fails(grader.check_char_lm_training, model, {"train_loss": [float("nan")], "val_loss": [1.0]}, ids,
           max_val_loss=2.0, match="finite")
    _fails(grader.check_char_lm_training, model, [1.0], ids, max_val_loss=2.0, match="dict")
    _fails(grader.check_char_lm_training, model, history, ids, max_val_loss=2.0, steps=4, match="one loss per step")
    _fails(grader.check_char_lm_training, model, dict(history, val_step=[2]), ids, max_val_loss=2.0, steps=3,
           eval_every=2, match=r"val_step'\]: expected \[2, 3\], got \[2\]")
    with pytest.raises(ValueError, match="max_val_loss"):
        grader.check_char_lm_training(model, history, ids, max_val_loss=-1)
    with pytest.raises(ValueError, match="eval_every"):
        grader.check_char_lm_training(model, history, ids, max_val_loss=2.0, steps=3, eval_every=0)


@pytest.mark.parametrize("find, replace", [("logits, state = model(x, state)", "logits, _ = model(x, None)"),
                                           (', reduction="sum").item()', ").item()")])
def test_a_wrong_evaluate_loss_fails_the_training_check(ref, find, replace):
    """A model whose predictions need the carried state (the running sum of the ids): the reference's
    evaluate_loss agrees with the grader's, a wrong one does not."""
    model, ids = grader._RunningSum(11, torch.device("cpu")), (torch.arange(5000) * 7 % 11).numpy()
    history = {"train_loss": [1.0], "val_loss": [ref["evaluate_loss"](model, ids)], "val_step": [1]}
    grader.check_char_lm_training(model, history, ids, max_val_loss=100.0)
    wrong = _namespace([("train_char_lm", find, replace)])["evaluate_loss"]
    _fails(grader.check_char_lm_training, model, dict(history, val_loss=[wrong(model, ids)]), ids, max_val_loss=100.0,
           match="evaluate_loss")


def test_run_char_lm_training_reports_exceptions_and_returns_history(ref):
    torch.manual_seed(0)
    model = ref["CharLM"](11, E=4, H=8)
    ids = (torch.arange(4000) * 7 % 11).numpy()
    settings = dict(steps=3, batch_size=4, seq_len=8, eval_every=2)
    history = grader.run_char_lm_training(ref["train_char_lm"], model, ids, ids[:2000], **settings)
    grader.check_char_lm_training(model, history, ids[:2000], max_val_loss=10.0, steps=3, eval_every=2)

    def raises(model, train_ids, val_ids, steps, **kw):
        raise RuntimeError("size mismatch")

    _fails(grader.run_char_lm_training, raises, model, ids, ids, **settings,
           match=r"train_char_lm: raised RuntimeError: size mismatch \(case: steps=3, batch_size=4, seq_len=8, "
                 r"eval_every=2, device=cpu\)\.\nHint: one tbptt_step per chunk")


# ---------------------------------------------------------------- the notebook's numbers and benchmark cells
def test_the_training_prose_quotes_the_data_cells_numbers(capsys):
    """p4_train_md quotes ln V, the character-frequency baseline and the size of the graded run."""
    cells = _cells()
    ns = {"math": math, "np": __import__("numpy")}
    exec("from helpers.text import CharVocab, load_corpus, tbptt_batches, train_val_split", ns)
    exec(cells["p4_data"].source, ns)
    printed = capsys.readouterr().out
    prose = cells["p4_train_md"].source
    quoted = re.search(r"\\ln V \\approx ([\d.]+)\$\s+nats\s+per\s+character\s+and\s+predicting\s+from\s+"
                       r"character\s+frequencies\s+alone\s+([\d.]+)", prose)
    log_v, unigram = (float(v) for v in quoted.groups())
    assert f"ln V = {log_v:.2f}" in printed and f"character frequencies alone: {unigram:.2f}" in printed
    chunks, n, t, chars = re.search(r"(\d+) chunks of \$(\d+) \\times (\d+)\$ characters\s+\(([\d,]+)", prose).groups()
    assert int(chunks) * int(n) * int(t) == int(chars.replace(",", ""))
    assert 0.3 < int(chars.replace(",", "")) / len(ns["train_ids"]) < 0.37  # "a third of the training text"
    graded_run = cells["test_train_char_lm"].source
    assert f"steps={chunks}, batch_size={n}," in graded_run and f"seq_len={t}," in graded_run


def _bench_namespace(ref):
    from helpers.benchmark import benchmark, format_table, forward_backward_fn

    return {"torch": torch, "nn": nn, "np": __import__("numpy"), "LSTM": ref["LSTM"], "benchmark": benchmark,
            "format_table": format_table, "forward_backward_fn": forward_backward_fn}


def test_the_numpy_benchmark_cell_prints_a_note_without_the_functions(ref, capsys):
    exec(_cells()["p5_numpy"].source, _bench_namespace(ref))
    assert "paste them from assignment 2" in capsys.readouterr().out


def test_the_numpy_benchmark_cell_times_assignment_2s_lstm_in_seconds(ref, capsys):
    import importlib.util
    import time

    script = Path(NOTEBOOK).parents[2] / "scripts" / "bench_lstm_torch.py"
    spec = importlib.util.spec_from_file_location("bench", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    funcs, why = bench.load_numpy_lstm()
    if funcs is None:
        pytest.skip(f"no NumPy LSTM of assignment 2: {why}")
    ns = dict(_bench_namespace(ref), lstm_forward=funcs[0], lstm_backward=funcs[1])
    start = time.perf_counter()
    exec(_cells()["p5_numpy"].source, ns)
    assert time.perf_counter() - start < 10  # "a few seconds"
    out = capsys.readouterr().out
    assert "NumPy LSTM (assignment 2)" in out and "nn.LSTM" in out and "N=16 T=50 D=128 H=128" in out


# ---------------------------------------------------------------- self-check protocol
def test_self_check_prints_ok_and_fail(ref, capsys):
    assert grader.self_check(grader.check_rnn_loader, ref["RNN"]) is None
    out = capsys.readouterr().out
    assert "ok    rnn_loader: Wx relative error" in out and "all checks passed" in out
    ns = _namespace([("rnn_module", "model.b.copy_(rnn.bias_ih_l0 + rnn.bias_hh_l0)", "model.b.copy_(rnn.bias_ih_l0)")])
    grader.self_check(grader.check_rnn_loader, ns["RNN"])
    out = capsys.readouterr().out
    assert "FAIL  RNN.from_torch: b" in out and "all checks passed" not in out

    def blank(*args):
        raise NotImplementedError()

    grader.self_check(grader.check_tbptt_step, blank)
    assert "FAIL  tbptt_step: not implemented yet" in capsys.readouterr().out
    with pytest.raises(ValueError, match="check"):
        grader.self_check("check_lstm_module")


# ---------------------------------------------------------------- the notebook's test cells
def _calls(source):
    """(check name, keyword arguments) of every grader.check_* call in a cell, self_check included."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr == "self_check":
            name = node.args[0].attr
        elif node.func.attr.startswith("check_"):
            name = node.func.attr
        else:
            continue
        kwargs = {kw.arg: (ast.literal_eval(kw.value) if isinstance(kw.value, ast.Constant) else "<expr>")
                  for kw in node.keywords}
        calls.append((name, kwargs))
    return calls


def _situations(name, kwargs):
    """What a call exercises beyond shapes and seeds."""
    params = inspect.signature(getattr(grader, name).__wrapped__).parameters
    get = {p: kwargs.get(p, params[p].default) for p in params}
    tags = {"device"} if "device" in kwargs else set()
    tags |= {f"{k}=1" for k in ("N", "T", "prefix_len", "length") if get.get(k) == 1}
    if get.get("with_state") is False:
        tags.add("state=None")
    if "D" in get and "H" in get:
        tags.add("D=H" if get["D"] == get["H"] else "D!=H")
    if get.get("max_norm", 0) >= 100:
        tags.add("no clipping")
    return tags


def test_notebook_test_cells_reimport_the_grader_and_hide_no_situation():
    visible, hidden = {}, []
    for gid, cell in _cells().items():
        meta = cell.metadata["nbgrader"]
        if cell.cell_type != "code" or "grader" not in cell.source:
            continue
        public, _, secret = cell.source.partition("### BEGIN HIDDEN TESTS")
        if meta.get("grade") and not meta.get("solution"):
            assert cell.source.startswith(IMPORT + "\n"), gid
        assert "ct." not in cell.source and "import *" not in cell.source, gid
        for name, kwargs in _calls(public):
            visible.setdefault(name, set()).update(_situations(name, kwargs))
        hidden += [(gid, name, _situations(name, kwargs)) for name, kwargs in _calls(secret)]
    assert hidden
    for gid, name, tags in hidden:
        assert tags <= visible.get(name, set()), f"{gid}: hidden {name} exercises {tags - visible.get(name, set())}"
