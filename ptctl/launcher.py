"""Start and stop the whole platform: nats-server, the services, Envoy.

``ptctl run`` uses it with the default ports; the end-to-end tests use it with free
random loopback ports and a temporary directory, and to stop and restart single
parts for fault tests.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ptctl import console
from ptctl.envoy import GatewaySettings, JwtGateway, render
from ptctl.envoy_admin import EnvoyAdmin, check_socket_path
from ptctl.keys import (
    PRIVATE_UMASK,
    ensure_platform_keys,
    open_private_log,
    private_directory,
    write_private,
)
from ptctl.nats_auth import (
    ADMIN,
    ensure_seeds,
    platform_consumers,
    provision_now,
    public_key,
    render_authorization,
    service_user,
    users_of,
)
from ptctl.nats_cluster import (
    CLUSTER_NAME,
    SYNC_INTERVAL,
    NatsNode,
    local_nodes,
    render_node_config,
    route_secret,
    servers_url,
    sync_interval,
)
from ptctl.replicas import ensure_databases, replica_database
from ptctl.tls import LocalCa, ensure_tls
from ptkit.auth import Role
from ptkit.config import ConfigError, Env
from ptkit.messaging import NatsIdentity, StreamSettings
from ptkit.runtime import consumer_settings, stream_settings
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, KeyFiles, mint_token

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR = ROOT / "build" / "ptplatform.pb"
CONTEXTS = ("order", "manager", "trainer", "status")
DEFAULT_SERVICE_PORTS = {"order": 50051, "manager": 50052, "trainer": 50053, "status": 50054}
DEFAULT_METRICS_PORTS = {"order": 9101, "manager": 9102, "trainer": 9103, "status": 9104}
DEFAULT_NATS_PORT = 14222
DEFAULT_NATS_CLUSTER_PORT = 16222
PROVISION_TRY_S = 2.0
"""How long one provisioning attempt waits for JetStream: a cluster still electing its
leader answers nothing, and the launcher tries again."""
DEFAULT_DEV_SIGN_IN_PORT = 8089
PLATFORM_FILE = "platform.json"
"""What a started platform runs, under its var dir, for ``ptctl status`` (removed at stop)."""


def available_contexts() -> list[str]:
    """The contexts whose service package exists in this checkout."""
    return [c for c in CONTEXTS if importlib.util.find_spec(f"{c}_svc") is not None]


_TEST_PORTS = range(20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback port for a server we are about to start.

    Drawn below the kernel's ephemeral range (32768+), so that no outgoing connection
    takes it as its local port before our server binds it, and never handed out twice
    by this process.
    """
    for _ in range(500):
        port = random.choice(_TEST_PORTS)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise StartupError("no free loopback port found")


def binary(name: str) -> str:
    """A binary installed into this virtualenv (nats-server, envoy, grpcurl)."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found; run 'make' to install the project")
    return found


class StartupError(RuntimeError):
    """A part of the platform did not become healthy in time."""


PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a child gets when the thread that forked it exits."""
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
_SIGKILL = int(signal.SIGKILL)


def _die_with_the_launcher(launcher: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets SIGKILL when the launcher dies (even by SIGKILL),
    and exits at once if the launcher died before the signal was armed."""

    def arm() -> None:
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, _SIGKILL)
        if os.getppid() != launcher:
            os._exit(1)

    return arm


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (a child and whatever it started)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class ManagedProcess:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL.

    The child leads its own process group (a Ctrl-C in the terminal reaches the launcher
    only, which stops the children in order) and dies with the launcher: Linux's
    parent-death signal SIGKILLs it when the launcher dies, however it dies.

    The parent-death signal fires when the *thread* that forked the child exits, not the
    process. So start children only from threads that live as long as the children: the
    main thread, or the supervisor's thread (ptctl/supervisor.py), which stays until the
    platform has stopped. A child started from a short-lived worker thread would be
    killed as soon as that thread ends.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_file: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        """time.monotonic() of the last start."""

    def start(self) -> None:
        with open_private_log(self.log_file) as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
                preexec_fn=_die_with_the_launcher(os.getpid()),
                umask=PRIVATE_UMASK,  # its databases, stores and logs: the owner's only
            )
        self.started_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def exit_status(self) -> int | None:
        """The exit code of a child that exited; minus the signal number if a signal
        killed it; None while it runs (or was never started)."""
        return self.process.poll() if self.process is not None else None

    def stop(self, timeout: float = 15.0) -> None:
        self.terminate()
        self.reap(timeout)

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM) without waiting for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def reap(self, timeout: float = 15.0) -> None:
        """Wait for a terminated process to exit; SIGKILL its group after ``timeout``
        seconds. Whatever it left in its group is killed too."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.process.pid)
            self.process.wait()
        kill_group(self.process.pid)
        self.process = None

    def kill(self) -> None:
        """Die at once, as a crash would (its whole process group)."""
        if self.process is not None and self.process.poll() is None:
            kill_group(self.process.pid)
            self.process.wait()
        self.process = None

    def hurry(self) -> None:
        """SIGKILL the group of a child that still runs, without waiting or reaping: safe
        from a signal handler while another frame waits for the child."""
        process = self.process
        if process is not None and process.returncode is None:
            kill_group(process.pid)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def wait_ready(
    process: ManagedProcess,
    check: Callable[[], bool],
    timeout: float,
    cancelled: threading.Event | None = None,
) -> None:
    """Wait until ``check()`` holds; StartupError if the process exits, time runs out, or
    ``cancelled`` is set (a signal during start-up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cancelled is not None and cancelled.is_set():
            raise StartupError(f"start-up interrupted while waiting for {process.name}")
        if check():
            return
        if not process.running:
            raise StartupError(f"{process.name} exited during start-up:\n{process.log_tail()}")
        time.sleep(0.05)
    raise StartupError(f"{process.name} not healthy after {timeout:.0f}s:\n{process.log_tail()}")


def grpc_serving(address: str, credentials: grpc.ChannelCredentials | None = None) -> bool:
    try:
        with (
            grpc.secure_channel(address, credentials)
            if credentials
            else grpc.insecure_channel(address)
        ) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=0.5
            )
            return response.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _ensure_free(port: int, who: str, host: str = "127.0.0.1") -> None:
    """Refuse to start on a port something else answers on (it would pass our health checks)."""
    if tcp_open(port, host):
        raise StartupError(
            f"port {port} for {who} is already in use; stop what runs there or move the port"
        )


@dataclass(frozen=True)
class TrustedIssuer:
    """Whose tokens the platform accepts. Without a JWKS file: the development key pair
    under ``<var>/jwt`` that ``ptctl token`` signs with. Production names its identity
    provider's issuer, audience and JWKS: Envoy's jwt_authn trusts that JWKS, the services
    trust it plus the platform's own service key (manager_svc's calls to trainer_svc)."""

    issuer: str = DEV_ISSUER
    audience: str = DEV_AUDIENCE
    jwks_file: Path | None = None

    @classmethod
    def from_env(cls, env: Env | None = None) -> TrustedIssuer:
        """Read ``PT_JWT_ISSUER``, ``PT_JWT_AUDIENCE`` and ``PT_JWT_JWKS_FILE``."""
        env = env or Env()
        jwks = env.str("PT_JWT_JWKS_FILE", "")
        if jwks and not Path(jwks).is_file():
            raise ConfigError(f"PT_JWT_JWKS_FILE={jwks!r} does not exist")
        return cls(
            issuer=env.str("PT_JWT_ISSUER", DEV_ISSUER),
            audience=env.str("PT_JWT_AUDIENCE", DEV_AUDIENCE),
            jwks_file=Path(jwks) if jwks else None,
        )


@dataclass
class PlatformConfig:
    var_dir: Path
    contexts: list[str] = field(default_factory=available_contexts)
    replicas: dict[str, int] = field(default_factory=dict)
    nats_port: int = DEFAULT_NATS_PORT
    nats_cluster: int = 1
    """nats-servers run with routes between them (1 or 3); the stream has as many replicas."""
    nats_cluster_port: int = DEFAULT_NATS_CLUSTER_PORT
    """The first server's route port (the others: the next ports), in a cluster."""
    nats_sync: str = SYNC_INTERVAL
    """Every nats-server's ``sync_interval`` (``PT_NATS_SYNC_INTERVAL``)."""
    nats_nodes: list[NatsNode] = field(default_factory=list)
    """The servers, when not the ``nats_cluster`` on loopback from ``nats_port`` up: each on
    its own address (the partition test runs each in a network namespace of its own)."""
    service_ports: dict[str, list[int]] = field(default_factory=dict)
    metrics_ports: dict[str, list[int]] = field(default_factory=dict)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    service_env: dict[str, str] = field(default_factory=dict)
    database_urls: dict[str, list[str]] = field(default_factory=dict)
    service_modules: dict[str, str] = field(default_factory=dict)
    """The module ``python -m`` runs for a context instead of ``<context>_svc`` (a test's
    fault-injecting wrapper)."""
    jwt: TrustedIssuer = field(default_factory=TrustedIssuer)
    tls: bool = False
    """PT_TLS: TLS on the gateway, mutual TLS to the services and on the internal
    listener, with certificates from a local CA under ``<var>/tls`` (ptctl/tls.py)."""
    dev_sign_in: bool = False
    """PT_DEV_SIGN_IN: the web console's development sign-in (ptctl/dev_sign_in.py) at
    ``/console/dev/sign-in``; ``make run``'s default, never with a production issuer."""
    dev_sign_in_port: int = DEFAULT_DEV_SIGN_IN_PORT
    create_databases: list[str] = field(default_factory=list)
    """PostgreSQL databases the start creates if missing (``ptplatform_<ctx>`` on
    ``PT_DATABASE_SERVER_URL``, for a replicated context)."""

    def __post_init__(self) -> None:
        local_nodes(self.nats_cluster, self.nats_port, self.nats_cluster_port)  # a valid size
        if self.dev_sign_in and self.jwt.jwks_file is not None:
            raise ConfigError(
                "PT_DEV_SIGN_IN mints development tokens, which a platform trusting"
                " PT_JWT_JWKS_FILE refuses: switch one of them off"
            )

    @classmethod
    def defaults(
        cls, var_dir: Path, env: Env | None = None, replicas: dict[str, int] | None = None
    ) -> PlatformConfig:
        """The fixed ports of ``make run``; each can be moved by its environment variable.
        A context whose ``PT_<CTX>_DATABASE_URL`` is set uses that database; the others get
        SQLite under ``var_dir``. A context with several ``replicas`` needs PostgreSQL
        (ptctl/replicas.py); its replica 0 has the context's ports, the others free ones."""
        env = env or Env()
        jwt = TrustedIssuer.from_env(env)
        config = cls(
            var_dir=var_dir,
            gateway=GatewaySettings.from_env(env),
            jwt=jwt,
            dev_sign_in=env.bool("PT_DEV_SIGN_IN", jwt.jwks_file is None),
            dev_sign_in_port=env.port("PT_DEV_SIGN_IN_PORT", DEFAULT_DEV_SIGN_IN_PORT),
        )
        config.nats_port = env.port("PT_NATS_PORT", DEFAULT_NATS_PORT)
        config.nats_cluster_port = env.port("PT_NATS_CLUSTER_PORT", DEFAULT_NATS_CLUSTER_PORT)
        config.nats_sync = sync_interval(env)
        config.tls = env.bool("PT_TLS", False)
        config.replicas = dict(replicas or {})
        for c in config.contexts:
            more = config.replicas.get(c, 1) - 1
            config.service_ports[c] = [
                env.port(f"PT_{c.upper()}_PORT", DEFAULT_SERVICE_PORTS[c]),
                *(free_port() for _ in range(more)),
            ]
            config.metrics_ports[c] = [
                env.port(f"PT_{c.upper()}_METRICS_PORT", DEFAULT_METRICS_PORTS[c]),
                *(free_port() for _ in range(more)),
            ]
        for context in config.contexts:
            name = f"PT_{context.upper()}_DATABASE_URL"
            count = config.replicas.get(context, 1)
            if count > 1:
                url, derived = replica_database(env, context, count)
                config.database_urls[context] = [url] * count
                if derived:
                    config.create_databases.append(url)
            elif env.str(name, ""):
                config.database_urls[context] = [env.database_url(name, "")]
        return config

    @classmethod
    def ephemeral(
        cls, var_dir: Path, contexts: Iterable[str] | None = None, **kwargs: object
    ) -> PlatformConfig:
        """Free random loopback ports everywhere: for tests."""
        config = cls(var_dir=var_dir, **kwargs)  # type: ignore[arg-type]
        if contexts is not None:
            config.contexts = list(contexts)
        config.nats_port = free_port()
        if config.nats_cluster > 1 and not config.nats_nodes:
            config.nats_nodes = [
                replace(node, port=free_port(), cluster_port=free_port())
                for node in config.servers()
            ]
            config.nats_port = config.nats_nodes[0].port
        config.dev_sign_in_port = free_port()
        for context in config.contexts:
            count = config.replicas.get(context, 1)
            config.service_ports[context] = [free_port() for _ in range(count)]
            config.metrics_ports[context] = [free_port() for _ in range(count)]
        gateway = config.gateway
        config.gateway = replace(
            gateway,
            gateway_host="127.0.0.1",
            gateway_port=free_port(),
            admin_socket="",
            stats_port=free_port() if gateway.stats_port else 0,
            internal=replace(gateway.internal, port=free_port(), fault_port=free_port()),
        )
        return config

    def servers(self) -> list[NatsNode]:
        """The nats-servers of the bus."""
        return self.nats_nodes or local_nodes(
            self.nats_cluster, self.nats_port, self.nats_cluster_port
        )


class Platform:
    """The running platform; a context manager that always stops what it started."""

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.var_dir = private_directory(config.var_dir.resolve())
        platform_keys = ensure_platform_keys(self.var_dir / "jwt")
        self.keys: KeyFiles = platform_keys.users
        self.service_keys: KeyFiles = platform_keys.service
        self._services_jwks = platform_keys.services_jwks
        self.nats_seeds = ensure_seeds(self.var_dir / "nats-keys", users_of(CONTEXTS))
        self.tls: LocalCa | None = (
            ensure_tls(self.var_dir / "tls", config.contexts) if config.tls else None
        )
        self.nats_servers = config.servers()
        self.nats_nodes = [self._nats_process(node) for node in self.nats_servers]
        self.services: dict[str, list[ManagedProcess]] = {
            context: [
                self._service_process(context, replica)
                for replica in range(len(config.service_ports[context]))
            ]
            for context in config.contexts
        }
        self.dev_sign_in: ManagedProcess | None = (
            self._dev_sign_in_process() if config.dev_sign_in else None
        )
        self.supervised = False
        """A supervisor restarts what exits (``ptctl run`` only); said in platform.json."""
        self.cancelled = threading.Event()
        """Set (by a signal handler) to abandon a start-up in progress: its waits fail."""
        self.envoy_config = self.var_dir / "envoy.yaml"
        self.envoy = ManagedProcess(
            "envoy",
            [
                binary("envoy"),
                "-c",
                str(self.envoy_config),
                "--disable-hot-restart",
                "--log-level",
                "warning",
                "--drain-time-s",
                "1",
                # the access log (stdout) reaches envoy.log within 0.2 s, not Envoy's 10 s
                "--file-flush-interval-msec",
                "200",
            ],
            dict(os.environ),
            self.var_dir / "log" / "envoy.log",
        )

    # -- addresses ---------------------------------------------------------------------
    @property
    def gateway_address(self) -> str:
        return f"127.0.0.1:{self.config.gateway.gateway_port}"

    @property
    def gateway_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.gateway_address}"

    @property
    def admin_socket(self) -> Path:
        """Envoy's admin (mode 0600): the configured path, or ``<var>/envoy-admin.sock``."""
        configured = self.config.gateway.admin_socket
        return check_socket_path(
            Path(configured) if configured else self.var_dir / "envoy-admin.sock"
        )

    @property
    def admin(self) -> EnvoyAdmin:
        return EnvoyAdmin(self.admin_socket)

    @property
    def nats_url(self) -> str:
        """``PT_NATS_URL``: every server's URL, comma-separated."""
        return servers_url(self.nats_servers)

    @property
    def streams(self) -> StreamSettings:
        """The stream settings: as many replicas as there are servers, unless
        ``PT_STREAM_REPLICAS`` says otherwise."""
        replicas = {"PT_STREAM_REPLICAS": str(len(self.nats_servers))}
        return stream_settings(Env({**replicas, **os.environ, **self.config.service_env}))

    @property
    def nats_admin(self) -> NatsIdentity:
        """The identity that provisions the streams and that ptctl's commands use."""
        return NatsIdentity(seed_file=self.nats_seeds[ADMIN])

    def service_address(self, context: str, replica: int = 0) -> str:
        return f"127.0.0.1:{self.config.service_ports[context][replica]}"

    def token(self, role: Role | str, subject: str, ttl_seconds: int = 3600) -> str:
        """A token signed with the development key, for the configured issuer and audience."""
        trusted = self.config.jwt
        return mint_token(
            self.keys, Role(role), subject, ttl_seconds, trusted.issuer, trusted.audience
        )

    @property
    def users_trust(self) -> Path:
        """The users' keys (the identity provider's JWKS, or the development key): what
        the public listener and the services trust for the user roles."""
        return self.config.jwt.jwks_file or self.keys.jwks

    @property
    def services_trust(self) -> Path:
        """The service JWKS: the public key of the platform's service key pair, which
        manager_svc signs its calls to trainer_svc with. The services trust it for the
        service role only; the public listener never trusts it."""
        return self._services_jwks

    # -- processes ---------------------------------------------------------------------
    def _nats_process(self, node: NatsNode) -> ManagedProcess:
        name = (
            "nats-server"
            if len(self.nats_servers) == 1
            else node.name.replace(CLUSTER_NAME, "nats-server", 1)
        )
        return ManagedProcess(
            name,
            [*node.command_prefix, binary("nats-server"), "-c", str(self._nats_config(node))],
            dict(os.environ),
            self.var_dir / "log" / f"{name}.log",
        )

    def _nats_config(self, node: NatsNode) -> Path:
        if len(self.nats_servers) == 1:
            return self.var_dir / "nats.conf"
        return self.var_dir / f"{node.name}.conf"

    def _service_process(self, context: str, replica: int) -> ManagedProcess:
        prefix = f"PT_{context.upper()}"
        env = {
            **os.environ,
            "PT_VAR_DIR": str(self.var_dir),
            "PT_NATS_URL": self.nats_url,
            "PT_STREAM_REPLICAS": str(self.streams.replicas),
            "PT_NATS_NKEY_SEED_FILE": str(self.nats_seeds[service_user(context)]),
            "PT_JWT_PUBLIC_KEY_FILE": str(self.users_trust),
            "PT_JWT_SERVICE_KEY_FILE": str(self.services_trust),
            "PT_JWT_ISSUER": self.config.jwt.issuer,
            "PT_JWT_AUDIENCE": self.config.jwt.audience,
            "PT_SIGNING_KEY_FILE": str(self.service_keys.private_key),
            "PT_TRAINER_ADDRESS": f"127.0.0.1:{self.config.gateway.internal.port}",
            f"{prefix}_PORT": str(self.config.service_ports[context][replica]),
            f"{prefix}_METRICS_PORT": str(
                self.config.metrics_ports.get(context, [0] * (replica + 1))[replica]
            ),
            **(self.tls.service_env(context) if self.tls else {}),
            **self.config.service_env,
        }
        urls = self.config.database_urls.get(context)
        env[f"{prefix}_DATABASE_URL"] = (
            urls[replica] if urls else f"sqlite:///{self.var_dir / f'{context}_svc.db'}"
        )
        name = f"{context}_svc" + (f"-{replica}" if replica else "")
        return ManagedProcess(
            name,
            [sys.executable, "-m", self.config.service_modules.get(context, f"{context}_svc")],
            env,
            self.var_dir / "log" / f"{name}.log",
        )

    def _dev_sign_in_process(self) -> ManagedProcess:
        trusted = self.config.jwt
        return ManagedProcess(
            "dev-sign-in",
            [
                sys.executable,
                "-m",
                "ptctl.dev_sign_in",
                "--port",
                str(self.config.dev_sign_in_port),
                "--keys",
                str(self.keys.directory),
                "--issuer",
                trusted.issuer,
                "--audience",
                trusted.audience,
            ],
            dict(os.environ),
            self.var_dir / "log" / "dev-sign-in.log",
        )

    def start(self, timeout: float = 60.0) -> Platform:
        try:
            self._create_databases()
            self.start_nats(timeout)
            for context in self.services:
                self.start_service(context, wait=False)
            if self.dev_sign_in:
                _ensure_free(self.config.dev_sign_in_port, self.dev_sign_in.name)
                self.dev_sign_in.start()
            for context in self.services:
                self.wait_service(context, timeout)
            if self.dev_sign_in:
                port = self.config.dev_sign_in_port
                self._wait(self.dev_sign_in, lambda: tcp_open(port), timeout)
            self.start_envoy(timeout)
            self.write_manifest()
        except BaseException:
            self.stop()
            raise
        return self

    def _create_databases(self) -> None:
        if not self.config.create_databases:
            return
        import asyncpg

        try:
            ensure_databases(self.config.create_databases)
        except (OSError, asyncpg.PostgresError) as error:
            raise StartupError(f"could not create the replicas' databases: {error!r}") from error

    @property
    def platform_file(self) -> Path:
        return self.var_dir / PLATFORM_FILE

    def write_manifest(self) -> None:
        """(Re)write ``<var>/platform.json``: at start, and after the supervisor restarted
        a child (its pid changed)."""
        write_private(self.platform_file, json.dumps(self.manifest(), indent=2).encode())

    # -- every child, for the supervisor -------------------------------------------------
    def processes(self) -> list[ManagedProcess]:
        """Every child the platform runs: NATS, the service replicas, the development
        sign-in, Envoy (the order they start in)."""
        services = [p for processes in self.services.values() for p in processes]
        sign_in = [self.dev_sign_in] if self.dev_sign_in else []
        return [*self._nats_processes(), *services, *sign_in, self.envoy]

    def _nats_processes(self) -> list[ManagedProcess]:
        """The nats-server(s): where processes() and ready() reach them."""
        return self.nats_nodes

    def _nats_server_of(self, process: ManagedProcess) -> NatsNode:
        return self.nats_servers[self.nats_nodes.index(process)]

    def _nats_ready(self, process: ManagedProcess) -> bool:
        """One of :meth:`_nats_processes` accepts connections."""
        node = self._nats_server_of(process)
        return tcp_open(node.port, node.host)

    def launch(self, process: ManagedProcess) -> None:
        """Start one of :meth:`processes` again, on its own ports, without waiting; a
        StartupError if something else took its port."""
        replica = self._replica_of(process)
        if replica is not None:
            context, index = replica
            _ensure_free(self.config.service_ports[context][index], process.name)
        elif process is self.envoy:
            _ensure_free(self.config.gateway.gateway_port, process.name)
            self.admin_socket.unlink(missing_ok=True)  # left by the Envoy that died
        elif process in self.nats_nodes:
            node = self._nats_server_of(process)
            _ensure_free(node.port, process.name, node.host)
        process.start()

    def ready(self, process: ManagedProcess) -> bool:
        """The start-up check of one of :meth:`processes`, taken once: a replica's gRPC
        health SERVING, Envoy's admin live, a listening port for the others."""
        replica = self._replica_of(process)
        if replica is not None:
            return grpc_serving(self.service_address(*replica), self.client_credentials)
        if process is self.envoy:
            return self.envoy_live()
        if process is self.dev_sign_in:
            return tcp_open(self.config.dev_sign_in_port)
        if process in self._nats_processes():
            return self._nats_ready(process)
        raise ValueError(f"{process.name} is not one of this platform's processes")

    def _replica_of(self, process: ManagedProcess) -> tuple[str, int] | None:
        for context, processes in self.services.items():
            for index, candidate in enumerate(processes):
                if candidate is process:
                    return context, index
        return None

    def hurry(self) -> None:
        """SIGKILL every child's process group now (a second signal while stopping);
        the stop in progress then reaps them quickly."""
        for process in self.processes():
            process.hurry()

    def manifest(self) -> dict[str, object]:
        """What runs and how to reach it: ``<var>/platform.json``, which ``ptctl status``
        reads (ptctl/status.py). Paths only, never a key or a token."""
        streams = self.streams
        return {
            "pid": os.getpid(),
            "supervised": self.supervised,
            "children": {process.name: process.pid for process in self.processes()},
            "gateway": {
                "address": self.gateway_address,
                "url": self.gateway_url,
                "admin_socket": str(self.admin_socket),
            },
            "nats": {
                "url": self.nats_url,
                "event_stream": streams.name,
                "admin_seed_file": str(self.nats_admin.seed_file),
            },
            "tls": (
                {
                    "ca_file": str(self.tls.ca_file),
                    "client_cert_file": str(self.tls.pair("ptctl").cert),
                    "client_key_file": str(self.tls.pair("ptctl").key),
                }
                if self.tls
                else None
            ),
            "services": {
                context: [
                    {
                        "name": process.name,
                        "pid": process.pid,
                        "address": self.service_address(context, replica),
                        "metrics_port": self.config.metrics_ports.get(
                            context, [0] * len(processes)
                        )[replica],
                    }
                    for replica, process in enumerate(processes)
                ]
                for context, processes in self.services.items()
            },
        }

    def start_nats(self, timeout: float = 30.0) -> None:
        """Start every nats-server, then provision the streams and consumers (once the
        servers have a quorum: provisioning is retried until then)."""
        for node in self.nats_servers:
            self.start_nats_node(node.name, wait=False)
        for node, process in zip(self.nats_servers, self.nats_nodes, strict=True):
            self._wait(process, lambda n=node: tcp_open(n.port, n.host), timeout)
        env = Env({**os.environ, **self.config.service_env})
        consumers = platform_consumers(CONTEXTS, self.streams, consumer_settings(env))
        deadline = time.monotonic() + timeout
        while True:
            try:
                provision_now(
                    self.nats_url, self.nats_admin, self.streams, consumers, PROVISION_TRY_S
                )
                return
            except Exception as error:  # no quorum yet: JetStream does not answer in time
                if time.monotonic() > deadline:
                    raise StartupError(f"cannot provision the streams: {error!r}") from error
                log.info("waiting for JetStream to provision", extra={"error": repr(error)})
                time.sleep(0.5)

    def start_nats_node(self, name: str, wait: bool = True, timeout: float = 30.0) -> None:
        """Start one nats-server (its configuration written afresh)."""
        node, process = self._nats_node(name)
        _ensure_free(node.port, process.name, node.host)
        public_keys = {user: public_key(seed) for user, seed in self.nats_seeds.items()}
        authorization = render_authorization(public_keys, self.streams.name)
        store = self.var_dir / ("nats" if len(self.nats_servers) == 1 else f"nats-{node.name}")
        secret = route_secret(self.var_dir / "nats-keys") if node.cluster_port else ""
        config = render_node_config(
            node, self.nats_servers, store, authorization, secret, self.config.nats_sync
        )
        write_private(self._nats_config(node), config.encode())
        process.start()
        if wait:
            self._wait(process, lambda: tcp_open(node.port, node.host), timeout)

    def _nats_node(self, name: str) -> tuple[NatsNode, ManagedProcess]:
        for node, process in zip(self.nats_servers, self.nats_nodes, strict=True):
            if name in (node.name, process.name):
                return node, process
        raise KeyError(f"no nats-server {name!r}")

    def nats_process(self, name: str) -> ManagedProcess:
        """The process of the nats-server ``name`` (its server name or its process name)."""
        return self._nats_node(name)[1]

    def stop_nats(self) -> None:
        for process in self.nats_nodes:
            process.terminate()
        for process in self.nats_nodes:
            process.reap()

    def start_service(self, context: str, wait: bool = True, timeout: float = 30.0) -> None:
        for port, process in zip(
            self.config.service_ports[context], self.services[context], strict=True
        ):
            _ensure_free(port, process.name)
            process.start()
        if wait:
            self.wait_service(context, timeout)

    def run_service_from(self, context: str, module: str | None) -> None:
        """Start the (stopped) context from ``module`` from now on; None: its own."""
        if module is None:
            self.config.service_modules.pop(context, None)
        else:
            self.config.service_modules[context] = module
        self.services[context] = [
            self._service_process(context, replica)
            for replica in range(len(self.config.service_ports[context]))
        ]

    def wait_service(self, context: str, timeout: float = 30.0) -> None:
        for replica, process in enumerate(self.services[context]):
            address = self.service_address(context, replica)
            self._wait(process, lambda a=address: grpc_serving(a, self.client_credentials), timeout)

    @property
    def client_credentials(self) -> grpc.ChannelCredentials | None:
        """What the launcher calls a service with: its client certificate under TLS."""
        return self.tls.client_credentials() if self.tls else None

    def stop_service(self, context: str) -> None:
        for process in self.services[context]:
            process.stop()

    def render_envoy_config(
        self,
        endpoints: dict[str, list[tuple[str, int]]] | None = None,
        gateway: GatewaySettings | None = None,
    ) -> str:
        """Envoy's configuration for this platform's services, ports and token issuer.

        ``endpoints`` and ``gateway`` replace the services' addresses and the gateway
        settings: the same gateway in front of other upstreams (``ptctl bench``'s no-op
        server, on ports of its own)."""
        if endpoints is None:
            endpoints = {
                context: [("127.0.0.1", port) for port in ports]
                for context, ports in self.config.service_ports.items()
                if context in self.services
            }
        trusted = self.config.jwt
        jwt = JwtGateway(
            trusted.issuer,
            trusted.audience,
            self.users_trust,
            service_jwks_file=self.services_trust,
        )
        tls = self.tls.gateway() if self.tls else None
        if gateway is None:
            gateway = replace(self.config.gateway, admin_socket=str(self.admin_socket))
        dev_sign_in = ("127.0.0.1", self.config.dev_sign_in_port) if self.dev_sign_in else None
        return render(gateway, endpoints, DESCRIPTOR, jwt, tls=tls, dev_sign_in=dev_sign_in)

    def start_envoy(self, timeout: float = 30.0) -> None:
        write_private(self.envoy_config, self.render_envoy_config().encode())
        self.launch(self.envoy)
        self._wait(self.envoy, self.gateway_healthy, timeout)

    def gateway_healthy(self) -> bool:
        """Envoy is live and every upstream host passed its health check."""
        return self.admin.healthy()

    def envoy_live(self) -> bool:
        """Envoy's admin answers ``/ready`` (its listeners are up)."""
        try:
            self.admin.get("/ready", timeout=0.5)
        except OSError:
            return False
        return True

    def _wait(self, process: ManagedProcess, check: Callable[[], bool], timeout: float) -> None:
        wait_ready(process, check, timeout, self.cancelled)

    def stop(self) -> None:
        """Stop the services together (they drain in parallel), then Envoy, then NATS."""
        self.platform_file.unlink(missing_ok=True)
        services = [p for processes in self.services.values() for p in processes]
        if self.dev_sign_in:
            services.append(self.dev_sign_in)
        for process in services:
            process.terminate()
        for process in services:
            process.reap()
        self.envoy.stop()
        self.stop_nats()

    def __enter__(self) -> Platform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> list[tuple[str, str]]:
        rows = [
            ("gateway (gRPC + HTTP/JSON)", self.gateway_address),
            ("envoy admin (socket, mode 0600)", str(self.admin_socket)),
        ]
        rows.append(("web console", self.gateway_url + console.PREFIX))
        if self.dev_sign_in:
            rows.append(("development sign-in", self.gateway_url + console.DEV_SIGN_IN_PATH))
        for node, process in zip(self.nats_servers, self.nats_nodes, strict=True):
            rows.append((f"{process.name} (JetStream)", node.url))
        for context, processes in self.services.items():
            for replica in range(len(processes)):
                rows.append((processes[replica].name, self.service_address(context, replica)))
        if self.tls:
            rows.append(("TLS: the CA clients trust", str(self.tls.ca_file)))
        rows.append(("logs", str(self.var_dir / "log")))
        return rows
