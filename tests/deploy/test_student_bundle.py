"""What students receive (``make student-release``, ``instructor.bundle``): the bundle holds the lectures, the
committed release, the public packages, the data and the set-up, and no solution, hidden test or held-out
grading data; the builder refuses a bundle that would leak; and the bundle works on its own: its own
``make setup`` installs its packages, and a1's first self-check runs from inside it."""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import nbformat
import pytest
from deploy_tools import COURSE, require_command

from instructor import bundle, cli
from instructor.course import ROOT_ENV

TOP_LEVEL = {".gitignore", "Makefile", "README.md", "assignments", "datasets", "environment.yml", "graders", "helpers",
             "instructor", "lectures", "nbgrader_config.py", "pyproject.toml", "requirements.txt"}
NEVER = {"solutions", "tests", "scripts", "mutants", ".git", ".autograde", "gradebook.db", "submitted", "autograded",
         "feedback", "backups", ".venv", "__pycache__", ".ipynb_checkpoints", ".exchange"}
AID = "a1_rnn_numpy"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(folder, zip) written by the CLI behind `make student-release` from this course."""
    out = tmp_path_factory.mktemp("dist")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(ROOT_ENV, raising=False)
        assert cli.main(["student-release", "--out", str(out)]) == 0
    return out / bundle.NAME, out / f"{bundle.NAME}.zip"


def folder_files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def zip_files(archive):
    with zipfile.ZipFile(archive) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_bundle_holds_what_students_need(built):
    folder, archive = built
    files = folder_files(folder)
    assert {path.split("/")[0] for path in files} == TOP_LEVEL
    assert zip_files(archive) == {f"{bundle.NAME}/{path}": data for path, data in files.items()}
    for kind, pattern in (("lectures", "*.ipynb"), ("assignments", "*/*.ipynb"), ("helpers", "*.py"),
                          ("graders", "*.py")):
        course = {p.relative_to(COURSE).as_posix(): p.read_bytes() for p in (COURSE / kind).glob(pattern)}
        assert course and {path: files.get(path) for path in course} == course, f"{kind}/ differs from the course's"
    assert {path.split("/")[1] for path in files if path.startswith("assignments/")} == {
        p.name for p in (COURSE / "solutions").iterdir() if any(p.glob("*.ipynb"))}
    assert files["Makefile"] == (COURSE / "student.mk").read_bytes()
    assert files["instructor/timeouts.py"] == (COURSE / "instructor" / "timeouts.py").read_bytes()
    assert b'packages = ["helpers", "graders", "instructor"]' in files["pyproject.toml"]
    assert b"instructor.sandbox" not in files["pyproject.toml"]
    assert b"make lab" in files["README.md"] and b"nbgrader validate" in files["README.md"]


def test_bundle_has_no_solutions_hidden_tests_or_held_out_data(built):
    folder, archive = built
    secrets = bundle.Secrets(COURSE)
    # the scan is not empty: every hidden-test block of every solutions notebook has a line to look for
    for source in sorted((COURSE / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(source, 4).cells:
            for kind, lines in bundle.regions(cell):
                assert kind == "solution" or set(lines) & set(secrets.lines), f"{source.name}: {lines} unscanned"
    assert len(secrets.lines) > 300 and len(secrets.numbers) > 1000 and set(secrets.digests.values()) == {
        "a6_curves_heldout.json"}
    for files in (folder_files(folder), zip_files(archive)):
        files = {path.removeprefix(f"{bundle.NAME}/"): data for path, data in files.items()}
        paths = list(files)
        assert not [p for p in paths if NEVER & set(p.split("/")) or p.endswith(".pyc")]
        assert [p for p in paths if p.startswith("instructor/")] == ["instructor/__init__.py", "instructor/timeouts.py"]
        assert not [p for p in paths if "heldout" in p]
        assert bundle.problems(files, secrets) == []


def test_builder_refuses_a_leaking_course(tmp_path, capsys):
    """A hidden-test line in a helper, a solution line in the release, the held-out data renamed and reprinted."""
    root = tmp_path / "course"
    for name in ("lectures", "assignments", "solutions", "helpers", "graders", "datasets", "instructor"):
        shutil.copytree(COURSE / name, root / name, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    for name in ("student.mk", "requirements.txt", "environment.yml", "pyproject.toml", "nbgrader_config.py"):
        shutil.copy(COURSE / name, root / name)
    solved = nbformat.read(root / "solutions" / AID / f"{AID}.ipynb", 4)
    hidden = next(lines[0] for cell in solved.cells for kind, lines in bundle.regions(cell) if kind == "hidden tests")
    solution = next(line for cell in solved.cells for kind, lines in bundle.regions(cell) if kind == "solution"
                    for line in lines if len(line) >= 40)
    with open(root / "helpers" / "data.py", "a") as f:
        f.write(f"# {hidden}\n")
    release_path = root / "assignments" / AID / f"{AID}.ipynb"
    release = nbformat.read(release_path, 4)
    stub = next(c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution"))
    stub.source = stub.source.replace("raise NotImplementedError", solution, 1)
    nbformat.write(release, release_path)
    held_out = root / "datasets" / "a6_curves_heldout.json"
    shutil.copy(held_out, root / "datasets" / "more_curves.json")
    (root / "datasets" / "notes.txt").write_text(repr(json.loads(held_out.read_text())["curves"][3]["val_loss"]))

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ROOT_ENV, str(root))
        assert cli.main(["student-release", "--out", str(tmp_path / "dist")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: the student bundle was not written")
    assert f"helpers/data.py: has a line of the hidden tests of solutions/{AID}/{AID}.ipynb" in error
    assert f"assignments/{AID}/{AID}.ipynb: has a line of the solution of solutions/{AID}/{AID}.ipynb" in error
    assert "datasets/more_curves.json: is the held-out file a6_curves_heldout.json" in error
    assert re.search(r"datasets/notes.txt: has \d+ runs of numbers of the held-out a6_curves_heldout.json", error)
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def bundle_env(folder):
    """The environment of a student's shell in the bundle: its .venv first, no course or make state."""
    env = {k: v for k, v in os.environ.items()
           if k not in {ROOT_ENV, "PYTHONPATH", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return dict(env, PATH=f"{folder / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}", JUPYTER_PLATFORM_DIRS="1",
                JUPYTER_DATA_DIR=str(folder.parent / "jupyter-data"))


@pytest.fixture(scope="module")
def set_up(built):
    """The bundle after its own `make setup`. The venv is made first, with the course environment's packages
    visible through a .pth file (offline and fast: pip finds every requirement installed and only installs the
    bundle's own package, editable); `make setup` then does the rest as for a student."""
    folder = built[0]
    make = require_command("make")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder / ".venv"], check=True)
    site = next((folder / ".venv" / "lib").glob("python3*/site-packages"))
    (site / "course_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = dict(bundle_env(folder), PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1")
    result = subprocess.run([make, "setup", f"PYTHON={sys.executable}"], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder


# Both scripts block jsonschema's optional IRI checker, as the course's own processes do (instructor.course:
# 1.4 s of CPU at import, unused by notebooks).
PROBE = """
import json, sys
sys.modules["rfc3987_syntax"] = None
import graders, helpers, instructor.timeouts
from nbgrader.apps.baseapp import NbGrader
app = NbGrader()
app.load_config_file()
timeout = app.config.Execute.timeout_func
print(json.dumps({"helpers": helpers.__file__, "graders": graders.__file__, "timeouts": instructor.timeouts.__file__,
                  "course_id": app.config.CourseDirectory.course_id, "timeout_func": timeout.__code__.co_filename,
                  "exchange": app.config.Exchange.root}))
"""


def test_make_setup_installs_the_bundle(set_up, tmp_path):
    """From any folder, the bundle's python imports the bundle's packages and nbgrader uses its configuration."""
    folder = set_up
    assert (folder / ".venv" / ".installed").is_file()
    result = subprocess.run([folder / ".venv" / "bin" / "python", "-c", PROBE], cwd=tmp_path, env=bundle_env(folder),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert found == {"helpers": str(folder / "helpers" / "__init__.py"),
                     "graders": str(folder / "graders" / "__init__.py"),
                     "timeouts": str(folder / "instructor" / "timeouts.py"), "course_id": "rnn-course",
                     "timeout_func": str(folder / "instructor" / "timeouts.py"), "exchange": str(folder / ".exchange")}


RUN = """
import sys
sys.modules["rfc3987_syntax"] = None
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], 4)
NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[1])
"""


def test_first_self_check_runs_inside_the_bundle(set_up):
    """a1's release up to its first self-check, run by the bundle's kernel: on the blank release the self-check
    stops at the stub's NotImplementedError (a traceback into the stub, no check line); with the reference
    solution pasted in, the same self-check prints an `ok` line."""
    folder = set_up
    release = nbformat.read(folder / "assignments" / AID / f"{AID}.ipynb", 4)
    solved = nbformat.read(COURSE / "solutions" / AID / f"{AID}.ipynb", 4)
    check = next(i for i, c in enumerate(release.cells) if str(bundle_gid(c)).startswith("selfcheck_"))
    first = next(c for c in solved.cells if c.metadata.get("nbgrader", {}).get("solution"))
    assert bundle_gid(release.cells[check]) == f"selfcheck_{bundle_gid(first)}"
    answer = nbformat.v4.new_code_cell("\n".join(line for line in first.source.splitlines()
                                                 if line.strip() not in bundle.SOLUTION))
    probe = nbformat.v4.new_code_cell("import sys, helpers, graders\nprint(sys.executable)\nprint(helpers.__file__)\n"
                                      "print(graders.__file__)")
    again = nbformat.v4.new_code_cell(release.cells[check].source)
    nb = nbformat.v4.new_notebook(metadata=release.metadata, cells=release.cells[:check + 1] + [answer, again, probe])
    path = folder / "assignments" / AID / "selfcheck.ipynb"
    nbformat.write(nb, path)
    result = subprocess.run([folder / ".venv" / "bin" / "python", "-c", RUN, path, path.parent], cwd=folder,
                            env=bundle_env(folder), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    cells = nbformat.read(path, 4).cells
    blank, solved_check, kernel = cells[check].outputs, cells[check + 2].outputs, cells[check + 3].outputs
    errors = [o for o in blank if o.output_type == "error"]
    assert [e.ename for e in errors] == ["NotImplementedError"], blank
    # a1's self-checks call the function directly: the traceback ends in the stub, under "# YOUR CODE HERE"
    trace = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors[0].traceback))  # without the colours
    assert "in rnn_step_forward" in trace and "# YOUR CODE HERE" in trace and "raise NotImplementedError" in trace
    assert not [o for o in blank if o.output_type == "stream"]
    assert [o.output_type for o in solved_check] == ["stream"], solved_check
    line = re.fullmatch(r"ok\s+next_h: relative error (\S+) \(tolerance 1e-07\)\n", solved_check[0].text)
    assert line and float(line.group(1)) < 1e-7, solved_check[0].text
    assert kernel[0].text.split() == [str(folder / ".venv" / "bin" / "python"), str(folder / "helpers" / "__init__.py"),
                                      str(folder / "graders" / "__init__.py")]


def bundle_gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
