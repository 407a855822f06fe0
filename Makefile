# appliance — `make up` brings up the default (laptop) profile; `make test` runs everything CI runs.
PYTHON   ?= python3
VENV     ?= .venv
PROFILE  ?= laptop
ARGS     ?=
TEST_WORKERS ?= 4   # pytest-xdist workers for `make test`: each stack cluster's modules, the Docker and tool modules, the simulator's, on one each (0: one process)
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed

.PHONY: up down status doctor plan host-setup prebuild test test-unit e2e bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q 'uv>=0.5,<1'
	$(BIN)/python tools/venv_install.py -e '.[test]'   # uv, from where this host's pip takes packages
	touch $(STAMP)

host-setup: $(STAMP)  ## install the host programs plans need (debootstrap, gcc) where allowed (root + apt); else say what to run
	$(BIN)/appliance host-setup

up: $(STAMP) host-setup  ## create the cluster and install the profile's components
	$(BIN)/appliance up --profile $(PROFILE) $(ARGS)

prebuild: $(STAMP) host-setup  ## build everything `up` needs for the profile, no cluster (cached: a second run only checks)
	$(BIN)/appliance prebuild --profile $(PROFILE) $(ARGS)

down: $(STAMP)        ## delete the cluster
	$(BIN)/appliance down --profile $(PROFILE) $(ARGS)

status: $(STAMP)
	$(BIN)/appliance status --profile $(PROFILE) $(ARGS)

doctor: $(STAMP)
	$(BIN)/appliance doctor --profile $(PROFILE) $(ARGS)

plan: $(STAMP)
	$(BIN)/appliance plan --profile $(PROFILE) $(ARGS)

test: $(STAMP) host-setup  ## every test CI runs (unit + integration): the two kind stack clusters' modules beside the Docker and the simulator modules
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(ARGS)

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit $(ARGS)

e2e: $(STAMP)
	$(BIN)/appliance e2e $(ARGS)

bench: $(STAMP)       ## benchmarks → bench/results/*.json and a table
	$(BIN)/python -m bench $(ARGS)

lint: $(STAMP)       ## ruff over the package, tests and benchmarks; the package's layering (import-linter, pyproject.toml)
	$(BIN)/ruff check appliance tests bench tools
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache
