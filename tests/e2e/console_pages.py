"""The web console as its users drive it in a browser: one small page object per role,
finding things the way a person does (labels, button names, table rows by class name).

Waits are Playwright's auto-waiting ``expect(...)`` with an explicit timeout, never sleeps.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

WAIT_MS = 10_000
"""How long a change may take to show (the views poll about every second)."""

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def screenshot_dir(default: Path) -> Path:
    """Where the tests write the consoles' screenshots: ``PT_CONSOLE_SCREENSHOTS`` when
    set (``make console-screenshots`` points it at docs/images), else ``default``."""
    directory = Path(os.environ.get("PT_CONSOLE_SCREENSHOTS") or default)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def accessibility_violations(page: Page) -> list[str]:
    """What axe-core finds against WCAG 2.1 A and AA on the page as it is now (labels,
    contrast, roles, names): one line per rule broken, with the elements."""
    results = Axe().run(page, options=WCAG_AA)
    return [
        f"{v['id']}: {v['help']} ({', '.join(str(n['target']) for n in v['nodes'])})"
        for v in results.response["violations"]
    ]


def ask_to_sign_in(page: Page, gateway_url: str, role: str, subject: str) -> None:
    """Open the console, choose the role, give the id and press Sign in."""
    page.goto(f"{gateway_url}/console/")
    expect(page.get_by_role("heading", name="Sign in to the studio")).to_be_visible(timeout=WAIT_MS)
    page.get_by_label(role.capitalize(), exact=True).check()
    page.get_by_label(f"Your {role} id").fill(subject)
    page.get_by_role("button", name="Sign in").click()


def sign_in(page: Page, gateway_url: str, role: str, subject: str) -> None:
    """Sign in as ``role`` and wait for the role's view."""
    ask_to_sign_in(page, gateway_url, role, subject)
    expect(page.get_by_text(f"Signed in as {role}")).to_be_visible(timeout=WAIT_MS)


def row(table: Locator, class_name: str) -> Locator:
    """The row of ``table`` whose class is ``class_name``."""
    exactly = re.compile(f"^{re.escape(class_name)}$")
    return table.locator("tbody tr").filter(has=table.page.locator("th").filter(has_text=exactly))


def expect_stage(table: Locator, class_name: str, stage: str) -> None:
    """The row of ``class_name`` shows ``stage`` (e.g. "CONFIRMED") without a reload."""
    expect(row(table, class_name).locator(".badge")).to_have_text(stage, timeout=WAIT_MS)


class ManagerBoard:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.board = page.locator("#board")

    def register_trainer(self, name: str) -> str:
        """Register ``name``; the trainer id the console shows for them."""
        self.page.get_by_label("New trainer's name").fill(name)
        self.page.get_by_role("button", name="Register trainer").click()
        shown = self.page.locator("#registered-trainer")
        expect(shown).to_contain_text(f"{name}'s trainer id", timeout=WAIT_MS)
        return shown.locator("code").inner_text()

    def show_stage(self, label: str) -> None:
        self.page.get_by_role("group", name="Stage").get_by_role("button", name=label).click()

    def assign(self, class_name: str, trainer_name: str, load: int | None = None) -> None:
        """Assign from the roster picker, once it shows the trainers' loads (``load``:
        the open classes it must show for ``trainer_name``)."""
        row(self.board, class_name).get_by_role("button", name="Assign").click()
        panel = self.page.locator("#assign-panel")
        option = panel.get_by_label("Trainer").locator("option", has_text=trainer_name)
        shown = "open class" if load is None else f"({load} open class"
        expect(option).to_contain_text(shown, timeout=WAIT_MS)
        panel.get_by_label("Trainer").select_option(value=option.get_attribute("value"))
        panel.get_by_role("button", name="Assign trainer").click()
        expect(panel.locator(".form-status")).to_contain_text("is assigned", timeout=WAIT_MS)


class TrainerSchedule:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.requested = page.locator("#requested")
        self.classes = page.locator("#confirmed")
        self.confirm_panel = page.locator("#confirm-panel")

    def ask_to_confirm(self, class_name: str, local_start: str, minutes: int) -> Locator:
        """Fill in and send the confirmation; the panel's status line."""
        row(self.requested, class_name).get_by_role("button", name="Confirm").click()
        self.confirm_panel.get_by_label("Start (your local time)").fill(local_start)
        self.confirm_panel.get_by_label("Duration in minutes").fill(str(minutes))
        self.confirm_panel.get_by_role("button", name="Confirm class").click()
        return self.confirm_panel.locator(".form-status")

    def confirm(self, class_name: str, local_start: str, minutes: int) -> None:
        status = self.ask_to_confirm(class_name, local_start, minutes)
        expect(status).to_contain_text("Confirmed:", timeout=WAIT_MS)
        expect_stage(self.classes, class_name, "CONFIRMED")

    def record_result(self, class_name: str, text: str) -> None:
        row(self.classes, class_name).get_by_role("button", name="Record result").click()
        panel = self.page.locator("#result-panel")
        panel.get_by_label("How the class went").fill(text)
        panel.get_by_role("button", name="Record result").click()
        expect(panel.locator(".form-status")).to_contain_text("Result recorded", timeout=WAIT_MS)


class CustomerView:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.form = page.locator("#book-form")
        self.orders = page.locator("#my-orders")
        self.notifications = page.locator("#notifications")

    def fill_booking(self, name: str, class_name: str, local_start: str = "") -> None:
        self.form.get_by_label("Your name").fill(name)
        self.form.get_by_label("Class", exact=True).fill(class_name)
        if local_start:
            self.form.get_by_label("Preferred start").fill(local_start)

    def book(self, name: str, class_name: str, local_start: str = "") -> None:
        self.fill_booking(name, class_name, local_start)
        self.form.get_by_role("button", name="Book").click()
        expect(self.form.locator(".form-status")).to_contain_text(
            f"Booked: {class_name}", timeout=WAIT_MS
        )
        expect(row(self.orders, class_name)).to_be_visible(timeout=WAIT_MS)

    def cancel(self, class_name: str) -> None:
        row(self.orders, class_name).get_by_role("button", name=f"Cancel {class_name}").click()
