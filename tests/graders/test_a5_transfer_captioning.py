"""Unit tests of graders.a5_transfer_captioning.

The notebook's solution cells are run through every check (they must pass); typical mistakes,
written here, must fail with a message that names the output and helps; an exception inside a
student's code is reported with the function and the case; bad arguments to a check raise a
ValueError naming them. The training checks are tested for what a dishonest or careless student
could try: a probe that ignores its inputs, a model that is not better than its baseline, a
captioner whose attention looks nowhere in particular.
"""
import copy
from pathlib import Path

import grading
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from graders import a5_transfer_captioning as grader  # noqa: E402
from graders.core import CheckFailure, self_check  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[2] / "solutions" / "a5_transfer_captioning" / "a5_transfer_captioning.ipynb"
SOLUTION_CELLS = ("extract_features", "fit_linear_probe", "prepare_finetune", "captioner", "caption_loss",
                  "greedy_caption", "spatial_attention", "attention_captioner")


@pytest.fixture(scope="module")
def ref():
    """The solution notebook's setup and solution cells, executed in one namespace."""
    return grading.solution_namespace(NOTEBOOK, SOLUTION_CELLS)


def fails(check, *args, match, **kwargs):
    with pytest.raises(CheckFailure, match=match):
        check.__wrapped__(*args, **kwargs)


# ---------------------------------------------------------------- extract_features
def test_extract_features_reference_passes_every_case(ref):
    for training in (True, False):
        for N, batch_size in ((5, 2), (1, 1), (4, 8)):
            results = grader.check_extract_features.__wrapped__(ref["extract_features"], N=N, batch_size=batch_size,
                                                                training=training)
            assert results["features"] < grader.TOL.float32


def test_extract_features_mistakes_fail(ref):
    def train_mode(model, images, batch_size=256):
        with torch.no_grad():
            return model.body(images)

    def with_graph(model, images, batch_size=256):
        was = model.training
        model.eval()
        out = model.body(images)
        model.train(was)
        return out

    def scores(model, images, batch_size=256):
        was = model.training
        model.eval()
        with torch.no_grad():
            out = model(images)
        model.train(was)
        return out

    def drops_last_batch(model, images, batch_size=256):
        was = model.training
        model.eval()
        with torch.no_grad():
            out = torch.cat([model.body(images[i:i + batch_size])
                             for i in range(0, len(images) - batch_size + 1, batch_size)])
        model.train(was)
        return out

    fails(grader.check_extract_features, train_mode, match="running statistics changed|left in")
    fails(grader.check_extract_features, with_graph, match="autograd graph")
    fails(grader.check_extract_features, scores, match="features")
    fails(grader.check_extract_features, drops_last_batch, match="features")

    def no_restore_fn(model, images, batch_size=256):
        model.eval()
        with torch.no_grad():
            return model.body(images)

    fails(grader.check_extract_features, no_restore_fn, match="left in eval mode")


def test_extract_features_exception_names_function_and_case():
    def broken(model, images, batch_size=256):
        raise RuntimeError("boom")

    fails(grader.check_extract_features, broken, match=r"extract_features: raised RuntimeError: boom \(case: N=5")


def test_extract_features_bad_arguments(ref):
    with pytest.raises(ValueError, match="batch_size"):
        grader.check_extract_features(ref["extract_features"], batch_size=0)
    with pytest.raises(ValueError, match="training"):
        grader.check_extract_features(ref["extract_features"], training="yes")


# ---------------------------------------------------------------- prepare_finetune
def test_prepare_finetune_reference_passes(ref):
    results = grader.check_prepare_finetune.__wrapped__(ref["prepare_finetune"])
    assert "re-initialised" in results["head"]


@pytest.mark.parametrize("bug, match", [
    ("keep head", "not re-initialised"),
    ("one lr", "expected lr=0.001"),
    ("head only", "body parameter .* is in no parameter group"),
    ("old head optimised", "is in no parameter group"),
    ("adam", "AdamW"),
    ("new dropout lost", "model.head\\[-1\\] must be nn.Linear"),
])
def test_prepare_finetune_mistakes_fail(bug, match):
    def prepare(model, n_classes, head_lr, body_lr, weight_decay=0.0):
        old = model.head[-1]
        body = [{"params": model.body.parameters(), "lr": head_lr if bug == "one lr" else body_lr}]
        if bug == "old head optimised":
            groups = body + [{"params": old.parameters(), "lr": head_lr}]
        if bug != "keep head":
            model.head[-1] = nn.Linear(old.in_features, n_classes)
        if bug == "new dropout lost":
            model.head = nn.Sequential(nn.Linear(old.in_features, n_classes), nn.Dropout(0.2))
        if bug != "old head optimised":
            groups = ([] if bug == "head only" else body) + [{"params": model.head.parameters(), "lr": head_lr}]
        cls = torch.optim.Adam if bug == "adam" else torch.optim.AdamW
        return cls(groups, weight_decay=weight_decay)

    fails(grader.check_prepare_finetune, prepare, match=match)


def test_finetune_check_needs_a_margin_over_scratch():
    model = grader.load_pretrained()
    head = copy.deepcopy(model)
    head.head[-1] = nn.Linear(head.head[-1].in_features, 5)
    runs = {"scratch": [head], "finetuned": [head]}
    fails(grader.check_finetune, runs, match="required >= 55% and >= scratch")
    with pytest.raises(ValueError, match="runs"):
        grader.check_finetune(["not", "runs"])
    with pytest.raises(ValueError, match="margin"):
        grader.check_finetune(runs, margin=2)


# ---------------------------------------------------------------- linear probe
def test_probe_that_ignores_its_inputs_is_caught(ref):
    """A 'probe' that trains on the whole training pool itself would score well; refitting on shuffled
    labels exposes it."""
    x, y = grader._target_data("train")
    feats = ref["extract_features"](grader.load_pretrained(), torch.from_numpy(x)).numpy()

    def cheat(features, labels):
        return ref["fit_linear_probe"](feats, y)

    fails(grader.check_linear_probe, cheat, ref["extract_features"], match="shuffled labels")


def test_probe_below_minimum_fails_and_says_so(ref):
    def constant(features, labels):
        from sklearn.dummy import DummyClassifier
        return DummyClassifier(strategy="most_frequent").fit(features, labels)

    fails(grader.check_linear_probe, constant, ref["extract_features"], match="below 55%")
    fails(grader.check_linear_probe, lambda f, lab: "not a classifier", ref["extract_features"], match="predict")
    with pytest.raises(ValueError, match="minimum"):
        grader.check_linear_probe(constant, ref["extract_features"], minimum=1.5)


# ---------------------------------------------------------------- spatial attention
def test_spatial_attention_reference_passes(ref):
    for kwargs in ({}, {"masked": True, "N": 4, "Hg": 3, "Wg": 2}, {"N": 1, "Hg": 1, "Wg": 1}):
        results = grader.check_spatial_attention.__wrapped__(ref["SpatialAttention"], **kwargs)
        assert max(results.values()) < grader.TOL.forward


def _attention_with(bug):
    class Attention(nn.Module):
        def __init__(self, H, C, A):
            super().__init__()
            self.W_h, self.W_f, self.v = nn.Linear(H, A, bias=False), nn.Linear(C, A), nn.Linear(A, 1, bias=False)

        def forward(self, h, features, mask=None):
            N, C, Hg, Wg = features.shape
            grid = features.transpose(2, 3) if bug == "column order" else features
            cells = grid.flatten(2).transpose(1, 2)
            scores = self.v(torch.tanh(self.W_h(h)[:, None] + self.W_f(cells))).squeeze(2)
            if mask is not None and bug != "mask ignored":
                scores = scores.masked_fill(~mask.reshape(N, -1), float("-inf"))
            alpha = torch.sigmoid(scores) if bug == "sigmoid" else torch.softmax(scores, dim=0 if bug == "batch" else 1)
            if bug == "channels":  # a softmax over the channels of each cell, averaged
                alpha = torch.softmax(cells, dim=2).mean(2)
            context = torch.bmm(alpha[:, None], cells).squeeze(1)
            return context, alpha.reshape(N, Hg, Wg)

    return Attention


@pytest.mark.parametrize("bug, kwargs, match", [
    ("column order", {"Hg": 2, "Wg": 3}, "alpha"),
    ("mask ignored", {"masked": True}, "alpha"),
    ("sigmoid", {}, "alpha"),
    ("batch", {}, "alpha"),
    ("channels", {}, "alpha"),
])
def test_spatial_attention_mistakes_fail(bug, kwargs, match):
    fails(grader.check_spatial_attention, _attention_with(bug), match=match, **kwargs)


def test_spatial_attention_layer_shapes_are_named():
    class Wrong(nn.Module):
        def __init__(self, H, C, A):
            super().__init__()
            self.W_h, self.W_f, self.v = nn.Linear(H, A), nn.Linear(C, A), nn.Linear(A, 1, bias=False)

    fails(grader.check_spatial_attention, Wrong, match=r"self.W_h must be nn.Linear\(6, 7, bias=False\)")
    with pytest.raises(ValueError, match="masked"):
        grader.check_spatial_attention(Wrong, masked=1)


# ---------------------------------------------------------------- captioners
def test_captioners_reference_pass(ref):
    for kwargs in ({}, {"N": 1, "T": 1, "Hg": 4, "Wg": 4}):
        assert max(grader.check_captioner.__wrapped__(ref["Captioner"], **kwargs).values()) < grader.TOL.forward
        assert max(grader.check_captioner.__wrapped__(ref["AttentionCaptioner"], attention=True,
                                                      **kwargs).values()) < grader.TOL.forward


def test_captioner_mistakes_fail(ref):
    class SumInit(ref["Captioner"]):
        def init_state(self, features):
            total = features.sum(dim=(2, 3))
            return torch.tanh(self.init_h(total)), torch.tanh(self.init_c(total))

    class NoTanh(ref["Captioner"]):
        def init_state(self, features):
            mean = features.mean(dim=(2, 3))
            return self.init_h(mean), self.init_c(mean)

    class AttendsAfterCell(ref["AttentionCaptioner"]):
        def step(self, features, y_prev, state):
            zero = features.new_zeros(features.shape[0], features.shape[1])
            h, c = self.cell(torch.cat([self.embedding(y_prev), zero], dim=1), state)
            context, alpha = self.attention(h, features)
            return self.out(torch.cat([h, context], dim=1)), (h, c), alpha

    class AttendsWithC(ref["AttentionCaptioner"]):
        def step(self, features, y_prev, state):
            context, alpha = self.attention(state[1], features)
            h, c = self.cell(torch.cat([self.embedding(y_prev), context], dim=1), state)
            return self.out(torch.cat([h, context], dim=1)), (h, c), alpha

    class ContextFirst(ref["AttentionCaptioner"]):
        def step(self, features, y_prev, state):
            context, alpha = self.attention(state[0], features)
            h, c = self.cell(torch.cat([context, self.embedding(y_prev)], dim=1), state)
            return self.out(torch.cat([h, context], dim=1)), (h, c), alpha

    fails(grader.check_captioner, SumInit, match="scores")
    fails(grader.check_captioner, AttendsWithC, attention=True, match="scores|alphas")
    fails(grader.check_captioner, ContextFirst, attention=True, match="scores|alphas")
    fails(grader.check_captioner, NoTanh, match="scores")
    fails(grader.check_captioner, AttendsAfterCell, attention=True, match="scores|alphas")
    fails(grader.check_captioner, ref["AttentionCaptioner"], match=r"AttentionCaptioner\(5, 9, 4, 6\)|raised")


def test_captioner_missing_layer_is_named(ref):
    class NoInitC(nn.Module):
        def __init__(self, C, V, E, H):
            super().__init__()
            self.init_h = nn.Linear(C, H)

    fails(grader.check_captioner, NoInitC, match=r"self.init_c must be nn.Linear\(5, 6, bias=True\)")


# ---------------------------------------------------------------- loss and decoding
def test_caption_loss_reference_and_mistakes(ref):
    assert grader.check_caption_loss.__wrapped__(ref["caption_loss"])["loss"] < grader.TOL.forward

    def unshifted(model, features, captions):
        scores, _ = model(features, captions[:, :-1])
        return F.cross_entropy(scores.flatten(0, 1), captions[:, :-1].flatten(), ignore_index=0)

    def padding_counted(model, features, captions):
        scores, _ = model(features, captions[:, :-1])
        return F.cross_entropy(scores.flatten(0, 1), captions[:, 1:].flatten())

    def as_float(model, features, captions):
        return ref["caption_loss"](model, features, captions).item()

    fails(grader.check_caption_loss, unshifted, match="loss")
    fails(grader.check_caption_loss, padding_counted, match="loss")
    fails(grader.check_caption_loss, as_float, match="scalar tensor")


def test_greedy_caption_reference_and_mistakes(ref):
    assert "compared exactly" in grader.check_greedy_caption.__wrapped__(ref["greedy_caption"])["tokens"]
    grader.check_greedy_caption.__wrapped__(ref["greedy_caption"], offsets=(3,), end_at=(9,), max_len=5)

    def never_stops(model, features, max_len):
        state, y, out = model.init_state(features), torch.full((features.shape[0],), 1), []
        for _ in range(max_len):
            scores, state, _ = model.step(features, y, state)
            y = scores.argmax(1)
            out.append(y)
        return torch.stack(out, 1)

    def starts_from_null(model, features, max_len):
        state, y, out = model.init_state(features), torch.zeros(features.shape[0], dtype=torch.long), []
        done = torch.zeros(features.shape[0], dtype=torch.bool)
        for _ in range(max_len):
            scores, state, _ = model.step(features, y, state)
            y = scores.argmax(1).masked_fill(done, 0)
            out.append(y)
            done |= y == 2
            if done.all():
                break
        return torch.stack(out, 1)

    fails(grader.check_greedy_caption, never_stops, match="tokens")
    fails(grader.check_greedy_caption, starts_from_null, match="tokens")
    with pytest.raises(ValueError, match="offsets and end_at"):
        grader.check_greedy_caption(never_stops, offsets=(1, 2), end_at=(1,))


def test_self_check_prints_fail_instead_of_raising(capsys, ref):
    self_check(grader.check_spatial_attention, _attention_with("sigmoid"))
    assert capsys.readouterr().out.startswith("FAIL  SpatialAttention: alpha")


# ---------------------------------------------------------------- trained captioners
def test_untrained_captioner_fails_the_quality_checks(ref):
    torch.manual_seed(0)
    C = grader._scene_data()[0].shape[1]
    model = ref["AttentionCaptioner"](C, len(grader.CaptionVocab()), 8, 16, 8).eval()
    fails(grader.check_captions, model, match="exact match 0.0%")
    with pytest.raises(CheckFailure, match="localisation|attention peaks"):
        grader.check_localisation.__wrapped__(model, minimum=0.9)
    test_scenes = grader._scene_data()[2]
    assert len(grader._noun_cells(test_scenes)) == sum(len(objects) for objects in test_scenes.objects)


# ---------------------------------------------------------------- red-team attacks (each earned full marks once)
def test_captioner_that_returns_the_oracle_gets_nothing(ref):
    class Oracle(ref["Captioner"]):
        def forward(self, features, captions_in):
            return grader.oracle_captioner_forward(self, features, captions_in, False)

    fails(grader.check_captioner, Oracle, match="no gradient reaches")


def test_finetune_run_trains_what_it_checked(ref):
    """A prepare_finetune that fits the head on other data and freezes training (lr 0) is refused: the
    grader requires the pretrained body untouched and the recipe's learning rates, re-initialises the
    head and builds its own AdamW from the student's groups."""
    def frozen(model, n_classes, head_lr, body_lr, weight_decay=0.0):
        opt = ref["prepare_finetune"](model, n_classes, head_lr, body_lr, weight_decay)
        for group in opt.param_groups:
            group["lr"] = 0.0
        return opt

    def body_trained(model, n_classes, head_lr, body_lr, weight_decay=0.0):
        with torch.no_grad():
            model.body[0].weight.mul_(1.01)
        return ref["prepare_finetune"](model, n_classes, head_lr, body_lr, weight_decay)

    with pytest.raises(CheckFailure, match="expected lr"):
        grader.finetune_run(frozen)
    with pytest.raises(CheckFailure, match="must stay the pretrained SmallCNN"):
        grader.finetune_run(body_trained)


def test_held_out_test_images_come_in_an_order_only_the_seed_gives():
    public_y = grader._target_data("test")[1]
    held_y = grader._target_data("test", 777)[1]
    assert sorted(public_y.tolist()) == sorted(held_y.tolist()) and (public_y != held_y).mean() > 0.5
