"""Headless Chromium for the browser tests: the system's /usr/bin/chromium driven by
Playwright (never `playwright install`: no browser download at test time)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

needs_chromium = pytest.mark.skipif(
    not shutil.which(CHROMIUM), reason=f"{CHROMIUM} is absent (apt-get install -y chromium)"
)


@contextmanager
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A launched browser; ORM connections opened meanwhile are closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, so Django's async guard does not apply.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # ORM calls made while Playwright's loop was alive may have opened a connection of
            # their own; close it so PostgreSQL can drop the test database afterwards.
            connections.close_all()


def login(page, base: str) -> None:
    """Sign in to the admin at `base` as the `staff_user` fixture's user."""
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")


def run_action(page, action: str, *values: object) -> None:
    """Select the change-list rows whose pks are `values` and run the admin action `action`."""
    for value in values:
        page.check(f'input[name="_selected_action"][value="{value}"]')
    page.select_option('select[name="action"]', action)
    page.click('button[name="index"]')
