"""The /docs page in headless Chromium (Debian's ``chromium``, driven by Playwright).

Used by the e2e test of the page and by ``make docs-screenshot``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's package (the Makefile installs it); Playwright's own browser builds are not used."""

OPERATION = ".opblock"
"""One operation as Swagger UI renders it: its verb, path and operationId."""


@contextmanager
def docs_page(docs_url: str, operations: int, timeout_s: float = 60.0) -> Iterator[Page]:
    """``docs_url`` open once Swagger UI has rendered ``operations`` operations."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(timeout_s * 1000)
            page.goto(docs_url)
            page.wait_for_function(
                f"document.querySelectorAll({OPERATION!r}).length >= {operations}"
            )
            yield page
        finally:
            browser.close()


def listed_operations(page: Page) -> list[tuple[str, str, str]]:
    """(verb, path, operationId) of every operation the page lists."""
    listed = []
    for block in page.locator(OPERATION).all():
        verb = block.locator(".opblock-summary-method").inner_text()
        path = block.locator(".opblock-summary-path").get_attribute("data-path") or ""
        operation_id = block.locator(".opblock-summary-operation-id").inner_text()
        listed.append((verb, path, operation_id))
    return listed
