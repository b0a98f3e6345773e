"""OrderStatusView: what the read side shows about one order, whatever the event order."""

from __future__ import annotations

from dataclasses import replace

from status_svc.domain.events import ObservedEvent
from status_svc.domain.model import (
    AssignmentStatus,
    ClassResult,
    OrderStatus,
    OrderStatusView,
    ScheduleStatus,
)
from status_svc.domain.notifications import Notification, notification_id_for
from tests.status.flows import CLASS_START, OrderFlow


def fold(events: list[ObservedEvent], order_id: str) -> OrderStatusView:
    view = OrderStatusView(order_id=order_id)
    for event in events:
        view.observe(event)
    return view


def same(one: OrderStatusView, other: OrderStatusView) -> bool:
    """Equal but for the row version (how many changes it took to get there)."""
    return replace(one, version=0) == replace(other, version=0)


def test_a_held_class_shows_every_step_done() -> None:
    flow = OrderFlow(class_name="Pilates 1:1").held("t-kim")
    view = fold(flow.events, flow.order_id)
    assert view.customer_id == "alice"
    assert view.customer_name == "Alice"
    assert view.class_name == "Pilates 1:1"
    assert view.order_status is OrderStatus.COMPLETED
    assert view.assignment_status is AssignmentStatus.ORDER_CONFIRMED
    assert view.schedule_status is ScheduleStatus.CLASS_COMPLETED
    assert (view.trainer_id, view.trainer_name) == ("t-kim", "Kim")
    assert view.start_time == CLASS_START
    assert view.class_result == "Great form"
    assert view.updated_at == flow.events[-1].occurred_at


def test_a_new_order_awaits_a_trainer() -> None:
    flow = OrderFlow().placed()
    view = fold(flow.events, flow.order_id)
    assert view.order_status is OrderStatus.PLACED
    assert view.assignment_status is AssignmentStatus.AWAITING_TRAINER
    assert view.schedule_status is None


def test_an_assigned_trainer_has_a_schedule_request() -> None:
    flow = OrderFlow().placed().assigned("t-kim")
    view = fold(flow.events, flow.order_id)
    assert view.assignment_status is AssignmentStatus.TRAINER_ASSIGNED
    assert view.schedule_status is ScheduleStatus.REQUESTED


def test_schedule_confirmed_before_order_placed_ends_right() -> None:
    flow = OrderFlow().placed().assigned("t-kim").schedule_requested()
    flow.schedule_confirmed("t-kim").order_confirmed()
    placed, assigned, confirmed, order_confirmed = flow.events
    early = fold([confirmed], flow.order_id)
    assert early.schedule_status is ScheduleStatus.CONFIRMED
    assert early.trainer_id == "t-kim"
    assert early.order_status is None
    late = fold([confirmed, order_confirmed, assigned, placed], flow.order_id)
    assert same(late, fold(flow.events, flow.order_id))
    assert late.order_status is OrderStatus.CONFIRMED
    assert late.class_name == "Pilates 1:1"


def test_a_stale_status_does_not_overwrite_a_newer_one() -> None:
    flow = OrderFlow().placed().order_cancelled()
    placed, cancelled = flow.events
    view = fold([cancelled, placed], flow.order_id)
    assert view.order_status is OrderStatus.CANCELLED
    assert view.customer_name == "Alice"


def test_cancelled_schedule_wins_over_an_older_confirmation() -> None:
    flow = OrderFlow().placed().assigned("t-kim").schedule_requested().schedule_confirmed("t-kim")
    flow.order_confirmed().order_cancelled().assignment_cancelled("t-kim").schedule_cancelled(
        "t-kim"
    )
    view = fold(list(reversed(flow.events)), flow.order_id)
    assert view.order_status is OrderStatus.CANCELLED
    assert view.assignment_status is AssignmentStatus.CANCELLED
    assert view.schedule_status is ScheduleStatus.CANCELLED
    assert view.start_time == CLASS_START


def test_an_empty_value_never_erases_a_known_one() -> None:
    flow = OrderFlow().placed().assigned("t-kim").order_cancelled().assignment_cancelled("")
    view = fold(flow.events, flow.order_id)
    assert (view.trainer_id, view.trainer_name) == ("t-kim", "Kim")
    assert view.assignment_status is AssignmentStatus.CANCELLED


def test_a_cancelled_order_cancels_an_assignment_not_yet_reported() -> None:
    flow = OrderFlow().placed().order_cancelled()
    assert fold(flow.events, flow.order_id).assignment_status is AssignmentStatus.CANCELLED


def test_reassignment_shows_the_latest_trainer_whatever_the_order() -> None:
    flow = OrderFlow().placed().assigned("t-kim").assigned("t-lee")
    placed, to_kim, to_lee = flow.events
    for events in ([placed, to_kim, to_lee], [to_lee, placed, to_kim], [to_kim, to_lee, placed]):
        view = fold(events, flow.order_id)
        assert (view.trainer_id, view.trainer_name) == ("t-lee", "Lee")


def test_the_trainer_who_confirmed_holds_the_class_after_a_late_reassignment() -> None:
    flow = OrderFlow().placed().assigned("t-kim").schedule_requested().schedule_confirmed("t-kim")
    flow.assigned("t-lee").order_confirmed()
    view = fold(flow.events, flow.order_id)
    assert (view.trainer_id, view.trainer_name) == ("t-kim", "Kim")
    assert view.assignment_status is AssignmentStatus.ORDER_CONFIRMED


def test_a_repeated_event_changes_nothing() -> None:
    flow = OrderFlow().placed().assigned("t-kim")
    view = fold(flow.events, flow.order_id)
    before = replace(view, stamps=dict(view.stamps), trainer_names=dict(view.trainer_names))
    assert not view.observe(flow.events[0])
    assert not view.observe(flow.events[1])
    assert view == before


def test_the_class_result_reads_names_from_the_view() -> None:
    flow = OrderFlow(class_name="Yoga").held("t-lee")
    result = ClassResult.of(fold(flow.events, flow.order_id))
    assert (result.class_name, result.trainer_id, result.trainer_name) == ("Yoga", "t-lee", "Lee")
    assert result.result == "Great form"
    assert result.recorded_at == flow.events[-2].occurred_at


def test_a_notification_is_named_after_its_event() -> None:
    flow = OrderFlow(class_name="Pilates 1:1").held()
    registered = flow.events[-2]
    view = fold(flow.events, flow.order_id)
    notification = Notification.of_result(registered, view)  # type: ignore[arg-type]
    assert notification.notification_id == notification_id_for(registered.event_id)
    assert notification == Notification.of_result(registered, view)  # type: ignore[arg-type]
    assert notification.customer_id == "alice"
    assert notification.message == "Your class result for 'Pilates 1:1' is ready"
    assert replace(notification, class_name="").message == "Your class result is ready"
