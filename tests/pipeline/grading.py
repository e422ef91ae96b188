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

The fast path (``run_variants``) runs ``forkrun.py``: one IPython process executes the reference
notebook once and forks at each edited cell, so a variant costs only the cells from its edit on
(``execute_scores``, a fresh nbclient kernel per variant, is the plain path it must agree with).
Each mutant gets its own run; alternatives of different cells share one (``rounds``).
"""
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
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


def solution_namespace(notebook, cells, edit=None):
    """Execute the setup cell and the solution cells ``cells`` (grade_ids, in order) of a source notebook in one
    namespace, solution markers removed; returns the namespace (the reference functions for unit tests).

    ``edit``: optional (grade_id, find, replace): ``find`` must occur exactly once in that cell.
    """
    import re

    sources = {grade_id(c): c.source for c in nbformat.read(notebook, 4).cells}
    if edit is not None:
        cell, find, replace = edit
        if sources[cell].count(find) != 1:
            raise SpecError(f"{find!r} must occur exactly once in cell {cell!r}")
        sources[cell] = sources[cell].replace(find, replace)
    namespace = {}
    for gid in ("setup", *cells):
        exec(re.sub(r"^\s*### (BEGIN|END) SOLUTION\n", "", sources[gid], flags=re.M), namespace)
    return namespace


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


def error_cells(folder):
    """'<notebook>: <cell> <error>' for every code cell of the notebooks in ``folder`` that stored an error."""
    found = []
    for path in notebooks(folder):
        for index, cell in enumerate(nbformat.read(path, 4).cells):
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                if out.get("output_type") == "error":
                    found.append(f"{path.name}: {grade_id(cell) or f'cell {index}'} {out.get('ename')}: "
                                 f"{str(out.get('evalue'))[:200]}")
    return found


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
    """Execute a notebook in a fresh Jupyter kernel (nbclient) and score its test cells.

    The slow, plain path: ``run_variants`` must agree with it (tests/pipeline/test_grading_harness).
    Test cells are scored by nbgrader's own ``determine_grade``. Heavy cells of groups not in
    ``run_groups`` are skipped and left unscored (None = run everything).
    Returns {grade_id: (score, max_score)}.
    """
    from nbclient import NotebookClient
    from nbgrader.utils import determine_grade

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


def variant_notebook(course_root, assignment_id, variant):
    """The solution notebook a variant edits (``variant.notebook`` when the assignment has several)."""
    paths = notebooks(Path(course_root) / "solutions" / assignment_id)
    if variant.notebook:
        paths = [p for p in paths if p.name == variant.notebook]
    if len(paths) != 1:
        raise SpecError(f"{variant.name}: name the notebook (notebook=...) among "
                        f"{[p.name for p in notebooks(Path(course_root) / 'solutions' / assignment_id)]}")
    return paths[0]


def _job_cells(nb):
    """The code cells of a notebook as ``forkrun`` job cells."""
    from instructor.timeouts import cell_timeout

    tests = autograded_tests(nb)
    return [{"source": c.source, "group": heavy_group(c), "grade_id": grade_id(c), "timeout": cell_timeout(c),
             "points": tests.get(grade_id(c))} for c in nb.cells if c.cell_type == "code"]


def _job_run(source, run, spec):
    """Variants applied together as one ``forkrun`` run: {name, edits {code index: source}, groups}."""
    edits, groups = {}, set()
    for variant in run:
        unknown = set(variant.loses) - set(autograded_tests(source))
        if unknown:
            raise SpecError(f"{variant.name}: loses names cells that are not autograded tests: {sorted(unknown)}")
        code = [c for c in apply_variant(source, variant).cells if c.cell_type == "code"]
        index = next(i for i, c in enumerate(code) if grade_id(c) == variant.cell)
        edits[str(index)] = code[index].source
        groups |= groups_to_run(source, variant, spec)
    return {"name": _job_name(run), "edits": edits, "groups": sorted(groups)}


def rounds(alternatives):
    """Alternatives in groups that edit different cells of one notebook (first fit, in order).

    A group is scored in one run with all its edits applied. Sound for alternatives (not for
    mutants): each function's own test cell still checks that function's alternative, and a
    group that loses any point is re-run one alternative at a time (``run_variants``)."""
    groups = []
    for alternative in alternatives:
        home = next((g for g in groups if all(a.cell != alternative.cell and a.notebook == alternative.notebook
                                              for a in g)), None)
        if home is None:
            groups.append([alternative])
        else:
            home.append(alternative)
    return groups


def _score_runs(course_root, assignment_id, runs, spec, workdir, budget):
    """{run name: outcome} for lists of variants, each list applied together in one forked run."""
    by_notebook = {}
    for run in runs:
        by_notebook.setdefault(variant_notebook(course_root, assignment_id, run[0]), []).append(run)
    results = {}
    for number, (path, group) in enumerate(sorted(by_notebook.items())):
        source = nbformat.read(path, 4)
        job = {"cells": _job_cells(source), "budget": budget, "runs": [_job_run(source, r, spec) for r in group]}
        folder = Path(workdir) / f"run{number}"
        shutil.copytree(path.parent, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        (folder / ".job.json").write_text(json.dumps(job))
        done = subprocess.run([sys.executable, str(Path(__file__).with_name("forkrun.py")), ".job.json",
                               ".result.json"], cwd=folder, env=nbgrader_env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"forkrun failed for {path.name}:\n{done.stderr[-4000:]}")
        outcomes = json.loads((folder / ".result.json").read_text())
        results.update({run["name"]: {**outcomes[run["name"]], "groups": run["groups"]} for run in job["runs"]})
    return results


def _lost_points(outcome):
    return "crash" in outcome or any(score < max_score for score, max_score, _ in outcome["grades"].values())


def run_variants(course_root, assignment_id, variants, spec, workdir, budget=900):
    """Score ``variants`` through the forked fast path (``forkrun.py``, one process per notebook):
    each mutant in its own run, the alternatives in ``rounds``.

    Returns {variant name: outcome}; an outcome has "groups" (the heavy groups run) and either
    "grades" ({grade_id: (score, max, error)}) or "crash" (what went wrong).
    Raises SpecError for a variant that does not describe a valid edit.
    """
    runs = [[v] for v in variants if v.loses] + rounds([v for v in variants if not v.loses])
    outcomes = _score_runs(course_root, assignment_id, runs, spec, Path(workdir) / "together", budget)
    result = {v.name: outcomes[_job_name(run)] for run in runs for v in run}
    retry = [[v] for run in runs if len(run) > 1 and _lost_points(outcomes[_job_name(run)]) for v in run]
    if retry:  # a round that lost points: each of its alternatives alone, so a failure names its own
        result.update(_score_runs(course_root, assignment_id, retry, spec, Path(workdir) / "alone", budget))
    return result


def _job_name(run):
    return " + ".join(v.name for v in run)


def assert_outcome(assignment_id, variant, outcome):
    """Assert that a variant's outcome (from ``run_variants``) lost exactly ``variant.loses``."""
    assert "crash" not in outcome, f"{assignment_id} / {variant.name}: {outcome.get('crash')}"
    grades = outcome["grades"]
    failed = {gid for gid, (score, max_score, _) in grades.items() if score < max_score}
    expected = set(variant.loses)
    why = "; ".join(f"{gid}: {grades[gid][2]}" for gid in sorted(failed - expected) if grades[gid][2])
    assert failed == expected, (
        f"{assignment_id} / {variant.name}: expected to lose {sorted(expected) or 'nothing'}, "
        f"lost {sorted(failed) or 'nothing'}" + (f" ({why[:1500]})" if why else "")
        + (f" (heavy groups run: {outcome['groups'] or 'none'}; a group that uses the edited cell "
           "must list it in HEAVY_USES)"))


def check_variant(course_root, assignment_id, variant, spec, workdir):
    """Run one variant through the fast path and assert that it loses exactly ``variant.loses``.

    Returns its {grade_id: (score, max_score)}."""
    outcome = run_variants(course_root, assignment_id, [variant], spec, workdir)[variant.name]
    assert_outcome(assignment_id, variant, outcome)
    return {gid: (score, max_score) for gid, (score, max_score, _) in outcome["grades"].items()}


def run_cli(args):
    """(exit code, printed output) of ``python -m instructor <args>``, run in this process."""
    from instructor import cli

    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main(args)
    return code, out.getvalue()
