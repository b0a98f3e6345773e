"""The event archive: ``PT_ARCHIVE``, a JetStream stream sourced from the domain-event
stream that keeps every event for good (no max age), so a read model can be rebuilt
from the full history (docs/adr/0006-event-archive.md).

Sourced messages keep their subject and headers (``Nats-Msg-Id``: the archive
deduplicates too) and gain ``Nats-Stream-Source: "<origin stream> <origin seq> ..."``,
which tells where each archived event sits in the origin stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nats.js.api import StorageType, StreamConfig, StreamSource

if TYPE_CHECKING:
    from ptkit.messaging import StreamSettings

SOURCE_HEADER = "Nats-Stream-Source"


@dataclass(frozen=True)
class ArchiveSettings:
    name: str = "PT_ARCHIVE"
    max_bytes: int = -1
    """-1: unlimited. A byte limit (JetStream discards the oldest events beyond it) makes
    a later rebuild incomplete, which the rebuild detects and refuses to swap."""


def archive_config(
    stream: StreamSettings, archive: ArchiveSettings = ArchiveSettings()
) -> StreamConfig:
    """File storage, no max age, the origin's replicas and duplicate window; no subjects
    of its own (the origin binds ``pt.>``), only the origin as source. Created with the
    origin by the admin (``provision_streams``); a new archive backfills whatever the
    origin still holds."""
    return StreamConfig(
        name=archive.name,
        sources=[StreamSource(name=stream.name)],
        storage=StorageType.FILE,
        num_replicas=stream.replicas,
        duplicate_window=stream.duplicate_window_seconds,
        max_age=0,
        max_bytes=archive.max_bytes,
    )


def origin_sequence(headers: Mapping[str, str] | None) -> int:
    """The origin stream's sequence of an archived message (0 when it carries none)."""
    parts = (headers or {}).get(SOURCE_HEADER, "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
