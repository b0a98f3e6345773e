"""status_svc with faults the environment asks for, run as ``python -m
tests.fault_injection.status_svc`` by the no-silent-loss e2e tests (production code has
no fault hooks):

- ``PT_FAULT_KILL_AFTER_FETCH=1``: the process dies (exit 137) right after a fetch
  returns messages, before any handler starts;
- ``PT_FAULT_FAIL_MARK=text``: the handler raises for an envelope containing ``text``;
- ``PT_FAULT_KILL_MARK=text``: the process dies when it handles such an envelope;
- ``PT_FAULT_KILL_AFTER_COMMIT=1``: the process dies right after a batch's transaction
  commits, before any of its messages is acked.

The handler faults hook ``PolicyHandler.apply``, which handles an event both alone and
in a batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from ptkit.messaging import EventConsumer, EventUnitOfWork, PolicyBatch, PolicyHandler
from ptkit.sql import Causation
from ptplatform.events.v1 import events_pb2
from status_svc.main import main

KILLED = 137

log = logging.getLogger(__name__)


class InjectedFault(RuntimeError):
    """The handler's bug, as a test injected it."""


def install() -> None:
    kill_after_fetch = os.environ.get("PT_FAULT_KILL_AFTER_FETCH") == "1"
    fail_mark = os.environ.get("PT_FAULT_FAIL_MARK", "").encode()
    kill_mark = os.environ.get("PT_FAULT_KILL_MARK", "").encode()
    kill_after_commit = os.environ.get("PT_FAULT_KILL_AFTER_COMMIT") == "1"
    fetch, handle, commit = EventConsumer._fetch, PolicyHandler.apply, PolicyBatch.commit
    outcomes: list[str] = []
    """What each event applied so far came to (logged by the commit that dies)."""

    async def fetch_then_die(
        self: EventConsumer, subscription: JetStreamContext.PullSubscription
    ) -> list[Msg]:
        messages = await fetch(self, subscription)
        if messages:
            os._exit(KILLED)
        return messages

    async def faulty(
        self: PolicyHandler,
        envelope: events_pb2.EventEnvelope,
        handling: Callable[[Causation], EventUnitOfWork],
    ) -> None:
        data = envelope.SerializeToString()
        if kill_mark and kill_mark in data:
            os._exit(KILLED)
        if fail_mark and fail_mark in data:
            raise InjectedFault(f"injected failure for order {envelope.order_id}")
        try:
            await handle(self, envelope, handling)
        except Exception as error:
            outcomes.append(repr(error))
            raise
        outcomes.append("applied")

    async def commit_then_die(self: PolicyBatch) -> None:
        await commit(self)
        log.warning("fault: dying after a batch commit", extra={"outcomes": outcomes})
        logging.shutdown()
        os._exit(KILLED)

    if kill_after_fetch:
        EventConsumer._fetch = fetch_then_die  # type: ignore[method-assign]
    if kill_after_commit:
        PolicyBatch.commit = commit_then_die  # type: ignore[method-assign]
    PolicyHandler.apply = faulty  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    main()
