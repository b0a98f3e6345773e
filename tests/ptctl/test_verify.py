"""``ptctl verify``'s agreement table: which combinations of order, assignment, schedule
and view agree, for each order status (pure: no platform)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ptctl.verify import (
    RULES,
    Assignment,
    ConsumerLag,
    Divergence,
    OutboxGauge,
    Report,
    Schedule,
    Snapshot,
    View,
    broken_rules,
)
from ptkit.statuses import AssignmentStatus as A
from ptkit.statuses import OrderStatus as O
from ptkit.statuses import ScheduleStatus as S

KIM, LEE = "t-kim", "t-lee"
REFUSAL = "schedule of order o-1: class already held"


def snapshot(
    order: O,
    assignment: Assignment | None,
    schedule: Schedule | None,
    *,
    result: str = "",
    trainer: str | None = None,
    refused: str | None = None,
) -> Snapshot:
    """A snapshot whose view mirrors the sources exactly (what a settled view shows)."""
    named = schedule or assignment
    view = View(
        order_status=order,
        assignment_status=assignment.status if assignment else None,
        schedule_status=schedule.status if schedule else None,
        trainer_id=trainer if trainer is not None else (named.trainer_id if named else ""),
        class_result=result,
        refused_cancellation=(assignment.refused_cancellation if assignment else "")
        if refused is None
        else refused,
    )
    return Snapshot("o-1", order, assignment, schedule, view, view.refused_cancellation)


AGREEING = {
    "placed, awaiting a trainer": snapshot(O.PLACED, Assignment(A.AWAITING_TRAINER, ""), None),
    "placed, trainer asked": snapshot(
        O.PLACED, Assignment(A.TRAINER_ASSIGNED, KIM), Schedule(S.REQUESTED, KIM)
    ),
    "confirmed": snapshot(
        O.CONFIRMED, Assignment(A.ORDER_CONFIRMED, KIM), Schedule(S.CONFIRMED, KIM)
    ),
    "completed": snapshot(
        O.COMPLETED,
        Assignment(A.ORDER_CONFIRMED, KIM),
        Schedule(S.CLASS_COMPLETED, KIM, "well done"),
        result="well done",
    ),
    "completed after a refused cancellation (the compensated race)": snapshot(
        O.COMPLETED,
        Assignment(A.ORDER_CONFIRMED, KIM, REFUSAL),
        Schedule(S.CLASS_COMPLETED, KIM, "well done"),
        result="well done",
    ),
    "cancelled before a trainer was assigned": snapshot(
        O.CANCELLED, Assignment(A.CANCELLED, ""), None
    ),
    "cancelled with its schedule": snapshot(
        O.CANCELLED,
        Assignment(A.CANCELLED, KIM),
        Schedule(S.CANCELLED, KIM),
    ),
}

DIVERGING = {
    "placed without an assignment": (
        snapshot(O.PLACED, None, None),
        "assignment AWAITING_TRAINER or TRAINER_ASSIGNED",
    ),
    "placed, schedule with another trainer": (
        snapshot(O.PLACED, Assignment(A.TRAINER_ASSIGNED, KIM), Schedule(S.REQUESTED, LEE)),
        "schedule absent while no trainer is assigned, else REQUESTED from that trainer",
    ),
    "placed, trainer assigned but no schedule": (
        snapshot(O.PLACED, Assignment(A.TRAINER_ASSIGNED, KIM), None),
        "schedule absent while no trainer is assigned, else REQUESTED from that trainer",
    ),
    "confirmed, assignment not told": (
        snapshot(O.CONFIRMED, Assignment(A.TRAINER_ASSIGNED, KIM), Schedule(S.CONFIRMED, KIM)),
        "assignment ORDER_CONFIRMED",
    ),
    "confirmed, schedule only requested": (
        snapshot(O.CONFIRMED, Assignment(A.ORDER_CONFIRMED, KIM), Schedule(S.REQUESTED, KIM)),
        "schedule CONFIRMED",
    ),
    "confirmed, view names another trainer": (
        snapshot(
            O.CONFIRMED,
            Assignment(A.ORDER_CONFIRMED, KIM),
            Schedule(S.CONFIRMED, KIM),
            trainer=LEE,
        ),
        "the same trainer in assignment, schedule and view",
    ),
    "completed, view without the result": (
        snapshot(
            O.COMPLETED,
            Assignment(A.ORDER_CONFIRMED, KIM),
            Schedule(S.CLASS_COMPLETED, KIM, "well done"),
        ),
        "view has the class result",
    ),
    "completed, assignment cancelled": (
        snapshot(
            O.COMPLETED,
            Assignment(A.CANCELLED, KIM),
            Schedule(S.CLASS_COMPLETED, KIM, "well done"),
            result="well done",
        ),
        "assignment ORDER_CONFIRMED",
    ),
    "completed after a refusal the view was not told": (
        snapshot(
            O.COMPLETED,
            Assignment(A.ORDER_CONFIRMED, KIM, REFUSAL),
            Schedule(S.CLASS_COMPLETED, KIM, "well done"),
            result="well done",
            refused="",
        ),
        "a refused cancellation is recorded alike by order, assignment and view",
    ),
    "cancelled but the class was held (the cancel race, uncompensated)": (
        snapshot(
            O.CANCELLED,
            Assignment(A.CANCELLED, KIM),
            Schedule(S.CLASS_COMPLETED, KIM, "well done"),
            result="well done",
        ),
        "schedule CANCELLED (absent if no trainer was assigned), never CLASS_COMPLETED",
    ),
    "cancelled, trainer's schedule still confirmed": (
        snapshot(O.CANCELLED, Assignment(A.CANCELLED, KIM), Schedule(S.CONFIRMED, KIM)),
        "schedule CANCELLED (absent if no trainer was assigned), never CLASS_COMPLETED",
    ),
    "cancelled, assignment still open": (
        snapshot(O.CANCELLED, Assignment(A.AWAITING_TRAINER, ""), None),
        "assignment CANCELLED",
    ),
}


@pytest.mark.parametrize("agreeing", AGREEING.values(), ids=AGREEING.keys())
def test_contexts_that_agree_break_no_rule(agreeing: Snapshot) -> None:
    assert broken_rules(agreeing) == []


@pytest.mark.parametrize(("diverging", "rule"), DIVERGING.values(), ids=DIVERGING.keys())
def test_each_divergence_names_the_rule_it_breaks(diverging: Snapshot, rule: str) -> None:
    assert rule in broken_rules(diverging)


@pytest.mark.parametrize("agreeing", AGREEING.values(), ids=AGREEING.keys())
def test_a_view_behind_its_sources_diverges(agreeing: Snapshot) -> None:
    assert agreeing.view is not None
    missing = replace(agreeing, view=None)
    behind = replace(agreeing, view=replace(agreeing.view, order_status=None))
    for stale in (missing, behind):
        assert "view shows the order, assignment and schedule statuses" in broken_rules(stale)


def test_every_order_status_has_a_row() -> None:
    assert set(RULES) == set(O)


def test_a_report_is_clean_only_without_divergence_old_outbox_rows_or_dead_letters() -> None:
    fresh = OutboxGauge("order", "http://x/metrics", backlog=3, oldest_age_seconds=1.0)
    busy = ConsumerLag("status_svc", num_pending=40, num_ack_pending=2, num_redelivered=0)
    assert Report(outboxes=[fresh], outbox_age_limit=5, consumers=[busy]).clean
    assert not Report(outboxes=[replace(fresh, oldest_age_seconds=9.0)], outbox_age_limit=5).clean
    assert not Report(dead_letters=1).clean
    assert not Report(unreachable=["NATS"]).clean
    divergent = Report(divergent=[Divergence("o-1", ["assignment CANCELLED"], {})])
    assert not divergent.clean
    assert divergent.as_dict()["divergent_order_ids"] == ["o-1"]
    assert "o-1: assignment CANCELLED" in divergent.summary()
