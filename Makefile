PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench install clean

# The bench extra too: `make test` runs the benchmark's smoke test, which draws its chart.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/chathooks run

# Prometheus and promtool (Debian's package) for the monitoring tests: installed when root, else those tests skip.
test: $(STAMP)
	@command -v promtool >/dev/null || [ "$$(id -u)" != 0 ] || apt-get install -y -qq prometheus >/dev/null 2>&1 \
		|| (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq prometheus >/dev/null 2>&1) || true
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# B1-B5 (SPEC §9) into bench/results/; installs wrk (Debian's package) when root, else uses the Python load generator.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache
