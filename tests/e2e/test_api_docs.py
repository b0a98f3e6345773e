"""The API reference as a new user finds it on the gateway: the OpenAPI document at
/openapi.json and a readable page at /docs, without a token, rendered by a real browser
(Debian's headless Chromium) from files the gateway serves itself."""

from __future__ import annotations

import json

import pytest

from ptctl.apidocs.browser import docs_page, listed_operations
from ptctl.launcher import ROOT, Platform
from tests.e2e.rest import Rest

OPENAPI = ROOT / "build" / "openapi.json"


@pytest.fixture(scope="module")
def rest(platform: Platform) -> Rest:
    return Rest(platform.gateway_url)


@pytest.fixture(scope="module")
def document() -> dict:
    assert OPENAPI.exists(), "run `make openapi`"
    return json.loads(OPENAPI.read_text())


def documented_operations(document: dict) -> set[tuple[str, str, str]]:
    return {
        (verb.upper(), path, operation["operationId"])
        for path, item in document["paths"].items()
        for verb, operation in item.items()
    }


def test_the_gateway_serves_the_openapi_document_without_a_token(
    rest: Rest, document: dict
) -> None:
    reply = rest.get("/openapi.json")
    assert reply.status == 200
    assert reply.json == document


def test_the_docs_page_and_its_files_come_from_the_gateway(rest: Rest) -> None:
    page = rest.get("/docs")
    assert (page.status, page.content_type) == (200, "text/html")
    assert "/docs/swagger-ui-bundle.js" in page.text and "/openapi.json" in page.text
    assert "https://" not in page.text, "the page loads nothing from elsewhere"
    script = rest.get("/docs/swagger-ui-bundle.js")
    assert (script.status, script.content_type) == (200, "text/javascript")
    assert "SwaggerUIBundle" in script.text


def test_the_api_reference_is_read_only(rest: Rest) -> None:
    assert rest.call("POST", "/openapi.json", body={}).status != 200


def test_the_docs_page_renders_every_operation_in_headless_chromium(
    platform: Platform, document: dict
) -> None:
    expected = documented_operations(document)
    with docs_page(f"{platform.gateway_url}/docs", len(expected)) as page:
        listed = listed_operations(page)
        assert page.locator(".info .title").inner_text().startswith("PtPlatform API")
        assert page.locator(".errors-wrapper").count() == 0
    assert sorted(listed) == sorted(expected)
