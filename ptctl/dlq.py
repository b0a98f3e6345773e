"""``ptctl dlq``: list, show and redrive the dead letters in ``PT_DEAD_LETTERS``.

A redrive publishes the envelope on ``pt_redrive.<durable>`` (stream ``PT_REDRIVE``),
which only the consumer that dead-lettered it reads, then deletes the dead letter. The
handlers deduplicate by event id, so an envelope redriven twice takes effect once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import nats
from google.protobuf import json_format
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ptctl.bus import connected
from ptkit import dead_letters as dl
from ptkit.config import Env
from ptkit.runtime import DEFAULT_NATS_URL
from ptplatform.events.v1 import events_pb2


@dataclass(frozen=True)
class DeadLetter:
    id: int
    """Its sequence in PT_DEAD_LETTERS."""
    subject: str
    headers: dict[str, str]
    data: bytes

    @property
    def consumer(self) -> str:
        return self.headers.get(dl.CONSUMER, "")

    def envelope(self) -> events_pb2.EventEnvelope | None:
        try:
            return events_pb2.EventEnvelope.FromString(self.data)
        except Exception:
            return None


class NoSuchDeadLetter(LookupError):
    pass


async def dead_letters(js: JetStreamContext) -> list[DeadLetter]:
    """Every dead letter, oldest first (none while no service created the stream)."""
    try:
        state = (await js.stream_info(dl.DEAD_LETTER_STREAM)).state
    except NotFoundError:
        return []
    if not state.messages:
        return []
    found = []
    for seq in range(state.first_seq, state.last_seq + 1):
        try:
            found.append(await dead_letter(js, seq))
        except NoSuchDeadLetter:
            continue
    return found


async def dead_letter_count(js: JetStreamContext) -> int:
    try:
        return (await js.stream_info(dl.DEAD_LETTER_STREAM)).state.messages
    except NotFoundError:
        return 0


async def dead_letter(js: JetStreamContext, id: int) -> DeadLetter:
    try:
        raw = await js.get_msg(dl.DEAD_LETTER_STREAM, seq=id)
    except NotFoundError as error:
        raise NoSuchDeadLetter(f"no dead letter {id}") from error
    return DeadLetter(id, raw.subject or "", dict(raw.headers or {}), raw.data or b"")


async def redrive(js: JetStreamContext, letter: DeadLetter) -> None:
    """Hand the envelope back to its consumer, then delete the dead letter. A retry after
    a failure in between publishes nothing twice (the same ``Nats-Msg-Id``)."""
    if not letter.consumer:
        raise NoSuchDeadLetter(f"dead letter {letter.id} names no consumer")
    await js.publish(
        dl.redrive_subject(letter.consumer),
        letter.data,
        headers={"Nats-Msg-Id": f"redrive.{letter.id}", dl.REDRIVEN_FROM: str(letter.id)},
        stream=dl.REDRIVE_STREAM,
    )
    await js.delete_msg(dl.DEAD_LETTER_STREAM, letter.id)


def table(letters: Sequence[DeadLetter]) -> list[str]:
    rows = [("ID", "CONSUMER", "EVENT TYPE", "ORDER ID", "DELIVERIES", "ERROR", "WHEN")]
    for letter in letters:
        h = letter.headers
        rows.append(
            (
                str(letter.id),
                letter.consumer,
                h.get(dl.EVENT_TYPE, ""),
                h.get(dl.ORDER_ID, ""),
                h.get(dl.DELIVERIES, ""),
                dl.header_safe(h.get(dl.ERROR, ""), 60),
                h.get(dl.DEAD_AT, ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def shown(letter: DeadLetter) -> str:
    envelope = letter.envelope()
    return json.dumps(
        {
            "id": letter.id,
            "subject": letter.subject,
            "headers": letter.headers,
            "envelope": json_format.MessageToDict(envelope) if envelope is not None else None,
            "raw": None if envelope is not None else letter.data.hex(),
        },
        indent=2,
    )


async def _run(args: argparse.Namespace) -> int:
    async with connected(args.nats_url) as js:
        if args.action == "list":
            letters = await dead_letters(js)
            print("\n".join(table(letters)) if letters else "no dead letters")
            return 0
        if args.action == "show":
            print(shown(await dead_letter(js, args.id)))
            return 0
        chosen = await dead_letters(js) if args.all else [await dead_letter(js, args.id)]
        for letter in chosen:
            await redrive(js, letter)
            print(f"redriven {letter.id} to {letter.consumer}")
        print(f"{len(chosen)} dead letter(s) redriven")
        return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except NoSuchDeadLetter as error:
        print(str(error), file=sys.stderr)
        return 1
    except (OSError, nats.errors.Error) as error:
        print(f"cannot reach NATS at {args.nats_url}: {error!r}", file=sys.stderr)
        return 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = commands.add_parser("dlq", help="list, show and redrive dead-lettered events")
    dlq.add_argument(
        "--nats-url",
        default=Env().str("PT_NATS_URL", DEFAULT_NATS_URL),
        help=f"NATS server (default: $PT_NATS_URL, {DEFAULT_NATS_URL})",
    )
    actions = dlq.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="a table of the dead letters")
    show = actions.add_parser("show", help="one dead letter's headers and envelope as JSON")
    show.add_argument("id", type=int)
    redrive_cmd = actions.add_parser(
        "redrive", help="hand dead letters back to the consumer that gave up on them"
    )
    which = redrive_cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("id", type=int, nargs="?")
    which.add_argument("--all", action="store_true", help="every dead letter")
    dlq.set_defaults(func=cmd_dlq)
