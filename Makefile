# Two commands on a fresh Linux machine with Python 3.11:  make demo   and   make test
PYTHON ?= python3
VENV   ?= .venv
# A CPU build of torch; an unpinned "torch" would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/improved-gan toy --compare --out runs/demo
	@echo "open runs/demo/report.html"

# Headless Chromium for the report test; best effort (the test says why it skips if this fails).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1) \
	    || echo "note: could not install chromium; the browser test will be skipped"; }

# Data-dependent tests read IMPROVED_GAN_DATA (CI sets it to the verified copies in ../shared/data).
test: $(STAMP) browser
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
