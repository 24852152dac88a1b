# Two-command quick start: `make demo` and `make test` each set up .venv on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU torch from the local wheel on machines without CUDA; override e.g. TORCH_SPEC='torch==2.13.0' TORCH_INDEX=...
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
PIP_TORCH_ARGS := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
EXTRAS ?= dev,browser
STAMP  := $(VENV)/.meshsim-installed

.PHONY: venv demo test test-all lint bench clean browser-deps check-cuda

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(PIP_TORCH_ARGS)
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Browser tests need Debian's chromium; install it when we can (root + apt), skip those tests otherwise.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: browser tests will be skipped"; }

demo: $(STAMP)
	$(VENV)/bin/meshsim demo
	@echo "meshsim is installed in $(VENV): run 'source $(VENV)/bin/activate' first to use the commands printed above"

test: $(STAMP) browser-deps
	$(PY) -m pytest -q

test-all: $(STAMP) browser-deps
	$(PY) -m pytest -q -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Every Warp module compiled to CUDA PTX (sm_75/80/90) without a GPU; exits non-zero on any codegen error.
check-cuda: $(STAMP)
	$(PY) tools/check_cuda.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py --quick

clean:
	rm -rf $(VENV) build *.egg-info
