# netpress: `make demo` and `make test` work on a fresh machine with Python 3.11, pip and apt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.netpress-setup
FMNIST := /usr/share/datasets/fashion-mnist
FORTUNES := /usr/share/games/fortunes
export OMP_NUM_THREADS ?= 2
# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning
# threads of several processes starve each other (a 30× slowdown was measured here).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup data text browser demo test bench lint clean

setup: $(STAMP) data text browser

# The torch pin is installed first and repeated with the project so that pip never
# reaches for a newer (CUDA) build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0 -e '.[dev,hf,openvino,mlflow,serve,federated]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps flwr==1.42.0
	touch $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist package. When it cannot be
# installed, say so and carry on: tests use scikit-learn's digits, and every command
# takes --data-dir (or NETPRESS_DATA_DIR) to point at the IDX files elsewhere.
data:
	@if [ -d "$(FMNIST)" ] || [ -n "$$NETPRESS_DATA_DIR" ]; then exit 0; fi; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	echo "Fetching Fashion-MNIST: apt-get install -y dataset-fashion-mnist"; \
	($$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	  ($$SUDO apt-get update -qq >/dev/null 2>&1 && $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) || \
	echo "WARNING: could not install dataset-fashion-mnist (needs root and Debian's archive). Put the four *-ubyte.gz files in a folder and pass --data-dir DIR or set NETPRESS_DATA_DIR=DIR."

# English text for the transformer tasks (text:fortunes, text:fortunes-topics) comes from
# Debian's fortunes package. Without it those corpora are unavailable (tests skip them);
# text:FILE works with any file.
text:
	@if [ -d "$(FORTUNES)" ]; then exit 0; fi; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	echo "Fetching English text: apt-get install -y fortunes"; \
	($$SUDO apt-get install -y -qq fortunes >/dev/null 2>&1 || \
	  ($$SUDO apt-get update -qq >/dev/null 2>&1 && $$SUDO apt-get install -y -qq fortunes >/dev/null 2>&1)) || \
	echo "WARNING: could not install fortunes (needs root and Debian's archive); text:fortunes is unavailable, pass --data text:FILE instead."

# Headless Chromium from Debian's chromium package renders the HTML report in tests
# (tests/report/test_browser.py) and benchmarks. Without it those checks are skipped.
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$NETPRESS_CHROMIUM" ]; then exit 0; fi; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	echo "Fetching Chromium for the report tests: apt-get install -y chromium"; \
	($$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  ($$SUDO apt-get update -qq >/dev/null 2>&1 && $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1)) || \
	echo "WARNING: could not install chromium (needs root and Debian's archive). The headless-browser report tests will be skipped; set NETPRESS_CHROMIUM=/path/to/chrome to use another build."

demo: setup
	$(BIN)/netpress demo

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/run.py

lint: setup
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .netpress build src/*.egg-info
