"""``python -m ptctl.bench.noop --port P``: a gRPC server that answers at once.

The bench puts it behind a second Envoy rendered exactly like the platform's, with every
upstream pointing here, so that PlaceOrder through it measures the gateway and the gRPC
stack alone. It answers OrderService.PlaceOrder with one fixed ``Order`` and the health
checks Envoy sends to every cluster with SERVING; every other method is UNIMPLEMENTED.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc

FIXED_ORDER = order.Order(
    order_id="00000000-0000-4000-8000-000000000000",
    customer_id="bench-customer",
    customer_name="Bench",
    class_name="No-op",
    status=order.ORDER_STATUS_PLACED,
)


class NoopOrders(order_grpc.OrderServiceServicer):
    async def PlaceOrder(
        self, request: order.PlaceOrderRequest, context: grpc.aio.ServicerContext
    ) -> order.Order:
        return FIXED_ORDER


async def serve(port: int) -> None:
    server = grpc.aio.server()
    order_grpc.add_OrderServiceServicer_to_server(NoopOrders(), server)
    checks = health.aio.HealthServicer()
    await checks.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    await server.stop(grace=0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
