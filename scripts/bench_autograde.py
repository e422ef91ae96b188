"""Autograding throughput: one worker against several, on a batch of a1 submissions.

    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_autograde.py [--n 16] [--workers 2]

Builds ``n`` a1 submissions from the course's own notebooks (the reference, honest variants and
odd ones: a renamed file, a deleted test cell, a kernel that dies, a rebinding attempt), grades
the batch in a fresh copy of one course root with ``--workers 1`` and again with ``--workers N``
(the sandboxed, normalising path of `make autograde`; the assignment's one-time set-up, its
template gradebook, is made first and timed apart), and prints submissions per hour, the
speed-up, and the overhead per submission beyond executing its notebook (measured by running
the reference notebook once with nbclient). Needs bubblewrap, like `make autograde`.
"""
import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "pipeline"), str(ROOT / "tests" / "instructor")]

import attacks  # noqa: E402

from instructor import cli  # noqa: E402
from instructor.course import ROOT_ENV  # noqa: E402

AID = "a1_rnn_numpy"
NB = f"{AID}.ipynb"


def batch(n):
    """{student: (file name, notebook)} with ``n`` submissions."""
    ref = nbformat.read(ROOT / "solutions" / AID / NB, 4)
    release = nbformat.read(ROOT / "assignments" / AID / NB, 4)
    dies = attacks.stand_ins(ref, {"sample": "import os\nos._exit(1)\n"})
    kinds = [("honest", NB, attacks.honest_extras(ref)), ("renamed", f"{AID} (1).ipynb", ref),
             ("rebinding", NB, attacks.rebinding(release)), ("dies", NB, dies)]
    out = {}
    for i in range(n):
        kind, name, nb = kinds[i % len(kinds)] if i else ("reference", NB, ref)
        out[f"s{i:02d}_{kind}"] = (name, nb)
    return out


def prepared_course(folder):
    """A course root with a1 only and its template gradebook already made (as after a first batch).

    Returns the seconds that one-time, per-assignment set-up took."""
    from instructor import autograde

    folder.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    for kind in ("solutions", "assignments"):
        shutil.copytree(ROOT / kind / AID, folder / kind / AID)
    os.environ[ROOT_ENV] = str(folder)
    start = time.perf_counter()
    autograde.template_gradebook(AID)
    return time.perf_counter() - start


def grade(course, submissions, workers):
    """Seconds to autograde ``submissions`` in a fresh copy of ``course`` with ``workers`` workers."""
    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as tmp:
        root, subs = shutil.copytree(course, Path(tmp) / "course"), Path(tmp) / "subs"
        for student, (name, nb) in submissions.items():
            (subs / student / AID).mkdir(parents=True)
            nbformat.write(nbformat.from_dict(nb), subs / student / AID / name)
        os.environ[ROOT_ENV] = str(root)
        out = io.StringIO()
        start = time.perf_counter()
        with redirect_stdout(out):
            cli.main(["autograde", str(subs), "--workers", str(workers)])
        seconds = time.perf_counter() - start
        print(out.getvalue().split("feedback (HTML)")[0].split("\r")[-1])
        return seconds


def notebook_seconds():
    """Seconds to execute the reference notebook once with nbclient (no nbgrader, no sandbox)."""
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "solutions" / AID / NB, 4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="submissions in the batch (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="parallel workers to compare with 1 (default 2)")
    args = parser.parse_args(argv)
    submissions = batch(args.n)
    execute = notebook_seconds()
    with tempfile.TemporaryDirectory(prefix="bench-course-") as tmp:
        course = Path(tmp) / "course"
        setup = prepared_course(course)
        serial = grade(course, submissions, 1)
        parallel = grade(course, submissions, args.workers)
    per_hour = {w: 3600 * args.n / s for w, s in ((1, serial), (args.workers, parallel))}
    print(f"a1 reference notebook, plain nbclient execution: {execute:.1f} s")
    print(f"one-time set-up of the assignment (template gradebook, cached for later batches): {setup:.1f} s")
    print(f"1 worker : {serial:6.1f} s for {args.n} submissions = {per_hour[1]:6.0f} submissions/hour")
    print(f"{args.workers} workers: {parallel:6.1f} s for {args.n} submissions = {per_hour[args.workers]:6.0f} "
          f"submissions/hour")
    print(f"speed-up {serial / parallel:.2f}x (goal on 2 cores: >= 1.7x)")
    print(f"overhead per submission beyond executing the notebook (1 worker): {serial / args.n - execute:.1f} s")


if __name__ == "__main__":
    main()
