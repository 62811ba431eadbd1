# make demo  -- create .venv if missing, install detforge, run the end-to-end demo
# make test  -- create .venv if missing, install detforge with test tools, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.detforge-installed
DEMO_OUT ?= demo-run

.PHONY: demo test lint bench-help clean chromium

$(STAMP): pyproject.toml src/detforge/utils/_cstat.c src/detforge/models/darknet/_resize.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The exact torch/torchvision builds first, so no other build is ever pulled in.
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/detforge demo --out $(DEMO_OUT)

test: $(STAMP) chromium
	$(PY) -m pytest -n auto

# tests/report drive a headless Chromium (Debian's package; Playwright uses it, downloads none).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || [ -n "$$DETFORGE_CHROMIUM" ] \
	  || if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	       apt-get update -qq && apt-get install -y -qq chromium; \
	     else \
	       echo "note: tests/report need Chromium: sudo apt-get install chromium (or set DETFORGE_CHROMIUM); they fail without it"; \
	     fi

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
