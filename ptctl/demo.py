"""``ptctl demo``: walk the booking scenario against a running platform, as a customer,
a manager and a trainer would, printing each step and the status view after it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ptctl.keys import ensure_keys
from ptctl.pages import every_page
from ptctl.watch import NotificationWatcher
from ptkit.auth import Role
from ptkit.tokens import mint_token
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc

T = TypeVar("T")
CUSTOMER = "alice"
TRAINER_NAME = "Tom Lee"


def _poll(fetch: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = fetch()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            found = None
        if found is not None:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _name(enum: object, value: int) -> str:
    return enum.Name(value).split("_STATUS_", 1)[-1]  # type: ignore[attr-defined]


class Demo:
    def __init__(self, channel: grpc.Channel, var_dir: Path) -> None:
        keys = ensure_keys(var_dir / "jwt")
        self.orders = order_grpc.OrderServiceStub(channel)
        self.managers = manager_grpc.ManagerServiceStub(channel)
        self.trainers = trainer_grpc.TrainerServiceStub(channel)
        self.status = status_grpc.StatusServiceStub(channel)
        self._keys = keys
        self.customer = self._auth(Role.CUSTOMER, CUSTOMER)
        self.manager = self._auth(Role.MANAGER, "manager-kim")

    def _auth(self, role: Role, subject: str) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {mint_token(self._keys, role, subject)}"),)

    def step(self, number: str, text: str) -> None:
        print(f"\n[{number}] {text}", flush=True)

    def show_view(self, order_id: str) -> None:
        view = self.status.GetOrderStatus(
            status.GetOrderStatusRequest(order_id=order_id), metadata=self.customer
        )
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
            view = self.status.GetOrderStatus(
                status.GetOrderStatusRequest(order_id=order_id), metadata=self.customer
            )
            return view if ok(view) else None

        _poll(fetch, what)
        self.show_view(order_id)

    def trainer_on_roster(self) -> manager.Trainer:
        roster = every_page(
            lambda page: self.managers.ListTrainers(page, metadata=self.manager),
            manager.ListTrainersRequest(),
            "trainers",
        )
        existing = next((t for t in roster if t.name == TRAINER_NAME and t.active), None)
        return existing or self.managers.RegisterTrainer(
            manager.RegisterTrainerRequest(name=TRAINER_NAME), metadata=self.manager
        )

    def free_slot(self, coach_auth: object, trainer_id: str) -> datetime:
        """Tomorrow 10:00 UTC, one hour later for each schedule the trainer already holds."""
        held = list(
            every_page(
                lambda page: self.trainers.ListSchedules(page, metadata=coach_auth),
                trainer.ListSchedulesRequest(trainer_id=trainer_id),
                "schedules",
            )
        )
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
            hour=10, minute=0, second=0, microsecond=0
        )
        return tomorrow + timedelta(hours=len(held))

    def book(self, class_name: str, label: str) -> tuple[str, object]:
        self.step(
            f"{label}.1", f"Customer {CUSTOMER} places an order for '{class_name}' (PlaceOrder)"
        )
        placed = self.orders.PlaceOrder(
            order.PlaceOrderRequest(customer_name="Alice Kim", class_name=class_name),
            metadata=self.customer,
        )
        print(f"      order_id={placed.order_id} status={_name(order.OrderStatus, placed.status)}")
        self.view_until(
            placed.order_id, lambda v: v.assignment_status != 0, "the assignment to open"
        )

        self.step(f"{label}.2", f"Manager assigns trainer {TRAINER_NAME} (AssignTrainer)")
        coach = self.trainer_on_roster()
        coach_auth = self._auth(Role.TRAINER, coach.trainer_id)
        self.managers.AssignTrainer(
            manager.AssignTrainerRequest(order_id=placed.order_id, trainer_id=coach.trainer_id),
            metadata=self.manager,
        )
        _poll(
            lambda: self.trainers.GetSchedule(
                trainer.GetScheduleRequest(order_id=placed.order_id), metadata=coach_auth
            ),
            "the trainer's schedule confirmation request",
        )
        self.show_view(placed.order_id)

        slot = self.free_slot(coach_auth, coach.trainer_id)
        self.step(
            f"{label}.3",
            f"Trainer confirms the schedule for {slot:%Y-%m-%d %H:%M} UTC (ConfirmSchedule)",
        )
        self.trainers.ConfirmSchedule(
            trainer.ConfirmScheduleRequest(
                order_id=placed.order_id, start_time=_timestamp(slot), duration_minutes=60
            ),
            metadata=coach_auth,
        )
        self.view_until(
            placed.order_id,
            lambda v: v.order_status == order.ORDER_STATUS_CONFIRMED,
            "the order to be confirmed",
        )
        return placed.order_id, coach_auth

    def run(self) -> None:
        order_id, coach_auth = self.book("Pilates 1:1", "1")

        self.step("1.4", "Customer watches notifications; trainer registers the class result")
        received: list[status.Notification] = []
        watcher = NotificationWatcher(self.status, CUSTOMER, lambda: self.customer)
        watcher.after = watcher.resume_point()  # from here on, reconnects miss nothing

        def listen() -> None:
            for notification in watcher.notifications():
                if notification.order_id == order_id:
                    received.append(notification)
                    return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        self.trainers.RegisterClassResult(
            trainer.RegisterClassResultRequest(
                order_id=order_id, result="Great form; next time +5 kg"
            ),
            metadata=coach_auth,
        )
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
        self.orders.CancelOrder(
            order.CancelOrderRequest(order_id=second, reason="travelling"), metadata=self.customer
        )
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
        results = every_page(
            lambda page: self.status.ListClassResults(page, metadata=self.customer),
            status.ListClassResultsRequest(customer_id=CUSTOMER),
            "results",
        )
        for result in results:
            print(f"      {result.class_name} with {result.trainer_name}: {result.result}")


def run_demo(gateway: str, var_dir: Path) -> int:
    with grpc.insecure_channel(gateway) as channel:
        try:
            Demo(channel, var_dir).run()
        except grpc.RpcError as error:
            print(f"\ndemo failed: {error.code().name}: {error.details()}")
            return 1
        except TimeoutError as error:
            print(f"\ndemo failed: {error}")
            return 1
    print("\ndemo complete.")
    return 0
