"""The studio web console in real headless Chromium (Debian's ``chromium``, driven by
Playwright), against a ``make run``-style platform with the development sign-in: three
people in three browser contexts book, assign, confirm, record and cancel, and each sees
the others' changes without reloading."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from ptctl import console
from ptctl.apidocs.browser import CHROMIUM
from ptctl.launcher import ROOT, Platform, PlatformConfig
from ptkit.tokens import JWT_SHAPE
from tests.e2e.console_pages import (
    DESKTOP,
    PHONE,
    WAIT_MS,
    CustomerView,
    ManagerBoard,
    TrainerSchedule,
    accessibility_violations,
    ask_to_sign_in,
    expect_stage,
    row,
    screenshot_dir,
    sign_in,
)
from tests.e2e.rest import Rest, ok
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (make {CHROMIUM} installs it)"
)

BUILT = ROOT / "build" / console.FOLDER


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    for source in console.served_files(console.SOURCE):
        built = BUILT / source.name
        assert built.exists() and built.read_bytes() == source.read_bytes(), (
            f"build/console/{source.name} is missing or stale: run `make console`"
        )
    config = PlatformConfig.ephemeral(tmp_path_factory.mktemp("console"), dev_sign_in=True)
    with Platform(config) as platform:
        yield platform


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory.mktemp("console-screenshots"))


@pytest.fixture
def open_page(browser: Browser) -> Iterator:
    """New pages, each in a browser context of its own (its own sessionStorage), with
    every script error and every URL the page asked for collected; all closed afterwards,
    when no script failed and no URL carried a token."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []
    urls: list[str] = []

    def new_page(viewport: dict[str, int] = DESKTOP) -> Page:
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda request: urls.append(request.url))
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )
        return page

    yield new_page
    for context in contexts:
        context.close()
    assert not [e for e in errors if "Failed to load resource" not in e], errors
    assert not [url for url in urls if JWT_SHAPE.search(url)], "a token in a URL"


def api(studio: Platform) -> Rest:
    return Rest(studio.gateway_url)


def place_order(studio: Platform, customer: str, class_name: str) -> str:
    body = {
        "customer_name": customer.title(),
        "class_name": class_name,
        "request_id": str(uuid.uuid4()),
    }
    return ok(api(studio).post("/v1/orders", studio.token("customer", customer), body))["order_id"]


def assign(studio: Platform, order_id: str, trainer_id: str) -> None:
    """Assign through the API, once manager_svc has heard of the order (an event away)."""
    rest, manager = api(studio), studio.token("manager", "studio-manager")
    path, body = f"/v1/assignments/{order_id}:assign", {"trainer_id": trainer_id}
    wait_for(lambda: rest.post(path, manager, body).status == 200, what=f"{order_id} assigned")


def test_a_booking_goes_through_three_consoles_without_a_reload(
    studio: Platform, open_page, screenshots: Path
) -> None:
    manager_page, trainer_page, customer_page = open_page(), open_page(), open_page()
    sign_in(manager_page, studio.gateway_url, "manager", "studio-manager")
    manager = ManagerBoard(manager_page)
    trainer_id = manager.register_trainer("Tom Trainer")
    sign_in(trainer_page, studio.gateway_url, "trainer", trainer_id)
    trainer = TrainerSchedule(trainer_page)
    sign_in(customer_page, studio.gateway_url, "customer", "alice")
    customer = CustomerView(customer_page)

    customer.book("Alice Liddell", "Morning yoga", "2027-03-01T08:00")
    expect_stage(customer.orders, "Morning yoga", "AWAITING TRAINER")
    manager.show_stage("Awaiting trainer")
    expect_stage(manager.board, "Morning yoga", "AWAITING TRAINER")
    manager.assign("Morning yoga", "Tom Trainer", load=0)
    expect(row(manager.board, "Morning yoga")).to_have_count(0, timeout=WAIT_MS)
    manager.show_stage("All")
    expect_stage(manager.board, "Morning yoga", "ASSIGNED")

    expect(row(trainer.requested, "Morning yoga")).to_be_visible(timeout=WAIT_MS)
    trainer.confirm("Morning yoga", "2027-03-01T09:00", 60)
    expect_stage(manager.board, "Morning yoga", "CONFIRMED")
    expect_stage(customer.orders, "Morning yoga", "CONFIRMED")

    trainer.record_result("Morning yoga", "Steady breathing, good form.")
    expect(customer.notifications).to_contain_text(
        "Your class result for 'Morning yoga' is ready", timeout=WAIT_MS
    )
    expect(customer_page.locator("#notification-announcer")).to_contain_text(
        "Morning yoga", timeout=WAIT_MS
    )
    expect(row(customer_page.locator("#my-results"), "Morning yoga")).to_contain_text(
        "Steady breathing", timeout=WAIT_MS
    )
    expect_stage(manager.board, "Morning yoga", "COMPLETED")

    customer.book("Alice Liddell", "Evening boxing")
    manager.assign("Evening boxing", "Tom Trainer", load=0)
    expect(row(trainer.requested, "Evening boxing")).to_be_visible(timeout=WAIT_MS)
    customer.cancel("Evening boxing")
    expect_stage(customer.orders, "Evening boxing", "CANCELLED")
    expect_stage(manager.board, "Evening boxing", "CANCELLED")
    expect_stage(trainer.classes, "Evening boxing", "CANCELLED")
    expect(row(trainer.requested, "Evening boxing")).to_have_count(0, timeout=WAIT_MS)
    roster = manager_page.locator("#roster tbody tr", has_text="Tom Trainer")
    expect(roster.locator("[data-label='Open classes']")).to_have_text("0", timeout=WAIT_MS)

    manager.show_stage("Cancelled")
    expect(row(manager.board, "Evening boxing")).to_be_visible(timeout=WAIT_MS)
    expect(row(manager.board, "Morning yoga")).to_have_count(0, timeout=WAIT_MS)
    manager.show_stage("All")
    expect(row(manager.board, "Morning yoga")).to_be_visible(timeout=WAIT_MS)

    manager_page.locator("#assign-panel").get_by_role("button", name="Close").click()
    trainer_page.locator("#result-panel").get_by_role("button", name="Close").click()
    signing_in = open_page()
    signing_in.goto(f"{studio.gateway_url}/console/")
    expect(signing_in.get_by_role("button", name="Sign in")).to_be_visible(timeout=WAIT_MS)
    for name, page in [
        ("sign-in", signing_in),
        ("manager", manager_page),
        ("trainer", trainer_page),
        ("customer", customer_page),
    ]:
        assert accessibility_violations(page) == [], name
        page.screenshot(path=screenshots / f"console-{name}.png", full_page=True)


def test_a_double_booking_is_refused_naming_the_clashing_class(studio: Platform, open_page) -> None:
    rest, manager = api(studio), studio.token("manager", "studio-manager")
    trainer_id = ok(rest.post("/v1/trainers", manager, {"name": "Pat Busy"}))["trainer_id"]
    first = place_order(studio, "dora", "Pilates at ten")
    second = place_order(studio, "dora", "Spin at half past")
    for order_id in (first, second):
        assign(studio, order_id, trainer_id)

    page = open_page()
    sign_in(page, studio.gateway_url, "trainer", trainer_id)
    trainer = TrainerSchedule(page)
    expect(row(trainer.requested, "Spin at half past")).to_be_visible(timeout=WAIT_MS)
    trainer.ask_to_confirm("Pilates at ten", "2027-04-01T10:00", 0)
    expect(page.locator("#confirm-duration-error")).to_have_text(
        "The duration must be between 1 and 480 minutes.", timeout=WAIT_MS
    )
    trainer.confirm("Pilates at ten", "2027-04-01T10:00", 60)
    refusal = trainer.ask_to_confirm("Spin at half past", "2027-04-01T10:30", 60)

    expect(refusal).to_contain_text("Double booking refused", timeout=WAIT_MS)
    expect(refusal).to_contain_text("“Pilates at ten”")
    expect(refusal).to_contain_text(first)
    expect(refusal).to_contain_text(re.compile(r"10:00.*11:00"))
    expect(row(trainer.requested, "Spin at half past")).to_be_visible()


def test_a_customer_editing_the_url_sees_a_refusal_and_not_the_order(
    studio: Platform, open_page
) -> None:
    someone_elses = place_order(studio, "erin", "Erin's private session")
    page = open_page()
    sign_in(page, studio.gateway_url, "customer", "frank")
    own = CustomerView(page)
    own.book("Frank", "Frank's stretch")
    own_id = row(own.orders, "Frank's stretch").get_attribute("data-order-id")
    page.goto(f"{studio.gateway_url}/console/#/customer/orders/{own_id}")
    expect(page.locator("#order-detail")).to_contain_text("Frank's stretch", timeout=WAIT_MS)

    page.goto(f"{studio.gateway_url}/console/#/customer/orders/{someone_elses}")
    expect(page.get_by_role("alert")).to_contain_text("This order is not yours", timeout=WAIT_MS)
    expect(page.locator("main")).not_to_contain_text("Erin")
    expect(page.locator("#order-detail")).to_be_empty()


def test_a_double_click_on_book_books_once(studio: Platform, open_page) -> None:
    page = open_page()
    sign_in(page, studio.gateway_url, "customer", "gina")
    customer = CustomerView(page)
    customer.fill_booking("Gina", "Double-clicked barre")
    customer.form.get_by_role("button", name="Book").dblclick()
    expect(customer.form.locator(".form-status")).to_contain_text(
        "Booked: Double-clicked barre", timeout=WAIT_MS
    )
    expect(row(customer.orders, "Double-clicked barre")).to_have_count(1, timeout=WAIT_MS)
    expect(customer.form.get_by_role("button", name="Book")).to_be_enabled()

    orders = ok(api(studio).get("/v1/orders", studio.token("customer", "gina")))["orders"]
    assert [order["class_name"] for order in orders] == ["Double-clicked barre"]


def test_refusals_read_as_sentences_next_to_their_field(studio: Platform, open_page) -> None:
    page = open_page()
    ask_to_sign_in(page, studio.gateway_url, "customer", "-not an id")
    expect(page.locator("#sign-in-subject-error")).to_have_text(
        "Your id may hold 1 to 64 letters, digits or . _ @ : - "
        "and must start with a letter or digit.",
        timeout=WAIT_MS,
    )
    expect(page.get_by_label("Your customer id")).to_have_attribute("aria-invalid", "true")

    sign_in(page, studio.gateway_url, "customer", "hana")
    form = CustomerView(page).form
    form.get_by_label("Class", exact=True).fill("Anything")
    form.get_by_role("button", name="Book").click()
    expect(page.locator("#book-name-error")).to_have_text(
        "Please fill in your name.", timeout=WAIT_MS
    )
    expect(form.locator(".form-status")).to_have_text("Please correct the field marked below.")
    expect(page.locator("main")).not_to_contain_text("{")


def test_an_ended_session_goes_back_to_sign_in(studio: Platform, open_page) -> None:
    page = open_page()
    sign_in(page, studio.gateway_url, "customer", "ivan")
    session = json.loads(page.evaluate("sessionStorage.getItem('ptplatform.console.session')"))
    session["token"] = "not.a.token"
    page.evaluate(
        "s => sessionStorage.setItem('ptplatform.console.session', s)", json.dumps(session)
    )
    page.reload()
    expect(page.get_by_role("status").filter(has_text="Your session has ended")).to_be_visible(
        timeout=WAIT_MS
    )
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert "token" not in page.url


def test_booking_works_on_a_phone_sized_screen(
    studio: Platform, open_page, screenshots: Path
) -> None:
    page = open_page(PHONE)
    sign_in(page, studio.gateway_url, "customer", "jo")
    customer = CustomerView(page)
    customer.book("Jo", "Phone booked core", "2027-05-02T18:30")
    expect_stage(customer.orders, "Phone booked core", "AWAITING TRAINER")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert accessibility_violations(page) == []
    page.screenshot(path=screenshots / "console-customer-phone.png", full_page=True)

    for role, subject, heading in [
        ("manager", "studio-manager", "Manager's board"),
        ("trainer", str(uuid.uuid4()), "My schedule"),
    ]:
        other = open_page(PHONE)
        sign_in(other, studio.gateway_url, role, subject)
        expect(other.get_by_role("heading", name=heading)).to_be_visible()
        expect(other.locator("tbody tr").first).to_be_visible()
        assert other.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], role


def test_the_board_filters_by_trainer_and_pages_twenty_at_a_time(
    studio: Platform, open_page
) -> None:
    rest, manager = api(studio), studio.token("manager", "studio-manager")
    trainer_id = ok(rest.post("/v1/trainers", manager, {"name": "Paged Pat"}))["trainer_id"]
    for order_id in [place_order(studio, "kim", f"Circuit {number:02d}") for number in range(21)]:
        assign(studio, order_id, trainer_id)

    page = open_page()
    sign_in(page, studio.gateway_url, "manager", "studio-manager")
    board = ManagerBoard(page)
    page.get_by_label("Trainer", exact=True).select_option(label="Paged Pat")
    rows, pages = (
        board.board.locator("tbody tr"),
        page.get_by_role("navigation", name="Board pages"),
    )
    expect(board.board.locator("caption")).to_contain_text("trainer Paged Pat (20 on this page)")
    expect(rows).to_have_count(20)
    expect(rows.locator(".badge")).to_have_text(["ASSIGNED"] * 20)
    pages.get_by_role("button", name="Next").click()
    expect(pages).to_contain_text("Page 2")
    expect(rows).to_have_count(1)
    expect(pages.get_by_role("button", name="Next")).to_be_disabled()
    pages.get_by_role("button", name="Previous").click()
    expect(rows).to_have_count(20)
    expect(pages.get_by_role("button", name="Previous")).to_be_disabled()

    board.show_stage("Assigned")
    expect(board.board.locator("caption")).to_contain_text("assigned, trainer Paged Pat (20")
    expect(rows).to_have_count(20)
    board.show_stage("Awaiting trainer")
    expect(rows).to_have_text(["No orders here."])


def test_the_board_keeps_focus_while_it_refreshes(studio: Platform, open_page) -> None:
    place_order(studio, "lee", "Steady stretch")
    page = open_page()
    sign_in(page, studio.gateway_url, "manager", "studio-manager")
    board = ManagerBoard(page)
    assign_button = row(board.board, "Steady stretch").get_by_role("button", name="Assign")
    assign_button.focus()
    place_order(studio, "lee", "Arrives later")
    expect(row(board.board, "Arrives later")).to_be_visible(timeout=WAIT_MS)
    expect(assign_button).to_be_focused()


def test_an_unreachable_studio_is_said_and_the_view_recovers(studio: Platform, open_page) -> None:
    page = open_page()
    sign_in(page, studio.gateway_url, "customer", "mia")
    banner = page.locator("#reachability")
    page.route("**/v1/**", lambda route: route.abort("connectionrefused"))
    expect(banner).to_have_text("The studio is unreachable, retrying…", timeout=WAIT_MS)
    page.unroute("**/v1/**")
    expect(banner).to_be_hidden(timeout=WAIT_MS)
    CustomerView(page).book("Mia", "Back online")


def test_signing_in_and_out_by_keyboard_alone(studio: Platform, open_page) -> None:
    page = open_page()
    page.goto(f"{studio.gateway_url}/console/")
    expect(page.get_by_label("Your customer id")).to_be_focused(timeout=WAIT_MS)
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_label("Manager", exact=True)).to_be_checked()
    page.keyboard.press("Tab")
    page.keyboard.type("keyboard-manager")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Manager's board")).to_be_visible(timeout=WAIT_MS)

    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="You have signed out")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('ptplatform.console.session')") is None


def test_without_the_development_sign_in_the_page_points_to_the_identity_provider(
    studio: Platform, open_page
) -> None:
    """As in production, where the gateway has no /console/dev/sign-in route."""
    page = open_page()
    page.route(
        f"**{console.DEV_SIGN_IN_PATH}",
        lambda route: route.fulfill(
            status=404, content_type="application/json", body='{"code":5,"message":"no route"}'
        ),
    )
    ask_to_sign_in(page, studio.gateway_url, "customer", "nora")
    expect(page.get_by_role("alert")).to_have_text(
        "Development sign-in is off on this studio. "
        "Sign in through the studio's identity provider.",
        timeout=WAIT_MS,
    )
