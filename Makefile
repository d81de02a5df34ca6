# The two commands a newcomer needs: `make run` and `make test`.
# Both create .venv and install the pinned requirements on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The pages (web/) need Node.js 20 and npm; npm ci installs web/package-lock.json.
NODE_STAMP := web/node_modules/.installed
ASSETS := chalicelib/assets/manifest.json
WEB_SOURCES := $(wildcard web/src/*) web/build.mjs

.PHONY: run test test-fast lint load package deploy admin bench clean assets

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## assets: build the sign-up page and the admin console from web/ into chalicelib/assets/
assets: $(ASSETS)

$(NODE_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

$(ASSETS): $(NODE_STAMP) $(WEB_SOURCES)
	cd web && npm run --silent build

## run: the whole app locally (local AWS + API + optional localstripe), until Ctrl-C
run: $(STAMP) assets
	$(PY) -m scripts.local

## lint: ruff on everything, mypy (strict on app.py and chalicelib/), as configured in pyproject.toml
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

## test: lint, then every test tier on every core; fails when a test fails or when none ran
test: $(STAMP) assets lint
	@start=$$(date +%s); $(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	echo "make test: $$(( $$(date +%s) - start )) s of tests"; exit $$status

## test-fast: the inner loop: the unit tier and the handler tests (no local stack, no browser)
test-fast: $(STAMP)
	$(PY) -m pytest tests/unit tests/functional/handlers $(PYTEST_ARGS)

## load: N concurrent onboardings against a fresh local stack (N=200; LOAD_ARGS to change)
load: $(STAMP)
	$(PY) -m scripts.bench.load --stripe $(LOAD_ARGS)

## bench: cold starts, import cost, package size, trigger latency, throughput, cost -> docs/benchmarks.md
bench: $(STAMP) assets
	$(PY) -m scripts.bench $(BENCH_ARGS)

## package: what a deploy submits, built offline: build/$(STAGE)/template.json and its zips
package: $(STAMP) assets
	@test -n "$(STAGE)" || (echo "usage: make package STAGE=dev" >&2; exit 2)
	$(PY) -m scripts.deploy.package --stage $(STAGE)

## deploy: ship a stage to AWS (needs AWS credentials), e.g. make deploy STAGE=dev DEPLOY_ARGS=--dry-run
deploy: $(STAMP) assets
	@test -n "$(STAGE)" || (echo "usage: make deploy STAGE=dev [DEPLOY_ARGS='--dry-run|--delete ...']" >&2; exit 2)
	$(PY) -m scripts.deploy --stage $(STAGE) $(DEPLOY_ARGS)

## admin: the admin CLI, e.g. make admin ARGS="list", ARGS="approve <tenant-id>", ARGS="--stage dev list"
admin: $(STAMP)
	$(PY) -m scripts.admin $(ARGS)

clean:
	rm -rf $(VENV) .local build .pytest_cache .hypothesis .mypy_cache .ruff_cache chalicelib/assets web/node_modules
