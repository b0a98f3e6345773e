"""``ptctl dlq`` against a real nats-server: the table, the JSON of a dead letter whose
envelope cannot be decoded, the exit codes for an unknown ID and an unreachable server.
(The redrive itself is proved end to end in tests/e2e/test_no_silent_loss.py.)"""

from __future__ import annotations

import asyncio
import json

import pytest

from ptctl.cli import main
from ptctl.launcher import free_port
from ptkit import dead_letters as dl
from ptkit.messaging import JetStream
from tests.conftest import NatsServer


async def dead_letter_of_garbage(url: str) -> None:
    """A consumer's connection creates the streams; then one dead letter is written."""
    jetstream = JetStream(url)
    await asyncio.wait_for(jetstream.connect(), 15)
    try:
        gave_up = dl.GaveUp(
            durable="status_svc",
            stream="PT_EVENTS",
            stream_seq=7,
            subject="pt.order.OrderPlaced",
            deliveries=1,
            failures=0,
            crashes=0,
            error="undecodable envelope:\nValueError('x')",
        )
        await jetstream.js.publish(
            dl.dead_letter_subject("status_svc", "undecodable"),
            b"\xff garbage",
            headers=gave_up.headers(),
            stream=dl.DEAD_LETTER_STREAM,
        )
    finally:
        await jetstream.close()


def test_list_and_show_a_dead_letter_and_refuse_an_unknown_id(
    nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "--nats-url", nats_server.url, "list"]) == 0
    assert capsys.readouterr().out.strip() == "no dead letters"

    asyncio.run(dead_letter_of_garbage(nats_server.url))
    assert main(["dlq", "--nats-url", nats_server.url, "list"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split() == "ID CONSUMER EVENT TYPE ORDER ID DELIVERIES ERROR WHEN".split()
    assert row.split()[:4] == ["1", "status_svc", "undecodable", "1"]
    assert "undecodable envelope: ValueError('x')" in row

    assert main(["dlq", "--nats-url", nats_server.url, "show", "1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["envelope"] is None and shown["raw"] == b"\xff garbage".hex()
    assert shown["headers"][dl.STREAM_SEQ] == "7"

    assert main(["dlq", "--nats-url", nats_server.url, "redrive", "2"]) == 1
    assert "no dead letter 2" in capsys.readouterr().err


def test_an_unreachable_nats_server_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    assert main(["dlq", "--nats-url", url, "list"]) == 2
    assert f"cannot reach NATS at {url}" in capsys.readouterr().err
