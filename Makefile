# The course's commands. Students: `make lab`. Everyone: `make test`.
# Instructors: `make release`, `make autograde SUBMISSIONS=...`, `make grades`.

include student.mk
.DEFAULT_GOAL := help

PYTEST_ARGS ?=

# Deterministic, fixed-thread runs for tests and grading (2 workers x 1 thread = 2 cores).
TEST_ENV := PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MPLBACKEND=Agg

.PHONY: setup setup-class lab test lint lecture-test release autograde grades student-release help

help:
	@echo "make lab       set up (first time only) and start JupyterLab on port $(PORT)"
	@echo "make test      set up (first time only) and run the whole test suite"
	@echo "make release   regenerate assignments/ from solutions/ with nbgrader"
	@echo "make autograde SUBMISSIONS=<folder or .zip>   collect, autograde, write feedback"
	@echo "make autograde   (no SUBMISSIONS) grade what is in submitted/ (e.g. from nbgrader collect)"
	@echo "make grades    export all grades to grades.csv"
	@echo "make student-release   write what students receive to dist/ (no solutions, hidden tests or held-out data)"
	@echo "make setup-class   what running a class and its tests need: JupyterHub, proxy, PostgreSQL, Chromium"
	@echo "make lecture-test NB=lectures/01_recurrence.ipynb   validate one lecture with nbval"
	@echo "make lint      check the Python code with ruff (make test runs it too)"

# Running a class (README "Running a class") and testing it: JupyterHub, selenium and psycopg from
# requirements-class.txt; configurable-http-proxy from npm into .venv; Debian's bubblewrap (the
# autograde sandbox), chromium + chromium-driver (browser tests) and postgresql (the gradebook at
# class scale), as root with apt-get.
CLASS_STAMP := $(VENV)/.installed-class
setup-class: $(CLASS_STAMP)

$(CLASS_STAMP): requirements-class.txt $(STAMP)
	$(BIN)/python -m pip install -r requirements-class.txt
	@missing=$$(command -v bwrap >/dev/null || echo bubblewrap; command -v chromium >/dev/null || echo chromium; command -v chromedriver >/dev/null || echo chromium-driver; \
		dpkg -s postgresql >/dev/null 2>&1 || echo postgresql; command -v npm >/dev/null || echo npm); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -qq $$missing || { apt-get update -qq && apt-get install -y -qq $$missing; }; \
		else echo "note: install these Debian packages (as root): $$missing"; fi; fi
	@command -v npm >/dev/null && npm install -g --silent --prefix $(abspath $(VENV)) configurable-http-proxy@4 \
		|| echo "note: configurable-http-proxy (npm) is missing: JupyterHub needs it"
	@touch $(CLASS_STAMP)

test: setup setup-class
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

# What students receive (README "Running a class"): dist/rnn-course-student/ and its .zip; OUT=<folder> elsewhere.
student-release: setup
	$(TEST_ENV) $(BIN)/python -m instructor student-release $(if $(OUT),--out $(OUT))

# SUBMISSIONS: a folder or .zip to collect first (empty: grade what is in submitted/, e.g. after
# `nbgrader collect`); WORKERS: parallel submissions (default: one per core); SCHEDULER: a Dask scheduler address to
# grade on an existing cluster; UNSANDBOXED=1 grades without the bubblewrap sandbox (not advised).
WORKERS ?=
SCHEDULER ?=
UNSANDBOXED ?=
autograde: setup setup-class
	@$(TEST_ENV) $(BIN)/python -m instructor autograde "$(SUBMISSIONS)" $(if $(WORKERS),--workers $(WORKERS)) \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(if $(UNSANDBOXED),--unsandboxed)

grades: setup
	$(BIN)/python -m instructor grades
