# What a student needs: `make lab` (set up the first time, then start JupyterLab). The course's
# Makefile includes this file; the student bundle (`make student-release`) ships it as its Makefile.

THIS_MAKEFILE := $(lastword $(MAKEFILE_LIST))
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch is installed first, pinned, so that the `torch>=2.3` range in requirements.txt is
# satisfied without pulling the newest release. Override for another build, e.g.
#   make lab TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
TORCH  ?= torch==2.13.0
LAB_SETTINGS := $(VENV)/.lab-settings
PORT   ?= 8888
LAB_ARGS ?=
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup lab

setup: $(STAMP) $(LAB_SETTINGS)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is needed; run: make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import torch' 2>/dev/null || $(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -r requirements.txt -e .
# nbgrader finds the course's configuration (per-cell time limits...) wherever it runs, e.g. a
# student's `nbgrader validate` or JupyterLab's Validate button from an assignment's folder.
	@mkdir -p $(VENV)/etc/jupyter
	@printf '# Written by `make setup`: the course configuration, wherever nbgrader runs.\nload_subconfig("%s")\n' \
		"$(abspath nbgrader_config.py)" > $(VENV)/etc/jupyter/nbgrader_config.py
	@touch $(STAMP)

# Lab settings of the course, in the environment (so also for JupyterHub's single-user servers):
# - JupyterLab saves the widgets' state with the notebook (jupyterlab-manager's saveState, off by
#   default), so that a re-run slider still shows when the notebook is reopened, not "Error displaying
#   widget: model not found"; merged into the environment's overrides.json, other settings there kept;
# - saveState saves only the widgets live in the kernel, so a stored slider the student has not re-run
#   would be dropped by the next (auto)save: the server's pre-save hook puts it back
#   (helpers/widget_state.py), and an opened lecture is saved unchanged.
# A stamp of its own (remade when this file changes), so that an existing set-up gets it on `make lab`.
$(LAB_SETTINGS): $(STAMP) $(THIS_MAKEFILE)
	@$(BIN)/python -c 'import json, pathlib, sys; p = pathlib.Path(sys.argv[1]); \
		s = json.loads(p.read_text()) if p.exists() else {}; \
		s.setdefault("@jupyter-widgets/jupyterlab-manager:plugin", {})["saveState"] = True; \
		p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps(s, indent=2) + "\n")' \
		$(VENV)/share/jupyter/lab/settings/overrides.json
	@mkdir -p $(VENV)/etc/jupyter
	@printf '%s\n' '# Written by `make setup`: the server keeps the stored widgets a save leaves out.' \
		'# helpers/widget_state.py is loaded by its path: importing the helpers package would load torch.' \
		'import importlib.util, os' \
		'folder = importlib.util.find_spec("helpers").submodule_search_locations[0]' \
		'spec = importlib.util.spec_from_file_location("course_widget_state", os.path.join(folder, "widget_state.py"))' \
		'module = importlib.util.module_from_spec(spec)' \
		'spec.loader.exec_module(module)' \
		'get_config().ContentsManager.pre_save_hook = module.keep_widget_state' \
		> $(VENV)/etc/jupyter/jupyter_server_config.py
	@touch $@

# Jupyter refuses to run as root unless told; containers often run as root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

# The course's own notebooks open trusted, so that their stored outputs show as they were made (widgets,
# not raw `interactive(children=...` text, nor a frozen progress bar). Trusting them is safe: they come
# with the course, as do the Makefile and the helpers that `make` runs anyway. Only lectures/ and the
# released assignments/ are trusted, never submitted/, feedback/ or any other notebook.
COURSE_NOTEBOOKS = $(wildcard lectures/*.ipynb assignments/*/*.ipynb)

lab: setup
	@$(if $(COURSE_NOTEBOOKS),$(BIN)/jupyter trust --log-level=WARN $(COURSE_NOTEBOOKS) >/dev/null)
	$(BIN)/jupyter lab --notebook-dir=. --port=$(PORT) $(ROOT_FLAG) $(LAB_ARGS)

