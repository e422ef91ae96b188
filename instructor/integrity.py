"""The integrity scan: what in a student's notebook could change what a test cell calls or
compares against, or (in a NumPy-only assignment) hand the work to torch or to the course's own
torch-backed code.

It reads the submitted notebook as text (nothing is executed) and compares it with the nbgrader
source notebook, whose locked cells the autograder restores. Three kinds of findings:

- ``rebinds``: a student's cell binds a name that an autograded test cell uses and a locked cell
  defines (``check_rnn_forward = lambda *a: None``, ``grader = ...``, ``val_ids = val_ids[:10]``);
- ``tampering``: patching a module the notebook imports (``np.allclose = ...``, ``setattr``,
  ``vars(grader).update(...)``), reaching into the interpreter (``sys.modules``, frames, ``globals()``,
  ``importlib``, ``exec``, ``getattr`` with a computed name), or using the grader beyond its checks
  and public data (``GRADER_PUBLIC``): its oracles, scripted stand-ins and cached grading data;
- ``torch``: in a NumPy-only assignment, torch (or a torch-backed course module, the grader's
  oracles) used by a student's cell.

Each finding names the cell and the autograded test cells whose points it withholds; the
autograde command sets those to 0 for a human to review (``needs_manual_grade``) and writes the
finding as a comment. The run-time twin is ``graders.core.call(..., numpy_only=True)``, whose
failures start with ``INTEGRITY`` in a test cell's output (``runtime_findings``).
"""
import ast
import functools
import importlib
import importlib.util
import pkgutil
import re
import types
from dataclasses import dataclass

from graders.core import INTEGRITY

TORCH_MODULES = {"torch", "tensorflow", "jax", "jaxlib", "cupy", "keras", "graders"}
# course modules whose functions run torch (a1/a2 students must not hand their work to them)
TORCH_HELPERS = {"helpers.gradient_flow", "helpers.attention", "helpers.benchmark", "helpers.rnn_demos",
                 "helpers.tasks"}
INTROSPECTION_NAMES = {"globals", "__builtins__", "builtins", "__import__", "importlib", "inspect", "gc", "ctypes",
                       "exec", "eval", "compile", "setattr", "delattr", "breakpoint", "vars"}
INTROSPECTION_ATTRS = {"modules", "_getframe", "__traceback__", "exc_info", "walk_stack", "walk_tb", "extract_stack",
                       "settrace", "setprofile", "f_back", "f_locals", "f_globals",
                       "tb_frame", "gi_frame", "cr_frame", "__globals__", "__code__", "__closure__", "__wrapped__",
                       "__dict__", "__builtins__", "__subclasses__", "__setattr__", "__delattr__",
                       "__getattribute__",
                       # modules reached as attributes of another module (torch.importlib, np.sys, ...) and
                       # torch's switch that hides torch calls from the NumPy-only recorder (torch._C)
                       "importlib", "import_module", "builtins", "__import__", "inspect", "sys", "gc", "ctypes",
                       "_C", "DisableTorchFunction", "DisableTorchFunctionSubclass"}
# libraries whose star imports the scan resolves (importing them in the grading process is safe)
KNOWN_LIBRARIES = {"numpy", "torch", "math", "helpers", "graders", "matplotlib", "sklearn", "scipy", "collections",
                   "itertools", "functools", "typing", "dataclasses", "random", "time", "copy"}
STAR_UNKNOWN = "<names of a star import>"
# introspection attributes that are also honest method names when called (model.modules())
CALLED_IS_HONEST = {"modules"}
# what a student's own cell may use of the grader: its checks and the public data of the graded tests
GRADER_PUBLIC = {"self_check", "report", "TOL", "few_shot_images", "caption_training_data", "CAPTION_RECIPE",
                 "TRANSFER_RECIPE", "SPACE", "LABELS", "DEFAULT_CONFIG", "DEFAULT_LOSSES", "WORKFLOW", "workflow_data",
                 "load_curves"}
# IPython's own handles: the input history (the running cell, hidden tests included), the shell (input
# transformers can rewrite every later cell) and its module
IPYTHON_NAMES = {"In", "Out", "_ih", "_oh", "_i", "_ii", "_iii", "_dh", "get_ipython", "__IPYTHON__"}
# what IPython's transformer itself writes for %magics, !shell and obj?: get_ipython().<one of these>(...)
TRANSFORMER_CALLS = {"run_line_magic", "run_cell_magic", "system", "getoutput"}
# magics that load or run code the scan never sees, or reconfigure the shell
UNSCANNED_MAGICS = {"load_ext", "reload_ext", "run", "config", "autoreload", "aimport", "writefile", "alias_magic",
                    "macro", "load", "store"}
# graded parts whose oracle is a library class: a student's cell may not hand the part to it
ORACLE_NAMES = {"a6_hyperparameters": {"swa_utils", "AveragedModel", "get_ema_multi_avg_fn"}}
# methods that change a container in place (a grader's public dict or array is read by later test cells)
MUTATORS = {"update", "append", "extend", "insert", "pop", "popitem", "clear", "setdefault", "remove", "sort",
            "reverse", "fill", "put", "resize", "__setitem__", "__delitem__", "__iadd__", "add_", "mul_", "copy_",
            "zero_", "fill_"}
COURSE_PACKAGES = {"graders", "helpers"}
# names the graders define that honest code also gives its own attributes (net.linear = nn.Linear(...))
GENERIC_ATTRIBUTES = {"layer", "linear", "module", "gradients", "tensors", "describe", "construct"}
# file names of held-out grading data: a student's cell that names one is reading the answers
HELD_OUT_DATA = ("heldout", "held_out", "a6_curves")


@dataclass(frozen=True)
class Finding:
    """One thing a human should look at. ``affects``: grade_ids of the test cells left without credit."""

    cell: str      # grade_id of the student's cell, or "added cell <n>" for a cell the student inserted
    kind: str      # "rebinds" | "tampering" | "torch" | "runtime"
    detail: str
    affects: tuple

    def describe(self):
        lost = f" -> no credit for {', '.join(self.affects)}" if self.affects else " (no points withheld)"
        return f"[{self.kind}] {self.cell}: {self.detail}{lost}"


# ---------------------------------------------------------------- notebook structure
def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _parse(source):
    """AST of a cell as IPython runs it: magics, shell escapes and ``obj?`` become calls (IPython's own
    transformer), and the code handed to a magic (``%time <code>``, ``%%capture`` cells) is parsed and
    appended, so it is scanned too. None when the cell is not Python (it cannot run either)."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None
    for node in list(ast.walk(tree)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"run_line_magic", "run_cell_magic"}):
            for arg in node.args[1:]:
                inner = _parse(arg.value) if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
                tree.body += inner.body if inner is not None else []
    return tree


def _is_test(cell):
    meta = _meta(cell)
    return cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution")


def autograded_ids(source_nb):
    """grade_ids of the autograded test cells of a notebook, in order."""
    return [_meta(c)["grade_id"] for c in source_nb["cells"] if _is_test(c)]


def _locked_ids(source_nb):
    """grade_ids of the source's code cells that the autograder restores (locked, not solutions)."""
    return {_meta(c)["grade_id"] for c in source_nb["cells"] if c.get("cell_type") == "code"
            and _meta(c).get("grade_id") and not _meta(c).get("solution")
            and (_meta(c).get("locked") or _meta(c).get("grade"))}


# ---------------------------------------------------------------- names
def _bound_names(tree):
    """Names a piece of code binds at any depth (assignments, defs, imports, loop/with targets)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                names |= _star_names(node.module)
    return names


def _star_names(module):
    """Names ``from module import *`` binds, for the libraries a notebook may use (imported to see
    them); a star import of any other module binds the sentinel STAR_UNKNOWN (never imported here:
    the scan runs in the trusted grading process)."""
    if (module or "").split(".")[0] not in KNOWN_LIBRARIES:
        return {STAR_UNKNOWN}
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return set()
    return set(getattr(imported, "__all__", [n for n in vars(imported) if not n.startswith("_")]))


def _top_bound(tree):
    """Names bound at module level (what a cell defines for later cells)."""
    names = set()
    for node in tree.body:
        names |= _bound_names(ast.Module(body=[node], type_ignores=[])) if not isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else {node.name}
    return names


def _global_decls(tree):
    """Names a function in the cell declares ``global`` (it may rebind them when called)."""
    return {name for node in ast.walk(tree) if isinstance(node, ast.Global) for name in node.names}


def _loaded(tree):
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _module_of_import(node, alias):
    return node.module if isinstance(node, ast.ImportFrom) else alias.name


def _imports(tree):
    """{bound name: imported module} for every import in the code."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not (isinstance(node, ast.ImportFrom) and node.level):
            for alias in node.names:
                module = _module_of_import(node, alias) or ""
                if isinstance(node, ast.ImportFrom):
                    module = _defining_module(module, alias.name)
                found[(alias.asname or alias.name).split(".")[0]] = module
    return found


def _is_module(module, name):
    """True when ``from module import name`` imports a submodule (checked for KNOWN_LIBRARIES only)."""
    if module.split(".")[0] not in KNOWN_LIBRARIES:
        return False
    try:
        return importlib.util.find_spec(f"{module}.{name}") is not None
    except (ImportError, ValueError):
        return False


def _module_names(tree):
    """Names the code binds to module objects (``import x``, ``import x.y as z``, ``from pkg import submodule``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.update(a.asname or a.name for a in node.names if a.name != "*" and _is_module(node.module, a.name))
    return names


def torch_backed(module):
    """True for torch and friends, the graders, and the course modules built on torch (listed in
    TORCH_HELPERS, or holding torch as a module attribute: ``helpers.charlm.torch`` is torch)."""
    return module.split(".")[0] in TORCH_MODULES or module in TORCH_HELPERS or _holds_torch(module)


@functools.lru_cache(maxsize=None)
def _holds_torch(module):
    if module.split(".")[0] != "helpers":
        return False
    try:
        namespace = vars(importlib.import_module(module))
    except ImportError:
        return False
    return any(isinstance(v, types.ModuleType) and v.__name__.split(".")[0] in TORCH_MODULES
               for v in namespace.values())


@functools.lru_cache(maxsize=1)
def grader_names():
    """Every name the graders package defines (checks, oracles, comparisons, tolerances, recipes): a
    student's cell that assigns an attribute of that name, on whatever object, is patching a grader."""
    import graders

    names = set()
    for info in pkgutil.iter_modules(graders.__path__):
        module = importlib.import_module(f"graders.{info.name}")
        names |= {k for k, v in vars(module).items()
                  if not k.startswith("__") and not isinstance(v, types.ModuleType)
                  and getattr(v, "__module__", module.__name__) == module.__name__}
    return frozenset(names - GENERIC_ATTRIBUTES)


def _defining_module(module, name):
    """The module that defines ``from module import name`` (trusted course code is imported to see)."""
    if module.split(".")[0] != "helpers":
        return module
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return module
    return obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None) or module


def numpy_only(aid):
    """True when the assignment's grader declares NUMPY_ONLY (its parts must not use torch)."""
    try:
        return bool(getattr(importlib.import_module(f"graders.{aid}"), "NUMPY_ONLY", False))
    except ImportError:
        return False


# ---------------------------------------------------------------- the scan
def _assignment_of(source_nb):
    """The assignment id a source notebook grades with (``from graders import <id> as grader``), or None."""
    for cell in source_nb["cells"]:
        tree = _parse(_source(cell)) if cell.get("cell_type") == "code" else None
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.ImportFrom) and node.module == "graders":
                return next((a.name for a in node.names if a.asname == "grader"), None)
    return None


class _Context:
    """What the source notebook's locked and test cells define and use."""

    def __init__(self, source_nb):
        locked = _locked_ids(source_nb)
        self.tests = {}          # test grade_id -> names it loads
        locked_bound, self.modules, self.module_objects = set(), {}, set()
        for cell in source_nb["cells"]:
            tree = _parse(_source(cell)) if cell.get("cell_type") == "code" else None
            if tree is None:
                continue
            if _meta(cell).get("grade_id") in locked:
                locked_bound |= _top_bound(tree)
                self.modules.update(_imports(tree))
                self.module_objects |= _module_names(tree)
            if _is_test(cell):
                self.tests[_meta(cell)["grade_id"]] = _loaded(tree)
        used = set().union(*self.tests.values()) if self.tests else set()
        self.protected = (locked_bound & used) | {"grader", "graders"}
        self.oracle_names = ORACLE_NAMES.get(_assignment_of(source_nb), set())
        self.test_order = list(self.tests)

    def users(self, names):
        """Test cells that load any of ``names``."""
        return tuple(t for t, loads in self.tests.items() if loads & set(names))

    def after(self, position, order, names=None):
        """Test cells placed after the cell at ``position`` of the submission (that load ``names``).

        A test cell the student deleted is restored by the autograder at its place in the source,
        so it counts as after every cell it followed there.
        """
        users = self.users(names) if names is not None else self.test_order
        return tuple(t for t in users if order.get(t, len(order) + 1) > position)


def _parents(tree):
    """{id(node): parent node} of an AST."""
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _stored(tree):
    """Names the code assigns (not by import): a student variable that shadows a module is no module."""
    return ({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            | {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))})


def _as_value(node, parents):
    """True when a name is used as a value: not the object of ``x.attr``, not the function of a call,
    not the first argument of getattr/hasattr (their attribute name is checked on its own)."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.Attribute) and parent.value is node:
        return False
    if isinstance(parent, ast.Call) and (parent.func is node or (
            isinstance(parent.func, ast.Name) and parent.func.id in {"getattr", "hasattr"} and parent.args
            and parent.args[0] is node)):
        return False
    return True


def _escapes(tree, module_objects):
    """Modules, getattr and introspection names held as values: a module under another name (an alias,
    a list, an argument) can be patched where no other rule looks."""
    parents, shadowed, found = _parents(tree), _stored(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and _as_value(node, parents):
            if node.id in module_objects - shadowed:
                found.append(f"uses the module {node.id} as a value")
            elif node.id in {"getattr", "hasattr"}:
                found.append(f"uses {node.id} as a value")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in INTROSPECTION_ATTRS:
            found.append(f"uses the name {node.value!r} as a string")
        elif isinstance(node, ast.MatchClass) and set(node.kwd_attrs) & INTROSPECTION_ATTRS:
            found.append(f"matches on .{sorted(set(node.kwd_attrs) & INTROSPECTION_ATTRS)[0]}")
    return found


def _import_findings(node):
    """Imports of introspection tools, of introspection names, and star imports the scan cannot resolve."""
    found = []
    for alias in node.names:
        module = _module_of_import(node, alias) or ""
        if module.split(".")[0] in {"importlib", "inspect", "gc", "ctypes", "builtins", "traceback"} or (
                module.split(".")[0] == "IPython" and not module.startswith("IPython.display")):
            found.append(f"imports {module}")
        elif (isinstance(node, ast.ImportFrom) and module.split(".")[0] == "graders" and alias.name != "*"
              and not (alias.name.startswith("check_") or alias.name in GRADER_PUBLIC)
              and module.count(".") >= 1):
            found.append(f"imports {alias.name} from {module} (the grader's internals)")
        elif isinstance(node, ast.ImportFrom) and alias.name in INTROSPECTION_ATTRS | INTROSPECTION_NAMES:
            found.append(f"imports {alias.name} from {module}")
        elif alias.name == "*" and module.split(".")[0] not in KNOWN_LIBRARIES:
            found.append(f"imports * from {module} (names the scan cannot see)")
    return found


def _root(node):
    """The innermost object of an attribute chain ``a.b.c`` (the node ``a``)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node


def _container_root(node):
    """The innermost object of a chain of attributes and subscripts ``a.b["k"][0]`` (the node ``a``)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node


def _module_parts(tree, module_names):
    """Names assigned a plain attribute chain of a module (``tt = torch.testing``, ``f = np.tanh``):
    patching them patches the module."""
    return {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Attribute) and isinstance(_root(node.value), ast.Name)
            and _root(node.value).id in module_names for target in node.targets if isinstance(target, ast.Name)}


def _tampering(tree, ctx, student_modules, student_objects=frozenset()):
    """Descriptions of module patching and interpreter introspection in a cell (``student_objects``:
    names earlier student cells bound to modules)."""
    found = []
    modules = {**ctx.modules, **student_modules}
    module_names = set(modules)
    # nn.Module.modules() is a method; sys.modules, the attack, is a dict and never called
    method_calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr in CALLED_IS_HONEST}
    transformer_calls = _transformer_calls(tree)
    module_names |= _module_parts(tree, module_names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            root = _root(node)
            if isinstance(root, ast.Name) and root.id in module_names:
                found.append(f"assigns {ast.unparse(node)} (an attribute of the module {root.id})")
            elif node.attr in grader_names() and not (isinstance(root, ast.Name) and root.id == "self"):
                found.append(f"assigns {ast.unparse(node)} (a name of the grader's checks)")
        elif _changes_course_data(node, modules):
            changed = node.func.value if isinstance(node, ast.Call) else node
            found.append(f"changes {ast.unparse(changed)[:60]} in place "
                         "(data of a course module that the test cells read)")
        elif isinstance(node, ast.Attribute) and node.attr in INTROSPECTION_ATTRS and id(node) not in method_calls:
            found.append(f"uses .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in INTROSPECTION_NAMES:
            found.append(f"uses {node.id}")
        elif isinstance(node, ast.Name) and (node.id in IPYTHON_NAMES or re.fullmatch(r"_i\d+", node.id)):
            if node.id != "get_ipython" or id(node) not in transformer_calls:
                found.append(f"uses IPython's {node.id}")
        elif _names_of(node) & ctx.oracle_names:
            found.append(f"uses {sorted(_names_of(node) & ctx.oracle_names)[0]}, the oracle of a graded part")
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and modules.get(node.value.id, "").split(".")[0] == "graders"
              and not (node.attr.startswith("check_") or node.attr in GRADER_PUBLIC)):
            found.append(f"uses {ast.unparse(node)} (the grader's internals)")
        elif (isinstance(node, ast.Call) and _names_of(node.func) & {"attrgetter", "methodcaller"}
              and not all(isinstance(arg, ast.Constant) for arg in node.args)):
            found.append(f"uses {sorted(_names_of(node.func))[0]} with a computed attribute name")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"getattr", "hasattr"}
              and not (len(node.args) >= 2 and isinstance(node.args[1], ast.Constant))):
            found.append(f"uses {node.func.id} with a computed attribute name")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"getattr", "hasattr"}
              and node.args[1].value in INTROSPECTION_ATTRS):
            found.append(f"uses {node.func.id}(..., {node.args[1].value!r})")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found += _import_findings(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
                marker in node.value.lower() for marker in HELD_OUT_DATA):
            found.append(f"names held-out grading data ({node.value[:40]!r})")
    found += _escapes(tree, ctx.module_objects | set(student_objects) | _module_names(tree))
    return sorted(set(found))


def _names_of(node):
    """The names a Name, an attribute or an import alias stands for (every part of a dotted import)."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    if isinstance(node, ast.alias):
        return set(node.name.split(".")) | {node.asname}
    return set()


def _transformer_calls(tree):
    """ids of the ``get_ipython`` names in ``get_ipython().<run_line_magic|...>(...)`` calls as IPython's
    transformer writes them for a %magic, !shell or obj? -- except magics that run code the scan cannot see."""
    ids = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in TRANSFORMER_CALLS
                and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
                and node.func.value.func.id == "get_ipython" and not node.func.value.args):
            magic = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
            if node.func.attr in {"system", "getoutput"} or (isinstance(magic, str) and magic not in UNSCANNED_MAGICS):
                ids.add(id(node.func.value.func))
    return ids


def _changes_course_data(node, modules):
    """``grader.X[...] = v``, ``del grader.X[k]``, ``grader.X[k] += v`` or ``grader.X.update(...)``: a change, in
    place, of a container that a course module (graders, helpers) holds."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
        target = node
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
        target = node.func.value
    else:
        return False
    root = _container_root(target)
    return (isinstance(root, ast.Name) and target is not root
            and modules.get(root.id, "").split(".")[0] in COURSE_PACKAGES)


def _torch_uses(tree, ctx, student_modules):
    """Descriptions of torch (or torch-backed course code) used by a cell of a NumPy-only assignment."""
    found = set()
    for module in _imports(tree).values():
        if torch_backed(module):
            found.add(f"imports {module}")
    backed = {n for n, m in {**ctx.modules, **student_modules}.items() if torch_backed(m)}
    modules = {**ctx.modules, **student_modules}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in backed:
            found.add(f"uses {node.id} (from {modules[node.id]})")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            dotted = f"{modules[node.value.id]}.{node.attr}"
            if node.value.id not in backed and torch_backed(dotted):
                found.add(f"uses {ast.unparse(node)} ({dotted})")
    return sorted(found)


def _self_check_only(tree):
    """True when a cell only calls ``grader.self_check`` / ``grader.report`` (a student re-running checks)."""
    return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
               and isinstance(s.value.func, ast.Attribute) and s.value.func.attr in {"self_check", "report"}
               and isinstance(s.value.func.value, ast.Name) and s.value.func.value.id == "grader"
               for s in tree.body)


def scan(submitted_nb, source_nb, numpy_only=False):
    """Findings of the integrity scan of one submitted notebook (nbformat dicts), in cell order.

    Inputs:
    - submitted_nb: the student's notebook (any JSON-like dict with "cells")
    - source_nb: the nbgrader source notebook (solutions/<id>/<nb>.ipynb) of the same assignment
    - numpy_only: True for assignments that must not use torch (a1, a2)
    Returns a list of ``Finding``. Cells the autograder restores (locked cells) are not scanned.
    """
    ctx = _Context(source_nb)
    locked = _locked_ids(source_nb)
    order = {_meta(c).get("grade_id"): i for i, c in enumerate(submitted_nb.get("cells", []))}
    student_modules, student_objects, findings = {}, set(), []
    for position, cell in enumerate(submitted_nb.get("cells", [])):
        gid = _meta(cell).get("grade_id")
        if cell.get("cell_type") != "code" or gid in locked:
            continue
        label = gid or f"added cell {position}"
        tree = _parse(_source(cell))
        if tree is None:
            continue
        student_modules.update(_imports(tree))
        student_objects |= _module_names(tree)
        defined = _top_bound(tree) | _global_decls(tree)
        rebound = sorted(defined & ctx.protected)
        if rebound:  # the grader's own names: every later test cell imports from it
            affects = ctx.after(position, order, None if {"grader", "graders"} & set(rebound) else rebound)
            findings.append(Finding(label, "rebinds", f"binds {', '.join(rebound)}, used by the test cells", affects))
        tampering = _tampering(tree, ctx, student_modules, student_objects)
        if tampering:
            findings.append(Finding(label, "tampering", "; ".join(tampering), ctx.after(position, order)))
        if numpy_only and not _self_check_only(tree):
            uses = _torch_uses(tree, ctx, student_modules)
            if uses:
                findings.append(Finding(label, "torch", "; ".join(uses) + " in a NumPy-only assignment",
                                        ctx.users(defined)))
    return findings


def runtime_findings(autograded_nb):
    """Findings from test cells whose output reports an ``INTEGRITY`` failure raised at run time."""
    found = []
    for cell in autograded_nb.get("cells", []):
        if not _is_test(cell):
            continue
        for output in cell.get("outputs", []):
            text = output.get("evalue", "") + "".join(output.get("text", ""))
            if text.startswith(INTEGRITY) or f"{INTEGRITY}:" in text:
                line = next(row for row in text.splitlines() if INTEGRITY in row)
                found.append(Finding(_meta(cell)["grade_id"], "runtime", line.strip()[:300],
                                     (_meta(cell)["grade_id"],)))
                break
    return found
