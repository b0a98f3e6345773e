"""``ptctl demo``: walk the booking scenario against a running platform, as a customer,
a manager and a trainer would, printing each step and the status view after it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from ptctl.keys import ensure_keys
from ptctl.watch import NotificationWatcher
from ptkit.auth import Role
from ptkit.tokens import mint_token
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform_client import ApiError, Client, NotFound

T = TypeVar("T")
CUSTOMER = "alice"
TRAINER_NAME = "Tom Lee"


def _poll(fetch: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = fetch()
        except NotFound:
            found = None
        if found is not None:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def _name(enum: object, value: int) -> str:
    return enum.Name(value).split("_STATUS_", 1)[-1]  # type: ignore[attr-defined]


class Demo:
    """The scenario through the typed client (ptplatform_client), one client per person."""

    def __init__(self, gateway: str, var_dir: Path, clients: ExitStack) -> None:
        self.gateway = gateway
        self._keys = ensure_keys(var_dir / "jwt")
        self._clients = clients
        self.customer = self._client(Role.CUSTOMER, CUSTOMER)
        self.manager = self._client(Role.MANAGER, "manager-kim")

    def _token(self, role: Role, subject: str) -> str:
        return mint_token(self._keys, role, subject)

    def _client(self, role: Role, subject: str) -> Client:
        return self._clients.enter_context(Client(self.gateway, token=self._token(role, subject)))

    def step(self, number: str, text: str) -> None:
        print(f"\n[{number}] {text}", flush=True)

    def show_view(self, order_id: str) -> None:
        view = self.customer.status.get_order(order_id)
        print(
            f"      view: order={_name(order.OrderStatus, view.order_status)}"
            f" assignment={_name(manager.AssignmentStatus, view.assignment_status)}"
            f" schedule={_name(trainer.ScheduleStatus, view.schedule_status)}"
            f" trainer={view.trainer_name or '-'}"
            f" result={view.class_result or '-'}",
            flush=True,
        )

    def view_until(
        self, order_id: str, ok: Callable[[status.OrderStatus], bool], what: str
    ) -> None:
        def fetch() -> status.OrderStatus | None:
            view = self.customer.status.get_order(order_id)
            return view if ok(view) else None

        _poll(fetch, what)
        self.show_view(order_id)

    def trainer_on_roster(self) -> manager.Trainer:
        existing = next(
            (t for t in self.manager.trainers.list() if t.name == TRAINER_NAME and t.active),
            None,
        )
        return existing or self.manager.trainers.register(TRAINER_NAME)

    def free_slot(self, coach: Client, trainer_id: str) -> datetime:
        """Tomorrow 10:00 UTC, one hour later for each schedule the trainer already holds."""
        held = sum(1 for _ in coach.schedules.list(trainer_id=trainer_id))
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
            hour=10, minute=0, second=0, microsecond=0
        )
        return tomorrow + timedelta(hours=held)

    def book(self, class_name: str, label: str) -> tuple[str, Client]:
        self.step(
            f"{label}.1", f"Customer {CUSTOMER} places an order for '{class_name}' (PlaceOrder)"
        )
        placed = self.customer.orders.place(class_name=class_name, customer_name="Alice Kim")
        print(f"      order_id={placed.order_id} status={_name(order.OrderStatus, placed.status)}")
        self.view_until(
            placed.order_id, lambda v: v.assignment_status != 0, "the assignment to open"
        )

        self.step(f"{label}.2", f"Manager assigns trainer {TRAINER_NAME} (AssignTrainer)")
        coach_id = self.trainer_on_roster().trainer_id
        coach = self._client(Role.TRAINER, coach_id)
        self.manager.assignments.assign(placed.order_id, coach_id)
        _poll(
            lambda: coach.schedules.get(placed.order_id),
            "the trainer's schedule confirmation request",
        )
        self.show_view(placed.order_id)

        slot = self.free_slot(coach, coach_id)
        self.step(
            f"{label}.3",
            f"Trainer confirms the schedule for {slot:%Y-%m-%d %H:%M} UTC (ConfirmSchedule)",
        )
        coach.schedules.confirm(placed.order_id, slot, 60)
        self.view_until(
            placed.order_id,
            lambda v: v.order_status == order.ORDER_STATUS_CONFIRMED,
            "the order to be confirmed",
        )
        return placed.order_id, coach

    def watcher(self) -> NotificationWatcher:
        token = self._token(Role.CUSTOMER, CUSTOMER)
        return NotificationWatcher(
            self.customer.status.stub, CUSTOMER, lambda: (("authorization", f"Bearer {token}"),)
        )

    def run(self) -> None:
        order_id, coach = self.book("Pilates 1:1", "1")

        self.step("1.4", "Customer watches notifications; trainer registers the class result")
        received: list[status.Notification] = []
        watcher = self.watcher()
        watcher.after = watcher.resume_point()  # from here on, reconnects miss nothing

        def listen() -> None:
            for notification in watcher.notifications():
                if notification.order_id == order_id:
                    received.append(notification)
                    return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        coach.schedules.register_result(order_id, "Great form; next time +5 kg")
        listener.join(timeout=20)
        watcher.close()
        if not received:
            raise TimeoutError("no notification arrived")
        print(f"      notification: {received[0].message}")
        self.view_until(
            order_id,
            lambda v: v.order_status == order.ORDER_STATUS_COMPLETED,
            "the order to complete",
        )

        second, _ = self.book("Boxing basics", "2")
        self.step("2.4", "Customer cancels the confirmed order (CancelOrder)")
        self.customer.orders.cancel(second, reason="travelling")
        self.view_until(
            second,
            lambda v: (
                v.order_status == order.ORDER_STATUS_CANCELLED
                and v.assignment_status == manager.ASSIGNMENT_STATUS_CANCELLED
                and v.schedule_status == trainer.SCHEDULE_STATUS_CANCELLED
            ),
            "order, assignment and schedule to be cancelled",
        )

        self.step("3", f"Customer {CUSTOMER} reads their class results (ListClassResults)")
        results: Iterator[status.ClassResult] = self.customer.status.class_results(CUSTOMER)
        for result in results:
            print(f"      {result.class_name} with {result.trainer_name}: {result.result}")


def run_demo(gateway: str, var_dir: Path) -> int:
    with ExitStack() as clients:
        try:
            Demo(gateway, var_dir, clients).run()
        except ApiError as error:
            print(f"\ndemo failed: {error}")
            return 1
        except TimeoutError as error:
            print(f"\ndemo failed: {error}")
            return 1
    print("\ndemo complete.")
    return 0
