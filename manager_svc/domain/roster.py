"""The trainer roster and the least-loaded choice of the auto-assign policy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ptkit.domain import Aggregate, IllegalTransition, NotFound
from ptkit.validation import require_text

MAX_NAME_LENGTH = 100


class TrainerNotFound(NotFound):
    default_reason = "TRAINER_NOT_FOUND"

    def __init__(self, trainer_id: str) -> None:
        super().__init__(f"trainer {trainer_id} not found", metadata={"trainer_id": trainer_id})


class TrainerInactive(IllegalTransition):
    default_reason = "TRAINER_INACTIVE"

    def __init__(self, trainer_id: str) -> None:
        super().__init__(
            f"trainer {trainer_id} is not active and cannot be assigned",
            metadata={"trainer_id": trainer_id},
        )


@dataclass(kw_only=True)
class Trainer(Aggregate):
    trainer_id: str
    name: str
    created_at: datetime
    active: bool = True
    registered_by: str = ""
    """The manager who registered the trainer."""
    request_id: str = ""
    """The registering request's idempotency key ("" for none): the same request of the
    same manager registers the trainer once."""

    @classmethod
    def register(
        cls,
        *,
        trainer_id: str,
        name: str,
        now: datetime,
        registered_by: str = "",
        request_id: str = "",
    ) -> Trainer:
        trainer = cls(
            trainer_id=trainer_id,
            name=require_text("name", name, max_length=MAX_NAME_LENGTH),
            created_at=now,
            registered_by=registered_by,
            request_id=request_id,
        )
        trainer._touch()
        return trainer

    def deactivate(self) -> None:
        """The trainer leaves the roster of assignable trainers; held assignments stay."""
        if self.active:
            self.active = False
            self._touch()

    def require_active(self) -> None:
        if not self.active:
            raise TrainerInactive(self.trainer_id)


def least_loaded(trainers: Iterable[Trainer], load: Mapping[str, int]) -> Trainer | None:
    """The active trainer holding the fewest assignments; ties go to the name, then the id.

    ``load`` maps a trainer_id to the number of assignments that trainer holds; trainers
    missing from it hold none.
    """
    active = [trainer for trainer in trainers if trainer.active]
    if not active:
        return None
    return min(active, key=lambda t: (load.get(t.trainer_id, 0), t.name, t.trainer_id))
