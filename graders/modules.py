"""Checks shared by the graders of PyTorch assignments (a4, a5) that receive a student's ``nn.Module``
classes: build them with known weights, read their layers, unpack their outputs, and test masks and
gradients. Every failure is a ``core.CheckFailure`` that names the class and says what was expected.
"""
import torch

from . import core

NO_DETACH_HINT = "use torch operations only (no .detach(), .numpy() or .item() inside forward)"


def tensors(name, result, names):
    """Unpack a student's tuple of torch tensors (``core.unpack`` plus a type check)."""
    values = core.unpack(result, len(names), name, names)
    for label, value in zip(names, values):
        if not torch.is_tensor(value):
            core.fail(f"{name}: {label}", f"expected a torch tensor, got {type(value).__name__}.")
    return values


def module(name, obj):
    """``obj`` if it is an ``nn.Module``."""
    if not isinstance(obj, torch.nn.Module):
        core.fail(name, f"expected an nn.Module, got {type(obj).__name__}; does __init__ call super().__init__()?")
    return obj


def layer(name, owner, attr, kind, shape_text):
    """``owner.<attr>``, which must be an instance of ``kind`` (the docstring's ``shape_text``)."""
    found = getattr(owner, attr, None)
    if not isinstance(found, kind):
        core.fail(name, f"self.{attr} must be {shape_text} (see the docstring), got {type(found).__name__}.",
                  "create the layers in __init__")
    return found


def linear(name, owner, attr, n_in, n_out, bias, hint=None):
    """``owner.<attr>``, which must be ``nn.Linear(n_in, n_out, bias=bias)``."""
    text = f"nn.Linear({n_in}, {n_out}, bias={bias})"
    found = layer(name, owner, attr, torch.nn.Linear, text)
    if (found.in_features, found.out_features, found.bias is not None) != (n_in, n_out, bias):
        core.fail(name, f"self.{attr} must be {text}, got nn.Linear({found.in_features}, {found.out_features}, "
                        f"bias={found.bias is not None}).", hint)
    return found


def zero_where_masked(name, weights, mask, hint):
    """Masked positions (``mask`` False) must have exactly zero weight (not just a small one)."""
    leaked = weights.detach()[~mask]
    if torch.any(leaked != 0):
        core.fail(name, f"{int((leaked != 0).sum())} masked positions get a non-zero weight "
                        f"(largest {float(leaked.abs().max()):.1e}); they must be exactly 0.", hint)


def reaches(name, labelled, hint=NO_DETACH_HINT):
    """Every (label, tensor) got a non-zero gradient."""
    for label, tensor in labelled:
        if tensor.grad is None or not torch.any(tensor.grad != 0):
            core.fail(name, f"no gradient reaches {label}.", hint)


def additive_attention(cls, params, query, key, name, case, seed, init_doc, numpy_only=False):
    """Build a student's additive-attention module ``cls(query_size, key_size, attn_size)`` and load
    ``params`` into it in float64. Its layers must be ``self.<query>`` = nn.Linear(Hq, A, bias=False),
    ``self.<key>`` = nn.Linear(Hk, A) holding the bias and ``self.v`` = nn.Linear(A, 1, bias=False);
    ``params`` holds their weights under the same names ((A, Hq), (A, Hk), (1, A)) and the bias under
    "b_" + the key layer's suffix (``W_k`` -> ``b_k``). ``init_doc`` says what __init__ must create."""
    (A, n_query), n_key = params[query].shape, params[key].shape[1]
    bias = "b_" + key.split("_")[-1]
    layer = construct(cls, (n_query, n_key, A), name, case, seed, init_doc, numpy_only)
    hint = f"{query} and v take bias=False; {key} holds the bias b"
    for attr, n_in, n_out, has_bias in ((query, n_query, A, False), (key, n_key, A, True), ("v", A, 1, False)):
        linear(name, layer, attr, n_in, n_out, has_bias, hint)
    layer = layer.double()
    with torch.no_grad():
        for target, source in ((getattr(layer, query).weight, query), (getattr(layer, key).weight, key),
                               (getattr(layer, key).bias, bias), (layer.v.weight, "v")):
            target.copy_(torch.from_numpy(params[source]))
    return layer


def construct(cls, args, name, case, seed, hint, numpy_only=False):
    """Build a student's module via ``core.call``, its initial weights drawn from ``seed`` (the
    notebook's global torch RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return module(name, core.call(cls, *args, name=name, case=case, hint=hint, numpy_only=numpy_only))
