"""The failure ledger: what a consumer's handler did with one message, shared by every
replica and every restart in the NATS KV bucket ``PT_CONSUMER_FAILURES``.

A key is ``<durable>.<stream>.<stream sequence>``. A tally counts the handler *failures*
(exceptions, not transient ones) and, for a message handled alone as a crash suspect,
the attempts begun and the attempts finished (the handler returned or raised): an
attempt begun and never finished killed its process. The ledger is written only on the
failure path and for suspects, never for a message handled at the first try. Entries
expire with the bucket's TTL (the event stream's max age).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from ptkit.dead_letters import header_safe

LEDGER_BUCKET = "PT_CONSUMER_FAILURES"


@dataclass(frozen=True)
class Tally:
    failures: int = 0
    attempts: int = 0
    """Attempts begun alone (as a crash suspect)."""
    finished: int = 0
    """Of those, the attempts whose handler returned or raised."""
    error: str = ""
    """The last handler failure."""

    @property
    def crashes(self) -> int:
        """Attempts that never finished: each one killed its process."""
        return self.attempts - self.finished

    def failed(self, error: BaseException, alone: bool) -> Tally:
        return replace(
            self,
            failures=self.failures + 1,
            finished=self.finished + alone,
            error=header_safe(repr(error)),
        )

    def begun(self) -> Tally:
        return replace(self, attempts=self.attempts + 1)

    def ended(self) -> Tally:
        return replace(self, finished=self.finished + 1)


async def open_ledger(js: JetStreamContext, ttl_seconds: float, replicas: int = 1) -> KeyValue:
    """Create the bucket if it is missing (idempotent) and return it. Reads are direct
    gets, whose subject names the key: a consumer's credentials may read only its own
    keys (``<durable>.>``); a bucket made before that is switched to direct gets."""
    try:
        return await js.create_key_value(
            bucket=LEDGER_BUCKET, ttl=ttl_seconds, replicas=replicas, direct=True
        )
    except BadRequestError:
        stream = f"KV_{LEDGER_BUCKET}"
        config = (await js.stream_info(stream)).config
        if not config.allow_direct:
            await js.update_stream(replace(config, allow_direct=True))
        return await js.key_value(LEDGER_BUCKET)


class FailureLedger:
    def __init__(self, kv: KeyValue, durable: str, stream: str) -> None:
        self.kv = kv
        self.prefix = f"{durable}.{stream}"

    def key(self, stream_seq: int) -> str:
        return f"{self.prefix}.{stream_seq}"

    async def read(self, stream_seq: int) -> Tally:
        tally, _ = await self._get(self.key(stream_seq))
        return tally

    async def change(self, stream_seq: int, how: Callable[[Tally], Tally]) -> Tally:
        """Apply ``how`` atomically (compare-and-set, retried on a concurrent change)."""
        key = self.key(stream_seq)
        while True:
            tally, revision = await self._get(key)
            changed = how(tally)
            value = json.dumps(asdict(changed)).encode()
            try:
                if revision is None:
                    await self.kv.create(key, value)
                else:
                    await self.kv.update(key, value, last=revision)
            except KeyWrongLastSequenceError:
                continue
            return changed

    async def forget(self, stream_seq: int) -> None:
        await self.kv.delete(self.key(stream_seq))

    async def _get(self, key: str) -> tuple[Tally, int | None]:
        try:
            entry = await self.kv.get(key)
        except NotFoundError:
            return Tally(), None
        if not entry.value:
            return Tally(), None
        return Tally(**json.loads(entry.value)), entry.revision
