# Tamga — make targets. `make demo` and `make test` are the two set-up commands
# on a fresh Debian machine: both install what is missing first.

SHELL := /bin/bash
CARGO ?= cargo
# CI passes LOCKED=--locked: builds must use Cargo.lock as committed.
LOCKED ?=
# Debian packages the build and the tests need: libxml2 headers, libclang for
# bindgen (the libxml crate), pkg-config, xmlsec1 (interop tests and the
# benchmark's reference implementation), cmake and clang for aws-lc-sys,
# softhsm2 (the PKCS#11 tests of the authority key), gostsum and
# libengine-gost-openssl (independent GOST references of the tamga-gost tests), openssl
# (the OCSP responder and test PKI of the OCSP and CRL-fault tests).
DEB_PACKAGES := libxml2-dev libxml2-utils libclang-dev pkg-config xmlsec1 cmake clang softhsm2 \
  gostsum libengine-gost-openssl openssl
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

.PHONY: all deps deps-interop deps-deny services build demo test lint unit faults soak fuzz-build bench bench-pipeline flaky-check fuzz deps-fuzz clean interop-report deps-schemathesis schemathesis deps-curl deps-browser browser deps-promtool promtool-test bench-dashboard countersign-callgrind

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# The other producers of the interoperability matrix (tests/interop/): the
# JDK (javax.xml.crypto, `java Interop.java`), signxml in a venv and
# xml-crypto from npm, under target/interop-tools; xmlsec1 and openssl come
# with `deps`. Pinned versions: the matrix in the README was made with them.
INTEROP_TOOLS ?= $(CURDIR)/target/interop-tools
export TAMGA_INTEROP_TOOLS := $(INTEROP_TOOLS)
INTEROP_DEB := openjdk-17-jdk-headless python3-venv openssl
SIGNXML_VERSION := 5.2.0
XML_CRYPTO_VERSION := 6.3.2
XMLDOM_VERSION := 0.9.12

deps-interop: deps
	@missing=""; for p in $(INTEROP_DEB); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@$(INTEROP_TOOLS)/venv/bin/python -c 'import importlib.metadata as m, sys; sys.exit(m.version("signxml") != "$(SIGNXML_VERSION)")' 2>/dev/null || { \
	  rm -rf $(INTEROP_TOOLS)/venv && python3 -m venv $(INTEROP_TOOLS)/venv && \
	  $(INTEROP_TOOLS)/venv/bin/pip install -q 'signxml==$(SIGNXML_VERSION)'; }
	@grep -qs '"version": "$(XML_CRYPTO_VERSION)"' $(INTEROP_TOOLS)/node/node_modules/xml-crypto/package.json || { \
	  mkdir -p $(INTEROP_TOOLS)/node && cd $(INTEROP_TOOLS)/node && \
	  npm install --silent --no-audit --no-fund --no-save --prefix . xml-crypto@$(XML_CRYPTO_VERSION) @xmldom/xmldom@$(XMLDOM_VERSION); }

# The interoperability matrix (producer × algorithm × direction), made by
# the test tests/interop/matrix.rs (part of `make test`).
interop-report: deps-interop
	$(CARGO) test -q -p tamga --test interop >/dev/null 2>&1 || true
	@cat target/interop/matrix.md

# RabbitMQ and PostgreSQL for the integration tests: installed from Debian's
# packages and started when absent.
services:
	infra/dev/services.sh

build: deps
	$(CARGO) build --workspace $(LOCKED)

# The quick start: a demo PKI for AZ, KZ, TR, KG, UZ, signed declarations,
# verdicts, and forgeries refused with their reasons. No server needed.
demo: deps deps-curl
	$(CARGO) run -q -p tamga -- demo --out demo-out
	infra/dev/demo-gateway.sh demo-out

# curl: the broker's HTTP client in the gateway part of the demo.
deps-curl:
	@command -v curl >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq curl; }

# cargo-deny (deny.toml): licences, bans (duplicate versions: warnings) and
# sources always; RustSec advisories when the database can be fetched (it
# needs the network: without it, a warning, not a failure).
lint: deps deps-deny
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets $(LOCKED) -- -D warnings
	$(CARGO) deny $(LOCKED) check bans licenses sources
	@if $(CARGO) deny fetch db; then \
	  $(CARGO) deny $(LOCKED) --offline check advisories; \
	else \
	  echo "warning: the RustSec advisory database could not be fetched (no network?): advisories not checked"; \
	fi

deps-deny:
	@$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install cargo-deny --locked

# Everything but the fault tests (services/tamga/tests/faults.rs: they stop
# RabbitMQ and PostgreSQL, so they run alone, in `faults`; and the chaos soak,
# services/tamga/tests/soak/, which needs the machine's cores to itself). Every
# fault test is named faults::fault_*, which is how the cargo-test fallback skips them.
unit: deps deps-interop services
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace $(LOCKED) --no-fail-fast \
	    -E 'not binary_id(tamga::faults) and not binary_id(tamga::soak)'; \
	else \
	  $(CARGO) test --workspace $(LOCKED) --no-fail-fast -- --skip faults::fault_; \
	fi
	$(CARGO) test --workspace $(LOCKED) --doc -q

# The fault tests: workers as child processes, killed with SIGKILL, the broker
# restarted, PostgreSQL stopped for 10 s, poison messages, a burst of 5,000.
# They disturb the shared services, so they run serially and alone. Then the
# short chaos soak (500 declarations, one of each fault, on its own RabbitMQ
# and PostgreSQL: see `soak`).
faults: deps services
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run -p tamga $(LOCKED) --test faults --test soak -j 1 --no-fail-fast --no-capture; \
	else \
	  $(CARGO) test -p tamga $(LOCKED) --test faults --test soak --no-fail-fast -- --test-threads=1 --nocapture; \
	fi

# The chaos soak (services/tamga/tests/soak/): SOAK_N declarations — valid and
# every rejection class, four corridors — through `tamga run` on a RabbitMQ
# node and a PostgreSQL cluster of its own (free ports, a temporary directory;
# the shared services are never touched), with the authorities' keys in
# SoftHSM2, while workers are SIGKILLed every 3–8 s, RabbitMQ is restarted
# twice, PostgreSQL stopped for 15 s twice and the HSM made unavailable once.
# The checker's report: target/tmp/soak-full.json. Not part of `test`.
SOAK_N ?= 10000
soak: deps services
	SOAK_N=$(SOAK_N) $(CARGO) test -p tamga $(LOCKED) --test soak -- --ignored --exact \
	  faults::fault_chaos_soak_full --nocapture

# Builds the fuzz targets with the stable toolchain (running them needs
# `cargo fuzz`, see fuzz/README.md). Shares the main target directory and
# lock file versions so the dependencies are not compiled twice.
fuzz-build: deps
	@if [ -f fuzz/Cargo.toml ]; then \
	  CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) build $(LOCKED) --manifest-path fuzz/Cargo.toml --bins; \
	fi

# Fuzzing for real (fuzz/README.md): every target under libFuzzer for FUZZ_S seconds
# (default 60) each, on the nightly toolchain (cargo-fuzz from crates.io, installed when
# absent), from the committed corpora in fuzz/corpus/. Not part of `test`.
FUZZ_S ?= 60
deps-fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

fuzz: deps deps-fuzz
	FUZZ_S=$(FUZZ_S) infra/dev/fuzz.sh

# In this order even under `make -j`: the fault tests must not overlap `unit`.
# (Lints are `make lint`; CI runs both.)
.NOTPARALLEL: test
test: unit faults fuzz-build schemathesis promtool-test browser

# Schemathesis (PyPI, in a venv under target/) against `tamga serve` on the embedded
# default: a bounded run (90 s) of every operation in /openapi.json.
deps-schemathesis:
	@dpkg -s python3-venv >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv; }

schemathesis: deps deps-schemathesis
	infra/dev/schemathesis.sh

bench: deps
	$(CARGO) bench -p tamga --bench verify
	$(CARGO) bench -p tamga-gost --bench verify

# The countersign benchmark's instruction counts beside its times: Tamga's countersign +
# receipt against xmlsec1 making the same two signatures, under callgrind.
countersign-callgrind: deps
	infra/dev/countersign-callgrind.sh

# The pipeline load generator against local RabbitMQ and PostgreSQL.
bench-pipeline: deps services
	infra/dev/bench-pipeline.sh

# Runs the process-level suites (smoke tests, the SIGTERM-at-ready race, CLI
# contract tests, pipeline scenarios) FLAKY_N times (default 20) and reports
# every test that failed at least once, with its output. Not part of `test`.
flaky-check: deps services
	infra/dev/flaky-check.sh

clean:
	$(CARGO) clean
	rm -rf demo-out

# The pages in headless Chromium (tests/browser/, playwright-core from npm driving Debian's
# chromium: browser downloads are not possible here). Screenshots: target/browser-tests/screenshots/.
BROWSER_OUT ?= $(CURDIR)/target/browser-tests
deps-browser:
	@missing=""; dpkg -s chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@cd tests/browser && { [ -d node_modules/playwright-core ] || npm ci --silent --no-audit --no-fund; }

browser: deps deps-browser
	$(CARGO) build -q -p tamga --bin tamga
	cd tests/browser && TAMGA_BIN=$(CURDIR)/target/debug/tamga TAMGA_BROWSER_OUT=$(BROWSER_OUT) \
	  node --test --test-concurrency=1 pages.test.mjs

# The alert rules (infra/prometheus/rules.yml, alerts.yml) with promtool (Debian's prometheus).
deps-promtool:
	@command -v promtool >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus; }

promtool-test: deps-promtool
	promtool check rules infra/prometheus/rules.yml infra/prometheus/alerts.yml
	promtool test rules infra/prometheus/tests/rules_test.yml

# The dashboard's query on 1 M audit events in PostgreSQL (a scratch database), release build:
# the summary (what the page reads) and the raw-event query it replaced, same run.
bench-dashboard: deps services
	$(CARGO) run -q --release -p tamga-store --example pg_dashboard
