"""Who may do what on the bus: an nkey per service and one for the admin, and the
nats-server ``authorization`` block that gives each the least it needs.

A service publishes only its own context's events (``pt.<context>.>``, none for
status_svc), reads only through its own durable consumers (``<context>_svc`` on the
event and redrive streams), writes only its own dead letters and failure-ledger keys,
and receives replies only on ``_INBOX.<context>_svc.>``. It may not subscribe to any
event subject, nor create, update or delete a stream: the **admin** identity (the
launcher, ptctl, the ``nats-provision`` Job in Kubernetes) provisions the streams.

Seeds are made locally (``<var>/nats-keys/<user>.nk``, mode 0600) and never committed;
nats-server gets only the public keys. ``python -m ptctl.nats_auth provision`` creates
the streams with the admin seed (the Kubernetes Job); ``python -m ptctl.nats_auth k8s``
(``make k8s-nats-config``) makes the production overlay's seeds and authorization file.
This module needs only the runtime dependencies, so the service image can run it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nats
import nkeys
from nats.js.api import ConsumerConfig

from ptkit.config import Env
from ptkit.dead_letters import DEAD_LETTER_STREAM, REDRIVE_STREAM, dead_letter_subject
from ptkit.events import PUBLISHERS
from ptkit.failures import LEDGER_BUCKET
from ptkit.messaging import (
    ConsumerSettings,
    NatsIdentity,
    StreamSettings,
    policy_subjects,
    provision_consumers,
    provision_streams,
    servers,
    service_consumers,
)
from ptkit.runtime import DEFAULT_NATS_URL, consumer_settings, nats_identity, stream_settings

ADMIN = "admin"
SEED_SUFFIX = ".nk"
SERVICE_CONTEXTS = ("order", "manager", "trainer", "status")
"""The services whose consumers the provisioning makes (``ptctl.launcher.CONTEXTS``,
repeated here so that the service image, without the tooling's dependencies, runs this)."""


def service_user(context: str) -> str:
    """A service's NATS user: its name, which is also its durable consumers' name."""
    return f"{context}_svc"


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


ADMIN_PERMISSIONS = Permissions(publish=(">",), subscribe=(">",))


def service_permissions(context: str, stream: str = StreamSettings().name) -> Permissions:
    """What ``<context>_svc`` may publish and subscribe to (nats-server allow lists; all
    else is denied). The JetStream API subjects are those nats-py 2.16 uses to bind to,
    fetch from and ack on a durable pull consumer the admin made (no create: the config,
    and so what the consumer reads, is the admin's), a KV bucket with direct gets and a
    stream check."""
    user = service_user(context)
    kv = f"KV_{LEDGER_BUCKET}"
    own_events = [f"pt.{context}.>"] if context in PUBLISHERS.values() else []
    consumers = [
        subject
        for consumed in (stream, REDRIVE_STREAM)
        for subject in (
            f"$JS.API.CONSUMER.INFO.{consumed}.{user}",
            f"$JS.API.CONSUMER.MSG.NEXT.{consumed}.{user}",
            f"$JS.ACK.{consumed}.{user}.>",
        )
    ]
    publish = [
        *own_events,
        *(f"$JS.API.STREAM.INFO.{name}" for name in (stream, REDRIVE_STREAM, DEAD_LETTER_STREAM)),
        f"$JS.API.STREAM.INFO.{kv}",
        *consumers,
        dead_letter_subject(user, ">"),
        f"$KV.{LEDGER_BUCKET}.{user}.>",
        f"$JS.API.DIRECT.GET.{kv}.$KV.{LEDGER_BUCKET}.{user}.>",
    ]
    return Permissions(publish=tuple(publish), subscribe=(f"_INBOX.{user}.>",))


def permissions_of(user: str, stream: str = StreamSettings().name) -> Permissions:
    if user == ADMIN:
        return ADMIN_PERMISSIONS
    return service_permissions(user.removesuffix("_svc"), stream)


def users_of(contexts: Iterable[str]) -> list[str]:
    """Every identity of a platform running ``contexts``: the services and the admin."""
    return [*(service_user(c) for c in contexts), ADMIN]


# -- keys ---------------------------------------------------------------------------------
def ensure_seeds(directory: Path, users: Iterable[str]) -> dict[str, Path]:
    """A user nkey seed per user under ``directory`` (made once, mode 0600, reused after)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    seeds = {}
    for user in users:
        path = directory / f"{user}{SEED_SUFFIX}"
        if not path.exists():
            seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(seed + b"\n")
        seeds[user] = path
    return seeds


def public_key(seed_file: Path) -> str:
    """The public nkey (``U...``) of a seed file: what nats-server is told."""
    return nkeys.from_seed(bytearray(seed_file.read_bytes().strip())).public_key.decode()


# -- nats-server configuration --------------------------------------------------------------
def _allow(subjects: Sequence[str], indent: str) -> str:
    """An allow list, one quoted subject a line (``$`` is no variable inside quotes)."""
    lines = "".join(f"{indent}  {json.dumps(s)}\n" for s in subjects)
    return f"{{ allow: [\n{lines}{indent}] }}"


def render_authorization(
    public_keys: Mapping[str, str], stream: str = StreamSettings().name
) -> str:
    """The ``authorization`` block: one nkey user per identity, with its allow lists; a
    client without a known nkey is refused (no anonymous user)."""
    lines = ["authorization {", "  users = ["]
    for user, key in public_keys.items():
        permissions = permissions_of(user, stream)
        lines += [
            f"    # {user}",
            f"    {{ nkey: {key}, permissions: {{",
            f"      publish: {_allow(permissions.publish, '      ')}",
            f"      subscribe: {_allow(permissions.subscribe, '      ')}",
            "    } }",
        ]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


# -- provisioning ---------------------------------------------------------------------------
def platform_consumers(
    contexts: Iterable[str], stream: StreamSettings, settings: ConsumerSettings
) -> list[tuple[str, ConsumerConfig]]:
    """Every service's durable consumers, with the subjects of its own policy table."""
    consumers = []
    for context in contexts:
        policies = importlib.import_module(f"{context}_svc.application.policies").POLICIES
        consumers += service_consumers(
            service_user(context), policy_subjects(policies), settings, stream.name
        )
    return consumers


async def provision(
    url: str,
    identity: NatsIdentity,
    stream: StreamSettings,
    consumers: Sequence[tuple[str, ConsumerConfig]] = (),
    timeout: float = 10.0,
) -> None:
    """Create or update the platform's streams and the services' consumers, as the admin."""
    nc = await asyncio.wait_for(
        nats.connect(
            servers(url), connect_timeout=2, allow_reconnect=False, **identity.connect_options("")
        ),
        timeout,
    )
    try:
        js = nc.jetstream(timeout=timeout)
        await provision_streams(js, stream)
        await provision_consumers(js, consumers)
    finally:
        await nc.close()


def provision_now(
    url: str,
    identity: NatsIdentity,
    stream: StreamSettings,
    consumers: Sequence[tuple[str, ConsumerConfig]] = (),
    timeout: float = 10.0,
) -> None:
    """:func:`provision` from synchronous code, also when the caller's thread runs an
    event loop (a test that restarts NATS)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(provision(url, identity, stream, consumers, timeout))
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=run, name="nats-provision")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]


# -- command line ---------------------------------------------------------------------------
OVERLAY_SECRETS = Path("deploy/k8s/overlays/production/secrets/nats")
BASE_AUTH_CONFIGMAP = Path("deploy/k8s/base/nats-auth.yaml")
K8S_AUTH_FILE = "auth.conf"
K8S_NAMESPACE = "ptplatform"


def write_k8s_files(directory: Path, contexts: Iterable[str], stream: str) -> Path:
    """The production overlay's files: a seed per identity (one Secret each), the
    authorization file the ``nats-auth`` ConfigMap is generated from (public keys only)
    and the TLS files under ``tls/`` (ptctl.nats_tls); existing ones are kept."""
    from ptctl.nats_tls import write_tls_files

    seeds = ensure_seeds(directory, users_of(contexts))
    auth = directory / K8S_AUTH_FILE
    auth.write_text(render_authorization({u: public_key(s) for u, s in seeds.items()}, stream))
    write_tls_files(directory / "tls", K8S_NAMESPACE)
    return auth


def render_placeholder_configmap(contexts: Iterable[str], stream: str) -> str:
    """The base's ``nats-auth`` ConfigMap: every identity and permission, with public keys
    of seeds that were thrown away, so a base deployed as it is admits no client."""
    keys = {
        user: nkeys.from_seed(
            bytearray(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
        ).public_key.decode()
        for user in users_of(contexts)
    }
    body = "".join(f"    {line}\n" for line in render_authorization(keys, stream).splitlines())
    return (
        "# Generated by `python -m ptctl.nats_auth k8s-base`: do not edit. PLACEHOLDER keys\n"
        "# whose seeds nobody holds; the production overlay replaces this ConfigMap with the\n"
        "# one `make k8s-nats-config` renders from its own seeds (docs/deploy.md).\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: nats-auth\n"
        "  labels:\n"
        "    app.kubernetes.io/name: nats\n"
        "data:\n"
        f"  {K8S_AUTH_FILE}: |\n"
        f"{body}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptctl.nats_auth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "provision",
        help="create or update the streams and consumers as the admin ($PT_NATS_URL, "
        "$PT_NATS_NKEY_SEED_FILE, $PT_NATS_CA_FILE, $PT_STREAM_*)",
    )
    k8s = commands.add_parser("k8s", help="seeds, auth.conf and TLS for the production overlay")
    k8s.add_argument("--output", type=Path, default=OVERLAY_SECRETS)
    base = commands.add_parser("k8s-base", help="the base's placeholder nats-auth ConfigMap")
    base.add_argument("--output", type=Path, default=BASE_AUTH_CONFIGMAP)
    for command in (k8s, base):
        command.add_argument("--stream", default=StreamSettings().name)
    args = parser.parse_args(argv)
    if args.command == "provision":
        env = Env()
        url = env.str("PT_NATS_URL", DEFAULT_NATS_URL)
        stream = stream_settings(env)
        consumers = platform_consumers(SERVICE_CONTEXTS, stream, consumer_settings(env))
        asyncio.run(provision(url, nats_identity(env), stream, consumers))
        print(f"streams and consumers provisioned on {url}")
        return 0
    from ptctl.launcher import CONTEXTS  # the tooling's own table (not in the image's path)

    if args.command == "k8s-base":
        args.output.write_text(render_placeholder_configmap(CONTEXTS, args.stream))
        print(f"wrote {args.output}")
        return 0
    auth = write_k8s_files(args.output, CONTEXTS, args.stream)
    print(f"wrote {auth}, the seeds and tls/ beside it (git-ignored: keep them out of git)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
