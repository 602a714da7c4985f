# The README's two commands: `make demo` and `make test`.
.PHONY: demo test test-matrix setup build lint lint-ansible fuzz-check bench bench-check bench-setup mutants-diff mutants-sample

CARGO ?= cargo
# Where `cargo build --release` puts the launcher: .cargo/config.toml builds for an
# explicit target (that is what lets it link the launcher statically).
TRIPLE := $(shell sed -n 's/^target *= *"\(.*\)"/\1/p' .cargo/config.toml)
LAUNCHER := target/$(TRIPLE)/release/gunicorn-launcher

build:
	$(CARGO) build --release --locked

setup:
	scripts/setup-test-env

# The launcher serving examples/hello.py on 0.0.0.0:8001 with the embedded defaults.
demo: setup build
	cd examples && PATH="$(CURDIR)/.venv/bin:$$PATH" $(CURDIR)/$(LAUNCHER) run -- gunicorn hello:app

# Everything: formatting, lints (the Ansible role's too), the fuzz targets compiled,
# unit, property and real-gunicorn integration tests. The release build first:
# tests/deb.rs packages it through packaging/build-deb, as `make deb` does.
test: setup lint lint-ansible fuzz-check build
	$(CARGO) test --all-targets

# The gunicorn-dependent tests against gunicorn 20.1.0, 21.2.0, 22.0.0, 23.0.0
# and 27.0.1, each in its own venv (`make test-matrix GUNICORN_VERSIONS="20.1.0
# 27.0.1"` for a subset).
test-matrix: setup
	scripts/test-matrix $(GUNICORN_VERSIONS)

# Mutation testing (MUTANTS.md; cargo-mutants from scripts/setup-mutants, configured in
# .cargo/mutants.toml). Not part of `make test`. mutants-diff: the mutants in what changed
# since BASE (the working tree against HEAD by default; on a branch, BASE=main), the habit
# before a commit. mutants-sample: about N mutants drawn across src/ (SHARD=k to repeat one).
BASE ?= HEAD
N ?= 200
mutants-diff:
	scripts/setup-mutants
	mkdir -p target
	git diff $(BASE) -- src > target/mutants.diff
	GUNICORN_VENV=$(CURDIR)/.venv $(CARGO) mutants --in-diff target/mutants.diff -o target/mutants-diff

mutants-sample:
	scripts/setup-mutants
	scripts/mutants-sample $(N)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# The rollout playbooks and their role (ansible/), with the pinned ansible-lint
# from target/venv-ansible (scripts/setup-test-env), configured by .ansible-lint:
# the production profile, offline. Ansible's own files go under target/, not $HOME.
lint-ansible: setup
	PATH="$(CURDIR)/target/venv-ansible/bin:$$PATH" ANSIBLE_HOME="$(CURDIR)/target/ansible-lint/home" \
	  XDG_CACHE_HOME="$(CURDIR)/target/ansible-lint/cache" ansible-lint --nocolor

# The Debian package: target/debian/gunicorn-launcher_<version>_<arch>.deb (README, "Debian package").
.PHONY: deb
deb:
	packaging/build-deb

# Fuzzing (README "Fuzzing"): each cargo-fuzz target in turn, FUZZ_TIME seconds each, one
# process at a time. Stable Rust: RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's -Z flags.
.PHONY: fuzz fuzz-cmin
FUZZ_TIME ?= 600
FUZZ_TARGETS ?= assemble config exec_line

fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --version 0.13.2 --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t for $(FUZZ_TIME) s (log: fuzz/fuzz-0.log)"; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t corpus/$$t seeds/$$t -- \
	    -dict=dicts/$$t.dict -max_total_time=$(FUZZ_TIME) -jobs=1 -workers=1 -print_final_stats=1; \
	  rc=$$?; \
	  if [ $$rc -ne 0 ]; then sed -n '/panicked\|ERROR/,$$p' fuzz-0.log | head -n 40; exit $$rc; fi; \
	  grep -E '^(Done|stat::)' fuzz-0.log; \
	done

# Minimizes the committed corpus after a run (seeds/ stay as they are).
# The fuzz crate is its own workspace, so `cargo test` never compiles it: build it
# here, on the stable toolchain, and run every input of the committed corpus and
# seeds through each target's properties once (libFuzzer's -runs=0), so that
# neither can rot between fuzzing runs. Linked dynamically: libFuzzer looks up
# optional sanitizer hooks with dlsym, which a static binary cannot answer.
fuzz-check:
	cd fuzz && RUSTFLAGS="-C target-feature=-crt-static" CARGO_TARGET_DIR=target/check \
	  $(CARGO) build --locked --bins
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  out=$$(target/check/$(TRIPLE)/debug/$$t -runs=0 corpus/$$t seeds/$$t 2>&1) \
	    || { echo "$$out" | tail -n 40; echo "fuzz-check: $$t failed on an input above"; exit 1; }; \
	  echo "fuzz-check $$t: $$(echo "$$out" | grep '^Done')"; \
	done

fuzz-cmin:
	cd fuzz && for t in $(FUZZ_TARGETS); do RUSTC_BOOTSTRAP=1 $(CARGO) fuzz cmin $$t corpus/$$t || exit 1; done

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
