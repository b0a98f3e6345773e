"""Where consumers put what they give up on, and where a redrive hands it back.

``PT_DEAD_LETTERS`` keeps each dead letter (the original envelope bytes, with headers
telling which consumer gave up, when and why) until an operator redrives or deletes it.
``PT_REDRIVE`` carries a redriven envelope to the one consumer that dead-lettered it
(``pt_redrive.<durable>``). Neither stream's subjects are under ``pt.>``: no service sees
a dead letter or another consumer's redrive as a domain event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js.api import StorageType, StreamConfig

DEAD_LETTER_STREAM = "PT_DEAD_LETTERS"
DEAD_LETTER_SUBJECTS = "pt_dead.>"
REDRIVE_STREAM = "PT_REDRIVE"
REDRIVE_SUBJECTS = "pt_redrive.>"
MAX_ERROR_LENGTH = 500

# dead-letter headers
CONSUMER = "Pt-Consumer"
STREAM = "Pt-Stream"
STREAM_SEQ = "Pt-Stream-Seq"
SUBJECT = "Pt-Subject"
DELIVERIES = "Pt-Deliveries"
FAILURES = "Pt-Failures"
CRASHES = "Pt-Crashes"
EVENT_ID = "Pt-Event-Id"
EVENT_TYPE = "Pt-Event-Type"
ORDER_ID = "Pt-Order-Id"
ERROR = "Pt-Error"
DEAD_AT = "Pt-Dead-At"
REDRIVEN_FROM = "Pt-Redriven-From"


def dead_letter_subject(durable: str, event_type: str) -> str:
    return f"pt_dead.{durable}.{event_type}"


def redrive_subject(durable: str) -> str:
    return f"pt_redrive.{durable}"


def header_safe(text: str, limit: int = MAX_ERROR_LENGTH) -> str:
    """One line, at most ``limit`` characters: what a NATS header value may hold."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class GaveUp:
    """Why and after how much a consumer gave up on one message."""

    durable: str
    stream: str
    stream_seq: int
    subject: str
    deliveries: int
    failures: int
    crashes: int
    error: str
    event_id: str = ""
    event_type: str = "undecodable"
    order_id: str = ""

    @property
    def msg_id(self) -> str:
        """One dead letter per consumer and message, however often dead-lettering is retried."""
        return f"dead.{self.durable}.{self.stream}.{self.stream_seq}"

    def headers(self, now: datetime | None = None) -> dict[str, str]:
        return {
            "Nats-Msg-Id": self.msg_id,
            CONSUMER: self.durable,
            STREAM: self.stream,
            STREAM_SEQ: str(self.stream_seq),
            SUBJECT: self.subject,
            DELIVERIES: str(self.deliveries),
            FAILURES: str(self.failures),
            CRASHES: str(self.crashes),
            EVENT_ID: self.event_id,
            EVENT_TYPE: self.event_type,
            ORDER_ID: self.order_id,
            ERROR: header_safe(self.error),
            DEAD_AT: (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        }


def stream_configs(replicas: int, redrive_max_age_seconds: float) -> list[StreamConfig]:
    """The dead letters are kept until handled (no max age); a redrive as long as events."""
    return [
        StreamConfig(
            name=DEAD_LETTER_STREAM,
            subjects=[DEAD_LETTER_SUBJECTS],
            storage=StorageType.FILE,
            num_replicas=replicas,
            duplicate_window=120.0,
        ),
        StreamConfig(
            name=REDRIVE_STREAM,
            subjects=[REDRIVE_SUBJECTS],
            storage=StorageType.FILE,
            num_replicas=replicas,
            duplicate_window=120.0,
            max_age=redrive_max_age_seconds,
        ),
    ]


def described(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The dead-letter headers without NATS' own."""
    return {k: v for k, v in (headers or {}).items() if k.startswith("Pt-")}
