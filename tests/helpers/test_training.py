"""helpers.training.progress: never writes to stderr outside a notebook front end."""
import subprocess
import sys

from helpers.training import progress


def test_progress_outside_a_kernel_writes_to_stdout_only():
    code = "from helpers.training import progress\nfor _ in progress(range(3), desc='steps'):\n    pass\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    assert "steps: 100%" in done.stdout and "3/3" in done.stdout


def test_progress_accepts_tqdm_arguments(capsys):
    bar = progress(total=4, desc="manual", leave=True)
    bar.update(4)
    bar.close()
    captured = capsys.readouterr()
    assert "4/4" in captured.out and captured.err == ""
