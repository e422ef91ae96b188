"""instructor.normalize: malformed submissions become gradable, and every repair is reported.

Unit tests use the fixture assignment fx_tiny and a1's committed notebooks in memory (fast); one
module-scoped run of the real `nbgrader autograde` on a1 shows that normalised submissions no
longer crash nbgrader, that untouched test cells no longer raise checksum warnings and that an
edited locked cell still does."""
import copy
import json
import re
import shutil
from pathlib import Path

import grading
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.utils import compute_checksum

from instructor.course import run_nbgrader
from instructor.normalize import find_notebook, load_submission, normalize, quote_markers

COURSE = Path(__file__).resolve().parents[2]
TINY = COURSE / "tests" / "fixtures" / "tiny_course"
A1 = "a1_rnn_numpy"


def read(folder, aid):
    return nbformat.read(folder / aid / f"{aid}.ipynb", 4)


@pytest.fixture(scope="module")
def tiny():
    """(source, release) of the fixture assignment."""
    return read(TINY / "solutions", "fx_tiny"), read(TINY / "assignments", "fx_tiny")


@pytest.fixture(scope="module")
def a1():
    return read(COURSE / "solutions", A1), read(COURSE / "assignments", A1)


def ids(nb):
    return [grading.grade_id(c) for c in nb.cells]


def cell(nb, gid):
    (found,) = [c for c in nb.cells if grading.grade_id(c) == gid]
    return found


def flags(c):
    """nbgrader metadata without the checksum (which normalize may recompute)."""
    return {k: v for k, v in c.metadata["nbgrader"].items() if k != "checksum"}


def without(nb, *gids):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if grading.grade_id(c) not in gids]
    return nb


def feedback_clear(nb):
    """What nbgrader's generate_feedback does with hidden-test regions (raises on stray markers)."""
    return ClearHiddenTests().preprocess(copy.deepcopy(nb), {})[0]


# ---------------------------------------------------------------- well-formed submissions
def test_untouched_release_and_reference_need_no_repair(tiny, a1):
    for source, release in (tiny, a1):
        for submission in (release, source):
            fixed, repairs = normalize(submission, source, release)
            assert repairs == []
            assert ids(fixed) == ids(release)
            assert [c.source for c in fixed.cells if grading.nbgrader_meta(c).get("solution")] == \
                [c.source for c in submission.cells if grading.nbgrader_meta(c).get("solution")]


def test_inputs_are_not_modified_and_normalizing_twice_changes_nothing(tiny):
    source, release = tiny
    submission = without(release, "test_axpy")
    before = json.dumps(submission, sort_keys=True)
    fixed, repairs = normalize(submission, source, release)
    assert repairs and json.dumps(submission, sort_keys=True) == before
    again, repairs_again = normalize(fixed, source, release)
    assert repairs_again == [] and again.cells == fixed.cells


def test_stored_outputs_are_dropped_and_sources_kept(tiny):
    source, release = tiny
    submission = copy.deepcopy(source)
    cell(submission, "axpy").outputs = [nbformat.v4.new_output("stream", text="x" * 1000)]
    cell(submission, "axpy").execution_count = 7
    fixed, _ = normalize(submission, source, release)
    assert all(c.outputs == [] and c.execution_count is None for c in fixed.cells if c.cell_type == "code")
    assert cell(fixed, "axpy").source == cell(source, "axpy").source


# ---------------------------------------------------------------- deleted cells
@pytest.mark.parametrize("deleted", [["test_rnn_forward"], ["test_rnn_step_forward", "selfcheck_rnn_step_forward"],
                                     ["intro"], ["end", "q2"], ["test_sample", "sample_demo"]])
def test_deleted_locked_cells_come_back_at_their_release_position(a1, deleted):
    source, release = a1
    fixed, repairs = normalize(without(release, *deleted), source, release)
    assert ids(fixed) == ids(release)
    for gid in deleted:
        assert any(repr(gid) in r and "restored the deleted" in r for r in repairs)
        assert flags(cell(fixed, gid)) == flags(cell(release, gid))


def test_a_deleted_solution_cell_comes_back_as_the_stub(tiny):
    source, release = tiny
    submission = without(source, "axpy")
    fixed, repairs = normalize(submission, source, release)
    assert ids(fixed) == ids(release)
    assert cell(fixed, "axpy").source == cell(release, "axpy").source  # raise NotImplementedError -> 0
    assert repairs == ["restored the deleted solution cell 'axpy' as the release stub (its tests score 0)"]


def test_a_restored_cell_goes_after_the_students_own_cells_before_the_next_release_cell(tiny):
    source, release = tiny
    submission = without(source, "test_axpy")
    scratch = new_code_cell("print(axpy(1.0, 2.0, 3.0))")
    submission.cells.insert(ids(submission).index("axpy") + 1, scratch)
    fixed, _ = normalize(submission, source, release)
    order = ids(fixed)
    assert order.index("axpy") + 2 == order.index("test_axpy") == order.index("fit") - 1
    assert fixed.cells[order.index("axpy") + 1].source == scratch.source


# ---------------------------------------------------------------- stripped or rewritten metadata
def test_stripped_metadata_is_matched_by_text_and_position(tiny):
    source, release = tiny
    submission = copy.deepcopy(source)
    for c in submission.cells:  # an editor that drops all cell metadata
        c.metadata = {}
    fixed, repairs = normalize(submission, source, release)
    assert ids(fixed) == ids(release)
    for gid in ("softmax", "axpy", "fit", "q_why"):
        assert cell(fixed, gid).source == cell(source, gid).source  # the student's work, kept
        assert any(f"solution cell {gid!r} by its position" in r for r in repairs)
    for gid in ("intro", "imports", "test_softmax", "test_axpy"):
        assert any(f"matched to {gid!r} by its text" in r for r in repairs)
    assert [flags(c) for c in fixed.cells] == [flags(c) for c in release.cells]
    nbformat.validate(fixed)


def test_rewritten_points_flags_and_grade_ids_are_not_trusted(tiny):
    source, release = tiny
    submission = copy.deepcopy(source)
    cell(submission, "test_axpy").metadata["nbgrader"]["points"] = 100
    cell(submission, "test_softmax").metadata["nbgrader"].update(locked=False, solution=True)
    cell(submission, "fit").metadata["nbgrader"]["grade_id"] = "cell-8f3a"  # an editor's own id
    fixed, repairs = normalize(submission, source, release)
    assert ids(fixed) == ids(release)
    assert cell(fixed, "test_axpy").metadata["nbgrader"]["points"] == cell(release, "test_axpy").metadata[
        "nbgrader"]["points"]
    assert cell(fixed, "test_softmax").metadata["nbgrader"]["solution"] is False
    assert cell(fixed, "fit").source == cell(source, "fit").source
    text = "\n".join(repairs)
    assert re.search(r"test_axpy.*points 100\.0 -> \d", text)
    assert re.search(r"test_softmax.*(solution True -> False|locked False -> True)", text)
    assert "solution cell 'fit' by its position" in text


def test_a_cell_with_an_unknown_grade_id_becomes_a_plain_cell(tiny):
    source, release = tiny
    submission = copy.deepcopy(source)
    extra = new_code_cell("helper = 1", metadata={"nbgrader": {"grade_id": "my_helper", "solution": True,
                                                                "grade": True, "points": 50, "locked": False}})
    submission.cells.insert(3, extra)
    fixed, repairs = normalize(submission, source, release)
    assert ids(fixed) == ids(release)[:3] + [None] + ids(release)[3:]
    assert "nbgrader" not in fixed.cells[3].metadata and fixed.cells[3].source == "helper = 1"
    assert any("cell #4" in r and "plain ungraded cell" in r for r in repairs)


def test_a_graded_cell_turned_into_markdown_becomes_code_again(tiny):
    source, release = tiny
    submission = copy.deepcopy(release)
    index = ids(submission).index("test_axpy")
    old = submission.cells[index]
    submission.cells[index] = new_markdown_cell(old.source, metadata=old.metadata)
    fixed, repairs = normalize(submission, source, release)
    assert cell(fixed, "test_axpy").cell_type == "code"
    assert cell(fixed, "test_axpy").source == cell(source, "test_axpy").source
    assert repairs == [f"cell #{index + 1} (test_axpy): turned back into a code cell"]
    nbformat.validate(fixed)


def test_an_old_format_submission_gets_valid_unique_cell_ids(tiny):
    source, release = tiny
    submission = without(source, "test_softmax")
    submission.nbformat_minor = 4
    for c in submission.cells:
        del c["id"]
    fixed, _ = normalize(submission, source, release)
    nbformat.validate(fixed)
    assert fixed.nbformat_minor == release.nbformat_minor
    assert len({c.id for c in fixed.cells}) == len(fixed.cells) == len(release.cells)


# ---------------------------------------------------------------- duplicates
def test_a_copied_solution_cell_keeps_the_last_copy_graded(tiny):
    source, release = tiny
    submission = copy.deepcopy(source)
    latest = copy.deepcopy(cell(submission, "axpy"))
    latest.source = latest.source.replace("a * x + y", "y + a * x")
    latest.id = "copy1"
    submission.cells.insert(ids(submission).index("axpy") + 1, latest)
    fixed, repairs = normalize(submission, source, release)
    graded = [c for c in fixed.cells if grading.grade_id(c) == "axpy"]
    assert len(graded) == 1 and "y + a * x" in graded[0].source
    plain = [c for c in fixed.cells if "a * x + y" in c.source]
    assert len(plain) == 1 and "nbgrader" not in plain[0].metadata  # nothing lost, nothing graded twice
    assert any("'axpy' appeared 2 times" in r and "last copy" in r for r in repairs)


def test_a_copied_locked_cell_keeps_one_release_copy(tiny):
    source, release = tiny
    submission = copy.deepcopy(release)
    edited = copy.deepcopy(cell(submission, "test_axpy"))
    edited.source += "\nprint('my own check')"
    edited.id = "copy2"
    submission.cells.insert(ids(submission).index("test_axpy"), edited)  # the edited copy comes first
    fixed, repairs = normalize(submission, source, release)
    assert ids(fixed).count("test_axpy") == 1
    assert cell(fixed, "test_axpy").source == cell(source, "test_axpy").source
    assert any("my own check" in c.source and "nbgrader" not in c.metadata for c in fixed.cells)
    assert any("'test_axpy' appeared 2 times" in r for r in repairs)
    assert len({c.id for c in fixed.cells}) == len(fixed.cells)
    nbformat.validate(fixed)


# ---------------------------------------------------------------- marker text
def test_marker_text_in_student_cells_no_longer_stops_feedback(tiny):
    source, release = tiny
    submission = copy.deepcopy(source)
    cell(submission, "axpy").source += "\n    # see ### BEGIN HIDDEN TESTS in the docs"
    cell(submission, "q_why").source += "\nI wondered what END HIDDEN TESTS means."
    submission.cells.append(new_code_cell('notes = """### BEGIN SOLUTION\n### END SOLUTION"""'))
    submission.cells.append(new_markdown_cell("### BEGIN HIDDEN TESTS\nmy notes\n### END HIDDEN TESTS"))
    with pytest.raises(RuntimeError, match="[Hh]idden test"):  # nbgrader stops the whole feedback batch
        feedback_clear(submission)
    fixed, repairs = normalize(submission, source, release)
    cleared = feedback_clear(fixed)  # does not raise
    assert "my notes" in cleared.cells[-1].source and "I wondered" in cell(cleared, "q_why").source
    assert "BEGIN HIDDEN TESTS" not in cell(cleared, "test_axpy").source  # real hidden tests still cleared
    for c in fixed.cells:
        if not grading.nbgrader_meta(c).get("locked"):
            own = quote_markers(c.source, keep_solution_pairs=grading.nbgrader_meta(c).get("solution", False))[0]
            assert own == c.source
    assert cell(fixed, "softmax").source == cell(source, "softmax").source  # its own solution markers stay
    assert "BEGIN SOLUTION" not in fixed.cells[-2].source
    assert sum("quoted the grader marker text" in r for r in repairs) == 4


def test_quote_markers_makes_every_delimiter_inert():
    text, found = quote_markers("x = 1  # BEGIN HIDDEN TESTS\n### END SOLUTION\n### BEGIN SOLUTION")
    assert found == ["BEGIN HIDDEN TESTS", "END SOLUTION", "BEGIN SOLUTION"]
    assert not any(m in text for m in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION"))
    assert quote_markers(text) == (text, [])
    pair = "    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    assert quote_markers(pair, keep_solution_pairs=True) == (pair, [])
    assert quote_markers(pair + "\n### END SOLUTION", keep_solution_pairs=True)[1] == ["END SOLUTION"]


# ---------------------------------------------------------------- checksums
def test_untouched_locked_cells_carry_the_source_text_and_its_checksum(tiny):
    source, release = tiny
    fixed, _ = normalize(release, source, release)
    test = cell(fixed, "test_softmax")
    assert test.source == cell(source, "test_softmax").source  # with its hidden tests, as the gradebook has it
    assert test.metadata["nbgrader"]["checksum"] == compute_checksum(test)
    assert cell(fixed, "softmax").source == cell(release, "softmax").source


def test_an_edited_locked_cell_is_left_for_nbgrader_to_restore(tiny):
    source, release = tiny
    submission = copy.deepcopy(release)
    cell(submission, "test_axpy").source = "pass  # removed the check"
    fixed, repairs = normalize(submission, source, release)
    assert cell(fixed, "test_axpy").source == "pass  # removed the check" and repairs == []


# ---------------------------------------------------------------- files
def test_load_submission_rejects_what_is_not_a_notebook(tmp_path, tiny):
    cases = {"empty.ipynb": b"", "text.ipynb": b"hello", "binary.ipynb": b"\xff\xfe\x00",
             "list.ipynb": b"[1, 2]", "v3.ipynb": json.dumps({"nbformat": 3, "cells": []}).encode(),
             "cells.ipynb": json.dumps({"nbformat": 4, "cells": [{"cell_type": "python"}]}).encode()}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=rf"^{re.escape(str(tmp_path / name))}: not a Jupyter notebook \(.+\)"):
            load_submission(tmp_path / name)
    sparse = {"nbformat": 4, "nbformat_minor": 5,
              "cells": [{"cell_type": "code", "source": ["a = 1\n", "b = 2"]}, {"cell_type": "markdown"}]}
    (tmp_path / "sparse.ipynb").write_text(json.dumps(sparse))
    nb = load_submission(tmp_path / "sparse.ipynb")
    assert nb.cells[0].source == "a = 1\nb = 2" and nb.cells[1].metadata == {}
    nbformat.write(tiny[1], tmp_path / "ok.ipynb")
    assert ids(load_submission(tmp_path / "ok.ipynb")) == ids(tiny[1])


def test_load_submission_renames_repeated_cell_ids_quietly(tmp_path, tiny, recwarn):
    """A copied cell repeats its id (JupyterLab keeps it on paste in some versions): the copy gets a
    new id without nbformat's DuplicateCellId warning, and nothing else changes."""
    data = json.loads(nbformat.writes(tiny[1]))
    data["cells"].insert(1, copy.deepcopy(data["cells"][0]))
    (tmp_path / "dup.ipynb").write_text(json.dumps(data))
    nb = load_submission(tmp_path / "dup.ipynb")
    assert nb.cells[0].id == data["cells"][0]["id"] and nb.cells[1].id != nb.cells[0].id
    assert [c.source for c in nb.cells] == ["".join(c["source"]) for c in data["cells"]]
    assert not [w for w in recwarn if "DuplicateCellId" in type(w.message).__name__ + str(w.message)]


def test_find_notebook_accepts_one_notebook_under_another_name(tmp_path):
    name = f"{A1}.ipynb"
    assert find_notebook([tmp_path / name, tmp_path / "notes.txt", tmp_path / "other.ipynb"], name) == \
        (tmp_path / name, None)
    path, warning = find_notebook([tmp_path / f"{A1} (1).ipynb", tmp_path / ".ipynb_checkpoints" / name], name)
    assert path == tmp_path / f"{A1} (1).ipynb" and f"'{A1} (1).ipynb'" in warning and name in warning
    with pytest.raises(ValueError, match=r"2 notebooks submitted and none is .*'a\.ipynb', 'b\.ipynb'"):
        find_notebook([tmp_path / "b.ipynb", tmp_path / "a.ipynb"], name)
    with pytest.raises(ValueError, match="no notebook submitted"):
        find_notebook([tmp_path / "a1.py"], name)


# ---------------------------------------------------------------- the real nbgrader, once
def _students(source, release):
    """{student: submission}: untouched, a messy but gradable one, and the raw crash case."""
    messy = without(release, "test_rnn_forward")
    cell(messy, "rnn_step_forward").source = cell(source, "rnn_step_forward").source
    copy_of = copy.deepcopy(cell(messy, "rnn_step_backward"))
    copy_of.id = "dup-1"
    messy.cells.insert(ids(messy).index("rnn_step_backward"), copy_of)
    cell(messy, "selfcheck_rnn_step_forward").source += "\nprint('edited')"  # real tampering
    cell(messy, "rnn_backward").source += "\n# ### BEGIN HIDDEN TESTS"
    for gid in ("word_embedding_forward", "selfcheck_word_embedding_forward"):
        cell(messy, gid).metadata = {}
    return {"untouched": normalize(release, source, release)[0], "messy": normalize(messy, source, release)[0],
            "raw": without(release, "test_rnn_forward")}


@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    """Autograde three a1 submissions in a temporary course root; (root, {student: log text})."""
    root = tmp_path_factory.mktemp("normalize_course")
    shutil.copy(COURSE / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(COURSE / "solutions" / A1, root / "solutions" / A1)
    run_nbgrader("generate_assignment", A1, "--force", root=root)
    source, release = read(root / "solutions", A1), read(root / "assignments", A1)
    for student, nb in _students(source, release).items():
        (root / "submitted" / student / A1).mkdir(parents=True)
        nbformat.write(nb, root / "submitted" / student / A1 / f"{A1}.ipynb")
    log = run_nbgrader("autograde", A1, "--force", root=root, check=False).stderr
    parts = re.split(r"Creating/updating student with ID '(\w+)'", log)
    return root, dict(zip(parts[1::2], parts[2::2]))


def _score(root, student, gid):
    """(score, max score) of one test cell; max score checked against the source notebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        grade = gradebook.find_grade(gid, A1, A1, student)
        score, possible = grade.score, grade.max_score
    assert possible == grading.autograded_tests(read(root / "solutions", A1))[gid] > 0
    return score, possible


@pytest.mark.slow
def test_untouched_release_autogrades_without_checksum_warnings(autograded):
    root, logs = autograded
    assert "has changed" not in logs["untouched"]
    assert "Autograding" in logs["untouched"] and (root / "autograded" / "untouched" / A1 / f"{A1}.ipynb").exists()
    assert _score(root, "untouched", "test_rnn_step_forward")[0] == 0


@pytest.mark.slow
def test_messy_submission_autogrades_and_only_the_edited_cell_warns(autograded):
    root, logs = autograded
    changed = re.findall(r"Attribute '(\w+)' for cell (\w+) has changed", logs["messy"])
    assert changed == [("checksum", "selfcheck_rnn_step_forward")]
    assert "Traceback" not in logs["messy"] and "Missing grade cell" not in logs["messy"]
    score, possible = _score(root, "messy", "test_rnn_step_forward")
    assert score == possible  # the student's work, graded
    assert _score(root, "messy", "test_rnn_forward")[0] == 0  # the restored test cell, run and failed
    result = run_nbgrader("generate_feedback", A1, "--student", "messy", "--force", root=root, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (root / "feedback" / "messy" / A1 / f"{A1}.html").exists()


@pytest.mark.slow
def test_without_normalize_a_deleted_test_cell_crashes_nbgrader(autograded):
    root, logs = autograded  # documents why normalize restores cells itself
    assert "KeyError: 'selfcheck_rnn_forward'" in logs["raw"]
    noise = re.findall(r"Attribute 'checksum' for cell (\w+) has changed", logs["raw"])
    assert "test_rnn_step_forward" in noise  # untouched, yet warned about: the noise normalize removes
