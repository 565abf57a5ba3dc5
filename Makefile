# The two commands of the README: `make test` and `make demo`.
# Everything else here is what they need on a fresh Debian machine with Python 3.11.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the suite needs: sipp (sip-tester) is the SIP peer of the integration
# tests, promtool (prometheus) checks the metrics and alert rules, chromium loads the web
# phone. python3-venv is added only where Python cannot make a venv (a bare Debian python3
# lacks ensurepip). npm (the web phone's build) is added only where there is none: a
# Node.js from elsewhere brings its own.
APT_PACKAGES := sip-tester prometheus chromium
# The web phone's JsSIP, pinned in web/package-lock.json and copied into the package.
JSSIP := rtcgw/web/static/vendor/jssip.min.js

.PHONY: test lint typecheck unit apt-deps clean web demo

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

web: $(JSSIP)

$(JSSIP): web/package.json web/package-lock.json | apt-deps
	cd web && npm ci --no-audit --no-fund
	mkdir -p $(dir $(JSSIP))
	cp web/node_modules/jssip/dist/jssip.min.js $@

$(STAMP): pyproject.toml $(JSSIP) | apt-deps
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

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis web/node_modules $(JSSIP)
