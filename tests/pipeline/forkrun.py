"""Score many variants of one notebook in forked copies of one IPython process.

Usage (``grading.run_variants`` writes the job and reads the result)::

    python forkrun.py job.json result.json

The job lists the notebook's code cells (source, heavy group, grade_id, points, timeout) and the
runs (name, edits ``{code cell index: edited source}``, the heavy groups to run). The process
executes the reference notebook cell by cell in an IPython shell; just before cell ``k`` it forks
once per run whose first edit is ``k``: the child runs the edited cells and every other cell after
``k`` (heavy cells only of the run's groups) and reports the grade of each test cell it ran. So the
kernel start, the imports and every cell before the edit run once per job instead of once per
variant, and each child starts from exactly the state a fresh run would have at cell ``k``.

Test cells are graded with nbgrader's own ``determine_grade`` (an error or stderr output scores
0, a number as the cell's value is a partial score) on the outputs captured from the shell. Each
cell has its autograde time limit (SIGALRM raises ``TimeoutError`` in the cell); a child that dies
or overruns ``budget`` seconds is reported as crashed. Run with one thread per process
(``OMP_NUM_THREADS=1``, see ``instructor.course.nbgrader_env``): forking is safe for torch then.
"""
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path


def _on_alarm(signum, frame):
    raise TimeoutError("cell timed out (autograde time limit)")


def execute(shell, source, timeout):
    """Run ``source`` in ``shell`` within ``timeout`` seconds; return its nbformat outputs."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            result = shell.run_cell(source, store_history=True)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    outputs = [{"output_type": "stream", "name": name, "text": text}
               for name, text in (("stdout", captured.stdout), ("stderr", captured.stderr)) if text]
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        outputs.append({"output_type": "error", "ename": type(error).__name__, "evalue": str(error), "traceback": []})
    elif result.result is not None:
        data, _ = shell.display_formatter.format(result.result)
        outputs.append({"output_type": "execute_result", "data": data, "metadata": {}, "execution_count": 1})
    return outputs


def grade(cell, outputs):
    """(score, max_score, error message or None) of a test cell by nbgrader's ``determine_grade``."""
    import nbformat
    from nbgrader.utils import determine_grade

    node = nbformat.v4.new_code_cell(cell["source"])
    node.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": cell["grade_id"],
                                 "points": cell["points"]}
    node.outputs = [nbformat.from_dict(o) for o in outputs]
    score, max_score = determine_grade(node)
    problems = [f"{o['ename']}: {o['evalue']}" if o["output_type"] == "error" else f"stderr: {o['text'][-300:]}"
                for o in outputs if o["output_type"] == "error" or o.get("name") == "stderr"]
    return float(score), float(max_score), "; ".join(problems) or None


def run_cell(shell, cell, source, grades):
    """Execute one job cell (with ``source``) and record its grade when it is a test cell."""
    outputs = execute(shell, source, cell["timeout"])
    if cell["points"] is not None:
        grades[cell["grade_id"]] = grade(cell, outputs)


def first_edit(run):
    return min(int(index) for index in run["edits"])


def run_edited(shell, cells, run):
    """In the forked child: the cells from the first edited one on, edited where the run says so."""
    grades = {}
    for index in range(first_edit(run), len(cells)):
        cell = cells[index]
        if cell["group"] is None or cell["group"] in run["groups"]:
            run_cell(shell, cell, run["edits"].get(str(index), cell["source"]), grades)
    return {"grades": grades}


def fork(child, budget):
    """Run ``child()`` (returns a JSON-able dict) in a forked process; its result or a crash report."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child never returns into the caller's loop
        try:
            payload = child()
        except BaseException:  # noqa: BLE001 - reported to the parent, which decides
            payload = {"crash": traceback.format_exc(limit=3)}
        out.write_text(json.dumps(payload))
        os._exit(0)
    start = time.monotonic()
    deadline = start + budget
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            out.unlink(missing_ok=True)
            return {"crash": f"no result within {budget} s (killed)"}
        time.sleep(0.02)
    text = out.read_text() if out.exists() else ""
    out.unlink(missing_ok=True)
    if not text:
        return {"crash": f"the child process died (wait status {status}) before reporting"}
    return {**json.loads(text), "seconds": round(time.monotonic() - start, 2)}


def run_job(job):
    """{run name: {"grades": {grade_id: [score, max, error]}} or {"crash": message}}."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    signal.signal(signal.SIGALRM, _on_alarm)
    cells, runs = job["cells"], job["runs"]
    results, reference = {}, {}
    for index, cell in enumerate(cells):
        for run in (r for r in runs if first_edit(r) == index):
            outcome = fork(partial(run_edited, shell, cells, run), job["budget"])
            if "grades" in outcome:  # test cells before the edit keep the reference's grades
                outcome["grades"] = {**reference, **outcome["grades"]}
            results[run["name"]] = outcome
        later = [r for r in runs if first_edit(r) > index]
        if not later:
            break
        if cell["group"] is None or any(cell["group"] in v["groups"] for v in later):
            run_cell(shell, cell, cell["source"], reference)
    return results


def main(job_file, result_file):
    from instructor.course import skip_slow_imports

    skip_slow_imports()
    sys.path[0] = os.getcwd()  # as in a kernel: the notebook's folder, not this script's, is importable
    job = json.loads(Path(job_file).read_text())
    Path(result_file).write_text(json.dumps(run_job(job)))


if __name__ == "__main__":
    main(*sys.argv[1:])
