# The README's two commands: `make demo` and `make test`.
.PHONY: demo test setup build lint

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

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# The Debian package: target/debian/gunicorn-launcher_<version>_<arch>.deb (README, "Debian package").
.PHONY: deb
deb:
	packaging/build-deb
