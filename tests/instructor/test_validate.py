"""`nbgrader validate` uses the course configuration wherever it runs (the per-cell time limits
carried by the notebook), as JupyterLab's Validate button does from an assignment's folder."""
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from instructor.course import nbgrader_env


def test_validate_from_a_notebook_folder_uses_the_cells_time_limits(tmp_path):
    assert (Path(sys.prefix) / "etc" / "jupyter" / "nbgrader_config.py").exists(), "run `make setup`"
    slow = new_code_cell("import time\ntime.sleep(4)", metadata={"timeout": 1})
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1"), slow]), tmp_path / "nb.ipynb")
    done = subprocess.run([sys.executable, "-m", "nbgrader", "validate", "nb.ipynb"], cwd=tmp_path,
                          env=nbgrader_env(), capture_output=True, text=True, timeout=120)
    log = done.stdout + done.stderr
    assert "Timeout" in log or "timed out" in log.lower(), log[-2000:]
