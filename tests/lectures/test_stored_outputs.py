"""The stored lectures look finished to a reader who has not run anything (DESIGN: "Stored outputs
look finished"): every code cell ran, in order, without an error, a stderr stream, a progress bar
frozen where it started, a widget whose state was not saved, or a path of the machine that
executed it; and every lecture has its exercises, recap and glossary.

nbval checks that the outputs can be reproduced; these tests check what a student sees first."""
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
FROZEN_BAR = re.compile(r"(?<!\d)0%\|")  # tqdm's text at creation ("  0%|          | 0/300"), never updated
MACHINE_PATH = re.compile(r"(/work/|/home/|/root/|/tmp/|/private/var/|[A-Z]:\\\\Users)")


def code_cells(path):
    return [(i, c) for i, c in enumerate(nbformat.read(path, 4).cells) if c.cell_type == "code"]


def output_text(output):
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join([output.get("ename", ""), output.get("evalue", "")])
    return output.get("data", {}).get("text/plain", "")


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_code_cell_ran_in_order(path):
    counts = [c.get("execution_count") for _, c in code_cells(path) if c.source.strip()]
    never = [i for i, c in code_cells(path) if c.source.strip() and c.get("execution_count") is None]
    assert not never, f"{path.name}: cells {never} never ran"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), f"{path.name}: cells ran out of order"


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_no_error_stderr_frozen_bar_or_machine_path(path):
    problems = []
    for index, cell in code_cells(path):
        for output in cell.get("outputs", []):
            text = output_text(output)
            if output.get("output_type") == "error":
                problems.append(f"cell {index}: stored error {text.splitlines()[0] if text else ''}")
            if output.get("name") == "stderr":
                problems.append(f"cell {index}: stderr output {text[:120]!r}")
            if FROZEN_BAR.search(text):
                problems.append(f"cell {index}: a progress bar frozen at its start {text[:80]!r}")
            if MACHINE_PATH.search(text):
                problems.append(f"cell {index}: a machine path in the output {MACHINE_PATH.search(text).group(0)!r}")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_shown_widget_has_its_state_saved(path):
    """A widget view whose model is not in the notebook's saved state shows "model not found" (or raw
    text) when the notebook is opened; a widget created but never displayed leaves nothing to see."""
    nb = nbformat.read(path, 4)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    missing = [f"cell {i}" for i, c in enumerate(nb.cells) if c.cell_type == "code"
               for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})
               and o["data"][WIDGET_VIEW].get("model_id") not in state]
    assert not missing, f"{path.name}: widget views without saved state in {missing}"


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_has_exercises_recap_and_glossary(path):
    text = "\n".join(c.source for c in nbformat.read(path, 4).cells if c.cell_type == "markdown")
    answers = len(re.findall(r"<details>", text))
    assert re.search(r"try it", text, flags=re.I), f"{path.name}: no 'Try it' exercises"
    assert answers >= 2, f"{path.name}: {answers} collapsible answers (<details>); each lecture has 2-3 exercises"
    assert re.search(r"^#+ .*recap", text, flags=re.I | re.M), f"{path.name}: no recap section"
    assert re.search(r"^#+ .*glossary", text, flags=re.I | re.M), f"{path.name}: no glossary section"
