# The README's two commands: `make demo` and `make test`.
.PHONY: demo test test-matrix setup build lint

CARGO ?= cargo

build:
	$(CARGO) build --release

setup:
	scripts/setup-test-env

# The launcher serving examples/hello.py on 0.0.0.0:8001 with the embedded defaults.
demo: setup build
	cd examples && PATH="$(CURDIR)/.venv/bin:$$PATH" $(CURDIR)/target/release/gunicorn-launcher run -- gunicorn hello:app

# Everything: formatting, lints, unit, property and real-gunicorn integration tests.
test: setup lint
	$(CARGO) test --all-targets

# The gunicorn-dependent tests against gunicorn 20.1.0, 21.2.0, 22.0.0, 23.0.0
# and 27.0.1, each in its own venv (`make test-matrix GUNICORN_VERSIONS="20.1.0
# 27.0.1"` for a subset).
test-matrix: setup
	scripts/test-matrix $(GUNICORN_VERSIONS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
