# Two commands: `make demo` and `make test`. Each creates .venv when missing and installs everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch: an unpinned `torch` would pull a CUDA build of several GB.
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz bench lint docs clean distributed-abort-loop distributed-restart

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/aekit demo --force

test: $(STAMP)
	$(PY) -m pytest -q

# The hardening battery at length: 1000 hypothesis examples per property, 200 SIGKILLs per kill test.
fuzz: $(STAMP)
	AEKIT_HYPOTHESIS_PROFILE=long AEKIT_FUZZ_KILLS=200 $(PY) -m pytest -q tests/test_hardening_*.py tests/test_faults.py

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# The documentation site (docs/*.md, mkdocs.yml) into site/; --strict fails on a broken link.
docs: $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	$(VENV)/bin/mkdocs build --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) demo_model site

# Two-process gloo launches under torchrun, counting any that abort at exit (long: not part of `make test`).
distributed-abort-loop: $(STAMP)
	nice -n 10 $(PY) benchmarks/distributed_abort_loop.py --launches 200

# A worker SIGKILLed mid-epoch under torchrun --max-restarts, resumed to the uninterrupted weights: part of
# `make test`; this runs it alone.
distributed-restart: $(STAMP)
	$(PY) -m pytest -q tests/test_distributed.py -k killed_mid_epoch
