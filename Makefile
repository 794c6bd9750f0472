# Textcat Portal. `make run` serves the app; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup run dev test lint format bench bench-quick clean

setup: $(STAMP)

# Torch goes in first, pinned, so sentence-transformers does not pull a CUDA build.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (set PYTHON=python3.x)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py first_user
	$(PY) manage.py serve

# For changing the code: Django's development server, reloading on changes, with DEBUG.
dev: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py first_user
	DJANGO_DEBUG=True $(PY) manage.py serve --dev

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The report says how long a run took; the quick one (smaller data, fewer runs) aims at
# under 3 minutes.
bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)

bench-quick: setup
	$(PY) -m bench.run --quick $(BENCH_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) artifacts .pytest_cache
