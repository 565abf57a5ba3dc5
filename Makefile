# The two commands of the README: `make test` and `make demo`.
# Everything else here is what they need on a fresh Debian machine with Python 3.11.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the suite needs: sipp (sip-tester) is the SIP peer of the integration
# tests, promtool (prometheus) checks the metrics and alert rules, chromium and firefox-esr
# load the web phone, rtpengine-daemon is the benchmarks' measuring stick (its smoke test
# runs in the suite). python3-venv is added only where Python cannot make a venv (a bare
# Debian python3 lacks ensurepip). npm (the web phone's build) is added only where there is
# none: a Node.js from elsewhere brings its own.
APT_PACKAGES := sip-tester prometheus chromium firefox-esr rtpengine-daemon
# The web phone's JsSIP, pinned in web/package-lock.json and copied into the package.
JSSIP := rtcgw/web/static/vendor/jssip.min.js
# SIP.js, pinned there too, is for the end-to-end tests only: it goes next to their SIP.js
# page, never into the package. It ships ES modules (lib/), copied as they are.
SIPJS_DIR := tests/e2e/sipjs/vendor/sip.js
SIPJS := $(SIPJS_DIR)/index.js

.PHONY: test lint typecheck unit apt-deps clean web demo bench

test: apt-deps $(STAMP) lint typecheck unit

# The gateway, its web phone and the demo PBX on loopback, until Ctrl-C (README: make demo).
# DEMO_ARGS passes options on, e.g. DEMO_ARGS="--advertise 192.0.2.7".
demo: apt-deps web $(STAMP)
	$(BIN)/rtcgw demo $(DEMO_ARGS)

apt-deps:
	@wanted="$(APT_PACKAGES)"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || wanted="$$wanted python3-venv"; \
	command -v npm >/dev/null || wanted="$$wanted npm"; \
	missing=""; for p in $$wanted; do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

web: $(JSSIP) $(SIPJS)

# One npm ci brings both libraries.
$(JSSIP) $(SIPJS) &: web/package.json web/package-lock.json | apt-deps
	cd web && npm ci --no-audit --no-fund
	mkdir -p $(dir $(JSSIP))
	cp web/node_modules/jssip/dist/jssip.min.js $(JSSIP)
	rm -rf $(SIPJS_DIR)
	mkdir -p $(SIPJS_DIR)
	cp -R web/node_modules/sip.js/lib/. $(SIPJS_DIR)/
	cp web/node_modules/sip.js/LICENSE.md $(SIPJS_DIR)/

$(STAMP): pyproject.toml $(JSSIP) $(SIPJS) | apt-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check rtcgw tests benchmarks
	$(BIN)/ruff format --check rtcgw tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects nothing: non-zero, so make fails as it should.
unit: $(STAMP)
	$(BIN)/pytest -q

# The figures operators size by, beside rtpengine, in under 15 minutes on 2 cores:
# benchmarks/results/<date>.json and .md. Never part of `make test`.
bench: apt-deps $(STAMP)
	$(BIN)/python -m benchmarks.bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis web/node_modules $(JSSIP) $(SIPJS_DIR)
