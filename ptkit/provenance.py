"""Where an inbound event may come from: an envelope names its ``source`` context, and
only that context's credentials may publish on ``pt.<source>.*`` (ptctl.nats_auth). A
consumer takes an event only when its envelope, its subject and the context that owns
its type (:data:`ptkit.events.PUBLISHERS`) agree, so one context's credentials cannot
pass an event off as another's, nor one event type as another."""

from __future__ import annotations

from ptkit.events import PUBLISHERS
from ptplatform.events.v1 import events_pb2

SOURCE_MISMATCH = "source_mismatch"
"""The envelope's source is not the context of its subject, or not the context that
publishes its event type."""
SUBJECT_MISMATCH = "subject_mismatch"
"""The envelope's event type is not the one its ``pt.<context>.<EventType>`` subject names."""


def rejection(subject: str, envelope: events_pb2.EventEnvelope) -> str | None:
    """Why a consumer must refuse this envelope, or None when it may take it.

    A redriven envelope (``pt_redrive.<durable>``, published by an operator) has no
    context in its subject; its source must still be its type's publisher.
    """
    parts = subject.split(".")
    if parts[0] == "pt":
        if len(parts) != 3 or parts[2] != envelope.event_type:
            return SUBJECT_MISMATCH
        if envelope.source != parts[1]:
            return SOURCE_MISMATCH
    publisher = PUBLISHERS.get(envelope.event_type)
    if publisher is not None and envelope.source != publisher:
        return SOURCE_MISMATCH
    return None
