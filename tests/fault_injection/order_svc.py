"""order_svc with a fault the environment asks for, run as ``python -m
tests.fault_injection.order_svc`` by the failover e2e tests (production code has no
fault hooks):

- ``PT_FAULT_LOSE_ANSWERS_ON_PORT=<port>``: the replica serving on that port places an
  order as usual, commits it, then never answers (until the caller gives up): a try whose
  effect happened but whose answer was lost, as when a replica dies or freezes right
  after its commit. The other replicas are untouched.
"""

from __future__ import annotations

import asyncio
import os

import grpc

from order_svc.adapters.grpc_api import OrderServiceAdapter
from order_svc.main import main
from ptplatform.order.v1 import order_service_pb2 as pb

HOLD_S = 60.0
"""Longer than any route timeout: the gateway gives up on the try first."""


def install() -> None:
    port = os.environ.get("PT_FAULT_LOSE_ANSWERS_ON_PORT", "")
    if not port or port != os.environ.get("PT_ORDER_PORT"):
        return
    place = OrderServiceAdapter.PlaceOrder

    async def commit_then_hold(
        self: OrderServiceAdapter, request: pb.PlaceOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Order:
        # shielded: the gateway cancelling the try does not undo the commit
        answer = await asyncio.shield(place(self, request, context))
        await asyncio.sleep(HOLD_S)
        return answer

    OrderServiceAdapter.PlaceOrder = commit_then_hold  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    main()
