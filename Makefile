# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test reproduce benchmark clean

install: $(STAMP)

# Re-installs only when setup.py changes; the package is editable.
$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,ray]'
	touch $(STAMP)

demo: install
	$(BIN)/lottery_tf find --flagfile=flags/demo_mnist5k.cfg

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The long reproductions (minutes to hours), outside the default suite.
reproduce: install
	$(BIN)/python -m pytest -m slow -s -n 0 $(PYTEST_ARGS)

benchmark: install
	$(BIN)/python benchmarks/masked_training.py
	$(BIN)/python benchmarks/distributed.py
	$(BIN)/python benchmarks/input_pipeline.py
	$(BIN)/python benchmarks/grid_executors.py
	$(BIN)/python benchmarks/grid_cost.py
	$(BIN)/python benchmarks/levels.py --models lenet_300_100 --repeats 3 --xla
	$(BIN)/python benchmarks/levels.py --models conv4,resnet20 --steps 16it --nodemo

clean:
	rm -rf $(VENV) build *.egg-info
