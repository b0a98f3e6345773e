"""Whatever order the events arrive in, and however often, the read side ends the same.

Several orders live through whole flows (held classes, cancellations at each step,
re-assignments); their events are fed in order once, then shuffled with duplicates.
Views, class results and notifications must come out identical, and as the flow says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st

from ptkit.auth import Caller, Role
from ptkit.paging import PageTokens
from status_svc.application import handlers
from status_svc.application.bell import NotificationBell
from status_svc.domain.events import ObservedEvent, Origin
from status_svc.domain.model import AssignmentStatus as A
from status_svc.domain.model import ClassResult, OrderStatusView
from status_svc.domain.model import OrderStatus as O
from status_svc.domain.model import ScheduleStatus as S
from status_svc.domain.notifications import Notification
from status_svc.domain.notifications import NotificationKind as K
from tests.status.fakes import FakeStatusUnitOfWork as FakeUnitOfWork
from tests.status.flows import OrderFlow, project

MANAGER = Caller("m-1", Role.MANAGER)

CUSTOMERS = ("alice", "bob")

TOKENS = PageTokens.development()


@dataclass(frozen=True)
class Outcome:
    """How a flow must end in the view."""

    order_status: O
    assignment_status: A
    schedule_status: S | None
    trainer_id: str
    cancellation_refused: bool = False


def held(flow: OrderFlow) -> Outcome:
    flow.held("t-kim")
    return Outcome(O.COMPLETED, A.ORDER_CONFIRMED, S.CLASS_COMPLETED, "t-kim")


def cancelled_awaiting_trainer(flow: OrderFlow) -> Outcome:
    flow.placed().order_cancelled().assignment_cancelled()
    return Outcome(O.CANCELLED, A.CANCELLED, None, "")


def cancelled_before_assignment_reached_trainer(flow: OrderFlow) -> Outcome:
    # trainer_svc records the cancellation first; the late TrainerAssigned opens nothing
    flow.placed().assigned("t-kim").order_cancelled().assignment_cancelled(
        "t-kim"
    ).schedule_cancelled()
    return Outcome(O.CANCELLED, A.CANCELLED, S.CANCELLED, "t-kim")


def cancelled_after_assignment(flow: OrderFlow) -> Outcome:
    flow.placed().assigned("t-kim").schedule_requested()
    flow.order_cancelled().assignment_cancelled("t-kim").schedule_cancelled("t-kim")
    return Outcome(O.CANCELLED, A.CANCELLED, S.CANCELLED, "t-kim")


def cancelled_after_confirmation(flow: OrderFlow) -> Outcome:
    flow.placed().assigned("t-lee").schedule_requested().schedule_confirmed(
        "t-lee"
    ).order_confirmed()
    flow.order_cancelled().assignment_cancelled("t-lee").schedule_cancelled("t-lee")
    return Outcome(O.CANCELLED, A.CANCELLED, S.CANCELLED, "t-lee")


def cancelled_after_the_class_was_held(flow: OrderFlow) -> Outcome:
    # the cancel race (ADR 0007): trainer_svc refuses, order_svc holds the order after all
    flow.placed().assigned("t-kim").schedule_requested().schedule_confirmed(
        "t-kim"
    ).order_confirmed()
    flow.order_cancelled().result("t-kim").cancellation_refused().order_completed()
    return Outcome(O.COMPLETED, A.ORDER_CONFIRMED, S.CLASS_COMPLETED, "t-kim", True)


def reassigned(flow: OrderFlow) -> Outcome:
    flow.placed().assigned("t-kim").schedule_requested().assigned("t-lee").touch(Origin.SCHEDULE)
    flow.schedule_confirmed("t-lee").order_confirmed().result("t-lee").order_completed()
    return Outcome(O.COMPLETED, A.ORDER_CONFIRMED, S.CLASS_COMPLETED, "t-lee")


def reassigned_after_the_trainer_confirmed(flow: OrderFlow) -> Outcome:
    flow.placed().assigned("t-kim").schedule_requested().schedule_confirmed("t-kim")
    flow.assigned("t-lee").order_confirmed()
    return Outcome(O.CONFIRMED, A.ORDER_CONFIRMED, S.CONFIRMED, "t-kim")


def still_requested(flow: OrderFlow) -> Outcome:
    flow.placed().assigned("t-lee")
    return Outcome(O.PLACED, A.TRAINER_ASSIGNED, S.REQUESTED, "t-lee")


SCENARIOS: list[Callable[[OrderFlow], Outcome]] = [
    held,
    cancelled_awaiting_trainer,
    cancelled_before_assignment_reached_trainer,
    cancelled_after_assignment,
    cancelled_after_confirmation,
    cancelled_after_the_class_was_held,
    reassigned,
    reassigned_after_the_trainer_confirmed,
    still_requested,
]


@dataclass
class ReadSide:
    """Everything status_svc serves: views (but their row versions), results, notifications."""

    views: dict[str, OrderStatusView]
    results: dict[str, list[ClassResult]]
    notifications: dict[str, list[Notification]]


async def read_side(events: list[ObservedEvent]) -> ReadSide:
    """What status_svc would serve after handling ``events`` one by one."""
    uow = FakeUnitOfWork()
    for event in events:
        await project(event, uow, NotificationBell())
    return ReadSide(
        views={order_id: replace(view, version=0) for order_id, view in uow.views.rows.items()},
        results={
            c: (
                await handlers.list_class_results(
                    handlers.ListClassResults(c, MANAGER), uow, TOKENS
                )
            ).items
            for c in CUSTOMERS
        },
        notifications={
            c: (
                await handlers.list_notifications(
                    handlers.ListNotifications(c, MANAGER), uow, TOKENS
                )
            ).items
            for c in CUSTOMERS
        },
    )


@st.composite
def orders(draw: st.DrawFn) -> tuple[list[ObservedEvent], dict[str, Outcome]]:
    clock = count()
    events: list[ObservedEvent] = []
    outcomes: dict[str, Outcome] = {}
    for scenario in draw(st.lists(st.sampled_from(SCENARIOS), min_size=1, max_size=4)):
        customer_id = draw(st.sampled_from(CUSTOMERS))
        flow = OrderFlow(customer_id=customer_id, class_name=scenario.__name__, clock=clock)
        outcomes[flow.order_id] = scenario(flow)
        events += flow.events
    return events, outcomes


@st.composite
def shuffled_with_duplicates(draw: st.DrawFn, events: list[ObservedEvent]) -> list[ObservedEvent]:
    feed = list(draw(st.permutations(events)))
    for again in draw(st.lists(st.sampled_from(events), max_size=len(events))):
        feed.insert(draw(st.integers(0, len(feed))), again)
    return feed


def outcome_of(view: OrderStatusView) -> Outcome:
    return Outcome(
        view.order_status,
        view.assignment_status,
        view.schedule_status,
        view.trainer_id,
        bool(view.cancellation_refused_reason),
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_arrival_order_with_duplicates_gives_the_in_order_read_side(
    data: st.DataObject,
) -> None:
    events, outcomes = data.draw(orders())
    feed = data.draw(shuffled_with_duplicates(events))
    expected = asyncio.run(read_side(events))
    assert asyncio.run(read_side(feed)) == expected
    assert {order_id: outcome_of(view) for order_id, view in expected.views.items()} == outcomes
    held = {
        order_id for order_id, end in outcomes.items() if end.schedule_status is S.CLASS_COMPLETED
    }
    refused = {order_id for order_id, end in outcomes.items() if end.cancellation_refused}
    told = {(n.order_id, n.kind) for sent in expected.notifications.values() for n in sent}
    assert told == {(o, K.CLASS_RESULT_READY) for o in held} | {
        (o, K.CANCELLATION_REFUSED) for o in refused
    }
    assert {r.order_id for listed in expected.results.values() for r in listed} == held
