# The README's two commands: `make demo` and `make test`.
.PHONY: demo test setup build lint bench bench-check bench-setup bench-variants

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

# Benchmarks (benches/, see the README's "Benchmarks"): never part of `make test`.
# Needs root (network namespaces); writes target/bench/*.json and benches/RESULTS.md.
bench-setup:
	benches/setup

bench: bench-setup
	python3 benches/bench.py all

# The fast part: `check` against lsof and ss on a host with 20,000 TCP sockets.
bench-check: bench-setup
	python3 benches/bench.py check
	python3 benches/bench.py report

# Optional, for the RSS comparison: the launcher static and optimised for size, in
# target/small-static (the idle bench includes it when present). Cargo.toml is unchanged.
bench-variants:
	CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
	RUSTFLAGS="-C target-feature=+crt-static" \
	$(CARGO) build --release --target "$$(rustc -vV | sed -n 's/^host: //p')" --target-dir target/small-static
