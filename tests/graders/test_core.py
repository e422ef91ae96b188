"""graders.core: comparisons, student calls, the NumPy-only guard and the self-check protocol."""
import numpy as np
import pytest

from graders import core

torch = pytest.importorskip("torch")


# ------------------------------------------------------------------ compare / assert_close / report
def test_compare_returns_the_error_and_assert_close_returns_none():
    assert core.compare("out", torch.ones(2), np.ones(2), 1e-9) == 0.0
    assert core.assert_close("out", np.ones(2) + 1e-12, np.ones(2), 1e-9) is None


@pytest.mark.parametrize("got, message", [
    (None, "out: got None. Did you forget a `return`"),
    ((np.ones(2), "cache"), r"out: expected an array of numbers of shape \(2, 3\), got tuple"),
    ("text", r"out: expected an array of shape \(2, 3\), got a str"),
    (np.ones((3, 2)), r"out: expected shape \(2, 3\), got \(3, 2\)"),
    (np.full((2, 3), np.nan), r"out: contains NaN or inf \(6 of 6 entries\)"),
    (np.full((2, 3), 1.1), "out: relative error 4.76e-02 is above the tolerance 1e-07"),
    (np.ones((2, 3), dtype=bool), "out: expected numbers, got booleans"),
])
def test_compare_failure_messages(got, message):
    with pytest.raises(core.CheckFailure, match=message):
        core.assert_close("out", got, np.ones((2, 3)), 1e-7)


def test_an_array_subclass_cannot_fake_a_small_error():
    class Liar(np.ndarray):
        def __sub__(self, other):
            return np.zeros(self.shape)

    with pytest.raises(core.CheckFailure, match="relative error"):
        core.compare("out", np.zeros(3).view(Liar), np.ones(3), 1e-7)


def test_compare_hint_and_argument_errors():
    with pytest.raises(AssertionError, match="Hint: Wh or Wh.T"):
        core.assert_close("next_h", np.zeros(2), np.ones(2), 1e-7, hint="Wh or Wh.T?")
    with pytest.raises(ValueError, match="tol must be a positive number"):
        core.assert_close("x", np.ones(2), np.ones(2), -1)
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        core.assert_close("", np.ones(2), np.ones(2), 1e-7)
    with pytest.raises(ValueError, match="expected must be"):
        core.assert_close("x", np.ones(2), None, 1e-7)
    with pytest.raises(ValueError, match="hint must be a string"):
        core.assert_close("x", np.ones(2), np.ones(2), 1e-7, hint=3)


def test_report_prints_ok_and_fail(capsys):
    assert core.report("dx", np.ones(2), np.ones(2), 1e-7) is None
    core.report("dW", np.zeros(2), np.ones(2), 1e-7)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ok    dx: relative error 0.00e+00 (tolerance 1e-07)"
    assert lines[1].startswith("FAIL  dW: relative error 1.00e+00 is above the tolerance")


def test_compare_exact_is_exact_for_integers():
    assert core.compare_exact("ids", np.array([1, 2]), [1, 2]) == 0.0
    with pytest.raises(core.CheckFailure, match=r"1 of 2 entries differ; first at index \(1,\): expected 2, got 3"):
        core.compare_exact("ids", torch.tensor([1, 3]), [1, 2])
    with pytest.raises(core.CheckFailure, match="expected integers, got dtype float64"):
        core.compare_exact("ids", np.array([1.0, 2.0]), [1, 2])


def test_unpack():
    assert core.unpack((1, 2), 2, "f") == (1, 2)
    with pytest.raises(core.CheckFailure, match=r"f: expected a tuple of 2 values \(out, cache\), got ndarray"):
        core.unpack(np.ones(2), 2, "f", names=("out", "cache"))


# ------------------------------------------------------------------ student calls
def test_call_reports_exceptions_with_function_case_and_hint():
    def broken(x):
        return x @ np.ones((5, 5))

    with pytest.raises(core.CheckFailure) as failure:
        core.call(broken, np.ones((2, 3)), name="rnn_forward", case={"N": 2, "D": 3}, hint="x @ Wx")
    text = str(failure.value)
    assert text.startswith("rnn_forward: raised ValueError") and "(case: N=2, D=3)" in text and "Hint: x @ Wx" in text


def test_call_names_a_stub_and_rejects_non_functions():
    def stub():
        raise NotImplementedError

    with pytest.raises(core.CheckFailure, match="g: not implemented yet"):
        core.call(stub, name="g")
    with pytest.raises(core.CheckFailure, match="expected a function or class, got int"):
        core.call(3, name="g")


def test_numpy_only_calls_fail_on_any_torch_operation():
    from helpers.gradient_flow import rnn_forward_torch

    x, h0 = np.ones((1, 2, 3)), np.zeros((1, 4))
    Wx, Wh, b = np.ones((3, 4)), np.eye(4), np.zeros(4)
    with pytest.raises(core.IntegrityFailure, match="^INTEGRITY: rnn_forward ran torch operations"):
        core.call(rnn_forward_torch, x, h0, Wx, Wh, b, name="rnn_forward", numpy_only=True)
    with pytest.raises(core.IntegrityFailure):
        core.call(lambda a: torch.from_numpy(a).mul(2).numpy(), x, name="f", numpy_only=True)
    out = core.call(lambda a: np.tanh(a), x, name="f", numpy_only=True)
    assert np.allclose(out, np.tanh(x))
    assert core.call(rnn_forward_torch, x, h0, Wx, Wh, b, name="rnn_forward")[0].shape == (1, 2, 4)


# ------------------------------------------------------------------ printing protocol
def test_check_decorator_prints_and_returns_none(capsys):
    @core.check
    def check_thing():
        return {"h": 1.5e-9, "samples": "total variation 0.010"}

    assert check_thing() is None
    assert check_thing.__wrapped__() == {"h": 1.5e-9, "samples": "total variation 0.010"}
    assert capsys.readouterr().out.splitlines()[:2] == ["ok    thing: h relative error 1.5e-09",
                                                         "ok    thing: samples total variation 0.010"]


def test_self_check_prints_instead_of_raising(capsys):
    def failing(fn):
        core.fail("thing", "wrong", hint="look again")

    def stub(fn):
        raise NotImplementedError

    core.self_check(failing, None)
    core.self_check(stub, None)
    core.self_check(lambda fn: None, None)
    assert capsys.readouterr().out.splitlines() == ["FAIL  thing: wrong", "Hint: look again",
                                                     "FAIL  not implemented yet (NotImplementedError)",
                                                     "all checks passed"]
    with pytest.raises(ValueError, match="check_function must be"):
        core.self_check("check_x", None)
