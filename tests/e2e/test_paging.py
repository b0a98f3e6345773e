"""Every List method pages (AIP-158) through the real gateway over HTTP/JSON: 250 rows in
pages of 100 are three pages holding every row once, in the order the service's own
repository reads them in one go; a tampered token, and a token reused with other filters,
are refused with 400 naming ``page_token``.

A platform of its own, without the gateway's rate limit (about a thousand calls), whose
manager_svc assigns every order at once to the only trainer on the roster then
(auto-assign), so 250 placed orders become 250 assignments and schedules of one trainer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from manager_svc.adapters import sql as manager_sql
from manager_svc.application.ports import ASSIGNMENT_PAGES, TRAINER_PAGES
from order_svc.adapters import sql as order_sql
from order_svc.application.ports import ORDER_PAGES
from ptctl.envoy import GatewaySettings, RateLimitSettings
from ptctl.launcher import Platform
from ptkit.paging import PageRequest
from ptkit.sql import create_engine
from status_svc.adapters import sql as status_sql
from status_svc.application.ports import (
    CLASS_RESULT_PAGES,
    NOTIFICATION_PAGES,
    VIEW_PAGES,
    StatusFilter,
)
from tests.conftest import fresh_platform
from tests.e2e.rest import Rest, ok
from tests.helpers import wait_for
from trainer_svc.adapters import sql as trainer_sql
from trainer_svc.application.ports import SCHEDULE_PAGES

ROWS = 250
PAGE = 100
EVERYTHING = 10 * ROWS
INVALID_ARGUMENT = 3


@dataclass
class Seeded:
    """What the test created, and how to read it."""

    platform: Platform
    rest: Rest
    customer_id: str
    trainer_id: str
    orders: list[str]

    @property
    def customer(self) -> str:
        return self.platform.token("customer", self.customer_id)

    @property
    def manager(self) -> str:
        return self.platform.token("manager", "pager-manager")

    @property
    def trainer(self) -> str:
        return self.platform.token("trainer", self.trainer_id)


def in_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda call: call(), calls))


def pages(rest: Rest, path: str, token: str, items: str, **query: str) -> list[list[Any]]:
    """Every page of a List call, page_size 100."""
    found, page_token = [], ""
    while True:
        params = {**query, "page_size": str(PAGE)}
        if page_token:
            params["page_token"] = page_token
        page = ok(rest.get(f"{path}?{urlencode(params)}", token))
        found.append(page.get(items, []))
        page_token = page.get("next_page_token", "")
        if not page_token:
            return found


def eventually_all(rest: Rest, path: str, token: str, items: str, **query: str) -> None:
    """Wait until the list holds ROWS items (the events reached the service)."""
    wait_for(
        lambda: sum(map(len, pages(rest, path, token, items, **query))) >= ROWS,
        timeout=60,
        interval=0.5,
        what=f"{ROWS} {items} at {path}",
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    gateway = GatewaySettings(rate_limit=RateLimitSettings.unlimited())
    var_dir: Path = tmp_path_factory.mktemp("paging")
    with fresh_platform(
        var_dir, gateway=gateway, service_env={"PT_MANAGER_AUTO_ASSIGN": "true"}
    ) as platform:
        rest = Rest(platform.gateway_url)
        manager = platform.token("manager", "pager-manager")
        trainer_id = ok(rest.post("/v1/trainers", manager, {"name": "Aaron First"}))["trainer_id"]
        customer_id = f"pager-{uuid.uuid4().hex[:8]}"
        customer = platform.token("customer", customer_id)
        seeded = Seeded(platform, rest, customer_id, trainer_id, [])
        body = {"customer_name": "Pat", "class_name": "Pilates 1:1"}
        seeded.orders = [
            placed["order_id"]
            for placed in in_parallel([lambda: ok(rest.post("/v1/orders", customer, body))] * ROWS)
        ]
        eventually_all(rest, "/v1/schedules", seeded.trainer, "schedules")
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)

        def hold(n: int, order_id: str) -> None:
            slot = {
                "start_time": (start + timedelta(hours=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "duration_minutes": 60,
            }
            ok(rest.post(f"/v1/schedules/{order_id}:confirm", seeded.trainer, slot))
            path = f"/v1/schedules/{order_id}:result"
            ok(rest.post(path, seeded.trainer, {"result": f"Result {n}"}))

        def register(n: int) -> None:
            ok(rest.post("/v1/trainers", manager, {"name": f"Trainer {n:03d}"}))

        # the roster grows only now: every order went to the first trainer
        in_parallel(
            [lambda n=n, o=o: hold(n, o) for n, o in enumerate(seeded.orders)]
            + [lambda n=n: register(n) for n in range(ROWS - 1)]
        )
        results = f"/v1/status/customers/{customer_id}/results"
        eventually_all(rest, results, customer, "results")
        notifications = f"/v1/status/customers/{customer_id}/notifications"
        eventually_all(rest, notifications, customer, "notifications")
        eventually_all(
            rest,
            "/v1/status/orders",
            manager,
            "statuses",
            customer_id=customer_id,
            order_status="ORDER_STATUS_COMPLETED",
        )
        yield seeded


async def _read(url: str, read: Callable[[Any], Any], new_uow: Callable[[AsyncEngine], Any]) -> Any:
    engine = create_engine(url)
    try:
        uow = new_uow(engine)
        async with uow:
            return await read(uow)
    finally:
        await engine.dispose()


def repository(
    seeded: Seeded, context: str, new_uow: Callable[[AsyncEngine], Any], read: Callable[[Any], Any]
) -> list[str]:
    """The ids a service's own repository lists in one read (SQLite beside the service)."""
    url = f"sqlite:///{seeded.platform.var_dir / f'{context}_svc.db'}"
    return asyncio.run(_read(url, read, new_uow))


@dataclass(frozen=True)
class Listing:
    """One List method as a curl user calls it, and the same list read by the service's
    repository."""

    path: Callable[[Seeded], str]
    items: str
    key: str
    token: Callable[[Seeded], str]
    query: Callable[[Seeded], dict[str, str]]
    other_filters: Callable[[Seeded], dict[str, str]]
    stored: Callable[[Seeded], list[str]]


def _orders(s: Seeded) -> list[str]:
    return repository(
        s,
        "order",
        lambda e: order_sql.SqlOrderUnitOfWork(e, order_sql.messaging, None),
        lambda uow: _ids(uow.orders.list(s.customer_id, PageRequest(ORDER_PAGES, EVERYTHING))),
    )


def _trainers(s: Seeded) -> list[str]:
    return repository(
        s,
        "manager",
        lambda e: manager_sql.SqlManagerUnitOfWork(e, manager_sql.messaging, None),
        lambda uow: _ids(uow.trainers.list(PageRequest(TRAINER_PAGES, EVERYTHING)), "trainer_id"),
    )


def _assignments(s: Seeded) -> list[str]:
    return repository(
        s,
        "manager",
        lambda e: manager_sql.SqlManagerUnitOfWork(e, manager_sql.messaging, None),
        lambda uow: _ids(
            uow.assignments.list(None, s.trainer_id, PageRequest(ASSIGNMENT_PAGES, EVERYTHING))
        ),
    )


def _schedules(s: Seeded) -> list[str]:
    return repository(
        s,
        "trainer",
        lambda e: trainer_sql.SqlTrainerUnitOfWork(e, trainer_sql.messaging, None),
        lambda uow: _ids(
            uow.schedules.list(s.trainer_id, None, PageRequest(SCHEDULE_PAGES, EVERYTHING))
        ),
    )


def _status(s: Seeded, read: Callable[[Any], Any]) -> list[str]:
    return repository(
        s, "status", lambda e: status_sql.SqlStatusUnitOfWork(e, status_sql.messaging, None), read
    )


def _views(s: Seeded) -> list[str]:
    wanted = StatusFilter(customer_id=s.customer_id)
    return _status(s, lambda uow: _ids(uow.views.list(wanted, PageRequest(VIEW_PAGES, EVERYTHING))))


def _results(s: Seeded) -> list[str]:
    page = PageRequest(CLASS_RESULT_PAGES, EVERYTHING)
    return _status(s, lambda uow: _ids(uow.views.with_class_results(s.customer_id, page)))


def _notifications(s: Seeded) -> list[str]:
    page = PageRequest(NOTIFICATION_PAGES, EVERYTHING)
    return _status(
        s, lambda uow: _ids(uow.notifications.list(s.customer_id, page), "notification_id")
    )


async def _ids(listed: Any, key: str = "order_id") -> list[str]:
    return [getattr(item, key) for item in await listed]


LISTINGS = {
    "ListOrders": Listing(
        lambda s: "/v1/orders",
        "orders",
        "order_id",
        lambda s: s.manager,
        lambda s: {"customer_id": s.customer_id},
        lambda s: {},
        _orders,
    ),
    "ListTrainers": Listing(
        lambda s: "/v1/trainers",
        "trainers",
        "trainer_id",
        lambda s: s.manager,
        lambda s: {},
        lambda s: {},
        _trainers,
    ),
    "ListAssignments": Listing(
        lambda s: "/v1/assignments",
        "assignments",
        "order_id",
        lambda s: s.manager,
        lambda s: {"trainer_id": s.trainer_id},
        lambda s: {"trainer_id": s.trainer_id, "status": "ASSIGNMENT_STATUS_ORDER_CONFIRMED"},
        _assignments,
    ),
    "ListSchedules": Listing(
        lambda s: "/v1/schedules",
        "schedules",
        "order_id",
        lambda s: s.trainer,
        lambda s: {},
        lambda s: {"status": "SCHEDULE_STATUS_CLASS_COMPLETED"},
        _schedules,
    ),
    "ListOrderStatuses": Listing(
        lambda s: "/v1/status/orders",
        "statuses",
        "order_id",
        lambda s: s.manager,
        lambda s: {"customer_id": s.customer_id},
        lambda s: {},
        _views,
    ),
    "ListClassResults": Listing(
        lambda s: f"/v1/status/customers/{s.customer_id}/results",
        "results",
        "order_id",
        lambda s: s.customer,
        lambda s: {},
        lambda s: {"customer_id": "someone-else"},
        _results,
    ),
    "ListNotifications": Listing(
        lambda s: f"/v1/status/customers/{s.customer_id}/notifications",
        "notifications",
        "notification_id",
        lambda s: s.manager,
        lambda s: {},
        lambda s: {"__path__": f"/v1/status/customers/{s.customer_id}x/notifications"},
        _notifications,
    ),
}


@pytest.mark.parametrize("method", LISTINGS)
def test_250_rows_are_three_pages_in_the_repositorys_order(seeded: Seeded, method: str) -> None:
    listing = LISTINGS[method]
    found = pages(
        seeded.rest,
        listing.path(seeded),
        listing.token(seeded),
        listing.items,
        **listing.query(seeded),
    )
    assert [len(page) for page in found] == [100, 100, 50]
    listed = [item[listing.key] for page in found for item in page]
    assert len(set(listed)) == ROWS
    if listing.key == "order_id":
        assert set(listed) == set(seeded.orders)
    assert listed == listing.stored(seeded)


def _second_page_token(seeded: Seeded, listing: Listing) -> str:
    query = {**listing.query(seeded), "page_size": str(PAGE)}
    first = ok(seeded.rest.get(f"{listing.path(seeded)}?{urlencode(query)}", listing.token(seeded)))
    token: str = first["next_page_token"]
    assert token
    return token


def _refused(seeded: Seeded, path: str, query: dict[str, str], token: str) -> None:
    reply = seeded.rest.get(f"{path}?{urlencode(query)}", token)
    status, code, message = reply.error()
    assert (status, code) == (400, INVALID_ARGUMENT), reply.text
    assert "page_token" in message
    violations = [
        violation["field"]
        for detail in reply.json["details"]
        for violation in detail.get("field_violations", [])
    ]
    assert violations == ["page_token"], reply.text


@pytest.mark.parametrize("method", LISTINGS)
def test_a_tampered_token_is_refused(seeded: Seeded, method: str) -> None:
    listing = LISTINGS[method]
    token = _second_page_token(seeded, listing)
    for tampered in (token[:-1] + ("A" if token[-1] != "A" else "B"), token[:20], "x" + token):
        query = {**listing.query(seeded), "page_token": tampered}
        _refused(seeded, listing.path(seeded), query, listing.token(seeded))


@pytest.mark.parametrize("method", [m for m in LISTINGS if m != "ListTrainers"])
def test_a_token_reused_with_other_filters_is_refused(seeded: Seeded, method: str) -> None:
    listing = LISTINGS[method]
    token = _second_page_token(seeded, listing)
    other = dict(listing.other_filters(seeded))
    path = other.pop("__path__", listing.path(seeded))
    if method == "ListClassResults":  # the customer is in the path: a manager asks for another
        path = f"/v1/status/customers/{other.pop('customer_id')}/results"
        _refused(seeded, path, {"page_token": token}, seeded.manager)
        return
    _refused(seeded, path, {**other, "page_token": token}, listing.token(seeded))


def test_a_token_of_one_list_is_refused_by_another(seeded: Seeded) -> None:
    token = _second_page_token(seeded, LISTINGS["ListTrainers"])
    _refused(seeded, "/v1/assignments", {"page_token": token}, seeded.manager)


def test_page_size_over_the_maximum_is_coerced_to_it(seeded: Seeded) -> None:
    page = ok(seeded.rest.get("/v1/trainers?page_size=1000", seeded.manager))
    assert len(page["trainers"]) == PAGE
    assert page["next_page_token"]
