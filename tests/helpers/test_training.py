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


def test_progress_in_a_kernel_stores_the_finished_bar():
    """Executed headless (as lectures are stored), the widget bar's output becomes its final text line,
    not the "0%" text the widget had when it was created."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from helpers.training import tqdm\nfor _ in tqdm(range(30), desc='loop', leave=False):\n    pass\n"
        "bar = tqdm(total=5, desc='manual')\nbar.update(5)\nbar.close()\nbar.close()\nprint('done')")]
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    texts = [o.get("text") or o["data"].get("text/plain", "") for o in nb.cells[0].outputs]
    assert [o["output_type"] for o in nb.cells[0].outputs] == ["display_data", "display_data", "stream"]
    assert texts[0].startswith("loop: 100%") and "30/30" in texts[0]
    assert texts[1].startswith("manual: 100%") and "5/5" in texts[1] and texts[2] == "done\n"
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in nb.cells[0].outputs)
