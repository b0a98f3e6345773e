"""``ptctl run --replicas order=2,status=2``: how many replicas of each service, and the
PostgreSQL database the replicas of a service share.

SQLite serves one process, so a replicated context needs PostgreSQL: its
``PT_<CTX>_DATABASE_URL``, or ``ptplatform_<ctx>`` on the server named by
``PT_DATABASE_SERVER_URL`` (``--database-server``), which the launcher creates if missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from sqlalchemy.engine import make_url

from ptkit.config import ConfigError, Env

DATABASE_SERVER_URL = "PT_DATABASE_SERVER_URL"
MAX_REPLICAS = 16


def parse_replicas(text: str, contexts: Sequence[str]) -> dict[str, int]:
    """``order=2,status=2`` as ``{"order": 2, "status": 2}``; ConfigError naming the bad
    entry (an unknown context, a count that is no whole number from 1 to 16)."""
    counts: dict[str, int] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        context, equals, count = entry.partition("=")
        context = context.strip()
        if not equals:
            raise ConfigError(f"--replicas {entry!r}: expected CONTEXT=COUNT, e.g. order=2")
        if context not in contexts:
            raise ConfigError(
                f"--replicas {entry!r}: unknown context {context!r}; one of {', '.join(contexts)}"
            )
        try:
            number = int(count)
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_REPLICAS:
            raise ConfigError(
                f"--replicas {entry!r}: the count must be a whole number from 1 to {MAX_REPLICAS}"
            )
        counts[context] = number
    return counts


def server_database(server_url: str, context: str) -> str:
    """The database of ``context`` on the server ``server_url``: ``ptplatform_<ctx>``."""
    try:
        url = make_url(server_url)
    except ValueError as error:
        raise ConfigError(f"{DATABASE_SERVER_URL}={server_url!r} is invalid: {error}") from None
    if not url.drivername.startswith("postgresql"):
        raise ConfigError(
            f"{DATABASE_SERVER_URL}={server_url!r} is invalid: expected a postgresql:// URL"
        )
    return url.set(database=f"ptplatform_{context}").render_as_string(hide_password=False)


def replica_database(env: Env, context: str, count: int) -> tuple[str, bool]:
    """The PostgreSQL URL the ``count`` replicas of ``context`` share, and whether the
    launcher derived it from the server URL (then it creates the database if missing).
    ConfigError when only SQLite is configured."""
    variable = f"PT_{context.upper()}_DATABASE_URL"
    given = env.database_url(variable, "") if env.str(variable, "") else ""
    if given.startswith("postgresql"):
        return given, False
    server = env.str(DATABASE_SERVER_URL, "")
    if server and not given:
        return server_database(server, context), True
    raise ConfigError(
        f"{context}: {count} replicas need PostgreSQL, one database they share, and"
        f" {context}_svc is on SQLite, which serves a single replica: set {variable}="
        f"postgresql://… or {DATABASE_SERVER_URL}=postgresql://127.0.0.1:5432/"
        " (--database-server), or run one replica"
    )


def ensure_databases(urls: Iterable[str]) -> None:
    """Create each PostgreSQL database that does not exist yet (connecting to the server's
    ``postgres`` database as the URL's user)."""
    asyncio.run(_ensure_databases(list(urls)))


async def _ensure_databases(urls: list[str]) -> None:
    import asyncpg

    for text in urls:
        url = make_url(text)
        name = url.database or ""
        admin = url.set(drivername="postgresql", database="postgres")
        connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
