# Tamga — make targets. `make demo` and `make test` are the two set-up commands
# on a fresh Debian machine: both install what is missing first.

SHELL := /bin/bash
CARGO ?= cargo
# Debian packages the build and the tests need: libxml2 headers, libclang for
# bindgen (the libxml crate), pkg-config, xmlsec1 (interop tests and the
# benchmark's reference implementation), cmake and clang for aws-lc-sys,
# softhsm2 (the PKCS#11 tests of the authority key), gostsum and
# libengine-gost-openssl (independent GOST references of the tamga-gost tests).
DEB_PACKAGES := libxml2-dev libxml2-utils libclang-dev pkg-config xmlsec1 cmake clang softhsm2 \
  gostsum libengine-gost-openssl
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

.PHONY: all deps services build demo test lint unit faults fuzz-build bench bench-pipeline clean

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# RabbitMQ and PostgreSQL for the integration tests: installed from Debian's
# packages and started when absent.
services:
	infra/dev/services.sh

build: deps
	$(CARGO) build --workspace

# The quick start: a demo PKI for AZ, KZ, TR, KG, UZ, signed declarations,
# verdicts, and forgeries refused with their reasons. No server needed.
demo: deps
	$(CARGO) run -q -p tamga -- demo --out demo-out

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Everything but the fault tests (services/tamga/tests/faults.rs: they stop
# RabbitMQ and PostgreSQL, so they run alone, in `faults`). Every fault test is
# named faults::fault_*, which is how the cargo-test fallback skips them.
unit: deps services
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast -E 'not binary_id(tamga::faults)'; \
	else \
	  $(CARGO) test --workspace --no-fail-fast -- --skip faults::fault_; \
	fi
	$(CARGO) test --workspace --doc -q

# The fault tests: workers as child processes, killed with SIGKILL, the broker
# restarted, PostgreSQL stopped for 10 s, poison messages, a burst of 5,000.
# They disturb the shared services, so they run serially and alone.
faults: deps services
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run -p tamga --test faults -j 1 --no-fail-fast --no-capture; \
	else \
	  $(CARGO) test -p tamga --test faults --no-fail-fast -- --test-threads=1 --nocapture; \
	fi

# Builds the fuzz targets with the stable toolchain (running them needs
# `cargo fuzz`, see fuzz/README.md). Shares the main target directory and
# lock file versions so the dependencies are not compiled twice.
fuzz-build: deps
	@if [ -f fuzz/Cargo.toml ]; then \
	  CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) build --manifest-path fuzz/Cargo.toml --bins; \
	fi

# In this order even under `make -j`: the fault tests must not overlap `unit`.
# (Lints are `make lint`; CI runs both.)
.NOTPARALLEL: test
test: unit faults fuzz-build

bench: deps
	$(CARGO) bench -p tamga --bench verify
	$(CARGO) bench -p tamga-gost --bench verify

# The pipeline load generator against local RabbitMQ and PostgreSQL.
bench-pipeline: deps services
	infra/dev/bench-pipeline.sh

clean:
	$(CARGO) clean
	rm -rf demo-out
