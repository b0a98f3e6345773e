"""The bus's authorization (ptctl.nats_auth) on a real nats-server started by the
launcher: nobody connects without an nkey, a service publishes only its own context's
events, reads only through its own consumers and manages no stream."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, StreamConfig

from ptctl.launcher import CONTEXTS, Platform, PlatformConfig
from ptctl.nats_auth import (
    ADMIN,
    SERVICE_CONTEXTS,
    ensure_seeds,
    provision_now,
    public_key,
    render_authorization,
    service_permissions,
    service_user,
)
from ptkit.messaging import NatsIdentity, StreamSettings, policy_subjects
from tests.helpers import eventually

STREAM = StreamSettings().name


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Platform]:
    """nats-server with the platform's authorization and provisioned streams, no services."""
    platform = Platform(PlatformConfig.ephemeral(tmp_path, contexts=[]))
    try:
        platform.start_nats()
        yield platform
    finally:
        platform.stop()


class Refusals:
    """What nats-py reports asynchronously (a refused publish or subscription)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def record(self, error: Exception) -> None:
        self.errors.append(str(error))

    def about(self, text: str) -> bool:
        return any(text.lower() in error.lower() for error in self.errors)


@asynccontextmanager
async def client_of(
    bus: Platform, user: str, refusals: Refusals | None = None
) -> AsyncIterator[Client]:
    options = NatsIdentity(seed_file=bus.nats_seeds[user]).connect_options(
        "" if user == ADMIN else user
    )
    nc = await nats.connect(
        bus.nats_url,
        allow_reconnect=False,
        error_cb=(refusals or Refusals()).record,
        **options,
    )
    try:
        yield nc
    finally:
        await nc.close()


async def messages_on(bus: Platform, subject: str) -> int:
    async with client_of(bus, ADMIN) as admin:
        info = await admin.jetstream().stream_info(STREAM, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)


async def test_a_client_without_an_nkey_is_refused(bus: Platform) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(bus.nats_url, allow_reconnect=False, max_reconnect_attempts=0)


async def test_a_client_with_an_unknown_nkey_is_refused(bus: Platform, tmp_path: Path) -> None:
    (stranger,) = ensure_seeds(tmp_path / "stranger", ["stranger"]).values()
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            bus.nats_url, allow_reconnect=False, max_reconnect_attempts=0, nkeys_seed=str(stranger)
        )


async def test_a_service_publishes_its_own_contexts_events(bus: Platform) -> None:
    async with client_of(bus, service_user("order")) as order_svc:
        ack = await order_svc.jetstream().publish(
            "pt.order.OrderPlaced", b"x", headers={"Nats-Msg-Id": str(uuid.uuid4())}
        )
    assert ack.stream == STREAM
    assert await messages_on(bus, "pt.order.OrderPlaced") == 1


async def test_a_service_cannot_publish_another_contexts_event(bus: Platform) -> None:
    refusals = Refusals()
    async with client_of(bus, service_user("order"), refusals) as order_svc:
        with pytest.raises(nats.errors.TimeoutError):
            await order_svc.jetstream().publish(
                "pt.trainer.ScheduleConfirmed", b"forged", timeout=1
            )
    assert refusals.about('permissions violation for publish to "pt.trainer.ScheduleConfirmed"')
    assert await messages_on(bus, "pt.trainer.ScheduleConfirmed") == 0


async def test_a_service_cannot_delete_create_or_update_a_stream(bus: Platform) -> None:
    refusals = Refusals()
    async with client_of(bus, service_user("order"), refusals) as order_svc:
        js = order_svc.jetstream(timeout=1)
        with pytest.raises(nats.errors.TimeoutError):
            await js.delete_stream(STREAM)
        with pytest.raises(nats.errors.TimeoutError):
            await js.add_stream(StreamConfig(name="ORDER_OWN", subjects=["own.>"]))
        with pytest.raises(nats.errors.TimeoutError):
            await js.update_stream(StreamConfig(name=STREAM, subjects=["pt.>"], max_age=1))
    assert refusals.about(f"$JS.API.STREAM.DELETE.{STREAM}")
    async with client_of(bus, ADMIN) as admin:
        info = await admin.jetstream().stream_info(STREAM)
        assert info.config.max_age == StreamSettings().max_age_days * 86400
        assert "ORDER_OWN" not in [s.config.name for s in await admin.jetstream().streams_info()]


def refused_twice(refusals: Refusals) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len([e for e in refusals.errors if "subscription" in e.lower()]) >= 2

    return check


async def test_a_service_cannot_listen_to_the_event_subjects(bus: Platform) -> None:
    refusals = Refusals()
    async with client_of(bus, service_user("order"), refusals) as order_svc:
        events = await order_svc.subscribe("pt.>")
        others_replies = await order_svc.subscribe("_INBOX.>")
        await order_svc.flush()
        await eventually(refused_twice(refusals), what="both subscriptions refused")
        async with client_of(bus, ADMIN) as admin:
            await admin.publish("pt.trainer.ScheduleConfirmed", b"secret")
            await admin.flush()
        with pytest.raises(nats.errors.TimeoutError):
            await events.next_msg(timeout=0.5)
        with pytest.raises(nats.errors.TimeoutError):
            await others_replies.next_msg(timeout=0.1)
    assert refusals.about('permissions violation for subscription to "pt.>"')
    assert refusals.about('permissions violation for subscription to "_INBOX.>"')


async def test_a_service_reads_through_the_consumer_the_admin_made_and_cannot_widen_it(
    bus: Platform,
) -> None:
    async with client_of(bus, ADMIN) as admin:
        await admin.jetstream().publish("pt.trainer.ScheduleConfirmed", b"confirmed")
        await admin.jetstream().publish("pt.manager.TrainerAssigned", b"not order_svc's")
        before = (await admin.jetstream().consumer_info(STREAM, "order_svc")).config
    refusals = Refusals()
    async with client_of(bus, service_user("order"), refusals) as order_svc:
        js = order_svc.jetstream(timeout=1)
        mine = await js.pull_subscribe_bind(durable="order_svc", stream=STREAM)
        (message,) = await mine.fetch(5, timeout=2)
        await message.ack()
        assert message.data == b"confirmed"
        for durable in ("order_svc", "status_svc"):
            with pytest.raises(nats.errors.TimeoutError):
                await js.add_consumer(
                    STREAM, ConsumerConfig(durable_name=durable, filter_subjects=["pt.>"])
                )
    assert refusals.about(f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.order_svc")
    async with client_of(bus, ADMIN) as admin:
        after = (await admin.jetstream().consumer_info(STREAM, "order_svc")).config
    assert after.filter_subjects == before.filter_subjects
    assert "pt.>" not in (after.filter_subjects or [])


def test_every_service_may_publish_only_under_its_own_context() -> None:
    for context in ("order", "manager", "trainer", "status"):
        published = [s for s in service_permissions(context).publish if s.startswith("pt.")]
        assert published == ([] if context == "status" else [f"pt.{context}.>"])
        assert service_permissions(context).subscribe == (f"_INBOX.{context}_svc.>",)
        allowed = service_permissions(context).publish
        assert not any(".CREATE." in s or ".DELETE." in s or ".UPDATE." in s for s in allowed)


def test_seeds_are_made_once_and_readable_only_by_their_owner(tmp_path: Path) -> None:
    first = ensure_seeds(tmp_path / "keys", ["order_svc", ADMIN])
    again = ensure_seeds(tmp_path / "keys", ["order_svc", ADMIN])
    assert {u: p.read_bytes() for u, p in first.items()} == {
        u: p.read_bytes() for u, p in again.items()
    }
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in first.values())
    keys = {user: public_key(seed) for user, seed in first.items()}
    assert all(key.startswith("U") for key in keys.values())
    rendered = render_authorization(keys)
    assert all(key in rendered for key in keys.values())
    assert not any(seed.read_text().strip() in rendered for seed in first.values())


async def test_provisioning_twice_changes_nothing(bus: Platform) -> None:
    async with client_of(bus, ADMIN) as admin:
        before = [s.config.name for s in await admin.jetstream().streams_info()]
    await asyncio.to_thread(provision_now, bus.nats_url, bus.nats_admin, StreamSettings())
    async with client_of(bus, ADMIN) as admin:
        assert [s.config.name for s in await admin.jetstream().streams_info()] == before


async def test_each_service_gets_a_consumer_of_what_its_policy_table_names(
    bus: Platform,
) -> None:
    assert SERVICE_CONTEXTS == CONTEXTS
    async with client_of(bus, ADMIN) as admin:
        js = admin.jetstream()
        for context in CONTEXTS:
            policies = importlib.import_module(f"{context}_svc.application.policies").POLICIES
            events = await js.consumer_info(STREAM, service_user(context))
            redrives = await js.consumer_info("PT_REDRIVE", service_user(context))
            assert sorted(events.config.filter_subjects or []) == sorted(policy_subjects(policies))
            assert redrives.config.filter_subjects == [f"pt_redrive.{service_user(context)}"]
