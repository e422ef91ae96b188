"""Make any submitted notebook gradable by nbgrader, and say what was repaired.

Students' editors delete, copy, re-type and strip cells; nbgrader 0.9 then crashes, warns about
cells nobody touched, or lets a stray marker stop the whole batch. ``normalize`` rebuilds the
nbgrader structure of a submission from the release (``assignments/<aid>/``) and the source
notebook (``solutions/<aid>/``) before ``nbgrader autograde`` sees it; it never changes what a
student wrote in a solution cell or one of their own cells, except quoting marker text.

    nb = load_submission(path)                       # ValueError: not a notebook
    path, warning = find_notebook(files, "a1_rnn_numpy.ipynb")
    fixed, repairs = normalize(nb, source_nb, release_nb)

The result contains the hidden tests of the untouched test cells (that is what the gradebook
expects, see ``_restore_checksums``): it belongs in the grading course root only, never back to
a student. Cell numbers in repair texts are 1-based positions in the submission.
"""
import copy
import difflib
import json
from pathlib import Path

import nbformat
from nbformat.v4.nbbase import random_cell_id
from nbgrader.utils import compute_checksum

# nbgrader's region delimiters (ClearHiddenTests.begin/end_test_delimeter, ClearSolutions.
# begin/end_solution_delimeter): nbgrader tests ``delimiter in line``, case-sensitive.
HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION")
MARKERS = HIDDEN_MARKERS + SOLUTION_MARKERS
_FLAGS = ("grade_id", "grade", "solution", "locked", "task", "points")


# ---------------------------------------------------------------- loading and finding
def load_submission(path):
    """Read a submitted notebook file into an nbformat v4 NotebookNode.

    Raises ValueError("<path>: not a Jupyter notebook (<reason>)") for a file that is not UTF-8
    JSON, not a JSON object with a list of cells, or not nbformat 4.
    """
    def fail(reason):
        return ValueError(f"{path}: not a Jupyter notebook ({reason})")

    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise fail(f"invalid JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise fail("no list of cells")
    if data.get("nbformat") != 4:
        raise fail(f"nbformat {data.get('nbformat')!r}, expected 4")
    if not all(isinstance(c, dict) and c.get("cell_type") in ("code", "markdown", "raw") for c in data["cells"]):
        raise fail("a cell without a valid cell_type")
    seen = set()
    for cell in data["cells"]:  # fields some editors leave out, ids a copied cell repeats
        cell.setdefault("metadata", {})
        cell.setdefault("source", "")
        if data.get("nbformat_minor", 0) >= 5:
            if cell.get("id") in seen or not cell.get("id"):
                cell["id"] = random_cell_id()
            seen.add(cell["id"])
        if cell["cell_type"] == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    data.setdefault("metadata", {})
    data.setdefault("nbformat_minor", 4)
    try:
        return nbformat.reads(json.dumps(data), as_version=4)
    except Exception as error:  # noqa: BLE001 -- nbformat raises many kinds; all mean "not readable"
        raise fail(f"{type(error).__name__}: {error}") from None


def find_notebook(files, expected_name):
    """Pick the notebook to grade among the files of one submission folder.

    ``files``: paths (str or Path); ``expected_name``: e.g. "a1_rnn_numpy.ipynb". Checkpoints and
    hidden files are ignored. Returns (Path, None) for the expected name; (Path, warning) when the
    only notebook has another name (a browser's "a1_rnn_numpy (1).ipynb"). Raises ValueError when
    there is no notebook, or several and none with the expected name (the message lists them).
    """
    notebooks = sorted(Path(f) for f in files if _is_notebook_file(Path(f)))
    for path in notebooks:
        if path.name == expected_name:
            return path, None
    if len(notebooks) == 1:
        return notebooks[0], f"graded {notebooks[0].name!r} as {expected_name!r} (the only notebook submitted)"
    if not notebooks:
        raise ValueError(f"no notebook submitted (expected {expected_name!r})")
    names = ", ".join(repr(p.name) for p in notebooks)
    raise ValueError(f"{len(notebooks)} notebooks submitted and none is {expected_name!r}: {names}")


def _is_notebook_file(path):
    hidden = any(part.startswith(".") or part == "__MACOSX" for part in path.parts)
    return path.suffix == ".ipynb" and not hidden and ".ipynb_checkpoints" not in path.parts


# ---------------------------------------------------------------- cells
def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader") or {}


def _gid(cell):
    return _meta(cell).get("grade_id")


def _locked(cell):
    """nbgrader.utils.is_locked: solution cells are never locked, grade cells always are."""
    meta = _meta(cell)
    return not meta.get("solution", False) and bool(meta.get("grade") or meta.get("locked"))


def _same_text(a, b):
    return a.strip() == b.strip()


def _fresh(cell):
    """A deep copy of a cell without stored outputs (autograde re-creates them)."""
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def _label(index, cell):
    name = _gid(cell)
    return f"cell #{index + 1} ({name})" if name else f"cell #{index + 1} ({cell.cell_type})"


# ---------------------------------------------------------------- matching
class _Match:
    """Which submitted cell plays which release cell: ``of[i]`` is a release grade_id or None."""

    def __init__(self, cells, release_cells, source_cells):
        self.cells, self.release, self.source = cells, release_cells, source_cells
        self.order = list(release_cells)  # grade_ids in release order
        self.of = [None] * len(cells)
        self.demoted = set()  # indices of extra copies, kept as plain cells

    def index_of(self, gid):
        return next((i for i, g in enumerate(self.of) if g == gid), None)

    def free(self, i):
        return self.of[i] is None and i not in self.demoted


def _match_ids(match, repairs):
    """Match by grade_id; keep one cell per grade_id (last solution copy, first release copy)."""
    by_id = {}
    for i, cell in enumerate(match.cells):
        gid = _gid(cell)
        if gid in match.release:
            by_id.setdefault(gid, []).append(i)
    for gid, found in by_id.items():
        keep = _keep_copy(match, gid, found)
        match.of[keep] = gid
        extra = [i for i in found if i != keep]
        match.demoted.update(extra)
        if extra:
            repairs.append(_duplicate_text(match, gid, keep, extra))


def _keep_copy(match, gid, found):
    if not _locked(match.release[gid]):
        return found[-1]
    texts = [match.release[gid].source, match.source.get(gid, match.release[gid]).source]
    return next((i for i in found if any(_same_text(match.cells[i].source, t) for t in texts)), found[0])


def _duplicate_text(match, gid, keep, extra):
    why = ("the last copy, the student's latest" if not _locked(match.release[gid])
           else "a copy of the release cell")
    others = ", ".join(f"#{i + 1}" for i in extra)
    return (f"grade_id {gid!r} appeared {len(extra) + 1} times: graded cell #{keep + 1} ({why}); "
            f"cell(s) {others} kept as plain ungraded cells")


def _match_locked_by_content(match, repairs):
    """Release locked cells not found by grade_id: the free cell with the same text."""
    for gid, rel in match.release.items():
        if not _locked(rel) or match.index_of(gid) is not None:
            continue
        texts = [rel.source, match.source.get(gid, rel).source]
        for i, cell in enumerate(match.cells):
            if match.free(i) and cell.cell_type == rel.cell_type and any(_same_text(cell.source, t) for t in texts):
                match.of[i] = gid
                repairs.append(f"{_label(i, cell)}: no usable nbgrader metadata; matched to {gid!r} by its text")
                break


def _match_solutions_by_position(match, repairs):
    """Release solution cells still unmatched: the free cells between the same matched neighbours."""
    for group, (lo, hi) in _gaps(match):
        wanted = [g for g in group if not _locked(match.release[g])]
        free = [i for i in range(lo + 1, hi) if match.free(i)]
        for k, gid in enumerate(wanted):
            rel = match.release[gid]
            options = [i for i in free if match.cells[i].cell_type == rel.cell_type]
            if not options:
                continue
            exact = len(options) == len(wanted) - k  # as many candidates as cells: take them in order
            pick = options[0] if exact else max(options, key=lambda i: _likeness(match, i, rel))
            match.of[pick] = gid
            free = [i for i in free if i > pick]
            repairs.append(f"{_label(pick, match.cells[pick])}: no usable nbgrader metadata; matched to solution "
                           f"cell {gid!r} by its position")


def _gaps(match):
    """[(unmatched release grade_ids, (submission index before, after))] between matched anchors."""
    gaps, group, before = [], [], -1
    for gid in match.order + [None]:
        where = match.index_of(gid) if gid else len(match.cells)
        if where is None:
            group.append(gid)
            continue
        if group and before < where:
            gaps.append((group, (before, where)))
        group, before = [], where
    return gaps


def _likeness(match, i, rel):
    return difflib.SequenceMatcher(None, match.cells[i].source, rel.source).ratio()


# ---------------------------------------------------------------- rebuilding
def _flags(cell):
    """The grading-relevant nbgrader fields of a cell, with nbgrader's defaults filled in."""
    meta = _meta(cell)
    flags = {k: bool(meta.get(k, False)) for k in ("grade", "solution", "locked", "task")}
    flags["grade_id"] = meta.get("grade_id")
    try:
        flags["points"] = float(meta["points"]) if flags["grade"] else None
    except (KeyError, TypeError, ValueError):
        flags["points"] = meta.get("points")
    return flags


def _restore_metadata(cell, rel, index, repairs):
    """Give a matched cell the release's nbgrader metadata and cell type; report real changes."""
    old, new = _flags(cell), _flags(rel)
    if _meta(cell) and old != new:
        changed = ", ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in _FLAGS if old[k] != new[k])
        repairs.append(f"{_label(index, cell)}: restored the release's nbgrader metadata ({changed})")
    if cell.cell_type != rel.cell_type:
        repairs.append(f"{_label(index, cell)}: turned back into a {rel.cell_type} cell")
        cell = _retyped(cell, rel.cell_type)
    cell.metadata = {k: v for k, v in cell.metadata.items() if k not in ("nbgrader", "editable", "deletable")}
    for key in ("nbgrader", "editable", "deletable"):
        if key in rel.metadata:
            cell.metadata[key] = copy.deepcopy(rel.metadata[key])
    return cell


def _retyped(cell, cell_type):
    new = nbformat.v4.new_code_cell(cell.source) if cell_type == "code" else nbformat.v4.new_markdown_cell(cell.source)
    new.metadata = cell.metadata
    if "id" in cell:
        new.id = cell.id
    return new


def _plain(cell):
    """A cell without nbgrader metadata (it runs, but is neither graded nor locked)."""
    cell.metadata = {k: v for k, v in cell.metadata.items() if k not in ("nbgrader", "editable", "deletable")}
    return cell


def _restored(rel):
    """A copy of a release cell for a deleted one, and the repair text."""
    gid = _gid(rel)
    if _locked(rel):
        return _fresh(rel), f"restored the deleted cell {gid!r} from the release"
    return _fresh(rel), f"restored the deleted solution cell {gid!r} as the release stub (its tests score 0)"


def _assemble(match, repairs):
    """The new cell list: matched cells with the release's metadata, extra copies and unknown
    cells as plain cells, marker text quoted outside locked cells, and deleted release cells
    restored just before the next release cell that is present (or at the end), so that the
    student's own cells before it run first, as they would in the release's order."""
    before = {}  # submission index -> release cells to insert before it
    pending = []
    for gid in match.order:
        where = match.index_of(gid)
        if where is None:
            pending.append(match.release[gid])
        elif pending:
            before.setdefault(where, []).extend(pending)
            pending = []
    out = []
    for i, cell in enumerate(match.cells + [None]):
        for rel in before.get(i, []) + (pending if cell is None else []):
            restored, text = _restored(rel)
            out.append(restored)
            repairs.append(text)
        if cell is None:
            break
        gid = match.of[i]
        if not gid and _meta(cell) and i not in match.demoted:
            repairs.append(f"{_label(i, cell)}: nbgrader metadata without a grade_id of the release removed; "
                           "kept as a plain ungraded cell")
        cell = _restore_metadata(cell, match.release[gid], i, repairs) if gid else _plain(cell)
        out.append(_quote_student_markers(cell, i, repairs))
    return out


# ---------------------------------------------------------------- markers and checksums
def quote_markers(text, keep_solution_pairs=False):
    """Return (text, [markers quoted]): every nbgrader delimiter in ``text`` made inert.

    ``BEGIN HIDDEN TESTS`` becomes ``BEGIN_HIDDEN_TESTS (quoted)``, which none of nbgrader's
    ``delimiter in line`` tests matches. With ``keep_solution_pairs`` a solution cell keeps its
    own well-formed ``### BEGIN SOLUTION`` / ``### END SOLUTION`` line pairs.
    """
    lines = text.split("\n")
    keep = _solution_pairs(lines) if keep_solution_pairs else set()
    quoted = []
    for n, line in enumerate(lines):
        if n in keep:
            continue
        for marker in MARKERS:
            if marker in line:
                line = line.replace(marker, marker.replace(" ", "_") + " (quoted)")
                quoted.append(marker)
        lines[n] = line
    return "\n".join(lines), quoted


def _solution_pairs(lines):
    """Line numbers of balanced, non-nested ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` lines."""
    pairs, start = set(), None
    for n, line in enumerate(lines):
        text = line.strip()
        if text == "### " + SOLUTION_MARKERS[0]:
            start = n if start is None else -1  # nested: spoil the pair
        elif text == "### " + SOLUTION_MARKERS[1] and start is not None:
            if start >= 0:
                pairs.update((start, n))
            start = None
    return pairs


def _quote_student_markers(cell, index, repairs):
    """Quote marker text in a cell that is not locked (solution and student cells); return the cell."""
    if _locked(cell):
        return cell
    cell.source, quoted = quote_markers(cell.source, keep_solution_pairs=_meta(cell).get("solution", False))
    if quoted:
        found = ", ".join(sorted(set(quoted)))
        repairs.append(f"{_label(index, cell)}: quoted the grader marker text {found} (nbgrader would treat it "
                       "as a hidden-test or solution region)")
    return cell


def _restore_checksums(cells, source, release):
    """Untouched locked cells get the source notebook's text and checksum.

    nbgrader's SaveCells stores a test cell *with* its hidden tests (before ClearHiddenTests), and
    OverwriteCells.preprocess_cell compares ``nbgrader.utils.compute_checksum(cell)`` with that;
    a release cell (hidden tests cleared) therefore always "has changed". A locked cell whose text
    equals the release's (or the source's) is given the source text, so only real edits warn.
    """
    for cell in cells:
        gid = _gid(cell)
        if not _locked(cell) or gid not in source or gid not in release:
            continue
        if any(_same_text(cell.source, ref[gid].source) for ref in (release, source)):
            cell.source = source[gid].source
            cell.metadata["nbgrader"]["checksum"] = compute_checksum(cell)


def _unique_ids(nb):
    """nbformat >= 4.5 needs a unique ``id`` per cell (restored and copied cells may clash)."""
    seen = set()
    for cell in nb.cells:
        if nb.nbformat_minor < 5:
            cell.pop("id", None)
            continue
        if not cell.get("id") or cell.id in seen:
            cell.id = random_cell_id()
        seen.add(cell.id)


# ---------------------------------------------------------------- entry point
def normalize(submitted, source, release):
    """Return (notebook, repairs): ``submitted`` rebuilt so that nbgrader can grade it.

    Inputs: three nbformat v4 NotebookNodes (the submission, the source notebook with solutions
    and hidden tests, the student release); none is modified. The result has every graded or
    locked release cell exactly once, with the release's nbgrader metadata, in release order
    relative to its neighbours; no stored outputs; no live nbgrader marker outside locked cells;
    untouched locked cells with the text and checksum the gradebook holds. ``repairs``: short
    English sentences, one per repair (empty for a well-formed submission).
    """
    repairs = []
    release_cells = {_gid(c): c for c in release.cells if _gid(c)}
    source_cells = {_gid(c): c for c in source.cells if _gid(c)}
    match = _Match([_fresh(c) for c in submitted.cells], release_cells, source_cells)
    _match_ids(match, repairs)
    _match_locked_by_content(match, repairs)
    _match_solutions_by_position(match, repairs)
    nb = copy.deepcopy(submitted)
    nb.cells = _assemble(match, repairs)
    nb.nbformat, nb.nbformat_minor = 4, max(submitted.get("nbformat_minor", 0), release.get("nbformat_minor", 0))
    _restore_checksums(nb.cells, source_cells, release_cells)
    _unique_ids(nb)
    return nb, repairs
