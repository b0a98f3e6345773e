# PtPlatform: `make run` starts the whole platform, `make test` runs every test.
# Both bootstrap a fresh machine: virtualenv, install, generated protobuf code.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto')
GEN_STAMP := build/.proto.stamp
DESCRIPTOR := build/ptplatform.pb
OPENAPI := build/openapi.json
APIDOCS_STAMP := build/apidocs/.stamp
CONSOLE_STAMP := build/console/.stamp
CHROMIUM := /usr/bin/chromium

.PHONY: run test proto openapi console console-screenshots docs-screenshot lint clean demo bench bench-breaker contracts-baseline k8s-envoy-config k8s-nats-config mutation client

run: $(STAMP) $(GEN_STAMP) openapi console
	$(BIN)/ptctl run

test: $(STAMP) $(GEN_STAMP) openapi console $(CHROMIUM)
	$(BIN)/lint-imports
	$(BIN)/pytest -q

proto: $(GEN_STAMP)

lint: $(STAMP) $(GEN_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

demo: $(STAMP) $(GEN_STAMP)
	$(BIN)/ptctl demo

# Throughput, latency, CPU per order and memory on a platform of its own (ptctl bench;
# --quick, --postgres): a table, and JSON + PNG in var/bench/.
bench: $(STAMP) $(GEN_STAMP) openapi console
	$(BIN)/ptctl bench

# The manager -> trainer circuit breaker, measured on a throw-away platform (docs/resilience.md).
bench-breaker: $(STAMP) $(GEN_STAMP)
	$(PY) -m bench.breaker

# Mutation testing (mutmut, [tool.mutmut] in pyproject.toml): not part of `make test`.
# Mutants are kept in mutants/ between runs; `mutmut browse` shows the survivors.
MUTATION_STAMP := $(VENV)/.mutation-installed
mutation: $(STAMP) $(GEN_STAMP) $(MUTATION_STAMP)
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

$(MUTATION_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --config-settings editable_mode=compat -e '.[tools,dev,mutation]'
	touch $@

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --config-settings editable_mode=compat -e '.[tools,dev]' -e clients/python
	touch $@

# Python + gRPC code into ./ptplatform (git-ignored) and the descriptor set Envoy's transcoder reads.
$(GEN_STAMP): $(PROTOS) ptctl/protogen.py $(STAMP)
	rm -rf ptplatform && mkdir -p build
	$(PY) -m ptctl.protogen protos . $(DESCRIPTOR)
	touch $@

# The typed Python client (clients/python, docs/client.md): its package with the generated
# stubs and their .pyi files, built offline into build/dist/ptplatform_client-*.whl.
client: $(STAMP) $(GEN_STAMP)
	$(PY) -m ptctl.client_package build/dist

# The OpenAPI document of the HTTP/JSON API and the /docs page's Swagger UI files, both
# served by the gateway (ptctl.openapi, ptctl.apidocs; docs/gateway.md).
openapi: $(OPENAPI) $(APIDOCS_STAMP)

$(OPENAPI): $(GEN_STAMP) ptctl/openapi.py ptctl/http_rules.py
	$(PY) -m ptctl.openapi $(DESCRIPTOR) $@

$(APIDOCS_STAMP): $(STAMP) ptctl/apidocs/__init__.py ptctl/apidocs/index.html
	$(PY) -m ptctl.apidocs build/apidocs
	touch $@

# The web console's files (clients/console), copied beside the descriptor set for the
# gateway to serve at /console/ (ptctl.console; docs/console.md).
console: $(CONSOLE_STAMP)

$(CONSOLE_STAMP): $(STAMP) ptctl/console.py $(wildcard clients/console/*)
	$(PY) -m ptctl.console build/console
	touch $@

# Headless Chromium (Debian's package) for the /docs test and the README's screenshot.
$(CHROMIUM):
	apt-get update && apt-get install -y --no-install-recommends chromium

# docs/images/api-docs.png: /docs of a throw-away platform, as headless Chromium renders it.
docs-screenshot: $(STAMP) $(GEN_STAMP) openapi $(CHROMIUM)
	$(PY) -m ptctl.apidocs.screenshot docs/images/api-docs.png

# docs/images/console-*.png: the consoles as the browser tests leave them (headless Chromium).
console-screenshots: $(STAMP) $(GEN_STAMP) openapi console $(CHROMIUM)
	PT_CONSOLE_SCREENSHOTS=docs/images $(BIN)/pytest -q -p no:randomly tests/e2e/test_console.py \
		-k "three_consoles or phone_sized"

# The committed contract baseline that `buf breaking` compares protos/ with: rewrite it
# only for a deliberate, announced breaking change (or after additive changes, to record them).
contracts-baseline: $(STAMP)
	$(BIN)/buf build protos --exclude-source-info -o contracts/ptplatform.binpb

# Envoy's ConfigMap for Kubernetes, rendered from envoy/envoy.yaml.j2.
k8s-envoy-config: $(STAMP)
	$(PY) -m ptctl.k8s

# The production overlay's NATS identities (nkey seeds, one Secret each), the auth.conf of
# public keys and permissions, and the TLS certificates: made once under the overlay's
# git-ignored secrets/nats/, kept after (docs/deploy.md).
k8s-nats-config: $(STAMP)
	$(PY) -m ptctl.nats_auth k8s

clean:
	rm -rf $(VENV) build ptplatform var .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
