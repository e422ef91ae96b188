"""instructor.course: what make and the tests share (assignment ids, notebook cells by id)."""
from pathlib import Path

import pytest

from instructor.course import assignment_ids, exec_cells

COURSE = Path(__file__).resolve().parents[2]


def test_assignment_ids_are_the_solution_folders():
    assert assignment_ids(COURSE)[:4] == ["a1_rnn_numpy", "a2_lstm_numpy", "a3_rnn_pytorch", "a4_seq2seq_attention"]


def test_exec_cells_runs_cells_by_grade_id_or_tag(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    cells = [new_markdown_cell("x"), new_code_cell("a = 1"), new_code_cell("b = a + 1")]
    for cell, gid in zip(cells, ["intro", "one", "two"]):
        cell.metadata["nbgrader"] = {"grade_id": gid}
    cells.append(new_code_cell("c = 5", metadata={"tags": ["lecture-model"]}))
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    ns = exec_cells(path, ["one", "two"])
    assert ns["b"] == 2
    assert exec_cells(path, ["lecture-model"])["c"] == 5
    ns = exec_cells(path, "one", namespace={"extra": 3})
    assert ns["a"] == 1 and ns["extra"] == 3
    with pytest.raises(ValueError, match=r"\['three'\]"):
        exec_cells(path, ["one", "three"])
    with pytest.raises(ValueError, match="intro"):  # a markdown cell is not code
        exec_cells(path, ["intro"])
    with pytest.raises(ValueError, match="grade_ids"):
        exec_cells(path, [])
