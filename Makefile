# The two commands of the README: `make demo` (set up + main job) and `make test` (set up + tests).
# Each creates .venv when it is missing and installs what the project needs into it.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the kernels' C++ extension, rebuilt in place when its sources change (an install builds it too)
KERNELS := $(VENV)/.kernels-built
KERNEL_SOURCES := setup.py $(wildcard src/rnnkit/kernels/csrc/*)

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $(STAMP)

$(KERNELS): $(STAMP) $(KERNEL_SOURCES)
	$(PY) setup.py -q build_ext --inplace
	touch $(KERNELS)

# the main job: a character language model on Shakespeare (~5 min on 2 cores), then a sample
demo: $(KERNELS)
	@run=runs/text-$$(date +%Y%m%d-%H%M%S) && $(VENV)/bin/rnnkit train text --out "$$run" \
		&& $(VENV)/bin/rnnkit generate "$$run" --length 600 --seed 0

# the suite on one pytest-xdist worker per usable core, at most 4, each test file whole on one
# worker (its module fixtures, e.g. a trained run or a server, are made once); a plain
# `$(PY) -m pytest tests/FILE` runs serially
test: $(KERNELS)
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache src/rnnkit/kernels/_C.*
