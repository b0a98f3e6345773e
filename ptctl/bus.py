"""A short-lived JetStream connection for one ptctl command (dlq, verify,
rebuild-views): it fails fast and quietly instead of retrying like a service does, and
connects as the admin, the one identity that may read every stream and manage them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
from nats.js import JetStreamContext

from ptkit.config import ConfigError, Env
from ptkit.messaging import NatsIdentity, servers

ADMIN_SEED = Path("nats-keys") / "admin.nk"
"""Where the launcher keeps the admin's seed, under the var dir (ptctl.nats_auth)."""


def admin_identity(env: Env | None = None) -> NatsIdentity:
    """``PT_NATS_ADMIN_SEED_FILE``, else ``$PT_VAR_DIR/nats-keys/admin.nk`` when the
    launcher made one (``make run``), else anonymous; ``PT_NATS_CA_FILE`` for TLS."""
    env = env or Env()
    named = env.str("PT_NATS_ADMIN_SEED_FILE", "")
    if named and not Path(named).is_file():
        raise ConfigError(f"PT_NATS_ADMIN_SEED_FILE={named!r} does not exist")
    seed = Path(named) if named else env.path("PT_VAR_DIR", Path("var")) / ADMIN_SEED
    ca = env.str("PT_NATS_CA_FILE", "")
    return NatsIdentity(
        seed_file=seed if seed.is_file() else None, ca_file=Path(ca) if ca else None
    )


async def _quiet(_: Exception) -> None:
    """nats-py's default error callback logs every failed attempt with a traceback; the
    command reports the failure once."""


@asynccontextmanager
async def connected(
    url: str,
    timeout: float = 5.0,
    request_timeout: float = 5.0,
    identity: NatsIdentity | None = None,
) -> AsyncIterator[JetStreamContext]:
    """A connection for one command, as ``identity`` (default: :func:`admin_identity`);
    an unreachable server is a TimeoutError (OSError) or a nats error after ``timeout``
    (nats-py would otherwise retry the first connect forever)."""
    options = (identity or admin_identity()).connect_options("")
    nc = await asyncio.wait_for(
        nats.connect(
            servers(url), connect_timeout=2, allow_reconnect=False, error_cb=_quiet, **options
        ),
        timeout,
    )
    try:
        yield nc.jetstream(timeout=request_timeout)
    finally:
        await nc.close()
