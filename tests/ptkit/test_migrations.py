"""Every service's alembic history against its models, on SQLite and PostgreSQL: they
agree, an upgrade keeps the data, and a database created before migrations is adopted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from alembic import command
from sqlalchemy import Index, MetaData, UniqueConstraint, column, insert, select, table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from manager_svc.adapters import sql as manager_sql
from order_svc.adapters import sql as order_sql
from order_svc.domain.model import Order, OrderStatus
from ptctl.cli import main as ptctl
from ptkit.mapping import AggregateMapper, Stored
from ptkit.migrations import alembic_config, history_of, schema_drift, upgrade_schema
from ptkit.sql import MessagingTables, create_engine
from status_svc.adapters import sql as status_sql
from tests.helpers import database, outbox_envelopes
from trainer_svc.adapters import sql as trainer_sql

SERVICES = {
    "order": order_sql,
    "manager": manager_sql,
    "trainer": trainer_sql,
    "status": status_sql,
}
NOW = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=list(SERVICES))
def service(request: pytest.FixtureRequest) -> ModuleType:
    return SERVICES[request.param]


async def revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()


async def upgrade_to(engine: AsyncEngine, metadata: MetaData, target: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(
            lambda sync: command.upgrade(alembic_config(metadata, sync), target)
        )


async def created_before_migrations(engine: AsyncEngine, metadata: MetaData) -> None:
    """A database as every start made it before migrations: ``create_all`` of the models
    of that time, which the first revision reproduces exactly; no ``alembic_version``."""
    await upgrade_to(engine, metadata, "0001")
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE alembic_version"))


async def insert_first_revision_order(engine: AsyncEngine, order_id: str, request_id: str) -> None:
    """An order row as the first revision stores it, written without today's models."""
    orders = table(
        "orders",
        *(
            column(name)
            for name in (
                "order_id customer_id customer_name class_name preferred_start request_id "
                "status cancel_reason created_at updated_at version"
            ).split()
        ),
    )
    async with engine.begin() as connection:
        await connection.execute(
            insert(orders).values(
                order_id=order_id,
                customer_id="alice",
                customer_name="Alice",
                class_name="Pilates",
                preferred_start=NOW,
                request_id=request_id or None,
                status="PLACED",
                cancel_reason="",
                created_at=NOW,
                updated_at=NOW,
                version=1,
            )
        )


async def test_the_migrations_build_what_the_models_describe(
    database_url: str, service: ModuleType
) -> None:
    async with database(database_url, service.metadata) as engine:
        assert await schema_drift(engine, service.metadata) == []


@dataclass(kw_only=True)
class OrderWithProbe(Order):
    drift_probe: int = 0


def order_models_with_a_new_field() -> MetaData:
    """order_svc's models as if ``drift_probe`` were added to Order and nothing else:
    the same history, table items and column types, the new field mapped by the kit."""
    metadata = MetaData(info=dict(order_sql.metadata.info))
    MessagingTables.add_to(metadata)
    orders = order_sql.orders
    AggregateMapper(
        OrderWithProbe,
        "orders",
        metadata,
        *(Index(index.name, *index.columns.keys()) for index in orders.indexes),
        *(
            UniqueConstraint(*constraint.columns.keys(), name=constraint.name)
            for constraint in orders.constraints
            if isinstance(constraint, UniqueConstraint)
        ),
        key="order_id",
        columns={c.name: Stored(c.type, nullable=c.nullable) for c in orders.columns},
    )
    return metadata


async def test_a_field_added_without_its_migration_is_drift(database_url: str) -> None:
    async with database(database_url, order_sql.metadata) as engine:
        drift = await schema_drift(engine, order_models_with_a_new_field())
    assert [(step[0], step[2], step[3].name) for step in drift] == [
        ("add_column", "orders", "drift_probe")
    ]


async def test_an_upgrade_from_the_first_revision_keeps_the_orders(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to(engine, order_sql.metadata, "0001")
        await insert_first_revision_order(engine, "o-1", request_id="")

        await upgrade_schema(engine, order_sql.metadata)

        assert await revision(engine) == _head(order_sql.metadata)
        async with _uow(engine) as uow:
            order = await uow.orders.get("o-1")
        assert order == Order(
            order_id="o-1",
            customer_id="alice",
            customer_name="Alice",
            class_name="Pilates",
            preferred_start=NOW,
            request_id="",
            status=OrderStatus.PLACED,
            created_at=NOW,
            updated_at=NOW,
            version=1,
        )
    finally:
        await engine.dispose()


async def test_a_database_created_before_migrations_is_adopted_with_its_data(
    database_url: str, service: ModuleType
) -> None:
    engine = create_engine(database_url)
    try:
        await created_before_migrations(engine, service.metadata)
        # every service keeps processed-event marks (status_svc's read model has no outbox)
        marks = service.messaging.processed_events
        async with engine.begin() as connection:
            await connection.execute(
                insert(marks).values(consumer="old", event_id="e-1", handled_at=NOW)
            )

        await upgrade_schema(engine, service.metadata)
        await upgrade_schema(engine, service.metadata)  # the next start changes nothing

        assert await revision(engine) == _head(service.metadata)
        async with engine.connect() as connection:
            kept = (await connection.execute(select(marks.c.event_id))).all()
        assert [row.event_id for row in kept] == ["e-1"]
        assert await schema_drift(engine, service.metadata) == []
    finally:
        await engine.dispose()


async def test_an_adopted_order_database_keeps_serving_its_orders(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await created_before_migrations(engine, order_sql.metadata)
        await insert_first_revision_order(engine, "o-1", request_id="r-1")

        await upgrade_schema(engine, order_sql.metadata)

        async with _uow(engine) as uow:
            order = await uow.orders.get("o-1")
            order.cancel("changed my mind", NOW)
            await uow.commit()
        async with _uow(engine) as uow:
            assert (await uow.orders.get("o-1")).status is OrderStatus.CANCELLED
            assert await uow.orders.find_by_request("alice", "r-1") is not None
        assert [e.event_type for e in await outbox_envelopes(engine, order_sql.messaging)] == [
            "OrderCancelled"
        ]
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    engines = [create_engine(postgres_url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade_schema(e, order_sql.metadata) for e in engines))
        assert await revision(engines[0]) == _head(order_sql.metadata)
    finally:
        for engine in engines:
            await engine.dispose()


def test_ptctl_migrate_upgrades_each_service_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PT_ORDER_DATABASE_URL", f"sqlite:///{tmp_path / 'orders.db'}")

    assert ptctl(["migrate", "--service", "order"]) == 0
    assert (tmp_path / "orders.db").is_file()
    assert not (tmp_path / "var").exists()

    assert ptctl(["migrate"]) == 0
    for context in ("manager", "trainer", "status"):
        assert (tmp_path / "var" / f"{context}_svc.db").is_file()


def test_every_history_ships_with_its_package() -> None:
    for sql in SERVICES.values():
        history = history_of(sql.metadata)
        assert history.is_relative_to(Path(sql.__file__).parent)
        assert {"env.py", "script.py.mako"} <= {p.name for p in history.iterdir()}
        assert (history / "versions" / "0001_initial_schema.py").is_file()


def _head(metadata: MetaData) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(metadata)).get_current_head()
    assert head is not None
    return head


def _uow(engine: AsyncEngine) -> order_sql.SqlOrderUnitOfWork:
    from ptkit.events import EnvelopeSerializer

    return order_sql.SqlOrderUnitOfWork(engine, order_sql.messaging, EnvelopeSerializer("order"))
