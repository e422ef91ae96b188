"""Every course notebook carries the metadata JupyterLab would write, so that opening it (and saving it
unchanged) does not modify it: the course kernel's kernelspec and language_info as this environment's
kernel reports them, and no stored widget state that no output shows (a save would drop it). Fix a
failure with `.venv/bin/python scripts/normalize_notebook_metadata.py`, then `make release`."""
import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("normalize_notebook_metadata",
                                              ROOT / "scripts" / "normalize_notebook_metadata.py")
normalizer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(normalizer)
NOTEBOOKS = normalizer.course_notebooks(ROOT)
EXPECTED = normalizer.course_kernel_metadata()


def test_the_course_kernel_is_what_jupyterlab_would_start():
    spec = EXPECTED["kernelspec"]
    assert spec["name"] == "python3" and spec["language"] == "python" and spec["display_name"]
    assert EXPECTED["language_info"]["name"] == "python" and EXPECTED["language_info"]["version"]


def test_every_course_notebook_is_listed():
    folders = {p.relative_to(ROOT).parts[0] for p in NOTEBOOKS}
    assert folders == {"lectures", "solutions", "assignments"} and len(NOTEBOOKS) >= 19, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_metadata_is_what_jupyterlab_saves(path):
    diff = normalizer.differences(nbformat.read(path, as_version=4), EXPECTED)
    assert not diff, f"{path.relative_to(ROOT)}: {diff} (run scripts/normalize_notebook_metadata.py, make release)"


def test_normalize_changes_only_the_metadata(tmp_path):
    """Lecture 01 with the old metadata (display name "Python 3", a bare language_info, the state of a
    progress bar no output shows) comes back byte for byte as it is stored."""
    path = ROOT / "lectures" / "01_recurrence.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata.kernelspec.display_name = "Python 3"
    nb.metadata.language_info = {"name": "python"}
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    state["0123456789abcdef0123456789abcdef"] = {"model_name": "FloatProgressModel", "state": {"value": 300}}
    diff = normalizer.normalize(nb, EXPECTED)
    assert set(diff) == {"kernelspec", "language_info", "widget models"}, diff
    nbformat.write(nb, tmp_path / path.name)
    assert (tmp_path / path.name).read_bytes() == path.read_bytes()
