"""JupyterLab as a student meets it, in a real browser (issue "A real class", section "Real browser").

JupyterLab is started by the course's own `make lab` (student.mk: trust the course's notebooks, the
widget-state setting, then `jupyter lab`) in a copy of the course, with HOME and the Jupyter folders in a
temporary directory (the trust database and lab settings are the test's own, and nothing is saved into
the repository). Debian's chromium, driven by selenium through /usr/bin/chromedriver, then:
- opens lecture 01: its stored widget output renders as controls (trusted), JupyterLab rewrites none of
  its kernel metadata; runs the temperature widget's cells, moves the slider, sees the plot change;
  saves, shuts the kernel down, reopens: the widget still renders (its state was saved);
- opens lecture 03 and does the same with the spectral-norm widget;
- opens assignment a1 (opens unmodified), runs its first self-check blank and then with a solution;
- opens the formgrader (it lists the course's assignments) and the Assignment List (the local exchange:
  no "Error fetching courses!", and an assignment the instructor released is offered to fetch).
Screenshots go to $BROWSER_SCREENSHOTS or <pytest's base temp>/screenshots; each is checked together
with the page at the moment it is taken (controls present, no "Loading widget...", no error text).
"""
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from deploy_tools import COURSE, free_port, require, require_command

LECTURE01, LECTURE03 = "lectures/01_recurrence.ipynb", "lectures/03_vanishing_gradients.ipynb"
A1 = "assignments/a1_rnn_numpy/a1_rnn_numpy.ipynb"
ASSIGNMENTS = ("a1_rnn_numpy", "a2_lstm_numpy", "a3_rnn_pytorch", "a4_seq2seq_attention", "a5_transfer_captioning",
               "a6_hyperparameters")
WIDGET_ERRORS = ("Error displaying widget", "model not found", "Loading widget", "interactive(children=")
EXCHANGE_ERRORS = ("Error fetching courses", "does not exist", "could not be created", "Traceback")
WAIT = 90  # seconds: the longest any one step may take on a loaded 2-core machine
OBSERVED = {}  # what one test saw and a later one checks (same module, same worker)

# One solution line for a1's first function: what a student types before running the self-check.
A1_STEP = ("    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)\n"
           "    cache = (x, prev_h, Wx, Wh, next_h)\n"
           "    return next_h, cache\n")


# ---------------------------------------------------------------- the course copy, `make lab`, chromium
def copy_course(dest):
    """Copy the course's files (tracked and not ignored: what a clone has) to ``dest``, with the course's
    set-up .venv linked in, so that `make lab` there finds its environment already installed."""
    listed = subprocess.run([require_command("git"), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=COURSE, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (COURSE / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(COURSE / name, dest / name)
            except FileNotFoundError:  # an untracked file another test has just removed
                continue
    (dest / ".venv").symlink_to(COURSE / ".venv")



class Lab:
    """JupyterLab started by `make lab` in a course copy; ``url(path)`` is a logged-in address."""

    def __init__(self, root):
        require((COURSE / ".venv/.installed").exists(), "the course environment (.venv) is not set up")
        self.course, self.home = root / "course", root / "home"
        self.course.mkdir()
        copy_course(self.course)
        self.port, self.token = free_port(), "browser-test"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NBGRADER", "MAKE"))}
        self.env.update(HOME=str(self.home), JUPYTER_CONFIG_DIR=str(self.home / "config"),
                        JUPYTER_DATA_DIR=str(self.home / "data"), JUPYTER_RUNTIME_DIR=str(self.home / "runtime"))
        args = (f"--no-browser --ServerApp.ip=127.0.0.1 --IdentityProvider.token={self.token} "
                "--LabApp.expose_app_in_browser=True")  # window.jupyterapp: the test reads the app's state
        self.log = open(root / "lab.log", "w")
        # `-o .venv/.installed`: the environment is installed already (the suite runs in it); make must not
        # reinstall it, but runs the rest of `setup` and `lab` as a student's `make lab` does.
        self.process = subprocess.Popen([require_command("make"), "-o", ".venv/.installed", "lab", f"PORT={self.port}",
                                         f"LAB_ARGS={args}"], cwd=self.course, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"make lab exited:\n{self.read_log()}"
            try:
                self.api("status")
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"JupyterLab did not answer within {WAIT} s:\n{self.read_log()}")

    def url(self, path="lab"):
        return f"http://127.0.0.1:{self.port}/{path}{'&' if '?' in path else '?'}token={self.token}"

    def api(self, path, method="GET"):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def read_log(self):
        self.log.flush()
        return Path(self.log.name).read_text()[-4000:]

    def stop(self):
        """Shut the kernels down through the server, then end make and JupyterLab (their process group)."""
        try:
            for kernel in self.api("kernels"):
                self.api(f"kernels/{kernel['id']}", method="DELETE")
        except OSError:
            pass
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        self.log.close()


def start_chromium(profile):
    """Headless Debian chromium through Debian's chromedriver (no Selenium Manager, nothing downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = require_command("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(require_command("chromedriver")), options=options)
    driver.set_script_timeout(WAIT)
    return driver


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require(importlib.util.find_spec("selenium"), "the Python package selenium is missing")
    require_command("chromium"), require_command("chromedriver")
    server = Lab(tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    yield Browser(driver, lab)
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("BROWSER_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------------------------------------------------------- driving JupyterLab
class Browser:
    """The page and JupyterLab's application object (window.jupyterapp); ``nb`` is the current notebook panel."""

    PREFIX = "const app = window.jupyterapp; const nb = app && app.shell.currentWidget;\n"

    def __init__(self, driver, lab):
        self.driver, self.lab = driver, lab

    def js(self, body, *args):
        return self.driver.execute_script(self.PREFIX + body, *args)

    def js_async(self, body, *args):
        """Run ``body`` (an async function body) and return what it returns (exceptions: "error: ...")."""
        script = (self.PREFIX + "const done = arguments[arguments.length - 1];\n"
                  f"(async () => {{ {body} }})().then(done, e => done('error: ' + e));")
        return self.driver.execute_async_script(script, *args)

    def wait(self, body, what, *args, timeout=WAIT):
        """Poll the JavaScript expression ``body`` (returns a truthy value when done); return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(body, *args)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out ({timeout} s) waiting for {what}")

    def open(self, path):
        """Open the notebook ``path`` (the first by its address, later ones as the file browser does) and wait
        until its kernel is idle."""
        if self.js("return !!app"):
            self.js_async("await app.commands.execute('docmanager:open', {path: arguments[0]});", path)
        else:
            self.driver.get(self.lab.url(f"lab/tree/{path}"))
        self.wait("return nb && nb.context && nb.context.path == arguments[0] && nb.context.isReady"
                  " && nb.sessionContext.session && nb.sessionContext.session.kernel"
                  " && nb.sessionContext.kernelDisplayStatus == 'idle'", f"{path} and its kernel", path)
        self.dismiss_news()

    def dismiss_news(self):
        """Click "No" on JupyterLab's "get notified about official Jupyter news?" toast (it covers outputs)."""
        self.js("[...document.querySelectorAll('.jp-toast-button')].filter(b => b.innerText.trim() == 'No')"
                ".forEach(b => b.click());")

    def close_current(self):
        """Shut the current notebook's kernel down and close it (as File > Close and Shut Down Notebook)."""
        self.js_async("await nb.sessionContext.shutdown(); nb.dispose();")

    def run_cells(self, indices, last_may_fail=False):
        """Run the cells ``indices`` in order (each as Shift+Enter without advancing); return their outputs.
        A cell that raises stops the run (as Run All does): an error unless ``last_may_fail`` and it is the last."""
        result = self.js_async("""
            const outputs = i => nb.content.widgets[i].model.outputs.toJSON();
            for (const i of arguments[0]) {
              nb.content.deselectAll(); nb.content.activeCellIndex = i;
              const ran = await app.commands.execute('notebook:run-cell');
              if (!ran && !(arguments[1] && i == arguments[0].at(-1)))
                  return 'cell ' + i + ' did not run: ' + JSON.stringify(outputs(i));
            }
            return arguments[0].map(outputs);""", list(indices), last_may_fail)
        assert not isinstance(result, str), result
        return result

    def show_cell(self, index):
        """Scroll cell ``index`` to the top of the notebook; return its text as shown."""
        self.js("nb.content.activeCellIndex = arguments[0]; nb.content.scrollToItem(arguments[0], 'start');", index)
        return self.js("return nb.content.widgets[arguments[0]].node.innerText;", index)

    def widget_view(self, index):
        """Wait until cell ``index`` shows rendered widget controls; return what its output area shows: text,
        the labels (text, full width, shown width), the number of slider handles and the plot's source."""
        self.show_cell(index)
        return self.wait("""
            const area = nb.content.widgets[arguments[0]].node.querySelector('.jp-OutputArea');
            if (!area) return null;
            const text = area.innerText, handles = area.querySelectorAll('.noUi-handle').length;
            const labels = [...area.querySelectorAll('.widget-label')].map(l => [l.innerText, l.scrollWidth,
                                                                                  l.clientWidth]);
            const img = [...area.querySelectorAll('img')].pop();
            const failed = ['Error displaying widget', 'model not found'].some(s => text.includes(s));
            return (handles && img && img.complete) || failed
                ? {text, labels, handles, image: img ? img.src : null} : null;""",
                         f"the widget in cell {index}", index)

    def move_slider(self, index, presses):
        """Move the first slider of cell ``index`` by ``presses`` steps with the arrow keys, as a student
        does with the keyboard after clicking the handle; return the output once its plot has redrawn."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.keys import Keys

        before = self.widget_view(index)
        for _ in range(3):  # JupyterLab may re-attach the cell between finding the handle and typing
            try:
                self.show_cell(index)
                handle = self.js("return nb.content.widgets[arguments[0]].node.querySelector('.noUi-handle');", index)
                handle.send_keys(*[Keys.ARROW_RIGHT] * presses)
                break
            except StaleElementReferenceException:
                time.sleep(0.5)
        else:
            raise AssertionError(f"the slider of cell {index} kept being re-rendered")
        self.wait("""const area = nb.content.widgets[arguments[0]].node.querySelector('.jp-OutputArea');
                     const img = [...area.querySelectorAll('img')].pop();
                     return img && img.complete && img.src != arguments[1];""",
                  f"the plot of cell {index} to redraw", index, before["image"])
        self.settle(index)
        return before, self.widget_view(index)

    def settle(self, index, quiet=1.0):
        """Wait until the kernel is idle and the plot of cell ``index`` has not changed for ``quiet`` seconds:
        every arrow key queues a redraw, and the last one is the slider's final value."""
        src = "return [...nb.content.widgets[arguments[0]].node.querySelectorAll('.jp-OutputArea img')].pop().src;"
        deadline, last, since = time.monotonic() + WAIT, None, time.monotonic()
        while time.monotonic() < deadline:
            now = (self.js(src, index), self.js("return nb.sessionContext.kernelDisplayStatus;", index))
            if now != last:
                last, since = now, time.monotonic()
            elif now[1] == "idle" and time.monotonic() - since >= quiet:
                return
            time.sleep(0.2)
        raise AssertionError(f"the plot of cell {index} kept changing or the kernel stayed busy for {WAIT} s")

    def metadata(self):
        return self.js("return nb.context.model.toJSON().metadata;")

    def dirty(self):
        """The notebook's modified flag, and whether its tab shows it (JupyterLab's dot on the tab)."""
        return self.js("return [nb.context.model.dirty, nb.title.className.includes('jp-mod-dirty')];")

    def page_text(self):
        """The text the page (or the frame the driver is in) shows."""
        return self.driver.execute_script("return document.body.innerText;")

    def screenshot(self, folder, name, must_show=(), must_not_show=WIDGET_ERRORS, cell=None):
        """Save a PNG of the window as ``folder/name`` and check it: the page (or cell ``cell``, scrolled to the
        top) shows every text in ``must_show`` and none of ``must_not_show`` at that moment, and the image
        is a full-size, non-blank PNG."""
        from PIL import Image, ImageStat

        text = self.show_cell(cell) if cell is not None else self.page_text()
        path = folder / name
        assert self.driver.save_screenshot(str(path)), path
        print(f"screenshot: {path}")
        missing = [s for s in must_show if s not in text]
        shown = [s for s in must_not_show if s in text]
        assert not missing and not shown, f"{name}: missing {missing}, showing {shown}"
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] >= 1200 and image.size[1] >= 800, image.size
            assert max(ImageStat.Stat(image.convert("L")).stddev) > 20, f"{name} is (nearly) blank"
        assert path.stat().st_size > 30_000, f"{name}: {path.stat().st_size} bytes"
        return path


def stored_widget_cell(path):
    """The index of the first code cell of notebook ``path`` whose stored output is a widget view."""
    cells = nbformat.read(path, as_version=4).cells
    return next(i for i, c in enumerate(cells) if c.cell_type == "code" and any(
        "application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in c.get("outputs", [])))


def first_code_cell(path):
    """The index of the first code cell of notebook ``path`` (a lecture's imports)."""
    return next(i for i, c in enumerate(nbformat.read(path, as_version=4).cells) if c.cell_type == "code")


def check_opened_lecture(browser, lab, path, widget_cell):
    """What every lecture must look like right after opening: the stored widget renders as controls, and
    JupyterLab rewrote none of the kernel metadata (so that cannot mark it modified)."""
    on_disk = nbformat.read(lab.course / path, as_version=4).metadata
    shown = browser.metadata()
    for key in ("kernelspec", "language_info"):
        assert shown[key] == on_disk[key], f"JupyterLab rewrote {key} of {path}: {on_disk[key]} -> {shown[key]}"
    view = browser.widget_view(widget_cell)
    assert view["handles"] >= 1 and view["image"], view["text"][:300]
    assert not [s for s in WIDGET_ERRORS if s in view["text"]], view["text"][:300]
    return view


def check_labels(view, expected):
    """Every expected slider label is shown in full (not cut to "temperat..."): text equal, no overflow."""
    labels = {text: (full, shown) for text, full, shown in view["labels"]}
    for name in expected:
        assert name in labels, f"label {name!r} not among {sorted(labels)}"
        full, shown = labels[name]
        assert full <= shown + 1, f"label {name!r} is cut off: {full} px of text in {shown} px"


# ---------------------------------------------------------------- tests
def test_make_lab_trusts_course_notebooks_and_saves_widget_state(lab):
    """`make lab` signed the course's shipped notebooks in the student's trust database, and the course
    environment's JupyterLab saves widget state with the notebook (and the server keeps stored widgets)."""
    from nbformat.sign import NotebookNotary

    notary = NotebookNotary(data_dir=str(lab.home / "data"))
    notebooks = sorted([*lab.course.glob("lectures/*.ipynb"), *lab.course.glob("assignments/*/*.ipynb")])
    assert len(notebooks) >= 13
    untrusted = [p.name for p in notebooks if not notary.check_signature(nbformat.read(p, as_version=4))]
    assert not untrusted, f"not trusted after make lab: {untrusted}"
    overrides = json.loads((COURSE / ".venv/share/jupyter/lab/settings/overrides.json").read_text())
    assert overrides["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is True
    assert "keep_widget_state" in (COURSE / ".venv/etc/jupyter/jupyter_server_config.py").read_text()
    served = browser_settings(lab, "@jupyter-widgets/jupyterlab-manager:plugin")  # the default, as overridden
    assert served["schema"]["properties"]["saveState"]["default"] is True, served["schema"]["properties"]
    assert served["settings"].get("saveState", True) is True, served["settings"]


def browser_settings(lab, plugin):
    """A plugin's settings as JupyterLab serves them to the browser (its REST API)."""
    request = urllib.request.Request(f"http://127.0.0.1:{lab.port}/lab/api/settings/{plugin}",
                                     headers={"Authorization": f"token {lab.token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_lecture01_temperature_widget(browser, lab, shots):
    """Lecture 01 opens with its stored widget rendered; the temperature slider redraws the plot; after a
    save, a kernel shutdown and reopening, the widget still renders (its state was saved)."""
    cell = stored_widget_cell(lab.course / LECTURE01)
    browser.open(LECTURE01)
    check_opened_lecture(browser, lab, LECTURE01, cell)
    OBSERVED["lecture01_dirty_after_open"] = browser.dirty()
    browser.screenshot(shots, "01_lecture01_opened.png", must_show=["temperature τ"])

    # the cells the widget needs: imports and corpus, the vocabulary, the scores after 't', the widget
    source = [c.source for c in nbformat.read(lab.course / LECTURE01, as_version=4).cells]
    needed = [first_code_cell(lab.course / LECTURE01),
              next(i for i, s in enumerate(source) if s.startswith("big_vocab =")),
              next(i for i, s in enumerate(source) if "t_scores, t_labels =" in s), cell]
    outputs = browser.run_cells(needed)
    assert not [o for out in outputs for o in out if o["output_type"] == "error"], outputs
    before, after = browser.move_slider(cell, presses=10)
    assert "1.00" in before["text"] and "1.50" in after["text"], (before["text"][:200], after["text"][:200])
    check_labels(after, ["temperature τ"])
    browser.screenshot(shots, "02_lecture01_slider_moved.png", must_show=["temperature τ", "1.50"])

    # save, shut the kernel down, reopen: the rerun widget comes back from the saved state
    browser.js_async("await app.commands.execute('docmanager:save');")
    browser.wait("return !nb.context.model.dirty", "the save")
    saved = nbformat.read(lab.course / LECTURE01, as_version=4)
    view_ids = [o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for o in saved.cells[cell].outputs
                if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    state = saved.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert view_ids and all(v in state for v in view_ids), "the rerun widget's state was not saved"
    browser.close_current()
    browser.open(LECTURE01)
    view = browser.widget_view(cell)
    assert view["handles"] >= 1 and "1.50" in view["text"], view["text"][:300]
    browser.screenshot(shots, "03_lecture01_reopened.png", must_show=["temperature τ", "1.50"])
    browser.close_current()


def test_lecture03_spectral_norm_widget(browser, lab, shots):
    """Lecture 03's spectral-norm widget: rendered on opening; saving it unchanged writes the same bytes (the
    stored widget kept); labels in full; the plot follows the slider."""
    cell = stored_widget_cell(lab.course / LECTURE03)
    shipped = (lab.course / LECTURE03).read_bytes()
    browser.open(LECTURE03)
    check_opened_lecture(browser, lab, LECTURE03, cell)
    # a student who only reads: (auto)save writes the lecture back unchanged, its stored widget included
    browser.js_async("await app.commands.execute('docmanager:save');")
    browser.wait("return !nb.context.model.dirty", "the save")
    assert (lab.course / LECTURE03).read_bytes() == shipped, "saving the opened lecture changed it"
    outputs = browser.run_cells([first_code_cell(lab.course / LECTURE03), cell])  # the imports, the widget
    assert not [o for out in outputs for o in out if o["output_type"] == "error"], outputs
    before, after = browser.move_slider(cell, presses=4)
    assert before["text"].startswith("spectral_norm\n1.00") and after["text"].startswith("spectral_norm\n1.20"), (
        before["text"][:80], after["text"][:80])
    check_labels(after, ["spectral_norm", "input_scale", "T", "nonlinearity"])
    browser.screenshot(shots, "04_lecture03_spectral_norm.png", must_show=["spectral_norm", "1.20"])
    browser.close_current()


def test_assignment_a1_first_self_check(browser, lab, shots):
    """Assignment 1 opens unmodified; its first self-check runs: on the blank release the stub's
    NotImplementedError, with a correct step the course's "ok ... relative error" line."""
    browser.open(A1)
    time.sleep(1)  # anything JupyterLab would rewrite after the kernel's first reply has happened by now
    assert browser.dirty() == [False, False], "assignment 1 opens modified"
    cells = nbformat.read(lab.course / A1, as_version=4).cells
    grade_ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in cells]
    step, check = grade_ids.index("rnn_step_forward"), grade_ids.index("selfcheck_rnn_step_forward")
    blank = browser.run_cells([grade_ids.index("imports"), step, check], last_may_fail=True)[-1]
    assert [o.get("ename") for o in blank] == ["NotImplementedError"], blank

    source = cells[step].source.split("    # YOUR CODE HERE")[0] + A1_STEP
    browser.js("nb.content.widgets[arguments[0]].model.sharedModel.setSource(arguments[1]);", step, source)
    done = browser.run_cells([step, check])[-1]
    text = "".join(o.get("text", "") for o in done)
    assert [o["output_type"] for o in done] == ["stream"] and text.startswith("ok    next_h: relative error"), done
    browser.screenshot(shots, "05_a1_self_check.png", must_show=["ok    next_h: relative error"],
                       must_not_show=("NotImplementedError", "Traceback", "Error"), cell=check)
    browser.js_async("await nb.sessionContext.shutdown(); await nb.context.revert(); nb.dispose();")


def test_formgrader_and_assignment_list(browser, lab, shots):
    """On a local install the formgrader lists the course's assignments, the course list finds the local
    formgrader, and the Assignment List works on the course's local exchange: clean, and after the
    instructor releases a1 it offers it to fetch."""
    browser.js_async("await app.commands.execute('nbgrader:open-formgrader');")
    frame = browser.wait("return document.querySelector('#formgrader-iframe iframe');", "the formgrader panel")
    browser.driver.switch_to.frame(frame)
    try:
        deadline = time.monotonic() + WAIT
        while not all(a in browser.page_text() for a in ASSIGNMENTS) and time.monotonic() < deadline:
            time.sleep(0.2)
        text = browser.page_text()
    finally:
        browser.driver.switch_to.default_content()
    assert all(a in text for a in ASSIGNMENTS) and "Manage Assignments" in text, text[:500]
    assert not [s for s in EXCHANGE_ERRORS if s in text], text[:500]
    browser.screenshot(shots, "06_formgrader.png", must_not_show=EXCHANGE_ERRORS)

    release = subprocess.run([str(COURSE / ".venv/bin/nbgrader"), "release_assignment", "a1_rnn_numpy"],
                             cwd=lab.course, env=lab.env, capture_output=True, text=True, timeout=WAIT)
    assert release.returncode == 0, release.stderr[-2000:]
    assert (lab.course / ".exchange/rnn-course/outbound/a1_rnn_numpy/a1_rnn_numpy.ipynb").is_file()
    browser.js_async("await app.commands.execute('nbgrader:open-assignment-list');")
    listed = browser.wait("""const p = document.querySelector('#released_assignments_list');
                             return p && p.innerText.includes('a1_rnn_numpy') && document.body.innerText;""",
                          "a1 in the Assignment List")
    assert "rnn-course" in listed and not [s for s in EXCHANGE_ERRORS if s in listed], listed[:800]
    browser.screenshot(shots, "07_assignment_list.png", must_show=["a1_rnn_numpy", "Fetch"],
                       must_not_show=EXCHANGE_ERRORS)
    browser.js_async("await app.commands.execute('nbgrader:open-course-list');")
    courses = browser.wait("""const l = document.querySelector('#formgrader_list');
                              return l && !l.innerText.includes('Loading') && l.innerText;""", "the course list")
    assert "rnn-course" in courses and "no available formgrader" not in courses, courses


@pytest.mark.xfail(strict=True, reason="jupyterlab-manager (jupyterlab_widgets 3.0.x) marks a notebook modified "
                   "whenever it restores stored widget state while saveState is on (WidgetManager.register_model -> "
                   "setDirty); the kernel metadata is not rewritten (checked above)")
def test_lecture_with_stored_widgets_opens_unmodified():
    """Lecture 01 (stored widget state) is not marked modified once it has opened and its kernel started."""
    if "lecture01_dirty_after_open" not in OBSERVED:
        pytest.skip("test_lecture01_temperature_widget did not get that far")
    assert OBSERVED["lecture01_dirty_after_open"] == [False, False]
