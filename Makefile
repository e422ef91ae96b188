# The course's commands. Students: `make lab`. Everyone: `make test`.
# Instructors: `make release`, `make autograde SUBMISSIONS=...`, `make grades`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch is installed first, pinned, so that the `torch>=2.3` range in requirements.txt is
# satisfied without pulling the newest release. Override for another build, e.g.
#   make lab TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
TORCH  ?= torch==2.13.0
PORT   ?= 8888
LAB_ARGS ?=
PYTEST_ARGS ?=

# Deterministic, fixed-thread runs for tests and grading (2 workers x 1 thread = 2 cores).
export PATH := $(abspath $(BIN)):$(PATH)
TEST_ENV := PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MPLBACKEND=Agg

.PHONY: setup lab test lint lecture-test release autograde grades help

help:
	@echo "make lab       set up (first time only) and start JupyterLab on port $(PORT)"
	@echo "make test      set up (first time only) and run the whole test suite"
	@echo "make release   regenerate assignments/ from solutions/ with nbgrader"
	@echo "make autograde SUBMISSIONS=<folder or .zip>   collect, autograde, write feedback"
	@echo "make grades    export all grades to grades.csv"
	@echo "make lecture-test NB=lectures/01_recurrence.ipynb   validate one lecture with nbval"
	@echo "make lint      check the Python code with ruff (make test runs it too)"

setup: $(STAMP)

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
# bubblewrap sandboxes student code in `make autograde`; students' `make lab` works without it.
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get install -y -qq bubblewrap || { apt-get update -qq && apt-get install -y -qq bubblewrap; }; }; } || \
		echo "note: bubblewrap (bwrap) is missing: sandboxed autograding needs it (apt-get install bubblewrap)"
	@touch $(STAMP)

# Jupyter refuses to run as root unless told; containers often run as root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab --notebook-dir=. --port=$(PORT) $(ROOT_FLAG) $(LAB_ARGS)

test: setup
	@start=$$(date +%s); \
	$(BIN)/ruff check . || lint=1; \
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --dist loadscope \
		--nbval --current-env --sanitize-with tests/nbval_sanitize.cfg \
		tests $(wildcard lectures) $(PYTEST_ARGS); \
	status=$$?; [ -z "$$lint" ] || { echo "ruff found problems (see above)"; status=1; }; \
	echo "make test wall time: $$(( $$(date +%s) - start )) s (set-up excluded)"; \
	exit $$status

lint: setup
	$(BIN)/ruff check .

lecture-test: setup
	@test -n "$(NB)" || { echo "error: give the notebook, e.g. make lecture-test NB=lectures/01_recurrence.ipynb"; exit 2; }
	$(TEST_ENV) $(BIN)/python -m pytest --nbval --current-env --sanitize-with tests/nbval_sanitize.cfg $(NB)

release: setup
	$(TEST_ENV) $(BIN)/python -m instructor release

# WORKERS: parallel submissions (default: one per core); SCHEDULER: a Dask scheduler address to
# grade on an existing cluster; UNSANDBOXED=1 grades without the bubblewrap sandbox (not advised).
WORKERS ?=
SCHEDULER ?=
UNSANDBOXED ?=
autograde: setup
	@$(TEST_ENV) $(BIN)/python -m instructor autograde "$(SUBMISSIONS)" $(if $(WORKERS),--workers $(WORKERS)) \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(if $(UNSANDBOXED),--unsandboxed)

grades: setup
	$(BIN)/python -m instructor grades
