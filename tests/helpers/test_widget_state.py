"""helpers.widget_state: the server's pre-save hook keeps the stored widgets that JupyterLab's save left
out (those not live in the kernel), and adds nothing else."""
import copy
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import nbformat

from helpers.widget_state import STATE, VIEW, keep_widget_state, reachable_state, restore_missing, saved_state

ROOT = Path(__file__).resolve().parents[2]
LECTURE = ROOT / "lectures" / "03_vanishing_gradients.ipynb"


def as_jupyterlab_saves(nb, state):
    """The notebook ``nb`` (a dict) as JupyterLab sends it to be saved, with widget state ``state``."""
    sent = copy.deepcopy(nb)
    sent["metadata"]["widgets"] = {STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return sent


def save(folder, name, content):
    """Run the hook as the server does for a save of ``content`` over ``folder/name``; return the content."""
    model = {"type": "notebook", "format": "json", "content": content}
    keep_widget_state(model=model, path=f"/{name}", contents_manager=SimpleNamespace(root_dir=str(folder)))
    return model["content"]


def test_an_opened_lecture_saved_unchanged_is_written_as_it_was(tmp_path):
    """JupyterLab saves no state for the stored (not live) slider; the hook puts it back and the file
    is the same bytes as before."""
    shutil.copy(LECTURE, tmp_path / LECTURE.name)
    stored = json.loads(LECTURE.read_text())
    content = save(tmp_path, LECTURE.name, as_jupyterlab_saves(stored, {}))
    assert nbformat.writes(nbformat.from_dict(content)) + "\n" == LECTURE.read_text()


def test_a_rerun_widget_replaces_the_stored_one(tmp_path):
    """After the student re-runs the slider, the saved state is the live one; the old models, which no
    output shows any more, are not put back."""
    shutil.copy(LECTURE, tmp_path / LECTURE.name)
    nb = json.loads(LECTURE.read_text())
    cell = next(c for c in nb["cells"] if any(VIEW in o.get("data", {}) for o in c.get("outputs", [])))
    view = next(o for o in cell["outputs"] if VIEW in o.get("data", {}))
    view["data"][VIEW]["model_id"] = "f" * 32
    live = {"f" * 32: {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_" + "e" * 32]}},
            "e" * 32: {"model_name": "FloatSliderModel", "state": {"value": 1.2}}}
    content = save(tmp_path, LECTURE.name, as_jupyterlab_saves(nb, live))
    assert saved_state(content) == live


def test_restore_follows_references_and_keeps_what_is_there():
    previous = {"cells": [], "metadata": {"widgets": {STATE: {"state": {
        "a": {"state": {"children": ["IPY_MODEL_b"]}}, "b": {"state": {"layout": "IPY_MODEL_c"}},
        "c": {"state": {}}, "unshown": {"state": {}}}}}}}
    nb = {"cells": [{"cell_type": "code", "outputs": [{"data": {VIEW: {"model_id": "a"}}}]}],
          "metadata": {"widgets": {STATE: {"state": {"b": {"state": {"layout": "IPY_MODEL_c", "new": 1}}}}}}}
    assert restore_missing(nb, previous) == ["a", "c"]
    assert saved_state(nb)["b"]["state"]["new"] == 1 and "unshown" not in saved_state(nb)
    assert set(reachable_state(nb)) == {"a", "b", "c"}


def test_other_files_and_new_notebooks_are_left_alone(tmp_path):
    text = {"type": "file", "format": "text", "content": "x"}
    keep_widget_state(model=text, path="a.txt", contents_manager=SimpleNamespace(root_dir=str(tmp_path)))
    assert text["content"] == "x"
    new = {"cells": [], "metadata": {}}
    assert save(tmp_path, "new.ipynb", copy.deepcopy(new)) == new
