# Two commands do all set-up on a fresh machine with Python 3.11 and pip:
#   make demo   - install into .venv, run the example sweep on a local Dask cluster, write store + heatmap
#   make test   - install into .venv (with MPI from PyPI), start the one-node Slurm if root, run all tests
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[all]"
	$(BIN)/sweeper warmup
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sweeper run jobs/tutorial_weight_grid.yaml -o out/tutorial_weight_grid.zarr
	$(BIN)/sweeper plot out/tutorial_weight_grid.zarr -o out/tutorial_weight_grid.png
	@echo "store: out/tutorial_weight_grid.zarr   heatmap: out/tutorial_weight_grid.png"

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash slurm/test-env.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/sweep_e2e.py

clean:
	rm -rf out .pytest_cache
