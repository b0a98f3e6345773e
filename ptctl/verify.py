"""``ptctl verify``: a consistency audit of a running platform, through its public parts.

For every order it reads what each context says (order_svc's order, manager_svc's
assignment, trainer_svc's schedule, status_svc's view, all through the gateway with a
manager token) and checks them against :data:`RULES`, one row per order status. The
platform is eventually consistent, so an order that breaks a rule is read again, alone,
until it agrees or the settle period is over; only then is it reported. The audit also
reads each publishing service's outbox gauges from its ``/metrics``, every durable
consumer's lag from JetStream, and the message count of the dead-letter stream.

Reads: every List call pages through every row (ptctl.pages, page_size 100). An order
whose view was not listed (its events have not arrived, or it was updated while the
views were paged) is read with GetOrderStatus.

:func:`audit` is the Python API (tests use it as their oracle); :func:`main_verify` is
the subcommand.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import nats
from prometheus_client.parser import text_string_to_metric_families

from ptctl.bus import connected
from ptctl.dlq import dead_letter_count
from ptctl.pages import every_page
from ptkit.messaging import NatsIdentity
from ptkit.statuses import AssignmentStatus, OrderStatus, ScheduleStatus
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc

if TYPE_CHECKING:
    from ptctl.launcher import Platform

T = TypeVar("T")

EVENTS_STREAM = "PT_EVENTS"
OUTBOX_CONTEXTS = ("order", "manager", "trainer")  # status_svc publishes nothing


# -- what each context says about one order --------------------------------------------
@dataclass(frozen=True)
class Assignment:
    status: AssignmentStatus
    trainer_id: str
    refused_cancellation: str = ""


@dataclass(frozen=True)
class Schedule:
    status: ScheduleStatus
    trainer_id: str
    class_result: str = ""


@dataclass(frozen=True)
class View:
    order_status: OrderStatus | None
    assignment_status: AssignmentStatus | None
    schedule_status: ScheduleStatus | None
    trainer_id: str
    class_result: str
    refused_cancellation: str = ""


@dataclass(frozen=True)
class Snapshot:
    """One order as the four contexts report it (None: that context has no record)."""

    order_id: str
    order: OrderStatus
    assignment: Assignment | None
    schedule: Schedule | None
    view: View | None
    refused_cancellation: str = ""
    """The order's record of a cancellation refused because the class was already held
    (ADR 0007): order_svc then holds the order COMPLETED."""


# -- the agreement table -----------------------------------------------------------------
Check = Callable[[Snapshot], bool]


@dataclass(frozen=True)
class Rule:
    says: str
    holds: Check


def _assignment_in(*wanted: AssignmentStatus) -> Check:
    return lambda s: s.assignment is not None and s.assignment.status in wanted


def _schedule_in(*wanted: ScheduleStatus) -> Check:
    return lambda s: s.schedule is not None and s.schedule.status in wanted


def _no_trainer_yet(s: Snapshot) -> bool:
    return s.assignment is not None and not s.assignment.trainer_id


def _requested_from_assigned_trainer(s: Snapshot) -> bool:
    if _assignment_in(AssignmentStatus.AWAITING_TRAINER)(s):
        return s.schedule is None
    return (
        _schedule_in(ScheduleStatus.REQUESTED)(s)
        and s.assignment is not None
        and s.schedule is not None
        and s.schedule.trainer_id == s.assignment.trainer_id
    )


def _refusal_told_alike(s: Snapshot) -> bool:
    """The compensated cancel race (ADR 0007): manager_svc records the refused
    cancellation, order_svc and status_svc learn it from CancellationRefused; until
    both have, the order still reads CANCELLED and the parts disagree."""
    told = {s.refused_cancellation}
    told |= {x.refused_cancellation for x in (s.assignment, s.view) if x is not None}
    return len(told) == 1


def _one_trainer_everywhere(s: Snapshot) -> bool:
    named = [x.trainer_id for x in (s.assignment, s.schedule, s.view) if x is not None]
    return all(named) and len(named) == 3 and len(set(named)) == 1


def _trainers_do_not_differ(s: Snapshot) -> bool:
    named = {x.trainer_id for x in (s.assignment, s.schedule, s.view) if x and x.trainer_id}
    return len(named) <= 1


def _view_mirrors_the_sources(s: Snapshot) -> bool:
    """The view shows the order's status, and the assignment's and schedule's when they
    exist (the view learns statuses only from events, so this is what it must end at)."""
    view = s.view
    if view is None or view.order_status is not s.order:
        return False
    if s.assignment is not None and view.assignment_status is not s.assignment.status:
        return False
    return s.schedule is None or view.schedule_status is s.schedule.status


def _view_has_the_class_result(s: Snapshot) -> bool:
    return (
        s.view is not None
        and s.schedule is not None
        and bool(s.schedule.class_result)
        and s.view.class_result == s.schedule.class_result
    )


VIEW_MIRRORS = Rule(
    "view shows the order, assignment and schedule statuses", _view_mirrors_the_sources
)
REFUSAL_TOLD_ALIKE = Rule(
    "a refused cancellation is recorded alike by order, assignment and view",
    _refusal_told_alike,
)

RULES: dict[OrderStatus, tuple[Rule, ...]] = {
    OrderStatus.PLACED: (
        Rule(
            "assignment AWAITING_TRAINER or TRAINER_ASSIGNED",
            _assignment_in(AssignmentStatus.AWAITING_TRAINER, AssignmentStatus.TRAINER_ASSIGNED),
        ),
        Rule(
            "schedule absent while no trainer is assigned, else REQUESTED from that trainer",
            _requested_from_assigned_trainer,
        ),
        Rule("no two contexts name different trainers", _trainers_do_not_differ),
        VIEW_MIRRORS,
        REFUSAL_TOLD_ALIKE,
    ),
    OrderStatus.CONFIRMED: (
        Rule("schedule CONFIRMED", _schedule_in(ScheduleStatus.CONFIRMED)),
        Rule("assignment ORDER_CONFIRMED", _assignment_in(AssignmentStatus.ORDER_CONFIRMED)),
        Rule("the same trainer in assignment, schedule and view", _one_trainer_everywhere),
        VIEW_MIRRORS,
        REFUSAL_TOLD_ALIKE,
    ),
    OrderStatus.COMPLETED: (
        Rule("schedule CLASS_COMPLETED", _schedule_in(ScheduleStatus.CLASS_COMPLETED)),
        Rule("assignment ORDER_CONFIRMED", _assignment_in(AssignmentStatus.ORDER_CONFIRMED)),
        Rule("the same trainer in assignment, schedule and view", _one_trainer_everywhere),
        VIEW_MIRRORS,
        REFUSAL_TOLD_ALIKE,
        Rule("view has the class result", _view_has_the_class_result),
    ),
    OrderStatus.CANCELLED: (
        Rule("assignment CANCELLED", _assignment_in(AssignmentStatus.CANCELLED)),
        Rule(
            "schedule CANCELLED (absent if no trainer was assigned), never CLASS_COMPLETED",
            lambda s: (
                _schedule_in(ScheduleStatus.CANCELLED)(s)
                or (s.schedule is None and _no_trainer_yet(s))
            ),
        ),
        Rule("no two contexts name different trainers", _trainers_do_not_differ),
        VIEW_MIRRORS,
        REFUSAL_TOLD_ALIKE,
    ),
}


def broken_rules(snapshot: Snapshot) -> list[str]:
    """What the snapshot breaks of its order status's row (empty: the contexts agree)."""
    return [rule.says for rule in RULES[snapshot.order] if not rule.holds(snapshot)]


# -- the report ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Divergence:
    order_id: str
    broken: list[str]
    snapshot: dict[str, Any]


@dataclass(frozen=True)
class OutboxGauge:
    context: str
    endpoint: str
    backlog: float
    oldest_age_seconds: float


@dataclass(frozen=True)
class ConsumerLag:
    durable: str
    num_pending: int
    num_ack_pending: int
    num_redelivered: int


@dataclass
class Report:
    orders: int = 0
    divergent: list[Divergence] = field(default_factory=list)
    outboxes: list[OutboxGauge] = field(default_factory=list)
    outbox_age_limit: float = 0.0
    consumers: list[ConsumerLag] = field(default_factory=list)
    dead_letters: int = 0
    unreachable: list[str] = field(default_factory=list)

    @property
    def divergent_order_ids(self) -> list[str]:
        return [d.order_id for d in self.divergent]

    @property
    def old_outboxes(self) -> list[OutboxGauge]:
        return [o for o in self.outboxes if o.oldest_age_seconds > self.outbox_age_limit]

    @property
    def clean(self) -> bool:
        return not (self.divergent or self.old_outboxes or self.dead_letters or self.unreachable)

    def as_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "orders": self.orders,
            "divergent_order_ids": self.divergent_order_ids,
            "divergent": [asdict(d) for d in self.divergent],
            "outboxes": [asdict(o) for o in self.outboxes],
            "old_outboxes": [asdict(o) for o in self.old_outboxes],
            "outbox_age_limit_seconds": self.outbox_age_limit,
            "consumers": [asdict(c) for c in self.consumers],
            "dead_letters": self.dead_letters,
            "unreachable": self.unreachable,
        }

    def summary(self) -> str:
        lines = [f"orders checked: {self.orders}, divergent: {len(self.divergent)}"]
        for divergence in self.divergent:
            lines.append(f"  {divergence.order_id}: {'; '.join(divergence.broken)}")
            lines.append(f"    {json.dumps(divergence.snapshot, sort_keys=True)}")
        for gauge in self.outboxes:
            old = " OLD" if gauge in self.old_outboxes else ""
            lines.append(
                f"outbox {gauge.context} ({gauge.endpoint}): backlog {gauge.backlog:g}, "
                f"oldest {gauge.oldest_age_seconds:.1f}s{old}"
            )
        for lag in self.consumers:
            lines.append(
                f"consumer {lag.durable}: pending {lag.num_pending}, "
                f"ack pending {lag.num_ack_pending}, redelivered {lag.num_redelivered}"
            )
        lines.append(f"dead letters: {self.dead_letters}")
        lines.extend(f"unreachable: {what}" for what in self.unreachable)
        lines.append("CLEAN" if self.clean else "NOT CLEAN")
        return "\n".join(lines)


# -- where to read -------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    gateway: str
    token: str
    nats_url: str
    metrics: dict[str, list[str]]
    """context -> the ``/metrics`` URL of each replica."""
    nats_identity: NatsIdentity | None = None
    """None: the admin's from the environment (ptctl.bus.admin_identity)."""

    @classmethod
    def of_platform(cls, platform: Platform, token: str | None = None) -> Target:
        return cls(
            gateway=platform.gateway_address,
            token=token or platform.token("manager", "ptctl-verify"),
            nats_url=platform.nats_url,
            nats_identity=platform.nats_admin,
            metrics={
                context: [f"http://127.0.0.1:{port}/metrics" for port in ports]
                for context, ports in platform.config.metrics_ports.items()
            },
        )


# -- reading the services ------------------------------------------------------------------
def _status_of(enum_type: type[T], proto_enum: Any, number: int) -> T | None:
    if number == 0:
        return None
    return enum_type(proto_enum.Name(number).split("_STATUS_", 1)[1])  # type: ignore[call-arg]


RETRIED = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)


class Reader:
    """The four services through the gateway, as a manager."""

    def __init__(self, channel: grpc.Channel, token: str) -> None:
        self.orders = order_grpc.OrderServiceStub(channel)
        self.managers = manager_grpc.ManagerServiceStub(channel)
        self.trainers = trainer_grpc.TrainerServiceStub(channel)
        self.status = status_grpc.StatusServiceStub(channel)
        self.auth = (("authorization", f"Bearer {token}"),)

    def call(self, method: Callable[..., T], request: Any, attempts: int = 5) -> T:
        """Retry a rate-limited or briefly unavailable read with backoff."""
        for attempt in range(attempts):
            try:
                return method(request, metadata=self.auth, timeout=10)
            except grpc.RpcError as error:
                if error.code() not in RETRIED or attempt == attempts - 1:
                    raise
                time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def found(self, method: Callable[..., T], request: Any) -> T | None:
        try:
            return self.call(method, request)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    # -- everything at once
    def every(self, method: Callable[..., Any], request: Any, items: str) -> Iterator[Any]:
        return every_page(lambda page: self.call(method, page), request, items)

    def all_orders(self) -> Iterator[order.Order]:
        return self.every(self.orders.ListOrders, order.ListOrdersRequest(), "orders")

    def all_assignments(self) -> dict[str, Assignment]:
        listed = self.every(
            self.managers.ListAssignments, manager.ListAssignmentsRequest(), "assignments"
        )
        return {a.order_id: _assignment(a) for a in listed}

    def all_schedules(self) -> dict[str, Schedule]:
        listed = self.every(
            self.trainers.ListSchedules, trainer.ListSchedulesRequest(), "schedules"
        )
        return {s.order_id: _schedule(s) for s in listed}

    def listed_views(self) -> dict[str, View]:
        listed = self.every(
            self.status.ListOrderStatuses, status.ListOrderStatusesRequest(), "statuses"
        )
        return {v.order_id: _view(v) for v in listed}

    # -- one order
    def snapshot(self, order_id: str) -> Snapshot | None:
        placed = self.found(self.orders.GetOrder, order.GetOrderRequest(order_id=order_id))
        if placed is None:
            return None
        assignment = self.found(
            self.managers.GetAssignment, manager.GetAssignmentRequest(order_id=order_id)
        )
        schedule = self.found(
            self.trainers.GetSchedule, trainer.GetScheduleRequest(order_id=order_id)
        )
        return Snapshot(
            order_id=order_id,
            order=_order_status(placed),
            assignment=None if assignment is None else _assignment(assignment),
            schedule=None if schedule is None else _schedule(schedule),
            view=self.view(order_id),
            refused_cancellation=placed.cancellation_refused_reason,
        )

    def view(self, order_id: str) -> View | None:
        found = self.found(
            self.status.GetOrderStatus, status.GetOrderStatusRequest(order_id=order_id)
        )
        return None if found is None else _view(found)


def _order_status(placed: order.Order) -> OrderStatus:
    found = _status_of(OrderStatus, order.OrderStatus, placed.status)
    assert found is not None, f"order {placed.order_id} has no status"
    return found


def _assignment(a: manager.Assignment) -> Assignment:
    found = _status_of(AssignmentStatus, manager.AssignmentStatus, a.status)
    assert found is not None, f"assignment of {a.order_id} has no status"
    return Assignment(found, a.trainer_id, a.cancellation_refused_reason)


def _schedule(s: trainer.Schedule) -> Schedule:
    found = _status_of(ScheduleStatus, trainer.ScheduleStatus, s.status)
    assert found is not None, f"schedule of {s.order_id} has no status"
    return Schedule(found, s.trainer_id, s.class_result)


def _view(v: status.OrderStatus) -> View:
    return View(
        order_status=_status_of(OrderStatus, order.OrderStatus, v.order_status),
        assignment_status=_status_of(
            AssignmentStatus, manager.AssignmentStatus, v.assignment_status
        ),
        schedule_status=_status_of(ScheduleStatus, trainer.ScheduleStatus, v.schedule_status),
        trainer_id=v.trainer_id,
        class_result=v.class_result,
        refused_cancellation=v.cancellation_refused_reason,
    )


def snapshots(reader: Reader) -> Iterator[Snapshot]:
    """Every order, with what each context says about it (lists first, Get for a view
    the list did not show)."""
    orders = list(reader.all_orders())
    assignments = reader.all_assignments()
    schedules = reader.all_schedules()
    views = reader.listed_views()
    for placed in orders:
        view = views.get(placed.order_id)
        if view is None:  # none yet, or moved while the views were paged
            view = reader.view(placed.order_id)
        yield Snapshot(
            order_id=placed.order_id,
            order=_order_status(placed),
            assignment=assignments.get(placed.order_id),
            schedule=schedules.get(placed.order_id),
            view=view,
            refused_cancellation=placed.cancellation_refused_reason,
        )


def settled(
    reader: Reader, divergent: dict[str, Snapshot], settle_seconds: float, interval: float = 0.5
) -> dict[str, Snapshot]:
    """Read each divergent order again until it agrees or ``settle_seconds`` passed."""
    deadline = time.monotonic() + settle_seconds
    while divergent and time.monotonic() < deadline:
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        for order_id in list(divergent):
            again = reader.snapshot(order_id)
            if again is None or not broken_rules(again):
                del divergent[order_id]
            else:
                divergent[order_id] = again
    return divergent


def _described(snapshot: Snapshot) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if value is None:
            return None
        return {k: getattr(v, "value", v) for k, v in asdict(value).items()}

    return {
        "order": snapshot.order.value,
        "assignment": plain(snapshot.assignment),
        "schedule": plain(snapshot.schedule),
        "view": plain(snapshot.view),
    }


def check_orders(reader: Reader, report: Report, settle_seconds: float) -> None:
    divergent: dict[str, Snapshot] = {}
    for snapshot in snapshots(reader):
        report.orders += 1
        if broken_rules(snapshot):
            divergent[snapshot.order_id] = snapshot
    for order_id, snapshot in settled(reader, divergent, settle_seconds).items():
        report.divergent.append(Divergence(order_id, broken_rules(snapshot), _described(snapshot)))


# -- metrics and NATS ----------------------------------------------------------------------
def _samples(text: str, name: str) -> Iterable[float]:
    for family in text_string_to_metric_families(text):
        yield from (sample.value for sample in family.samples if sample.name == name)


def check_outboxes(metrics: dict[str, list[str]], report: Report) -> None:
    for context in OUTBOX_CONTEXTS:
        for endpoint in metrics.get(context, []):
            try:
                with urllib.request.urlopen(endpoint, timeout=5) as response:
                    text = response.read().decode()
            except (urllib.error.URLError, OSError) as error:
                report.unreachable.append(f"{context} metrics {endpoint}: {error}")
                continue
            report.outboxes.append(
                OutboxGauge(
                    context=context,
                    endpoint=endpoint,
                    backlog=sum(_samples(text, "pt_outbox_backlog")),
                    oldest_age_seconds=max(
                        _samples(text, "pt_outbox_oldest_age_seconds"), default=0.0
                    ),
                )
            )


async def check_stream(nats_url: str, report: Report, identity: NatsIdentity | None = None) -> None:
    try:
        async with connected(nats_url, identity=identity) as js:
            for info in await js.consumers_info(EVENTS_STREAM):
                report.consumers.append(
                    ConsumerLag(
                        durable=info.name,
                        num_pending=info.num_pending or 0,
                        num_ack_pending=info.num_ack_pending or 0,
                        num_redelivered=info.num_redelivered or 0,
                    )
                )
            report.dead_letters = await dead_letter_count(js)
    except (OSError, nats.errors.Error) as error:  # what the report says
        report.unreachable.append(f"NATS {nats_url}: {error!r}")


def audit(target: Target, settle_seconds: float = 10.0, outbox_age_seconds: float = 60.0) -> Report:
    """Audit the platform at ``target``; the report says what disagrees or waits."""
    report = Report(outbox_age_limit=outbox_age_seconds)
    with grpc.insecure_channel(target.gateway) as channel:
        try:
            check_orders(Reader(channel, target.token), report, settle_seconds)
        except grpc.RpcError as error:
            report.unreachable.append(
                f"gateway {target.gateway}: {error.code().name}: {error.details()}"
            )
    check_outboxes(target.metrics, report)
    asyncio.run(check_stream(target.nats_url, report, target.nats_identity))
    report.consumers.sort(key=lambda lag: lag.durable)
    return report
