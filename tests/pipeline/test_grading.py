"""Grading pipeline of every assignment of the course (generic over solutions/*).

For each assignment: the committed release is exactly nbgrader's, leaks nothing, the reference
solution gets 100 % of the autograded points, the untouched release 0, every mutant loses the
points of exactly its target test cells and every alternative keeps full marks.
"""
import ast
import importlib
import re
from pathlib import Path

import grading
import nbformat
import pipeline
import pytest

COURSE = Path(__file__).resolve().parents[2]
MUTANTS = Path(__file__).resolve().parents[1] / "mutants"
MIN_MUTANTS, MIN_ALTERNATIVES = 2, 1

pipeline.register(globals(), COURSE, MUTANTS)


def graded_solution_cells(aid):
    """grade_ids of the code solution cells of an assignment (the functions students write)."""
    cells = []
    for path in grading.notebooks(COURSE / "solutions" / aid):
        cells += [grading.grade_id(c) for c in nbformat.read(path, 4).cells
                  if c.cell_type == "code" and grading.nbgrader_meta(c).get("solution")]
    return cells


@pytest.mark.parametrize("aid", grading.assignment_ids(COURSE))
def test_every_solution_cell_has_mutants_and_alternatives(aid):
    """Grader quality: each graded function has >= 2 mutants and >= 1 alternative, unless the
    variant file exempts it in UNGRADED (optional, ungraded parts) with a reason."""
    spec = grading.load_spec(MUTANTS, aid)
    exempt = getattr(grading.load_module(MUTANTS, aid), "UNGRADED", {})
    missing = []
    for cell in graded_solution_cells(aid):
        if cell in exempt:
            continue
        n_mut = sum(v.cell == cell for v in spec.mutants)
        n_alt = sum(v.cell == cell for v in spec.alternatives)
        if n_mut < MIN_MUTANTS or n_alt < MIN_ALTERNATIVES:
            missing.append(f"{cell}: {n_mut} mutants, {n_alt} alternatives")
    assert not missing, f"{aid}: need >= {MIN_MUTANTS} mutants and >= {MIN_ALTERNATIVES} alternative per " \
                        "graded solution cell:\n" + "\n".join(missing)


@pytest.mark.parametrize("aid", grading.assignment_ids(COURSE))
def test_notebooks_use_only_what_their_grader_has(aid):
    """Every ``grader.<name>`` a notebook calls exists in ``graders.<aid>`` (a self-check cell calling a
    name the grader lost stops "Run All" for every student, and no graded cell notices)."""
    module = importlib.import_module(f"graders.{aid}")
    missing = set()
    for path in grading.notebooks(COURSE / "solutions" / aid):
        for cell in nbformat.read(path, 4).cells:
            if cell.cell_type == "code":
                missing |= {f"{path.name}: {grading.grade_id(cell)} uses grader.{name}"
                            for name in re.findall(r"\bgrader\.([A-Za-z_]\w*)", cell.source)
                            if not hasattr(module, name)}
    assert not missing, f"graders.{aid} lacks what its notebook calls:\n" + "\n".join(sorted(missing))


@pytest.mark.parametrize("aid", grading.assignment_ids(COURSE))
def test_the_points_table_names_every_function_and_adds_up_to_the_cells_points(aid):
    """The intro's points table: every function or class a solution cell defines is named in it, and its
    points add up to the graded cells' points (100 in all)."""
    cells = [c for path in grading.notebooks(COURSE / "solutions" / aid) for c in nbformat.read(path, 4).cells]
    intro = next(c.source for c in cells if grading.grade_id(c) == "intro")
    rows = [line for line in intro.splitlines() if line.startswith("|") and line.rstrip().endswith("|")]
    table_points = [int(m.group(1)) for line in rows if (m := re.search(r"\|\s*(\d+)\s*\|\s*$", line))]
    cell_points = [grading.nbgrader_meta(c)["points"] for c in cells if grading.nbgrader_meta(c).get("grade")]
    assert sum(table_points) == sum(cell_points) == 100 and f"**{sum(cell_points)}**" in intro, (
        f"{aid}: table {sum(table_points)}, cells {sum(cell_points)}")
    named = set(re.findall(r"`(\w+)", "\n".join(rows)))
    defined = {node.name for c in cells if c.cell_type == "code" and grading.nbgrader_meta(c).get("solution")
               for node in ast.parse(c.source).body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assert defined - named == set(), f"{aid}: functions missing from the points table: {sorted(defined - named)}"
