"""The grader of assignment a5_transfer_captioning: feature extraction, a linear probe and fine-tuning
of the pretrained Fashion CNN, and two image captioners (plain and with spatial attention).

Oracles are independent of any solution:

- ``extract_features``: ``model.body`` of a deep copy, in eval mode, under ``torch.no_grad()``;
- ``fit_linear_probe`` and ``prepare_finetune``: the grader trains with them itself, on the stated
  number of examples per class that it draws, with its own training loop, and measures accuracy on
  the public test images (visible tests) or on the same test pictures rotated by fresh angles
  (hidden tests, ``held_out_seed``). Nothing a student's notebook trains or stores is graded, so
  training on more data earns nothing; a probe that ignores the labels it is given is caught by
  refitting it on shuffled labels;
- ``SpatialAttention``: the documented additive formula in float64 NumPy (the same as a4's
  ``oracle_additive_attention``) on the flattened grid;
- ``Captioner`` / ``AttentionCaptioner``: the documented steps written out with the student's
  layers' weights in float64 (``nn.LSTMCell`` equations from the PyTorch documentation);
- ``caption_loss``: ``F.cross_entropy(..., ignore_index=NULL_ID)`` of a stand-in model whose scores
  depend on the words it is fed (teacher forcing);
- ``greedy_caption``: a scripted captioner whose greedy output is known by construction; token ids
  are compared exactly;
- the trained captioners: the grader trains the student's classes (the plain one with the student's
  loss, the attention one with ``oracle_caption_loss``) with its own loop on the recipe's scenes,
  decodes greedily with its own decoder and scores exact match and attention localisation on
  held-out scenes (public test split, or the same layouts re-rendered from ``held_out_seed``).
"""
import copy
import functools
from numbers import Real
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F

from helpers._validate import integer
from helpers.cnn import SmallCNN, load_pretrained
from helpers.data import TARGET_CLASSES, few_shot_indices, rotated_fashion
from helpers.scene_encoder import grid_features, load_scene_encoder
from helpers.scenes import END_ID, NULL_ID, SHAPES, START_ID, CaptionVocab, scene_splits, scenes_from_objects

from . import core, modules
from .a4_seq2seq_attention import oracle_additive_attention
from .core import TOL, self_check  # noqa: F401 (the notebook's self-check cells: grader.self_check)

NUMPY_ONLY = False

#: Few-shot transfer: the target task (Fashion-MNIST classes 5-9, rotated), examples per class,
#: the seeds that draw them (and initialise the models), and the fine-tuning recipe the grader trains with.
TRANSFER_RECIPE = MappingProxyType({"per_class": 5, "probe_seeds": (0, 1, 2), "finetune_seeds": (0,), "steps": 60,
                                    "batch_size": 25, "head_lr": 1e-2, "body_lr": 1e-3, "weight_decay": 1e-4})
#: Scenes, model sizes and training budget of the two captioners. (Both read-only: test cells read them.)
CAPTION_RECIPE = MappingProxyType({"n_train": 4000, "n_test": 500, "seed": 0, "emb_size": 16, "hidden_size": 64,
                                   "attn_size": 32, "steps": 600, "batch_size": 64, "lr": 1e-2})

NOT_FITTED = "fit_linear_probe must return a fitted scikit-learn classifier (it has .predict(features))"


# ============================================================================ shared pieces
def _minimum(minimum, arg="minimum"):
    if isinstance(minimum, bool) or not isinstance(minimum, Real) or not 0 <= minimum <= 1:
        raise ValueError(f"{arg} must be a number in [0, 1], got {minimum!r}")
    return float(minimum)


def _held_out_seed(held_out_seed):
    return None if held_out_seed is None else integer(held_out_seed, "held_out_seed", 0)


def _which(held_out_seed):
    return "the public test images" if held_out_seed is None else "held-out test images"


def _grid(seed, N, C, Hg, Wg):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(N, C, Hg, Wg)))


class _TinyNet(torch.nn.Module):
    """A stand-in CNN with the course's ``body`` / ``head`` split. Its body holds batch norm with
    non-trivial running statistics and dropout, so train mode and eval mode give different features."""

    def __init__(self, n_classes=4, channels=3):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, channels, 3, padding=1), torch.nn.BatchNorm2d(channels), torch.nn.ReLU(),
            torch.nn.Dropout(0.5), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
        self.head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(4 * channels, n_classes))
        with torch.no_grad():
            self.body[1].running_mean.uniform_(0.2, 0.6)
            self.body[1].running_var.uniform_(1.5, 3.0)

    def forward(self, x):
        return self.head(self.body(x))


# ============================================================================ feature extraction
@core.check
def check_extract_features(extract_features, seed=0, N=5, batch_size=2, training=True, size=8):
    """Check ``extract_features(model, images, batch_size)`` on a stand-in CNN.

    The features must equal ``model.body(images)`` in eval mode (batch norm running statistics,
    dropout off), carry no autograd graph, leave the model's mode (``training``) and its batch-norm
    statistics as they were, and not depend on ``batch_size``. Raises CheckFailure; ValueError for
    bad arguments.
    """
    seed, N = integer(seed, "seed", 0), integer(N, "N")
    batch_size, size = integer(batch_size, "batch_size"), integer(size, "size", 4)
    if training is not True and training is not False:
        raise ValueError(f"training must be True or False, got {training!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _TinyNet()
        images = torch.rand(N, 1, size, size)
    model.train(training)
    expected = copy.deepcopy(model).eval().body(images).detach()
    stats = model.body[1].running_mean.clone()
    name = "extract_features"
    case = {"N": N, "batch_size": batch_size, "model mode": "train" if training else "eval", "image": f"{size}x{size}"}
    out = core.call(extract_features, model, images, batch_size, name=name, case=case,
                    hint="extract_features(model, images, batch_size) -> features (N, F)")
    if not torch.is_tensor(out):
        core.fail(name, f"expected a torch tensor, got {type(out).__name__}.")
    if out.requires_grad:
        core.fail(name, "the features carry an autograd graph (requires_grad=True).",
                  "compute them under torch.no_grad(): nothing is trained here, and a graph wastes memory")
    if model.training != training:
        core.fail(name, f"the model was in {'train' if training else 'eval'} mode and is left in "
                        f"{'train' if model.training else 'eval'} mode.",
                  "remember model.training before calling model.eval(), and restore it at the end")
    if not torch.equal(stats, model.body[1].running_mean):
        core.fail(name, "the batch-norm running statistics changed: the model ran in train mode.",
                  "call model.eval() before the forward passes")
    hint = ("features are model.body(images) in eval mode (batch norm uses its running statistics, dropout is "
            "off), not the class scores model(images); every image exactly once, the last batch may be smaller")
    return {"features": core.compare(f"{name}: features", out.double(), expected.double(), TOL.float32, hint)}


# ============================================================================ linear probe
@functools.lru_cache(maxsize=3)
def _target_data(split, held_out_seed=None):
    """Rotated target images: the public ones, or (held_out_seed) the test pictures at fresh angles, shuffled."""
    if held_out_seed is None:
        return rotated_fashion(split, TARGET_CLASSES)
    x, y = rotated_fashion(split, TARGET_CLASSES, 10_000 + held_out_seed)
    order = np.random.default_rng(held_out_seed).permutation(len(y))  # an order no student code can know
    return x[order], y[order]


def few_shot_images(seed=0):
    """The few-shot training set the graded tests draw with ``seed``: (images float32 tensor (25, 1, 36, 36),
    labels int64 tensor (25,)) -- TRANSFER_RECIPE["per_class"] rotated images of each target class."""
    x, y = _target_data("train")
    idx = torch.from_numpy(few_shot_indices(y, TRANSFER_RECIPE["per_class"], integer(seed, "seed", 0)))
    return torch.from_numpy(x)[idx], torch.from_numpy(y)[idx]


def _features(extract_features, model, images):
    out = core.call(extract_features, model, images, 256, name="extract_features",
                    case={"N": len(images), "model": "the pretrained SmallCNN"},
                    hint="extract_features(model, images, batch_size) -> features (N, F)")
    if not torch.is_tensor(out) or out.shape[0] != len(images):
        core.fail("extract_features", "must return a tensor with one row per image; check its own test first.")
    return out.detach().float().numpy()


def _probe_accuracy(fit_linear_probe, train_feats, labels, test_feats, test_labels, case):
    probe = core.call(fit_linear_probe, train_feats, labels, name="fit_linear_probe", case=case,
                      hint="fit_linear_probe(features, labels) -> fitted classifier")
    if not callable(getattr(probe, "predict", None)):
        core.fail("fit_linear_probe", f"returned {type(probe).__name__}.", NOT_FITTED)
    predicted = core.call(probe.predict, test_feats, name="fit_linear_probe", case=case, hint=NOT_FITTED)
    return float(np.mean(np.asarray(predicted).reshape(-1) == test_labels))


@core.check
def check_linear_probe(fit_linear_probe, extract_features, minimum=0.55, held_out_seed=None):
    """Train ``fit_linear_probe`` on features (``extract_features`` of the pretrained CNN) of
    TRANSFER_RECIPE["per_class"] rotated images per target class, drawn with each of the recipe's
    probe seeds, and require the mean accuracy on the test images to be >= ``minimum``; refitted on
    shuffled labels it must fall to near chance (< 40 %). Raises CheckFailure; ValueError for bad arguments.
    """
    minimum, held_out_seed = _minimum(minimum), _held_out_seed(held_out_seed)
    model = load_pretrained()
    test_x, test_y = _target_data("test", held_out_seed)
    test_feats = _features(extract_features, model, torch.from_numpy(test_x))
    accuracies, shuffled = [], []
    for seed in TRANSFER_RECIPE["probe_seeds"]:
        x, y = few_shot_images(seed)
        feats, labels = _features(extract_features, model, x), y.numpy()
        case = {"examples per class": TRANSFER_RECIPE["per_class"], "seed": seed, "features": feats.shape}
        accuracies.append(_probe_accuracy(fit_linear_probe, feats, labels, test_feats, test_y, case))
        permuted = np.random.default_rng(seed).permutation(labels)
        shuffled.append(_probe_accuracy(fit_linear_probe, feats, permuted, test_feats, test_y, case))
    accuracy = float(np.mean(accuracies))
    if np.mean(shuffled) >= 0.4:
        core.fail("fit_linear_probe", f"fitted on shuffled labels it still scores {np.mean(shuffled):.1%}: it does "
                                      "not learn from the features and labels it is given.",
                  "fit the classifier on exactly the arrays passed in")
    if not accuracy >= minimum:
        core.fail("linear probe", f"mean accuracy {accuracy:.1%} on {_which(held_out_seed)} is below {minimum:.0%} "
                                  f"(per seed: {', '.join(f'{a:.1%}' for a in accuracies)}).",
                  "standardise the features and use LogisticRegression; check extract_features first")
    return {"accuracy": f"mean {accuracy:.1%} on {_which(held_out_seed)} with {TRANSFER_RECIPE['per_class']} examples "
                        f"per class, over seeds {TRANSFER_RECIPE['probe_seeds']} (per seed: "
                        f"{', '.join(f'{a:.1%}' for a in accuracies)}; required >= {minimum:.0%})"}


# ============================================================================ fine-tuning
def _group_of(optimizer):
    """{id(parameter): (group index, lr, weight_decay)}; ValueError if a parameter is in two groups."""
    found = {}
    for index, group in enumerate(optimizer.param_groups):
        for p in group["params"]:
            if id(p) in found:
                core.fail("prepare_finetune", "a parameter appears in two parameter groups.",
                          "the body group and the head group must be disjoint")
            found[id(p)] = (index, group["lr"], group.get("weight_decay"))
    return found


def _check_groups(optimizer, model, head_lr, body_lr, weight_decay):
    """Every parameter of ``model`` in exactly one group of ``optimizer``: the body's with body_lr, the
    head's with head_lr, all with weight_decay, and nothing else."""
    name = "prepare_finetune"
    groups = _group_of(optimizer)
    expected = [(p, "body", body_lr) for p in model.body.parameters()] + \
               [(p, "head", head_lr) for p in model.head.parameters()]
    for p, part, lr in expected:
        if id(p) not in groups:
            core.fail(name, f"a {part} parameter of shape {tuple(p.shape)} is in no parameter group.",
                      "build the optimiser AFTER replacing the head, from model.body and model.head")
        if groups[id(p)][1] != lr or groups[id(p)][2] != weight_decay:
            core.fail(name, f"a {part} parameter has lr={groups[id(p)][1]}, weight_decay={groups[id(p)][2]}; "
                            f"expected lr={lr}, weight_decay={weight_decay}.",
                      "two groups: {'params': body parameters, 'lr': body_lr}, {'params': head, 'lr': head_lr}")
    if len(groups) != len(expected):
        core.fail(name, f"the optimiser holds {len(groups) - len(expected)} parameters that are not the model's.",
                  "are you optimising the old head?")


def _prepared(prepare_finetune, case):
    """The pretrained CNN after the student's ``prepare_finetune``, checked to be exactly the pretrained body
    and a plain fresh nn.Linear head (re-initialised here from the seed), with a new AdamW built from the
    student's parameter groups -- so the student's code decides the groups and nothing else."""
    r, name = TRANSFER_RECIPE, "prepare_finetune"
    model, pretrained = load_pretrained(), load_pretrained().body.state_dict()
    opt = core.call(prepare_finetune, model, len(TARGET_CLASSES), r["head_lr"], r["body_lr"], r["weight_decay"],
                    name=name, case=case, hint="check prepare_finetune's own test first")
    head = model.head[-1] if isinstance(getattr(model, "head", None), torch.nn.Sequential) else None
    if (type(model) is not SmallCNN or "forward" in vars(model) or type(head) is not torch.nn.Linear
            or head.out_features != len(TARGET_CLASSES)
            or any(not torch.equal(v, model.body.state_dict()[k]) for k, v in pretrained.items())):
        core.fail(name, "the model must stay the pretrained SmallCNN with only model.head[-1] replaced by a new "
                        "nn.Linear.", "do not train, replace or wrap anything else")
    if not isinstance(opt, torch.optim.AdamW):
        core.fail(name, f"must return a torch.optim.AdamW, got {type(opt).__name__}.")
    _check_groups(opt, model, r["head_lr"], r["body_lr"], r["weight_decay"])
    head.reset_parameters()
    groups = [{"params": g["params"], "lr": g["lr"]} for g in opt.param_groups]
    return model, torch.optim.AdamW(groups, weight_decay=r["weight_decay"])


@core.check
def check_prepare_finetune(prepare_finetune, seed=0, n_classes=3, head_lr=1e-2, body_lr=1e-3, weight_decay=0.01):
    """Check ``prepare_finetune(model, n_classes, head_lr, body_lr, weight_decay)`` on a stand-in CNN:
    ``model.head[-1]`` is replaced by a freshly initialised ``nn.Linear(F, n_classes)``, the body is
    untouched, and the returned ``torch.optim.AdamW`` holds every parameter exactly once, the body's
    with ``lr=body_lr`` and the head's with ``lr=head_lr``, all with ``weight_decay``.
    """
    seed, n_classes = integer(seed, "seed", 0), integer(n_classes, "n_classes", 2)
    for value, arg in ((head_lr, "head_lr"), (body_lr, "body_lr"), (weight_decay, "weight_decay")):
        if isinstance(value, bool) or not isinstance(value, Real) or value < 0:
            raise ValueError(f"{arg} must be a number >= 0, got {value!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _TinyNet(n_classes=n_classes)
    old_head = model.head[-1]
    old_weight, body = old_head.weight.detach().clone(), copy.deepcopy(model.body.state_dict())
    name = "prepare_finetune"
    case = {"n_classes": n_classes, "head_lr": head_lr, "body_lr": body_lr, "weight_decay": weight_decay}
    optimizer = core.call(prepare_finetune, model, n_classes, head_lr, body_lr, weight_decay, name=name, case=case,
                          hint="prepare_finetune(model, n_classes, head_lr, body_lr, weight_decay) -> optimizer")
    new_head = model.head[-1] if isinstance(getattr(model, "head", None), torch.nn.Sequential) else None
    if not isinstance(new_head, torch.nn.Linear) or (new_head.in_features, new_head.out_features) != (12, n_classes):
        core.fail(name, f"model.head[-1] must be nn.Linear(12, {n_classes}), got {new_head!r}.",
                  "keep model.head[0] (the dropout) and replace model.head[-1]")
    if new_head is old_head or torch.equal(new_head.weight.detach(), old_weight):
        core.fail(name, "the head was not re-initialised: it still holds the source task's weights.",
                  "assign a new nn.Linear(model.head[-1].in_features, n_classes)")
    if any(not torch.equal(v, model.body.state_dict()[k]) for k, v in body.items()):
        core.fail(name, "the body's weights changed.", "only the head is replaced")
    if not isinstance(optimizer, torch.optim.AdamW):
        core.fail(name, f"must return a torch.optim.AdamW, got {type(optimizer).__name__}.")
    _check_groups(optimizer, model, head_lr, body_lr, weight_decay)
    n_params = len(list(model.parameters()))
    return {"head": f"nn.Linear(12, {n_classes}), re-initialised", "parameter groups": f"body lr {body_lr}, "
            f"head lr {head_lr}, {n_params} parameters each in one group"}


def _train_classifier(model, optimizer, x, y, steps, batch_size, seed):
    """The grader's training loop: shuffled mini-batches, cross-entropy, ``steps`` optimiser steps."""
    gen = torch.Generator().manual_seed(seed)
    model.train()
    done = 0
    while done < steps:
        for idx in torch.randperm(len(x), generator=gen).split(batch_size)[:steps - done]:
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
    return model.eval()


def _accuracy_of(model, x, y):
    with torch.no_grad():
        return float((model.eval()(x).argmax(1) == y).float().mean())


def finetune_run(prepare_finetune):
    """Train, for each fine-tuning seed of TRANSFER_RECIPE, a SmallCNN from scratch (one AdamW, lr = head_lr) and
    the pretrained CNN prepared by ``prepare_finetune`` on the same few-shot images with the same loop.
    Returns a dict {"scratch": [models], "finetuned": [models]} for ``check_finetune``. Raises CheckFailure.
    """
    r, runs = TRANSFER_RECIPE, {"scratch": [], "finetuned": []}
    for seed in r["finetune_seeds"]:
        x, y = few_shot_images(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            scratch = SmallCNN(len(TARGET_CLASSES))
            opt = torch.optim.AdamW(scratch.parameters(), lr=r["head_lr"], weight_decay=r["weight_decay"])
            runs["scratch"].append(_train_classifier(scratch, opt, x, y, r["steps"], r["batch_size"], seed))
            case = {"examples per class": r["per_class"], "seed": seed}
            model, opt = _prepared(prepare_finetune, case)
            runs["finetuned"].append(core.call(_train_classifier, model, opt, x, y, r["steps"], r["batch_size"], seed,
                                               name="fine-tuning", case=case, hint="check prepare_finetune's test"))
    return runs


@core.check
def check_finetune(runs, minimum=0.55, margin=0.1, held_out_seed=None):
    """Check the models of ``finetune_run``: mean test accuracy of the fine-tuned models >= ``minimum``
    and >= the scratch models' mean + ``margin``. Raises CheckFailure; ValueError for bad arguments.
    """
    minimum, margin, held_out_seed = _minimum(minimum), _minimum(margin, "margin"), _held_out_seed(held_out_seed)
    if not isinstance(runs, dict) or set(runs) != {"scratch", "finetuned"}:
        raise ValueError("runs must be the dict that finetune_run returns")
    x, y = map(torch.from_numpy, _target_data("test", held_out_seed))
    scratch = float(np.mean([_accuracy_of(m, x, y) for m in runs["scratch"]]))
    tuned = float(np.mean([_accuracy_of(m, x, y) for m in runs["finetuned"]]))
    if not (tuned >= minimum and tuned >= scratch + margin):
        core.fail("fine-tuning", f"mean accuracy {tuned:.1%} on {_which(held_out_seed)}; required >= {minimum:.0%} "
                                 f"and >= scratch ({scratch:.1%}) + {margin:.0%}.",
                  "check prepare_finetune's test: re-initialised head, body lr smaller than head lr")
    return {"accuracy": f"fine-tuned {tuned:.1%} vs scratch {scratch:.1%} on {_which(held_out_seed)} "
                        f"(required >= {minimum:.0%} and >= scratch + {margin:.0%})"}


# ============================================================================ spatial attention
def _attention_case(seed, N, C, Hg, Wg, H, A, masked):
    rng = np.random.default_rng(seed)
    case = {"h": rng.normal(size=(N, H)), "features": rng.normal(size=(N, C, Hg, Wg)),
            "W_h": rng.normal(scale=0.6, size=(A, H)), "W_f": rng.normal(scale=0.6, size=(A, C)),
            "b_f": rng.normal(scale=0.3, size=A), "v": rng.normal(size=(1, A))}
    mask = np.ones((N, Hg, Wg), dtype=bool)
    if masked:  # row n keeps a top-left block of the grid (a smaller image padded to the grid size)
        for n in range(N):
            mask[n, max(1, Hg - n % Hg):, :] = False
            mask[n, :, max(1, Wg - (n // 2) % Wg):] = False
    case["mask"] = mask
    return case


def oracle_spatial_attention(h, features, mask, W_h, W_f, b_f, v):
    """Float64 NumPy Show-Attend-Tell attention: e_i = v . tanh(W_h h + W_f f_i + b_f) over the
    Hg*Wg grid cells i (features (N, C, Hg, Wg) flattened row by row), masked cells excluded.
    Returns (context (N, C), alpha (N, Hg, Wg))."""
    N, C, Hg, Wg = features.shape
    keys = features.reshape(N, C, Hg * Wg).transpose(0, 2, 1)
    context, weights = oracle_additive_attention(h, keys, mask.reshape(N, -1), W_h, W_f, b_f, v)
    return context, weights.reshape(N, Hg, Wg)


def _build_attention(SpatialAttention, p, case, seed):
    return modules.additive_attention(SpatialAttention, p, "W_h", "W_f", "SpatialAttention", case, seed,
                                      "__init__(hidden_size, feature_dim, attn_size) creates self.W_h, self.W_f "
                                      "and self.v")


@core.check
def check_spatial_attention(SpatialAttention, seed=0, N=3, C=5, Hg=4, Wg=4, H=6, A=7, masked=False):
    """Check ``SpatialAttention`` against its docstring on one float64 case: weights (N, Hg, Wg)
    summing to 1 over the grid cells and the context (N, C) against the float64 formula, masked
    cells (``masked=True``) exactly 0 and their features ignored, gradients reaching every input.
    Raises CheckFailure; ValueError for bad arguments.
    """
    seed = integer(seed, "seed", 0)
    N, C, Hg, Wg, H, A = (integer(v, k) for v, k in ((N, "N"), (C, "C"), (Hg, "Hg"), (Wg, "Wg"), (H, "H"), (A, "A")))
    if masked is not True and masked is not False:
        raise ValueError(f"masked must be True or False, got {masked!r}")
    p = _attention_case(seed, N, C, Hg, Wg, H, A, masked)
    case = {"N": N, "C": C, "grid": f"{Hg}x{Wg}", "H": H, "A": A, "mask": "some cells masked" if masked else None}
    layer = _build_attention(SpatialAttention, p, case, seed)
    exp_context, exp_alpha = oracle_spatial_attention(**p)
    h = torch.from_numpy(p["h"]).requires_grad_()
    feats = torch.from_numpy(np.where(p["mask"][:, None], p["features"], 1e3)).requires_grad_()
    mask = torch.from_numpy(p["mask"]) if masked else None
    name = "SpatialAttention"
    out = core.call(layer, h, feats, mask, name=name, case=case,
                    hint="forward(h, features, mask=None) -> (context (N, C), alpha (N, Hg, Wg))")
    context, alpha = modules.tensors(name, out, ("context", "alpha"))
    if tuple(alpha.shape) != (N, Hg, Wg):
        core.fail(f"{name}: alpha", f"expected shape {(N, Hg, Wg)}, got {tuple(alpha.shape)}.",
                  "one weight per grid cell: scores over the Hg*Wg cells, softmax over cells (not over channels)")
    results = {"alpha": core.compare(f"{name}: alpha", alpha, exp_alpha, TOL.forward,
                                     "flatten the grid to (N, Hg*Wg, C); softmax over the cells; the weights of "
                                     "each image sum to 1")}
    if masked:
        modules.zero_where_masked(f"{name}: alpha", alpha, mask, "masked_fill the scores of masked cells with -inf "
                                                                 "before the softmax")
    results["context"] = core.compare(f"{name}: context", context, exp_context, TOL.forward,
                                      "context = sum over cells of alpha_i * f_i")
    (context.sum() + (alpha * torch.arange(alpha[0].numel(), dtype=alpha.dtype).reshape(Hg, Wg)).sum()).backward()
    scored = [("h", h)] + [(f"self.{k}", getattr(layer, k).weight) for k in ("W_h", "W_f", "v")]
    modules.reaches(name, [("features", feats)] + (scored if Hg * Wg > 1 else []))  # one cell: alpha is constant
    return results


# ============================================================================ the captioners
def _lstm_cell(cell, x, h, c):
    """One nn.LSTMCell step written out (gates i, f, g, o as in the PyTorch documentation), float64."""
    gates = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def oracle_captioner_forward(model, features, captions_in, attention):
    """Scores (N, T, V) (and alphas (N, T, Hg, Wg) with attention) of the documented captioner with the
    weights of the student's ``model``: the cell reads [embedding; mean feature] (or [embedding; context]);
    float64, no autograd."""
    with torch.no_grad():
        mean = features.mean(dim=(2, 3))
        h, c = torch.tanh(model.init_h(mean)), torch.tanh(model.init_c(mean))
        scores, alphas = [], []
        for t in range(captions_in.shape[1]):
            x = model.embedding.weight[captions_in[:, t]]
            if attention:
                a = model.attention
                p = {"W_h": a.W_h.weight, "W_f": a.W_f.weight, "b_f": a.W_f.bias, "v": a.v.weight}
                mask = np.ones((features.shape[0], *features.shape[2:]), dtype=bool)
                z, alpha = oracle_spatial_attention(h.numpy(), features.numpy(), mask,
                                                    **{k: w.numpy() for k, w in p.items()})
                z = torch.from_numpy(z)
                alphas.append(torch.from_numpy(alpha))
            else:
                z = mean
            x = torch.cat([x, z], dim=1)
            h, c = _lstm_cell(model.cell, x, h, c)
            scores.append(model.out(torch.cat([h, z], dim=1) if attention else h))
        return torch.stack(scores, 1), (torch.stack(alphas, 1) if attention else None)


def _build_captioner(cls, sizes, attention, seed, case):
    name = cls_name = "AttentionCaptioner" if attention else "Captioner"
    C, V, E, H = sizes["C"], sizes["V"], sizes["E"], sizes["H"]
    args = (C, V, E, H, sizes["A"]) if attention else (C, V, E, H)
    model = modules.construct(cls, args, name, case, seed, f"{cls_name}{args} creates the layers of the docstring")
    modules.linear(name, model, "init_h", C, H, True)
    modules.linear(name, model, "init_c", C, H, True)
    emb = modules.layer(name, model, "embedding", torch.nn.Embedding, f"nn.Embedding({V}, {E}, padding_idx=NULL_ID)")
    if (emb.num_embeddings, emb.embedding_dim, emb.padding_idx) != (V, E, NULL_ID):
        core.fail(name, f"self.embedding must be nn.Embedding({V}, {E}, padding_idx={NULL_ID}).")
    cell = modules.layer(name, model, "cell", torch.nn.LSTMCell, f"nn.LSTMCell({E + C}, {H})")
    if (cell.input_size, cell.hidden_size) != (E + C, H):
        core.fail(name, f"self.cell must be nn.LSTMCell({E + C}, {H}), got nn.LSTMCell({cell.input_size}, "
                        f"{cell.hidden_size}).", "the cell reads [embedding; " + ("context]" if attention else
                                                                                 "mean feature vector]"))
    modules.linear(name, model, "out", H + C if attention else H, V, True,
                   "the output layer reads [h_t; context_t]" if attention else None)
    if attention:
        for attr, n_in_, n_out, bias in (("W_h", H, sizes["A"], False), ("W_f", C, sizes["A"], True),
                                         ("v", sizes["A"], 1, False)):
            modules.linear(name, modules.layer(name, model, "attention", torch.nn.Module, "SpatialAttention"),
                           attr, n_in_, n_out, bias)
    return model.double()


def _captions_case(seed, N, T, V):
    gen = torch.Generator().manual_seed(seed)
    captions = torch.randint(3, V, (N, T + 1), generator=gen)
    captions[:, 0] = START_ID
    lengths = [T + 1 - (n % max(1, T - 1)) for n in range(N)]
    for n, length in enumerate(lengths):
        captions[n, length - 1] = END_ID
        captions[n, length:] = NULL_ID
    return captions


@core.check
def check_captioner(cls, attention=False, seed=0, N=3, T=4, C=5, Hg=2, Wg=3, V=9, E=4, H=6, A=5):
    """Check ``Captioner`` (or ``AttentionCaptioner`` with ``attention=True``) against the documented
    model on one float64 case: the layers of the docstring, ``forward(features, captions_in)`` ->
    scores (N, T, V) and alphas (N, T, Hg, Wg) (None without attention), and ``init_state`` + ``step``
    agreeing with ``forward``. Raises CheckFailure; ValueError for bad arguments.
    """
    seed = integer(seed, "seed", 0)
    N, T, C, Hg, Wg, V, E, H, A = (integer(v, k) for v, k in (
        (N, "N"), (T, "T"), (C, "C"), (Hg, "Hg"), (Wg, "Wg"), (V, "V"), (E, "E"), (H, "H"), (A, "A")))
    if attention is not True and attention is not False:
        raise ValueError(f"attention must be True or False, got {attention!r}")
    if V < 4:
        raise ValueError(f"V must be >= 4 (3 special tokens and a word), got {V}")
    name = "AttentionCaptioner" if attention else "Captioner"
    case = {"N": N, "T": T, "C": C, "grid": f"{Hg}x{Wg}", "V": V, "E": E, "H": H}
    model = _build_captioner(cls, {"C": C, "V": V, "E": E, "H": H, "A": A}, attention, seed, case)
    features, captions_in = _grid(seed, N, C, Hg, Wg), _captions_case(seed, N, T, V)[:, :-1]
    exp_scores, exp_alphas = oracle_captioner_forward(model, features, captions_in, attention)
    out = core.call(model, features, captions_in, name=name, case=case,
                    hint="forward(features, captions_in) -> (scores (N, T, V), alphas or None)")
    scores, alphas = core.unpack(out, 2, name, ("scores", "alphas"))
    hint = ("h_0 = tanh(init_h(mean of the grid)), c_0 = tanh(init_c(...)); at step t the cell reads [embedding "
            "of captions_in[:, t]; " + ("context from h_{t-1}]; scores = out([h_t; context])" if attention
                                        else "mean feature vector]; scores = out(h_t)"))
    results = {"scores": core.compare(f"{name}: scores", scores, exp_scores, TOL.forward, hint)}
    if not scores.requires_grad:
        core.fail(f"{name}: scores", "no gradient reaches the scores (they carry no autograd graph).",
                  modules.NO_DETACH_HINT)
    scores.sum().backward()
    modules.reaches(name, [("self.embedding", model.embedding.weight), ("self.cell", model.cell.weight_ih),
                           ("self.init_h", model.init_h.weight), ("self.out", model.out.weight)]
                    + ([("self.attention.W_f", model.attention.W_f.weight)] if attention else []))
    if attention:
        if not torch.is_tensor(alphas):
            core.fail(f"{name}: alphas", f"expected a tensor (N, T, Hg, Wg), got {type(alphas).__name__}.")
        results["alphas"] = core.compare(f"{name}: alphas", alphas, exp_alphas, TOL.forward,
                                         "alphas[:, t] are the weights of step t, computed from h_{t-1}")
    elif alphas is not None:
        core.fail(f"{name}: alphas", "must be None for the captioner without attention.")
    state = core.call(model.init_state, features, name=f"{name}.init_state", case=case,
                      hint="init_state(features) -> (h_0, c_0)")
    step_out = core.call(model.step, features, captions_in[:, 0], state, name=f"{name}.step", case=case,
                         hint="step(features, y_prev, state) -> (scores (N, V), state, alpha)")
    step_scores = core.unpack(step_out, 3, f"{name}.step", ("scores", "state", "alpha"))[0]
    results["step"] = core.compare(f"{name}.step: scores", step_scores, exp_scores[:, 0], TOL.forward,
                                   "forward must run exactly the steps that step() runs")
    return results


# ============================================================================ caption loss
class _LogitsCaptioner(torch.nn.Module):
    """A stand-in captioner: fixed scores ``base`` plus 0.9 at the word it is fed (teacher forcing shows)."""

    def __init__(self, base):
        super().__init__()
        self.base = torch.nn.Parameter(base.clone())

    def forward(self, features, captions_in):
        shift = 0.9 * F.one_hot(captions_in, self.base.shape[2]).to(self.base.dtype)
        return self.base[:, :captions_in.shape[1]] + shift, None


def oracle_caption_loss(model, features, captions):
    """F.cross_entropy of the teacher-forced scores model(features, captions[:, :-1]) against
    captions[:, 1:], averaged over the target words that are not NULL_ID."""
    scores = model(features, captions[:, :-1])[0]
    return F.cross_entropy(scores.reshape(-1, scores.shape[-1]), captions[:, 1:].reshape(-1), ignore_index=NULL_ID)


@core.check
def check_caption_loss(caption_loss, seed=0, N=3, T=5, V=7):
    """Check ``caption_loss(model, features, captions)``: the mean cross-entropy over the real
    (non-<NULL>) target words of the teacher-forced scores, and its gradient. Raises CheckFailure.
    """
    seed, N, T, V = integer(seed, "seed", 0), integer(N, "N"), integer(T, "T", 2), integer(V, "V", 4)
    captions = _captions_case(seed, N, T, V)
    model = _LogitsCaptioner(torch.randn(N, T, V, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    features = _grid(seed, N, 2, 2, 2)
    with torch.no_grad():
        expected = oracle_caption_loss(model, features, captions)
    name = "caption_loss"
    loss = core.call(caption_loss, model, features, captions, name=name, case={"N": N, "T+1": T + 1, "V": V},
                     hint="caption_loss(model, features, captions) -> scalar tensor")
    if not torch.is_tensor(loss) or loss.dim() != 0:
        core.fail(name, f"must return a scalar tensor, got {getattr(loss, 'shape', type(loss).__name__)}.")
    hint = ("teacher forcing: feed captions[:, :-1], predict captions[:, 1:]; cross_entropy with "
            "ignore_index=NULL_ID averages over the real words only")
    results = {"loss": core.compare(f"{name}: loss", loss, expected, TOL.forward, hint)}
    if not loss.requires_grad:
        core.fail(name, "the loss carries no autograd graph.", "return the loss tensor itself, not loss.item()")
    loss.backward()
    modules.reaches(name, [("the model's scores", model.base)], "return the loss tensor itself, not loss.item()")
    return results


# ============================================================================ greedy decoding
class _ScriptedCaptioner(torch.nn.Module):
    """A captioner whose greedy output is known: row n's word after y at step t is
    ``3 + (y * (n + 2) + t + offsets[n]) % (V - 3)``, and <END> at step ``end_at[n]``. The state
    counts steps, so a loop that does not pass the returned state back, or does not feed back its own
    argmax, or does not start from <START>, writes other words."""

    def __init__(self, offsets, end_at, V):
        super().__init__()
        self.offsets, self.end_at, self.V = torch.as_tensor(offsets), torch.as_tensor(end_at), V
        self.noise = torch.Generator().manual_seed(0)
        self.anchor = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def init_state(self, features):
        return torch.zeros(len(self.offsets), dtype=torch.long)

    def step(self, features, y_prev, state):
        rows = torch.arange(len(y_prev))
        nxt = 3 + (y_prev * (rows + 2) + state + self.offsets) % (self.V - 3)
        nxt = torch.where(state == self.end_at, torch.full_like(nxt, END_ID), nxt)
        scores = torch.randn(len(y_prev), self.V, generator=self.noise, dtype=torch.float64) * 0.1
        scores[rows, nxt] = 5.0
        return scores, state + 1, None


def scripted_caption(offsets, end_at, V, max_len):
    """The greedy output of _ScriptedCaptioner: int64 (N, L), <NULL> after a row's <END>, L = the step
    after which the last row ended (or max_len)."""
    tokens = np.full((len(offsets), max_len), NULL_ID, dtype=np.int64)
    for n, (offset, end) in enumerate(zip(offsets, end_at)):
        y = START_ID
        for t in range(min(end + 1, max_len)):
            y = END_ID if t == end else 3 + (y * (n + 2) + t + offset) % (V - 3)
            tokens[n, t] = y
    return tokens[:, :min(max_len, max(end_at) + 1)]


@core.check
def check_greedy_caption(greedy_caption, offsets=(0, 1, 2), end_at=(2, 4, 1), V=9, max_len=8):
    """Check ``greedy_caption(model, features, max_len)`` on a scripted captioner: <START> first, the
    argmax fed back, the state carried, <NULL> after a row's <END>, the loop stopping when every row
    has ended (L <= max_len). Token ids are compared exactly. Raises CheckFailure; ValueError for bad arguments.
    """
    offsets = [integer(v, "offsets", 0) for v in offsets]
    end_at = [integer(v, "end_at", 0) for v in end_at]
    V, max_len = integer(V, "V", 4), integer(max_len, "max_len")
    if len(offsets) != len(end_at) or not offsets:
        raise ValueError(f"offsets and end_at must have one entry per row, got {len(offsets)} and {len(end_at)}")
    name = "greedy_caption"
    case = {"N": len(offsets), "V": V, "max_len": max_len, "ends at steps": end_at}
    out = core.call(greedy_caption, _ScriptedCaptioner(offsets, end_at, V), _grid(0, len(offsets), 2, 2, 2), max_len,
                    name=name, case=case, hint="greedy_caption(model, features, max_len) -> tokens (N, L)")
    expected = scripted_caption(offsets, end_at, V, max_len)
    if not torch.is_tensor(out) or out.dtype not in (torch.int64, torch.int32):
        core.fail(name, f"must return an integer tensor (int64), got {getattr(out, 'dtype', type(out).__name__)}.")
    hint = ("start from START_ID and model.init_state(features); feed back the argmax and the state step() "
            "returned; write NULL_ID after a row's <END>; stop when every row has produced <END> (at most max_len "
            f"steps)\nyour tokens:     {out.tolist()}\nexpected tokens: {expected.tolist()}")
    core.compare_exact(f"{name}: tokens", out, expected, hint)
    return {"tokens": f"equal ({expected.shape[0]} rows, {expected.shape[1]} steps, compared exactly)"}


# ============================================================================ trained captioners
@functools.lru_cache(maxsize=2)
def _scene_data(held_out_seed=None):
    """(train features, train ids, test scenes, test features) of CAPTION_RECIPE; cached per held_out_seed."""
    r = CAPTION_RECIPE
    splits = scene_splits(r["n_train"], 0, r["n_test"], seed=r["seed"])
    test = splits["test"]
    if held_out_seed is not None:
        test = scenes_from_objects([list(o) for o in test.objects], seed=20_000 + held_out_seed)
    encoder = load_scene_encoder()
    return (grid_features(encoder, splits["train"].images), torch.from_numpy(CaptionVocab().encode(
        splits["train"].captions)), test, grid_features(encoder, test.images))


def caption_training_data():
    """The scenes the graded captioners train on (CAPTION_RECIPE): (grid features float32 (N, C, 4, 4),
    caption ids int64 (N, T) as CaptionVocab.encode writes them)."""
    return _scene_data()[:2]


def _decode(model, features, max_len):
    """The grader's greedy decoder over a captioner's init_state/step: (tokens (N, L), alphas list)."""
    with torch.no_grad():
        state = model.init_state(features)
        y = torch.full((features.shape[0],), START_ID, dtype=torch.long)
        tokens, done = [], torch.zeros(features.shape[0], dtype=torch.bool)
        for _ in range(max_len):
            scores, state, _ = model.step(features, y, state)
            y = scores.argmax(1).masked_fill(done, NULL_ID)
            tokens.append(y)
            done |= y == END_ID
            if done.all():
                break
        return torch.stack(tokens, 1)


def caption_run(cls, caption_loss=None, attention=False):
    """Train the student's captioner class on CAPTION_RECIPE's scenes (Adam with a cosine learning-rate
    schedule, gradient norm clipped at 5, the grader's loop, seed 0) and return the trained model for
    ``check_captions``. The loss is the student's ``caption_loss`` when given, else ``oracle_caption_loss``
    (so that the attention model's grade does not depend on the loss, which has its own tests)."""
    r = CAPTION_RECIPE
    feats, ids, _, _ = _scene_data()
    sizes = (feats.shape[1], len(CaptionVocab()), r["emb_size"], r["hidden_size"])
    name = "AttentionCaptioner" if attention else "Captioner"
    loss_name = "caption_loss" if caption_loss is not None else "the grader's caption loss"
    loss_fn = caption_loss if caption_loss is not None else oracle_caption_loss
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = core.call(cls, *sizes, *((r["attn_size"],) if attention else ()), name=name,
                          case={"sizes": sizes}, hint="check its own test first")
        opt = torch.optim.Adam(modules.module(name, model).parameters(), lr=r["lr"])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=r["steps"])
        gen = torch.Generator().manual_seed(0)
        for _ in range(r["steps"]):
            idx = torch.randint(0, len(ids), (r["batch_size"],), generator=gen)
            loss = core.call(loss_fn, model, feats[idx], ids[idx], name=loss_name, case="training",
                             hint=f"check the tests of {name} and caption_loss first")
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            schedule.step()
    return model.eval()


def _noun_cells(scenes):
    """[(scene, position t, (row, col))] of every shape noun in the captions."""
    return [(n, t, cell) for n, (caption, cells) in enumerate(zip(scenes.captions, scenes.token_cells))
            for t, (word, cell) in enumerate(zip(caption.split(), cells)) if word in SHAPES]


@core.check
def check_captions(model, minimum=0.9, held_out_seed=None, n_objects=None):
    """Exact match of greedy captions (the grader's decoder over ``model.step``) on the recipe's
    test scenes (or, with ``held_out_seed``, the same layouts re-rendered) must be >= ``minimum``;
    ``n_objects`` (1, 2 or 3) grades only the scenes with that many objects (all are reported)."""
    minimum, held_out_seed = _minimum(minimum), _held_out_seed(held_out_seed)
    if n_objects is not None:
        n_objects = integer(n_objects, "n_objects", 1)
    tokens = core.call(_decode, model, _scene_data(held_out_seed)[3], 12, name="greedy decoding",
                       case="trained model", hint="check init_state and step")
    scenes = _scene_data(held_out_seed)[2]  # read after the student's code has run
    right = np.array([p == c for p, c in zip(CaptionVocab().decode(tokens), scenes.captions)])
    counts = np.array([len(objects) for objects in scenes.objects])
    by_count = ", ".join(f"{k} object(s): {right[counts == k].mean():.1%}" for k in np.unique(counts).tolist())
    graded = right if n_objects is None else right[counts == n_objects]
    which = (f"{len(graded)} {'public test' if held_out_seed is None else 'held-out'} scenes"
             + ("" if n_objects is None else f" with {n_objects} object(s)"))
    if not graded.mean() >= minimum:
        core.fail("captions", f"exact match {graded.mean():.1%} on {which} is below {minimum:.0%} ({by_count}).",
                  "check the unit tests of the captioner and the loss")
    return {"exact match": f"{graded.mean():.1%} on {which} (required >= {minimum:.0%}; {by_count})"}


@core.check
def check_localisation(model, minimum=0.8, held_out_seed=None):
    """For every shape noun of the reference captions, fed with teacher forcing, the grid cell with
    the largest attention weight at the step that predicts the noun must be the object's cell in
    >= ``minimum`` of the cases."""
    minimum, held_out_seed = _minimum(minimum), _held_out_seed(held_out_seed)
    _, _, scenes, feats = _scene_data(held_out_seed)
    ids = torch.from_numpy(CaptionVocab().encode(scenes.captions))
    with torch.no_grad():
        out = core.call(model, feats, ids[:, :-1], name="AttentionCaptioner", case="trained model",
                        hint="forward(features, captions_in) -> (scores, alphas (N, T, Hg, Wg))")
    alphas = core.unpack(out, 2, "AttentionCaptioner", ("scores", "alphas"))[1]
    if not torch.is_tensor(alphas) or alphas.dim() != 4:
        core.fail("AttentionCaptioner", "alphas must be a tensor (N, T, Hg, Wg).")
    nouns = _noun_cells(scenes)
    width = alphas.shape[3]
    hits = [int(alphas[n, t].flatten().argmax()) == row * width + col for n, t, (row, col) in nouns]
    rate = float(np.mean(hits))
    if not rate >= minimum:
        core.fail("localisation", f"the attention peaks on the named shape's cell for {rate:.1%} of "
                                  f"{len(hits)} shape nouns, below {minimum:.0%}.",
                  "alphas[:, t] must be the weights used to predict word t (computed from h_{t-1})")
    return {"localisation": f"{rate:.1%} of {len(hits)} shape nouns on {_which(held_out_seed)} "
                            f"(required >= {minimum:.0%})"}
