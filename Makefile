# The README's two commands: `make lab` and `make test`. Everything runs inside .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.course-installed

.PHONY: lab test lint test-oldest test-colab data execute unit notebooks bench sweep student clean

ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)  # containers often run as root

lab: $(STAMP) data  ## start JupyterLab on notebooks/ (localhost, token authentication on)
	$(PY) -m jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(ROOT_FLAG)

test: lint  ## every test: lint, unit tests, notebook hygiene, nbval over every notebook
	$(PY) -m pytest

lint: $(STAMP)  ## ruff over course_utils, tools, tests, benchmarks and the notebooks' code; formatting
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The oldest versions the course promises (requirements-oldest.txt), in a second environment.
# course_utils is not installed there: test-oldest imports it from this checkout, and the Colab
# rehearsal installs it the way a notebook's setup cell does on Colab.
OLDEST       := .venv-oldest
OLDEST_PY    := $(OLDEST)/bin/python
OLDEST_STAMP := $(OLDEST)/.oldest-installed

$(OLDEST_STAMP): requirements-oldest.txt pyproject.toml
	test -x $(OLDEST_PY) || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST_PY) -m pip install -q -r requirements-oldest.txt
	$(OLDEST_PY) -m pip download -q --no-deps -d $(OLDEST)/wheels "setuptools>=64"  # build backend
	touch $@

test-oldest: $(OLDEST_STAMP)  ## unit tests and notebooks with the oldest supported versions
	PYTHONPATH=$(CURDIR) $(OLDEST_PY) -m pytest

test-colab: $(STAMP) $(OLDEST_STAMP)  ## the Colab route, offline: git install, notebooks alone
	COURSE_COLAB_PYTHON=$(CURDIR)/$(OLDEST_PY) $(PY) -m pytest tests/test_colab_rehearsal.py

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e ".[test]"
	touch $@

data: $(STAMP)  ## make sure Fashion-MNIST is available (the step to run before a workshop)
	$(PY) -c "from course_utils.data import load_dataset; load_dataset()"

unit: $(STAMP)  ## only the unit and hygiene tests
	$(PY) -m pytest tests

notebooks: $(STAMP)  ## only nbval over the notebooks
	$(PY) -m pytest notebooks

execute: $(STAMP)  ## re-run every notebook top to bottom and store its outputs
	$(PY) -m jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=600 notebooks/[0-9][0-9]_*.ipynb

bench: $(STAMP)  ## measure the results table on this machine (writes bench_results/, prints it)
	$(PY) -m benchmarks.run_all

sweep: $(STAMP)  ## every notebook under seeds 0-4 x threads 1, 2: proves the claims (benchmarks/CLAIMS.md); SWEEP_ARGS=--merge adds another CPU's runs
	$(PY) -m tools.sweep $(SWEEP_ARGS)

student: $(STAMP)  ## write the student edition (no outputs, no solutions) into student/
	$(PY) -m tools.make_student

clean:
	rm -rf $(VENV) $(OLDEST) checkpoints student test-artifacts
