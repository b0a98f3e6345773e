"""Render the one Envoy template (``envoy/envoy.yaml.j2``) from gateway settings.

Ports, replicas, rate limit and circuit-breaker thresholds are set here and only here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import jinja2

from ptctl import console, gateway_errors, strict_json
from ptctl.http_rules import PublicApi
from ptctl.public_routes import CLIENT_ROUTING_HEADERS, PublicRouteSettings, method_routes
from ptkit.config import ConfigError, Env
from ptkit.server import DEFAULT_MAX_METADATA_BYTES

TEMPLATE = Path(__file__).resolve().parent.parent / "envoy" / "envoy.yaml.j2"

PUBLIC_SERVICES = {
    "order": "ptplatform.order.v1.OrderService",
    "manager": "ptplatform.manager.v1.ManagerService",
    "trainer": "ptplatform.trainer.v1.TrainerService",
    "status": "ptplatform.status.v1.StatusService",
}


# The API reference, served by the gateway itself from files beside the descriptor set
# (``make openapi``: ptctl.openapi and ptctl.apidocs): URL path -> (file, content type).
API_DOCS = {
    "/openapi.json": ("openapi.json", "application/json"),
    "/docs": ("apidocs/index.html", "text/html; charset=utf-8"),
    "/docs/swagger-ui.css": ("apidocs/swagger-ui.css", "text/css; charset=utf-8"),
    "/docs/swagger-ui-bundle.js": (
        "apidocs/swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
    ),
    "/docs/favicon-32x32.png": ("apidocs/favicon-32x32.png", "image/png"),
}
PAGES_MAX_BYTES = 4 * 1024 * 1024
"""Envoy's direct_response bodies are capped at 4 KB by default; Swagger UI's bundle is 1.5 MB."""


def pages(descriptor: Path, listed: Path) -> list[dict[str, object]]:
    """The pages the gateway answers itself, from files in the descriptor set's folder:
    the API reference and the web console (its files listed from ``listed``'s folder,
    the descriptor set of this machine)."""
    folder = descriptor.resolve().parent
    api_docs: list[dict[str, object]] = [
        {"path": path, "file": str(folder / file), "content_type": content_type, "headers": {}}
        for path, (file, content_type) in API_DOCS.items()
    ]
    listed_console = listed.resolve().parent / console.FOLDER
    return api_docs + console.pages(listed_console, folder / console.FOLDER)


@dataclass(frozen=True)
class BreakerSettings:
    """Envoy circuit-breaker thresholds of one cluster."""

    max_connections: int = 64
    max_pending_requests: int = 64
    max_requests: int = 256
    max_retries: int = 8
    retry_budget_percent: float = 0.0
    """If set, retries in flight may be this share of the requests in flight (Envoy's
    retry budget, which replaces ``max_retries``), and at least ``min_retry_concurrency``."""
    min_retry_concurrency: int = 0


PUBLIC_BREAKER = BreakerSettings(retry_budget_percent=50.0, min_retry_concurrency=32)
"""The public clusters': a replica that dies holds about 1/N of the calls in flight, and
each of them must be able to retry on another (with 2 replicas, half the calls); the
budget still keeps retries from more than doubling an overload."""


@dataclass(frozen=True)
class OutlierSettings:
    consecutive_5xx: int = 5
    consecutive_gateway_failure: int = 3
    interval_s: float = 2.0
    base_ejection_s: float = 10.0


@dataclass(frozen=True)
class InternalRouteSettings:
    """manager_svc -> trainer_svc through Envoy's internal listener.

    Defaults: a cancel should answer in well under a second; 2 tries of 1 s within a
    2.5 s route timeout keep a consumer from waiting long on a sick trainer_svc, and the
    breaker (8 in flight, 4 queued) sheds load before the trainer drowns.
    """

    port: int = 8081
    host: str = "127.0.0.1"
    timeout_s: float = 2.5
    per_try_timeout_s: float = 1.0
    num_retries: int = 1
    breaker: BreakerSettings = BreakerSettings(
        max_connections=8, max_pending_requests=4, max_requests=8, max_retries=2
    )
    outlier: OutlierSettings = OutlierSettings(consecutive_5xx=5, consecutive_gateway_failure=3)
    fault_delay_s: float = 0.0
    fault_delay_percent: int = 0
    fault_port: int = 8082
    """With a fault delay set, trainer_internal's one host is a loopback listener on this
    port that delays TrainerService calls, so the slowness sits behind the breaker."""


@dataclass(frozen=True)
class RateLimitSettings:
    """Token buckets of the public listener: ``burst`` and ``per_second`` are the global
    ceiling; each verified subject (``client_*``) and each client address without a valid
    token (``address_*``) has a bucket of its own inside it."""

    burst: int = 1000
    per_second: int = 500
    client_burst: int = 100
    client_per_second: int = 50
    address_burst: int = 50
    address_per_second: int = 25
    max_clients: int = 10_000
    """Buckets kept (least recently used dropped first); a dropped bucket starts full."""

    @classmethod
    def unlimited(cls, rate: int = 1_000_000) -> RateLimitSettings:
        """Every bucket ``rate`` large: for a platform whose test floods on purpose."""
        return cls(rate, rate, rate, rate, rate, rate)


@dataclass(frozen=True)
class LimitSettings:
    """What one request may send. Over a limit: 413, 414 or 431, never 429 (ADR 0008)."""

    max_request_body_bytes: int = 32 * 1024
    max_url_bytes: int = 8 * 1024
    max_request_headers_kb: int = 16
    """URL and headers together (Envoy's ``max_request_headers_kb``; over it: 431)."""

    def __post_init__(self) -> None:
        # the REST path travels twice (:path and x-envoy-original-path), plus Envoy's headers
        forwarded = 2 * self.max_request_headers_kb * 1024 + 4096
        if forwarded > DEFAULT_MAX_METADATA_BYTES:
            raise ConfigError(
                f"PT_GATEWAY_MAX_REQUEST_HEADERS_KB={self.max_request_headers_kb} is more than"
                f" the services accept (the gateway forwards up to {forwarded} bytes of"
                f" metadata, ServiceHost takes {DEFAULT_MAX_METADATA_BYTES})"
            )


def max_request_headers_kb_allowed() -> int:
    return (DEFAULT_MAX_METADATA_BYTES - 4096) // 2048


@dataclass(frozen=True)
class EdgeSettings:
    """Envoy's edge-proxy guidance ("Configuring Envoy as an edge proxy"), sized for this
    gateway. See docs/gateway.md, "Edge limits", for why each value."""

    max_heap_bytes: int = 512 * 1024 * 1024
    """The overload manager's heap limit: Envoy shrinks its heap at 90 %, stops taking
    connections at 95 % and refuses new requests (503) at 98 %."""
    max_downstream_connections: int = 10_000
    """All listeners together (the global_downstream_max_connections monitor)."""
    connection_buffer_bytes: int = 32 * 1024
    """per_connection_buffer_limit_bytes of listeners and clusters."""
    max_concurrent_streams: int = 100
    """HTTP/2 streams per client connection."""
    initial_stream_window_bytes: int = 64 * 1024
    initial_connection_window_bytes: int = 1024 * 1024
    request_headers_timeout_s: float = 5.0
    """A client has this long to send its request headers."""
    request_timeout_s: float = 10.0
    """... and this long to send the whole request: a stream that never ends is reset."""
    stream_idle_timeout_s: float = 300.0
    idle_timeout_s: float = 3600.0
    """A client connection with no stream is closed after this."""
    xff_num_trusted_hops: int = 0
    """Proxies in front of the gateway whose X-Forwarded-For is trusted (0: the client's
    address is the TCP peer's; a load balancer that appends XFF is 1)."""
    max_grpc_message_bytes: int = 4 * 1024 * 1024
    """The largest gRPC request message Envoy buffers (the services' own limit); over it:
    RESOURCE_EXHAUSTED, and the request never reaches a service."""
    max_response_bytes: int = 4 * 1024 * 1024
    """The largest unary response the transcoder turns into JSON."""


@dataclass(frozen=True)
class RouteBudgets:
    """Circuit-breaker budgets per kind of route, so that one kind cannot starve another:
    long-lived watches and reflection streams have clusters of their own."""

    watch: BreakerSettings = BreakerSettings(
        max_connections=64, max_pending_requests=64, max_requests=1024, max_retries=0
    )
    reflection: BreakerSettings = BreakerSettings(
        max_connections=8, max_pending_requests=16, max_requests=32, max_retries=2
    )
    reflection_max_stream_s: float = 60.0
    """A reflection stream (bidirectional) lives at most this long."""


@dataclass(frozen=True)
class Cluster:
    name: str
    endpoints: list[tuple[str, int]]
    breaker: BreakerSettings = BreakerSettings()
    outlier: OutlierSettings = OutlierSettings()
    service: str = ""
    """The context whose hosts these are, if not ``name`` (the watch and reflection
    clusters): the name the hosts' TLS certificates show."""

    @property
    def context(self) -> str:
        return self.service or self.name


@dataclass(frozen=True)
class GatewaySettings:
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    admin_socket: str = ""
    """Envoy's admin: a Unix socket of mode 0600 (ptctl/envoy_admin.py). Empty: the
    launcher's ``<var>/envoy-admin.sock``."""
    stats_port: int = 0
    """A listener with Envoy's /ready and /stats/prometheus on gateway_host; 0: none."""
    route_timeout_s: float = 15.0
    """The budget of a safe call's tries together, and of a call a route names no method of."""
    routes: PublicRouteSettings = field(default_factory=PublicRouteSettings)
    """Per-method timeouts and retries (ptctl/public_routes.py)."""
    health_interval_s: float = 1.0
    rate_limit: RateLimitSettings = RateLimitSettings()
    limits: LimitSettings = LimitSettings()
    internal: InternalRouteSettings = field(default_factory=InternalRouteSettings)
    edge: EdgeSettings = EdgeSettings()
    budgets: RouteBudgets = RouteBudgets()

    @classmethod
    def from_env(cls, env: Env | None = None) -> GatewaySettings:
        env = env or Env()
        return cls(
            gateway_host=env.str("PT_GATEWAY_HOST", "127.0.0.1"),
            gateway_port=env.port("PT_GATEWAY_PORT", 8080),
            admin_socket=env.str("PT_GATEWAY_ADMIN_SOCKET", ""),
            rate_limit=RateLimitSettings(
                burst=env.int("PT_RATE_LIMIT_BURST", 1000, minimum=1),
                per_second=env.int("PT_RATE_LIMIT_PER_SECOND", 500, minimum=1),
                client_burst=env.int("PT_RATE_LIMIT_CLIENT_BURST", 100, minimum=1),
                client_per_second=env.int("PT_RATE_LIMIT_CLIENT_PER_SECOND", 50, minimum=1),
                address_burst=env.int("PT_RATE_LIMIT_ADDRESS_BURST", 50, minimum=1),
                address_per_second=env.int("PT_RATE_LIMIT_ADDRESS_PER_SECOND", 25, minimum=1),
            ),
            limits=LimitSettings(
                max_request_body_bytes=env.int(
                    "PT_GATEWAY_MAX_REQUEST_BODY_BYTES", 32 * 1024, minimum=1024
                ),
                max_url_bytes=env.int("PT_GATEWAY_MAX_URL_BYTES", 8 * 1024, minimum=256),
                max_request_headers_kb=env.int(
                    "PT_GATEWAY_MAX_REQUEST_HEADERS_KB",
                    16,
                    minimum=1,
                    maximum=max_request_headers_kb_allowed(),
                ),
            ),
            internal=InternalRouteSettings(
                port=env.port("PT_INTERNAL_PORT", 8081),
                timeout_s=env.float("PT_INTERNAL_TIMEOUT_SECONDS", 2.5, minimum=0.1),
                per_try_timeout_s=env.float(
                    "PT_INTERNAL_PER_TRY_TIMEOUT_SECONDS", 1.0, minimum=0.05
                ),
                num_retries=env.int("PT_INTERNAL_RETRIES", 1, maximum=10),
                breaker=BreakerSettings(
                    max_connections=env.int("PT_BREAKER_MAX_CONNECTIONS", 8, minimum=1),
                    max_pending_requests=env.int("PT_BREAKER_MAX_PENDING", 4, minimum=1),
                    max_requests=env.int("PT_BREAKER_MAX_REQUESTS", 8, minimum=1),
                    max_retries=env.int("PT_BREAKER_MAX_RETRIES", 2),
                ),
                fault_delay_s=env.float("PT_INTERNAL_FAULT_DELAY_SECONDS", 0.0),
                fault_delay_percent=env.int("PT_INTERNAL_FAULT_DELAY_PERCENT", 0, maximum=100),
                fault_port=env.port("PT_INTERNAL_FAULT_PORT", 8082),
            ),
            edge=EdgeSettings(
                max_heap_bytes=env.int(
                    "PT_GATEWAY_MAX_HEAP_BYTES", 512 * 1024 * 1024, minimum=64 * 1024 * 1024
                ),
                max_downstream_connections=env.int(
                    "PT_GATEWAY_MAX_CONNECTIONS", 10_000, minimum=16
                ),
                xff_num_trusted_hops=env.int("PT_GATEWAY_TRUSTED_HOPS", 0, maximum=10),
            ),
        )


# ---- TLS (PT_TLS; the files come from ptctl/tls.py) ------------------------------------
@dataclass(frozen=True)
class GatewayTls:
    """TLS at the gateway: the public listener serves ``cert_file``; the internal listener
    too, and admits only clients whose certificate names ``internal_client_name``; every
    service cluster speaks mutual TLS, presenting ``client_cert_file`` and checking the
    service's name (``<context>-svc``) under ``ca_file``."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    client_cert_file: Path
    client_key_file: Path
    internal_client_name: str = "manager-svc"

    def template_values(self, clusters: list[Cluster], fault: bool) -> dict[str, object]:
        """The template's ``tls``: the files, and the name each upstream cluster must show
        (trainer_internal's host is Envoy's own loopback fault listener under a fault)."""
        upstream = {c.name: f"{c.context}-svc" for c in clusters if c.context in PUBLIC_SERVICES}
        if not fault and "trainer" in upstream:
            upstream["trainer_internal"] = upstream["trainer"]
        files = {k: str(Path(v).resolve()) for k, v in asdict(self).items() if k.endswith("_file")}
        return files | {"internal_client_name": self.internal_client_name, "upstream": upstream}


# ---- end TLS --------------------------------------------------------------------------


@dataclass(frozen=True)
class JwtGateway:
    issuer: str
    audience: str
    jwks_file: Path
    """The users' keys: the public listener's provider."""
    service_jwks_file: Path | None = None
    """The keys the services trust: the internal listener's provider, which also wants
    the role ``service``. None: the users' keys."""


def method_not_allowed_routes(api: PublicApi) -> list[dict[str, object]]:
    """One route per REST path template: 405 with ``Allow`` (the methods its rules have),
    the most literal template first (``/v1/orders/{order_id}:cancel`` before
    ``/v1/orders/{order_id}``, whose variable segment would match it too)."""
    paths = api.paths()
    ordered = sorted(paths, key=lambda path: -len(strict_json.literal(path)))
    routes: list[dict[str, object]] = []
    for path in ordered:
        allow = ", ".join(sorted({rule.verb for rule in paths[path]}))
        routes.append(
            {
                "match": {"safe_regex": {"regex": paths[path][0].path_regex}},
                "direct_response": {
                    "status": 405,
                    "body": {"inline_string": gateway_errors.method_not_allowed(path, allow)},
                },
                "response_headers_to_add": [
                    {
                        "header": {"key": key, "value": value},
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }
                    for key, value in (("allow", allow), ("content-type", "application/json"))
                ],
            }
        )
    return routes


def rest_routes(api: PublicApi) -> list[dict[str, object]]:
    """The routes on REST paths, after the gRPC routes, in the order Envoy tries them.
    Add direct responses of the gateway's own (documents, pages) here."""
    return method_not_allowed_routes(api)


def render(
    settings: GatewaySettings,
    endpoints: dict[str, list[tuple[str, int]]],
    descriptor: Path,
    jwt: JwtGateway,
    cluster_type: str = "STATIC",
    api_descriptor: Path | None = None,
    tls: GatewayTls | None = None,
    dev_sign_in: tuple[str, int] | None = None,
) -> str:
    """The Envoy config for the services in ``endpoints`` (context -> replica addresses).

    ``cluster_type`` STATIC takes the addresses as IPs; STRICT_DNS resolves each name to
    every address behind it (a Kubernetes headless Service: one host per pod).
    ``descriptor`` is the path Envoy reads; the REST rules (routes, strict-input schema)
    are read here from ``api_descriptor`` (default: the same file), for a config rendered
    for another machine. ``tls``: TLS on the listeners, mutual TLS to the services.
    """
    services = [
        {"name": name, "grpc_service": PUBLIC_SERVICES[name]}
        for name in PUBLIC_SERVICES
        if name in endpoints
    ]
    clusters = [
        Cluster(name, endpoints[name], PUBLIC_BREAKER)
        for name in PUBLIC_SERVICES
        if name in endpoints
    ]
    clusters += meta_clusters(settings.budgets, endpoints, services[0]["name"])
    internal = None
    if "trainer" in endpoints:
        internal = asdict(settings.internal)
        trainer_hosts = endpoints["trainer"]
        if settings.internal.fault_delay_percent:
            trainer_hosts = [(settings.internal.host, settings.internal.fault_port)]
        clusters.append(
            Cluster(
                "trainer_internal",
                trainer_hosts,
                settings.internal.breaker,
                settings.internal.outlier,
            )
        )
    api = PublicApi.load(
        api_descriptor or descriptor, tuple(service["grpc_service"] for service in services)
    )
    limits = settings.limits
    template = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    ).get_template(TEMPLATE.name)
    return template.render(
        admin_socket=admin_socket(settings),
        stats_port=settings.stats_port,
        cluster_type=cluster_type,
        gateway_host=settings.gateway_host,
        gateway_port=settings.gateway_port,
        route_timeout_s=settings.route_timeout_s,
        health_interval_s=settings.health_interval_s,
        rate_limit=asdict(settings.rate_limit),
        limits=asdict(limits),
        local_replies=[
            {
                "status": reply.status,
                "body": reply.body(_limit_values(limits)),
                "any_caller": reply.any_caller,
                "path_regex": reply.path_regex,
            }
            for reply in gateway_errors.LOCAL_REPLIES
        ],
        grpc_local_replies=[
            {
                "status": r.status,
                "code": r.code,
                "message": r.message.format(**asdict(settings.edge)),
            }
            for r in gateway_errors.GRPC_LOCAL_REPLIES
        ],
        rest_routes=rest_routes(api),
        client_routing_headers=CLIENT_ROUTING_HEADERS,
        method_routes=method_routes(
            api,
            {service["grpc_service"]: service["name"] for service in services},
            settings.routes,
            settings.route_timeout_s,
            settings.edge.request_timeout_s,
        ),
        strict_json={
            "metadata_namespace": gateway_errors.METADATA_NAMESPACE,
            "source": strict_json.render_lua(
                api,
                strict_json.Limits(limits.max_request_body_bytes, limits.max_url_bytes),
            ),
        },
        services=services,
        edge=asdict(settings.edge)
        | {"connection_buffer_bytes": connection_buffer_bytes(settings.edge, limits)},
        budgets=asdict(settings.budgets),
        grpc_buffer_bytes=settings.edge.max_grpc_message_bytes + GRPC_FRAME_HEADER_BYTES,
        watch_cluster=WATCH_CLUSTER,
        jwt_payload_key=JWT_PAYLOAD_KEY,
        anonymous=ANONYMOUS,
        reflection_cluster=REFLECTION_CLUSTER,
        clusters=[asdict(c) for c in clusters],
        internal=internal,
        descriptor=str(descriptor.resolve()),
        pages=pages(descriptor, api_descriptor or descriptor),
        pages_max_bytes=PAGES_MAX_BYTES,
        console_prefix=console.PREFIX,
        dev_sign_in=None
        if dev_sign_in is None
        else {"path": console.DEV_SIGN_IN_PATH, "host": dev_sign_in[0], "port": dev_sign_in[1]},
        jwt=asdict(jwt) | {"jwks_file": str(jwt.jwks_file.resolve())},
        service_jwt=asdict(jwt)
        | {"jwks_file": str((jwt.service_jwks_file or jwt.jwks_file).resolve())},
        internal_method=INTERNAL_METHOD,
        tls=tls.template_values(clusters, bool(settings.internal.fault_delay_percent))
        if tls
        else None,
    )


GRPC_FRAME_HEADER_BYTES = 5
INTERNAL_METHOD = "/ptplatform.trainer.v1.TrainerService/CancelSchedule"
"""The one method the internal listener routes (manager_svc -> trainer_svc)."""
JWT_PAYLOAD_KEY = "jwt_payload"
"""Where jwt_identify puts the verified claims (dynamic metadata of jwt_authn)."""
ANONYMOUS = "-"
"""The rate limit's subject of a call without a valid token: its bucket is its address's."""
WATCH_CLUSTER = "status_watch"
REFLECTION_CLUSTER = "reflection"


def meta_clusters(
    budgets: RouteBudgets, endpoints: dict[str, list[tuple[str, int]]], first: str
) -> list[Cluster]:
    """Clusters of their own, on the same hosts, for the routes whose streams live long:
    notification watches (status_svc) and health and reflection (order_svc, or the first
    service), so neither can take the request slots of unary calls."""
    clusters = []
    if "status" in endpoints:
        clusters.append(
            Cluster(WATCH_CLUSTER, endpoints["status"], budgets.watch, service="status")
        )
    meta = "order" if "order" in endpoints else first
    clusters.append(Cluster(REFLECTION_CLUSTER, endpoints[meta], budgets.reflection, service=meta))
    return clusters


def connection_buffer_bytes(edge: EdgeSettings, limits: LimitSettings) -> int:
    """The listener's buffer limit: the edge value, or more if the body limit is higher
    (the strict-input filter reads a whole body into that buffer)."""
    return max(edge.connection_buffer_bytes, limits.max_request_body_bytes + 1024)


def admin_socket(settings: GatewaySettings) -> str:
    if not settings.admin_socket:
        raise ConfigError("GatewaySettings.admin_socket is not set: where is Envoy's admin?")
    return settings.admin_socket


def _limit_values(limits: LimitSettings) -> dict[str, int]:
    return {
        "max_request_body_bytes": limits.max_request_body_bytes,
        "max_request_headers_bytes": limits.max_request_headers_kb * 1024,
    }
