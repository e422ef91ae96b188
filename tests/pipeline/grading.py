"""The grading-pipeline harness: release generation, leak checks, nbgrader autograding and
the fast path that scores mutants and alternative solutions.

Variant format (one file per assignment, ``tests/mutants/<assignment_id>.py``)::

    from grading import Mutant, Alternative

    MUTANTS = [
        Mutant("Wh transposed", cell="rnn_step_forward",          # grade_id of a solution cell
               find="prev_h @ Wh", replace="prev_h @ Wh.T",       # edit inside its solution region
               loses=["test_rnn_step_forward", "test_rnn_forward"]),  # exactly the test cells that must fail
    ]
    ALTERNATIVES = [
        Alternative("einsum", cell="rnn_step_forward", solution="...whole new solution region..."),
    ]
    HEAVY_USES = {"rnn_step_forward", ...}   # optional: solution cells the `heavy` cells depend on
    UNGRADED = {"lstm_fast": "optional speed-up, no points"}  # solution cells exempt from the
                                                # ">= 2 mutants, >= 1 alternative" rule, with a reason

A variant edits one solution cell, either with ``find``/``replace`` (the text must occur exactly
once, inside ``### BEGIN SOLUTION`` ... ``### END SOLUTION``) or by replacing the whole solution
region with ``solution``. A mutant must lose the points of exactly the test cells in ``loses``;
an alternative must lose nothing.

Cells tagged ``heavy`` or ``heavy:<group>`` (training runs and the test cells that grade them)
are skipped for a variant unless it edits a cell that their group uses (``HEAVY_USES``: a set of
solution grade_ids used by every group, or ``{group: set}``) or a cell of the group itself, so a
mutant of a function that training uses is still checked against the training cell.
"""
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from instructor.course import assignment_ids, nbgrader_env, run_nbgrader  # noqa: F401 (re-exported)

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HEAVY_TAG, DEFAULT_GROUP, ALL_GROUPS = "heavy", "default", "*"
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = REPO_ROOT / "nbgrader_config.py"


class SpecError(Exception):
    """A variant file that does not describe a valid edit of the solution notebook."""


# ---------------------------------------------------------------- variant format
@dataclass(frozen=True)
class Variant:
    """One edited solution cell. Use the ``Mutant`` and ``Alternative`` constructors."""

    name: str
    cell: str
    find: str = None
    replace: str = None
    solution: str = None
    loses: tuple = ()
    notebook: str = None  # needed only when the assignment has several notebooks


def Mutant(name, cell, loses, find=None, replace=None, solution=None, notebook=None):
    """A wrong edit of solution cell ``cell`` that must fail exactly the test cells ``loses``."""
    if not loses:
        raise SpecError(f"mutant {name!r}: loses must name the test cell(s) it fails")
    return Variant(name, cell, find, replace, solution, tuple(loses), notebook)


def Alternative(name, cell, find=None, replace=None, solution=None, notebook=None):
    """Another correct edit of solution cell ``cell``: it must keep full marks."""
    return Variant(name, cell, find, replace, solution, (), notebook)


@dataclass
class Spec:
    """The variants of one assignment, loaded from ``<mutants_dir>/<assignment_id>.py``."""

    mutants: list = field(default_factory=list)
    alternatives: list = field(default_factory=list)
    heavy_uses: dict = field(default_factory=dict)  # {group: frozenset of solution grade_ids}


def load_module(mutants_dir, assignment_id):
    """Import ``<mutants_dir>/<assignment_id>.py`` (None when the file does not exist)."""
    path = Path(mutants_dir) / f"{assignment_id}.py"
    if not path.exists():
        return None
    module_spec = importlib.util.spec_from_file_location(f"variants_{assignment_id}", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    return module


def load_spec(mutants_dir, assignment_id):
    """Load the variant file of an assignment; an assignment without one has no variants."""
    module = load_module(mutants_dir, assignment_id)
    if module is None:
        return Spec()
    uses = getattr(module, "HEAVY_USES", {})
    if not isinstance(uses, dict):
        uses = {ALL_GROUPS: uses}
    return Spec(list(getattr(module, "MUTANTS", [])), list(getattr(module, "ALTERNATIVES", [])),
                {group: frozenset(ids) for group, ids in uses.items()})


# ---------------------------------------------------------------- notebooks and cells
def notebooks(folder):
    """Sorted notebook paths of an assignment folder (checkpoints excluded)."""
    return sorted(p for p in Path(folder).glob("*.ipynb"))


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_id(cell):
    return nbgrader_meta(cell).get("grade_id")


def autograded_tests(nb):
    """{grade_id: points} of the autograded test cells of a notebook."""
    return {grade_id(c): float(nbgrader_meta(c).get("points", 0)) for c in nb.cells
            if c.cell_type == "code" and nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")}


def heavy_group(cell):
    """The heavy group of a cell (tag ``heavy`` -> "default", ``heavy:<g>`` -> g), or None."""
    for tag in cell.get("metadata", {}).get("tags", []):
        if tag == HEAVY_TAG:
            return DEFAULT_GROUP
        if tag.startswith(HEAVY_TAG + ":"):
            return tag.split(":", 1)[1]
    return None


def solution_regions(source):
    """(start, end) character offsets of the text between the solution markers of a cell."""
    regions, start = [], None
    offset = 0
    for line in source.splitlines(keepends=True):
        if BEGIN_SOLUTION in line:
            start = offset + len(line)
        elif END_SOLUTION in line and start is not None:
            regions.append((start, offset))
            start = None
        offset += len(line)
    return regions


# ---------------------------------------------------------------- release checks
def _cell_summary(cell):
    """The parts of a cell that the release must reproduce exactly."""
    summary = {"cell_type": cell.cell_type, "source": cell.source, "metadata": dict(cell.metadata)}
    if cell.cell_type == "code":
        summary["outputs"] = cell.get("outputs", [])
    return summary


def release_drift(generated_dir, committed_dir):
    """Differences between a freshly generated release folder and the committed one.

    Returns a list of human-readable messages naming the file and the cell (empty = no drift).
    """
    generated_dir, committed_dir = Path(generated_dir), Path(committed_dir)
    if not committed_dir.is_dir():
        return [f"{committed_dir} is missing: run `make release` and commit assignments/"]
    gen_files = {p.relative_to(generated_dir) for p in generated_dir.rglob("*") if p.is_file()}
    com_files = {p.relative_to(committed_dir) for p in committed_dir.rglob("*")
                 if p.is_file() and ".ipynb_checkpoints" not in p.parts}
    problems = [f"{committed_dir / f}: not produced by nbgrader (stale file)" for f in sorted(com_files - gen_files)]
    problems += [f"{committed_dir / f}: missing from the committed release" for f in sorted(gen_files - com_files)]
    for rel in sorted(gen_files & com_files):
        if rel.suffix != ".ipynb":
            if (generated_dir / rel).read_bytes() != (committed_dir / rel).read_bytes():
                problems.append(f"{committed_dir / rel}: differs from the generated file")
            continue
        problems += _notebook_drift(nbformat.read(generated_dir / rel, 4), nbformat.read(committed_dir / rel, 4),
                                    committed_dir / rel)
    return problems


def _notebook_drift(generated, committed, label):
    if len(generated.cells) != len(committed.cells):
        return [f"{label}: {len(committed.cells)} cells, nbgrader generates {len(generated.cells)}"]
    problems = []
    for index, (gen, com) in enumerate(zip(generated.cells, committed.cells)):
        for key, value in _cell_summary(gen).items():
            if _cell_summary(com).get(key) != value:
                name = grade_id(gen) or gen.get("id", "?")
                problems.append(f"{label}: cell {index} ({name}) differs in its {key}")
    if generated.metadata != committed.metadata:
        problems.append(f"{label}: notebook metadata differs")
    return problems


def release_leaks(source_nb, release_nb):
    """Solution code, hidden tests or outputs that a released notebook still contains.

    Every line of a released cell must come from the part of the source cell outside the
    solution / hidden-test regions, or from nbgrader's stub. Returns messages (empty = clean).
    """
    problems = []
    stub = {"# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE"}
    for index, (src, rel) in enumerate(zip(source_nb.cells, release_nb.cells)):
        allowed = set(_public_lines(src.source)) | stub
        name = grade_id(src) or f"cell {index}"
        for marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if marker in rel.source:
                problems.append(f"{name}: release still contains {marker!r}")
        leaked = [line for line in _lines(rel.source) if line not in allowed]
        if leaked:
            problems.append(f"{name}: release has lines that are not in the public part of the source: {leaked[:3]}")
        if rel.cell_type == "code" and rel.get("outputs"):
            problems.append(f"{name}: release cell has stored outputs")
    if len(source_nb.cells) != len(release_nb.cells):
        problems.append("release and source have a different number of cells")
    return problems


def _lines(source):
    return [line.strip() for line in source.splitlines() if line.strip()]


def _public_lines(source):
    """Lines of a source cell outside its solution and hidden-test regions."""
    public, hidden = [], False
    for line in source.splitlines():
        if BEGIN_SOLUTION in line or BEGIN_HIDDEN in line:
            hidden = True
        elif END_SOLUTION in line or END_HIDDEN in line:
            hidden = False
        elif not hidden:
            public.append(line)
    return _lines("\n".join(public))


# ---------------------------------------------------------------- nbgrader pipeline
class CourseRoot:
    """A throw-away nbgrader course root: the config, ``solutions/<id>/`` and a gradebook."""

    def __init__(self, source_root, assignment_id, path):
        self.source_root, self.assignment_id, self.path = Path(source_root), assignment_id, Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        shutil.copy(CONFIG_FILE, self.path / "nbgrader_config.py")
        shutil.copytree(self.source_root / "solutions" / assignment_id, self.path / "solutions" / assignment_id,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))

    def nbgrader(self, *args):
        """Run ``nbgrader <args>`` in this root; raise with its log when it fails."""
        result = run_nbgrader(*args, root=self.path, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
        return result

    def generate_release(self):
        """Run ``nbgrader generate_assignment`` and return the release folder."""
        self.nbgrader("generate_assignment", self.assignment_id, "--force")
        return self.path / "assignments" / self.assignment_id

    def autograde(self, student, submission_dir):
        """Autograde the notebooks of ``submission_dir`` as ``student``.

        Returns {grade_id: (score, max_score)} for every autograded test cell.
        """
        target = self.path / "submitted" / student / self.assignment_id
        shutil.copytree(submission_dir, target)
        self.nbgrader("autograde", self.assignment_id, "--student", student, "--force")
        return self.scores(student)

    def scores(self, student):
        from nbgrader.api import Gradebook

        tests = {}
        for nb_path in notebooks(self.path / "solutions" / self.assignment_id):
            tests.update(autograded_tests(nbformat.read(nb_path, 4)))
        with Gradebook(f"sqlite:///{self.path / 'gradebook.db'}") as gradebook:
            submission = gradebook.find_submission(self.assignment_id, student)
            grades = {g.name: g for nb in submission.notebooks for g in nb.grades}
            return {gid: (grades[gid].auto_score or 0.0, grades[gid].max_score) for gid in tests}


def total(scores):
    """(earned, possible) points of a {grade_id: (score, max_score)} mapping."""
    return sum(s for s, _ in scores.values()), sum(m for _, m in scores.values())


def course_copy(source_root, dest, assignment_id=None):
    """A course root at ``dest``: the course's nbgrader config plus ``solutions/`` and ``assignments/``
    of ``source_root`` (only ``assignment_id`` when given). Returns ``dest`` (a Path)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIG_FILE, dest / "nbgrader_config.py")
    for folder in ("solutions", "assignments"):
        source = Path(source_root) / folder
        shutil.copytree(source / assignment_id if assignment_id else source,
                        dest / folder / assignment_id if assignment_id else dest / folder)
    return dest


# ---------------------------------------------------------------- fast path for variants
def apply_variant(nb, variant):
    """Return a copy of solution notebook ``nb`` with ``variant``'s edit applied."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = [c for c in nb.cells if grade_id(c) == variant.cell]
    if len(cells) != 1 or not nbgrader_meta(cells[0]).get("solution"):
        raise SpecError(f"{variant.name}: {variant.cell!r} is not the grade_id of one solution cell")
    cell = cells[0]
    regions = solution_regions(cell.source)
    if not regions:
        raise SpecError(f"{variant.name}: cell {variant.cell!r} has no {BEGIN_SOLUTION} region")
    if variant.solution is not None:
        if len(regions) != 1:
            raise SpecError(f"{variant.name}: `solution=` needs a cell with exactly one solution region")
        start, end = regions[0]
        body = variant.solution if variant.solution.endswith("\n") else variant.solution + "\n"
        cell.source = cell.source[:start] + body + cell.source[end:]
        return nb
    if not variant.find or variant.replace is None:
        raise SpecError(f"{variant.name}: give either solution= or both find= and replace=")
    hits = _occurrences(cell.source, variant.find)
    if len(hits) != 1:
        raise SpecError(f"{variant.name}: {variant.find!r} occurs {len(hits)} times in cell {variant.cell!r}, "
                        "it must occur exactly once")
    start = hits[0]
    if not any(a <= start and start + len(variant.find) <= b for a, b in regions):
        raise SpecError(f"{variant.name}: {variant.find!r} is outside the solution region of {variant.cell!r}")
    cell.source = cell.source[:start] + variant.replace + cell.source[start + len(variant.find):]
    return nb


def _occurrences(text, sub):
    hits, i = [], text.find(sub)
    while i != -1:
        hits.append(i)
        i = text.find(sub, i + 1)
    return hits


def execute_scores(nb, workdir, run_groups=None, timeout=600):
    """Execute a notebook the way the autograder does and score its test cells.

    Test cells are scored by nbgrader's own ``determine_grade`` (an error or any stderr output
    scores 0, a number as the last value is a partial score). Heavy cells
    of groups not in ``run_groups`` are skipped and left unscored (None = run everything).
    Returns {grade_id: (score, max_score)}.
    """
    from nbclient import NotebookClient

    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    tests = autograded_tests(nb)
    if run_groups is not None:
        nb.cells = [c for c in nb.cells if heavy_group(c) in (None, *run_groups)]
    old_env = dict(os.environ)
    os.environ.update(nbgrader_env())
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    from nbgrader.utils import determine_grade  # nbgrader's own rule: error/stderr = 0, number = partial

    return {grade_id(c): tuple(float(v) for v in determine_grade(c)) for c in nb.cells if grade_id(c) in tests}


def groups_to_run(source_nb, variant, spec):
    """The heavy groups a variant can affect: those that use, or contain, the edited cell."""
    groups = {heavy_group(c) for c in source_nb.cells} - {None}
    unknown = set(spec.heavy_uses) - groups - {ALL_GROUPS}
    if unknown:
        raise SpecError(f"HEAVY_USES names groups with no heavy cell: {sorted(unknown)}")
    own = {heavy_group(c) for c in source_nb.cells if grade_id(c) == variant.cell}
    every = spec.heavy_uses.get(ALL_GROUPS, frozenset())
    return {g for g in groups if g in own or variant.cell in every | spec.heavy_uses.get(g, frozenset())}


def check_variant(course_root, assignment_id, variant, spec, workdir):
    """Run ``variant`` through the fast path and assert that it loses exactly ``variant.loses``."""
    folder = Path(course_root) / "solutions" / assignment_id
    nb_paths = notebooks(folder)
    if variant.notebook:
        nb_paths = [p for p in nb_paths if p.name == variant.notebook]
    if len(nb_paths) != 1:
        raise SpecError(f"{variant.name}: name the notebook (notebook=...) among {[p.name for p in notebooks(folder)]}")
    source = nbformat.read(nb_paths[0], 4)
    tests = autograded_tests(source)
    unknown = set(variant.loses) - set(tests)
    if unknown:
        raise SpecError(f"{variant.name}: loses names cells that are not autograded tests: {sorted(unknown)}")
    run_groups = groups_to_run(source, variant, spec)
    mutated = apply_variant(source, variant)
    shutil.copytree(folder, workdir, dirs_exist_ok=True)
    scores = execute_scores(mutated, workdir, run_groups=run_groups)
    failed = {gid for gid, (s, m) in scores.items() if s < m}
    expected = set(variant.loses)
    assert failed == expected, (
        f"{assignment_id} / {variant.name}: expected to lose {sorted(expected) or 'nothing'}, "
        f"lost {sorted(failed) or 'nothing'}"
        + (f" (heavy groups run: {sorted(run_groups) or 'none'}; a group that uses the edited cell "
           "must list it in HEAVY_USES)"))
    return scores
