"""ptctl: developer and operator tooling, never imported by a service.

The launcher behind ``make run`` and the tests, Envoy and Kubernetes rendering, protobuf
generation, development keys, the demo and the benchmark. Its dependencies (Envoy and
nats-server binaries, grpcio-tools, jinja2) are the ``tools`` extra.
"""
