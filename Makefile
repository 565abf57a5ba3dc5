# The two commands of the README: `make test` and (with a later milestone) `make demo`.
# Everything else here is what they need on a fresh Debian machine with Python 3.11.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the suite needs: sipp (sip-tester) is the SIP peer of the integration
# tests. python3-venv is added only where Python cannot make a venv (a bare Debian python3
# lacks ensurepip).
APT_PACKAGES := sip-tester

.PHONY: test lint typecheck unit apt-deps clean

test: apt-deps $(STAMP) lint typecheck unit

apt-deps:
	@wanted="$(APT_PACKAGES)"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || wanted="$$wanted python3-venv"; \
	missing=""; for p in $$wanted; do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml | apt-deps
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
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
