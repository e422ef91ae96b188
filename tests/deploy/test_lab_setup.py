"""What `make lab` sets up besides installing, without a browser: the lab settings `make setup` writes
(widget state saved with the notebook, merged into existing overrides; the server's pre-save hook), and
the nbgrader exchange of a local install (the course's own .exchange/, or $NBGRADER_EXCHANGE), which
JupyterLab's Assignment List reads: it must answer with a list, not "The exchange directory ... does
not exist" (shown as "Error fetching courses!"). tests/deploy/test_browser.py checks the same in
JupyterLab itself."""
import json
import shutil
import subprocess

import pytest
from deploy_tools import COURSE, require_command
from traitlets.config.loader import PyFileConfigLoader

WIDGETS = "@jupyter-widgets/jupyterlab-manager:plugin"


@pytest.fixture
def course_root(tmp_path, monkeypatch):
    """A course root holding the course's nbgrader_config.py (CourseDirectory.root is its folder)."""
    monkeypatch.delenv("NBGRADER_EXCHANGE", raising=False)
    shutil.copy(COURSE / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    return tmp_path


def load_config(root):
    return PyFileConfigLoader("nbgrader_config.py", str(root)).load_config()


def test_local_exchange_is_the_course_folder(course_root):
    config = load_config(course_root)
    assert config.Exchange.root == str(course_root / ".exchange")
    assert (course_root / ".exchange").is_dir()
    assert ".exchange/" in (COURSE / ".gitignore").read_text().splitlines()


def test_class_server_exchange_from_the_environment(course_root, monkeypatch, tmp_path_factory):
    shared = tmp_path_factory.mktemp("hub") / "exchange"
    monkeypatch.setenv("NBGRADER_EXCHANGE", str(shared))
    assert load_config(course_root).Exchange.root == str(shared)
    assert not shared.exists() and not (course_root / ".exchange").exists()  # the server's, set up by its admin


def test_assignment_list_answers_on_a_local_install(course_root, monkeypatch):
    """nbgrader's own Assignment List handler code (what JupyterLab's panel calls) returns an empty list
    for the course's local exchange, and its "does not exist" error when the exchange is missing."""
    from nbgrader.server_extensions.assignment_list.handlers import AssignmentList

    lister = AssignmentList()
    lister.root_dir = str(course_root)
    assert lister.list_courses() == {"success": True, "value": []}
    assert lister.list_assignments() == {"success": True, "value": []}
    monkeypatch.setenv("NBGRADER_EXCHANGE", str(course_root / "missing"))  # the failure this set-up avoids
    failed = lister.list_courses()
    assert not failed["success"] and "does not exist" in failed["value"], failed


def test_make_setup_writes_the_lab_settings(tmp_path):
    """student.mk's rule, run for a stand-in environment with an overrides.json of its own: saveState merged
    in (the other settings kept), and the server's pre-save hook configured with an importable hook."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin/python").symlink_to(COURSE / ".venv/bin/python")
    overrides = venv / "share/jupyter/lab/settings/overrides.json"
    overrides.parent.mkdir(parents=True)
    overrides.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                                     WIDGETS: {"saveState": False, "other": 1}}))
    subprocess.run([require_command("make"), "-s", "-f", str(COURSE / "student.mk"), f"VENV={venv}", "-o",
                    f"{venv}/.installed", f"{venv}/.lab-settings"], cwd=COURSE, check=True, timeout=60)
    assert json.loads(overrides.read_text()) == {"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                                                 WIDGETS: {"saveState": True, "other": 1}}
    server = PyFileConfigLoader("jupyter_server_config.py", str(venv / "etc/jupyter")).load_config()
    hook = server.ContentsManager.pre_save_hook
    assert hook.__name__ == "keep_widget_state" and hook.__code__.co_filename == str(COURSE / "helpers/widget_state.py")
