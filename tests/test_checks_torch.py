"""Unit tests of helpers.checks_torch, the graders' checks of a3_rnn_pytorch.

The correct implementations are executed from the solution notebook (never copied here); the
wrong ones are small textual edits of them, so each test shows that a check passes the
reference and catches one specific mistake with a helpful message.
"""
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import nbformat  # noqa: E402

from helpers import checks_torch as ct  # noqa: E402
from helpers.text import tbptt_batches  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parent.parent / "solutions" / "a3_rnn_pytorch" / "a3_rnn_pytorch.ipynb"
CELLS = ["lstm_cell_function", "lstm_module", "rnn_module", "tbptt_step", "sample", "train_char_lm", "fast_lstm"]


def _namespace(edits=()):
    """Execute the solution cells, after applying (grade_id, find, replace) edits."""
    cells = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(NOTEBOOK, 4).cells
             if c.cell_type == "code" and "nbgrader" in c.metadata}
    for gid, find, replace in edits:
        assert cells[gid].count(find) == 1, (gid, find)
        cells[gid] = cells[gid].replace(find, replace)
    ns = {"math": math, "torch": torch, "nn": nn, "F": F, "tbptt_batches": tbptt_batches,
          "tqdm": lambda it, **kw: __import__("tqdm").tqdm(it, disable=True)}
    for gid in CELLS:
        exec(compile(cells[gid], gid, "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def ref():
    return _namespace()


def _fails(check, *args, match, **kwargs):
    with pytest.raises(AssertionError, match=match):
        check(*args, **kwargs)


# ---------------------------------------------------------------- LSTMCellFunction
def test_cell_function_reference_passes(ref):
    ct.check_lstm_cell_function(ref["LSTMCellFunction"])
    ct.check_lstm_cell_function(ref["LSTMCellFunction"].apply, N=1, D=2, H=3, seed=4)


def test_cell_function_catches_missing_forget_gate():
    ns = _namespace([("lstm_cell_function", "dprev_c = dc * f", "dprev_c = dc")])
    _fails(ct.check_lstm_cell_function, ns["LSTMCellFunction"], match=r"dprev_c[\s\S]*forget gate")


def test_cell_function_catches_gate_order():
    ns = _namespace([("lstm_cell_function", "g = torch.tanh(a[:, 2 * H:3 * H])\n        o = torch.sigmoid(a[:, 3 * H:])",
                      "o = torch.sigmoid(a[:, 2 * H:3 * H])\n        g = torch.tanh(a[:, 3 * H:])")])
    _fails(ct.check_lstm_cell_function, ns["LSTMCellFunction"], match="gate order")


def test_cell_function_gradcheck_catches_wrong_gradient_order():
    # correct formulas, but dprev_h and dx swapped where shapes agree (D == H): only values differ
    ns = _namespace([("lstm_cell_function", "return dx, dprev_h, dprev_c", "return dprev_h, dx, dprev_c")])
    _fails(ct.check_lstm_cell_function, ns["LSTMCellFunction"], D=5, H=5, match="dx")


def test_cell_function_bad_arguments(ref):
    with pytest.raises(ValueError, match="function"):
        ct.check_lstm_cell_function(42)
    with pytest.raises(ValueError, match="N must be"):
        ct.check_lstm_cell_function(ref["LSTMCellFunction"], N=0)
    with pytest.raises(ValueError, match="device"):
        ct.check_lstm_cell_function(ref["LSTMCellFunction"], device="not-a-device")


def test_blank_function_raises_not_implemented():
    class Blank(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        ct.check_lstm_cell_function(Blank)


# ---------------------------------------------------------------- modules and loaders
@pytest.mark.parametrize("with_state", [True, False])
def test_modules_reference_pass(ref, with_state):
    ct.check_lstm_module(ref["LSTM"], with_state=with_state)
    ct.check_lstm_module(ref["FastLSTM"], N=1, T=1, D=3, H=2, with_state=with_state)
    ct.check_rnn_module(ref["RNN"], with_state=with_state)


def test_loaders_reference_pass(ref):
    ct.check_lstm_loader(ref["LSTM"])
    ct.check_rnn_loader(ref["RNN"], D=3, H=3)


def test_lstm_module_catches_ignored_state():
    ns = _namespace([("lstm_module", "            h, c = state\n",
                      "            h, c = x.new_zeros(N, H), x.new_zeros(N, H)\n")])
    _fails(ct.check_lstm_module, ns["LSTM"], match="with an initial state")
    ct.check_lstm_module(ns["LSTM"], with_state=False)  # the zero-state case still agrees


def test_rnn_module_catches_off_by_one():
    ns = _namespace([("rnn_module",
                      "            h = torch.tanh(x[:, t] @ self.Wx + h @ self.Wh + self.b)\n            outs.append(h)\n",
                      "            outs.append(h)\n            h = torch.tanh(x[:, t] @ self.Wx + h @ self.Wh + self.b)\n")])
    _fails(ct.check_rnn_module, ns["RNN"], match="out")


def test_module_parameter_shapes_are_checked():
    class Transposed(nn.Module):
        def __init__(self, D, H):
            super().__init__()
            self.Wx = nn.Parameter(torch.zeros(4 * H, D))
            self.Wh = nn.Parameter(torch.zeros(H, 4 * H))
            self.b = nn.Parameter(torch.zeros(4 * H))

    _fails(ct.check_lstm_module, Transposed, match=r"Wx: expected shape \(4, 20\)")

    class NotParameters(nn.Module):
        def __init__(self, D, H):
            super().__init__()
            self.Wx, self.Wh, self.b = torch.zeros(D, H), torch.zeros(H, H), torch.zeros(H)

    _fails(ct.check_rnn_module, NotParameters, match="nn.Parameter")


def test_loader_catches_transpose_bias_and_shared_storage():
    ns = _namespace([("rnn_module", "model.Wh.copy_(rnn.weight_hh_l0.T)", "model.Wh.copy_(rnn.weight_hh_l0)")])
    _fails(ct.check_rnn_loader, ns["RNN"], match=r"Wh")
    ns = _namespace([("lstm_module", "model.b.copy_(lstm.bias_ih_l0 + lstm.bias_hh_l0)",
                      "model.b.copy_(lstm.bias_ih_l0)")])
    _fails(ct.check_lstm_loader, ns["LSTM"], match="b_ih \\+ b_hh")
    ns = _namespace([("lstm_module", "model.Wx.copy_(lstm.weight_ih_l0.T)",
                      "model.Wx = nn.Parameter(lstm.weight_ih_l0.T)")])
    _fails(ct.check_lstm_loader, ns["LSTM"], match="share storage")


def test_loader_keeps_dtype(ref):
    class Float32Loader(ref["LSTM"]):
        @classmethod
        def from_torch(cls, lstm):
            model = cls(lstm.input_size, lstm.hidden_size)
            with torch.no_grad():
                model.Wx.copy_(lstm.weight_ih_l0.T)
            return model

    _fails(ct.check_lstm_loader, Float32Loader, match="dtype")


def test_module_bad_arguments(ref):
    with pytest.raises(ValueError, match="cls must be an nn.Module"):
        ct.check_lstm_module(lambda D, H: None)
    with pytest.raises(ValueError, match="T must be"):
        ct.check_rnn_module(ref["RNN"], T=0)


# ---------------------------------------------------------------- truncated BPTT
def test_tbptt_reference_passes(ref):
    ct.check_tbptt_step(ref["tbptt_step"])
    ct.check_tbptt_step(ref["tbptt_step"], N=1, T=1, chunks=2, max_norm=100.0, seed=3)
    ct.check_state_detached(ref["tbptt_step"])


def _step_without_detach(retain):
    def step(model, optimizer, x, y, state, max_norm):
        logits, new_state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward(retain_graph=retain)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        return loss.item(), new_state

    return step


def test_tbptt_catches_state_not_detached():
    _fails(ct.check_tbptt_step, _step_without_detach(retain=True), match="still attached to the graph")
    _fails(ct.check_state_detached, _step_without_detach(retain=True), match="not a tensor detached")
    # caught on the first chunk, before the second backward would fail inside the student's code
    _fails(ct.check_tbptt_step, _step_without_detach(retain=False), match="chunk 1 of 3: new_state h: is still")


@pytest.mark.parametrize("find, replace", [
    ("    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n", ""),
    ("    optimizer.zero_grad()\n", ""),
    ("logits, new_state = model(x, state)", "logits, new_state = model(x, None)"),
])
def test_tbptt_catches_wrong_updates(find, replace):
    ns = _namespace([("tbptt_step", find, replace)])
    _fails(ct.check_tbptt_step, ns["tbptt_step"], match="tbptt_step, chunk")


def test_tbptt_loss_must_be_a_number(ref):
    def returns_tensor(*args):
        loss, state = ref["tbptt_step"](*args)
        return torch.tensor([loss, loss]), state

    _fails(ct.check_tbptt_step, returns_tensor, match="must be a number")


def test_tbptt_bad_arguments(ref):
    with pytest.raises(ValueError, match="max_norm"):
        ct.check_tbptt_step(ref["tbptt_step"], max_norm=0)
    with pytest.raises(ValueError, match="V must be"):
        ct.check_tbptt_step(ref["tbptt_step"], V=1)
    with pytest.raises(ValueError, match="chunks"):
        ct.check_state_detached(ref["tbptt_step"], chunks=1)


# ---------------------------------------------------------------- sampling
def test_sample_reference_passes(ref):
    ct.check_sample(ref["sample"])
    ct.check_sample(ref["sample"], V=4, prefix_len=1, length=3, seed=5)


@pytest.mark.parametrize("find, replace, match", [
    ("logits, state = model(x, state)", "logits, _ = model(x, None)", "greedy"),
    ("scores / temperature", "scores * temperature", "temperature"),
])
def test_sample_catches_mistakes(find, replace, match):
    ns = _namespace([("sample", find, replace)])
    _fails(ct.check_sample, ns["sample"], match=match)


def test_sample_must_return_only_new_ids(ref):
    def with_prefix(model, prefix, length, **kw):
        return list(prefix) + ref["sample"](model, prefix, length, **kw)

    _fails(ct.check_sample, with_prefix, match="not the prefix")


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


def test_evaluate_char_lm_uniform_model_and_state_carry():
    model = _Uniform(5)
    ids = torch.arange(1000) % 5
    loss = ct.evaluate_char_lm(model, ids, seq_len=10, batch_size=4)
    assert loss == pytest.approx(math.log(5), rel=1e-12)
    assert model.calls[0] is None and model.calls[1] == ("carried", 1)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="too few"):
        ct.evaluate_char_lm(model, [1, 2], batch_size=4)
    with pytest.raises(ValueError, match="seq_len"):
        ct.evaluate_char_lm(model, ids, seq_len=0)


def test_check_char_lm_training_thresholds_and_history():
    model, ids = _Uniform(5), torch.arange(2000) % 5
    history = {"train_loss": [1.6], "val_loss": [1.6]}
    got = ct.check_char_lm_training(model, history, ids, max_val_loss=math.log(5) + 0.01)
    assert got == pytest.approx(math.log(5))
    _fails(ct.check_char_lm_training, model, history, ids, max_val_loss=math.log(5) - 0.01, match="validation loss")
    _fails(ct.check_char_lm_training, model, {"train_loss": [1.0]}, ids, max_val_loss=2.0, match="val_loss")
    _fails(ct.check_char_lm_training, model, {"train_loss": [float("nan")], "val_loss": [1.0]}, ids,
           max_val_loss=2.0, match="finite")
    _fails(ct.check_char_lm_training, model, [1.0], ids, max_val_loss=2.0, match="dict")
    with pytest.raises(ValueError, match="max_val_loss"):
        ct.check_char_lm_training(model, history, ids, max_val_loss=-1)


# ---------------------------------------------------------------- self_check
def test_self_check_prints_ok_and_fail(ref, capsys):
    assert ct.self_check(ct.check_rnn_loader, ref["RNN"]) is None
    out = capsys.readouterr().out
    assert "ok    RNN.from_torch: Wx: relative error" in out and "all checks passed" in out
    ns = _namespace([("rnn_module", "model.b.copy_(rnn.bias_ih_l0 + rnn.bias_hh_l0)", "model.b.copy_(rnn.bias_ih_l0)")])
    ct.self_check(ct.check_rnn_loader, ns["RNN"])
    out = capsys.readouterr().out
    assert "FAIL  RNN.from_torch: b" in out and "all checks passed" not in out

    def blank(*args):
        raise NotImplementedError()

    ct.self_check(ct.check_tbptt_step, blank)
    assert "not implemented yet" in capsys.readouterr().out
    with pytest.raises(ValueError, match="check"):
        ct.self_check("check_lstm_module")
    assert not ct._VERBOSE[0]
