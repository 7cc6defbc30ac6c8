# Every target bootstraps .venv itself: a fresh clone needs only `make lab` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888
# JupyterLab refuses to run as root unless told (containers, some WSL set-ups)
ROOTFLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test lint bench services clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Latency Lab needs Python 3.11 or newer, found " + sys.version.split()[0]' 
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# port_retries=0: a port in use stops with an error instead of moving to another port unannounced
lab: $(STAMP)
	@echo "Starting JupyterLab on http://127.0.0.1:$(PORT)/lab (press Ctrl-C twice to stop it;"
	@echo "  port in use? make lab PORT=8899)"
	$(BIN)/jupyter lab --ip=127.0.0.1 --port=$(PORT) --ServerApp.port_retries=0 --notebook-dir=notebooks $(ROOTFLAG)

lint: $(STAMP)
	$(BIN)/ruff check simulator lab_apps latency_lab tests benchmarks

# LAB_SMOKE=1: the notebooks run with shortened simulations and measurements (see latency_lab/modes.py)
test: lint
	LAB_SMOKE=1 $(BIN)/python -m pytest --nbmake --nbmake-timeout=600 --durations=15 tests notebooks

# wrk (Debian's package) runs beside the load generator in the capacity benchmark: install it where missing
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo -n"; \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends wrk \
	    || echo "wrk could not be installed: the capacity benchmark reports the generator alone"; }
	$(BIN)/python benchmarks/run_all.py

services:
	@echo "PostgreSQL:"; pg_isready -h 127.0.0.1 -p 5432 || echo "  not running: pg_ctlcluster --skip-systemctl-redirect \$$(ls /etc/postgresql) main start"
	@echo "Redis:"; redis-cli -h 127.0.0.1 -p 6379 ping || echo "  not running: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
