"""Place an order and list the customer's orders with the typed client.

    make run                        # in another terminal
    TOKEN=$(.venv/bin/ptctl token --role customer --subject alice)
    python clients/python/examples/quickstart.py "$TOKEN"

Checked with ``mypy --strict`` by tests/client/test_typing.py.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from ptplatform.order.v1 import order_service_pb2 as order_pb
from ptplatform_client import ApiError, Client, InvalidArgument


def main(token: str, target: str = "127.0.0.1:8080") -> int:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    with Client(target, token=token) as client:
        order: order_pb.Order = client.orders.place(
            class_name="Pilates 1:1", customer_name="Alice", preferred_start=start
        )
        print("placed", order.order_id, order_pb.OrderStatus.Name(order.status))
        for mine in client.orders.list(page_size=50):
            print(mine.order_id, mine.class_name, order_pb.OrderStatus.Name(mine.status))
        try:
            client.orders.place(class_name="", customer_name="Alice", preferred_start=start)
        except InvalidArgument as refused:
            print("refused:", refused.reason or refused.code.name, refused.fields)
        except ApiError as error:
            print("failed:", error)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
