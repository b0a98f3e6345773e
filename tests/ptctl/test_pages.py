"""ptctl's page iterator follows next_page_token to the last page, asking for the most."""

from __future__ import annotations

from ptctl.pages import MAX_PAGE_SIZE, every_page
from ptplatform.order.v1 import order_service_pb2 as pb


def test_every_page_is_read_in_order_and_the_request_is_left_as_it_was() -> None:
    pages = {"": (["a", "b"], "t1"), "t1": (["c"], "t2"), "t2": ([], "")}
    asked: list[tuple[str, int, str]] = []

    def call(request: pb.ListOrdersRequest) -> pb.ListOrdersResponse:
        asked.append((request.page_token, request.page_size, request.customer_id))
        ids, token = pages[request.page_token]
        return pb.ListOrdersResponse(
            orders=[pb.Order(order_id=i) for i in ids], next_page_token=token
        )

    request = pb.ListOrdersRequest(customer_id="alice")
    listed = [o.order_id for o in every_page(call, request, "orders")]
    assert listed == ["a", "b", "c"]
    assert asked == [(t, MAX_PAGE_SIZE, "alice") for t in ("", "t1", "t2")]
    assert request == pb.ListOrdersRequest(customer_id="alice")
