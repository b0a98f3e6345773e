"""trainer_svc's repository in memory, over the kit's one fake unit of work.

The contract suite (tests/trainer/integration/test_repository_contract.py) runs the same
tests against it and the SQL repository on SQLite and PostgreSQL.
"""

from __future__ import annotations

from ptkit.paging import PageRequest, page_in_memory
from ptkit.testing import FakeUnitOfWork, InMemoryRepository
from trainer_svc.domain.model import BOOKED, Schedule, ScheduleNotFound, ScheduleStatus, TimeSlot


class InMemorySchedules(InMemoryRepository[Schedule]):
    table = "schedules"
    key = "order_id"

    async def add(self, schedule: Schedule) -> None:
        self._insert(schedule)

    async def get(self, order_id: str) -> Schedule:
        schedule = await self.find(order_id)
        if schedule is None:
            raise ScheduleNotFound(order_id)
        return schedule

    async def find(self, order_id: str) -> Schedule | None:
        return self._find(order_id)

    async def list(
        self, trainer_id: str | None, status: ScheduleStatus | None, page: PageRequest
    ) -> list[Schedule]:
        wanted = [
            s
            for s in self._rows()
            if trainer_id in (None, s.trainer_id) and status in (None, s.status)
        ]
        return page_in_memory(wanted, page)

    async def booked_overlapping(
        self, trainer_id: str, slot: TimeSlot, excluding_order_id: str
    ) -> list[Schedule]:
        # a unit of work in memory runs alone: there is no concurrent confirmation to wait for
        return [
            s
            for s in self._rows()
            if s.trainer_id == trainer_id
            and s.status in BOOKED
            and s.order_id != excluding_order_id
            and s.slot is not None
            and s.slot.start < slot.end
            and s.slot.end > slot.start
        ]


class FakeTrainerUnitOfWork(FakeUnitOfWork):
    """trainer_svc's unit of work in memory; ``published`` and ``commits`` say what the
    committed transactions wrote."""

    repositories = {"schedules": InMemorySchedules}
    schedules: InMemorySchedules
