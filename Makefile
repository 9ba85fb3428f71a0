# cutscore: `make demo` and `make test` are all a newcomer needs (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cutscore-installed
export QT_QPA_PLATFORM ?= offscreen
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-slow bench lint wheel clean constraints

install: $(STAMP)

# Re-runs only when the dependencies change; a second `make install` takes seconds. constraints.txt holds
# the versions the tests passed with: a clean clone installs those, not whatever was released last night.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "cutscore needs Python 3.11"'
	$(BIN)/pip install -q "setuptools<81" wheel
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/cutscore demo

# the Debian tools the tests use are installed first when this user can (root or sudo with apt);
# else the tests that need them skip, each with the apt line (scripts/debian-tools.txt)
test: install
	@scripts/debian-tools
	$(BIN)/python -m pytest -q

test-slow: install
	@scripts/debian-tools --slow
	$(BIN)/python -m pytest -q -m slow

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports  # the layers: pyproject.toml [tool.importlinter]

# the wheel editors install with pipx or uv (README): the demo model, presets and demo timeline inside
wheel: install
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w dist .
	@rm -rf build
	@ls dist/cutscore-*.whl

# record the versions this venv holds (after upgrading in it, `$(BIN)/pip install -U PACKAGE`, and a
# green `make test` and `make test-slow`); not through `install`, which installs the recorded ones
constraints:
	@test -x $(BIN)/pip || { echo "no $(VENV): make install first"; exit 1; }
	@head -4 constraints.txt > constraints.txt.new
	$(BIN)/pip freeze --exclude-editable >> constraints.txt.new
	@mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
