"""Debian's chromium driven by Playwright for Python (its driver only: Playwright's own browser
download cannot work here). scripts/test installs chromium; without it these tests fail, never skip."""
from __future__ import annotations

import re
import shutil
import tempfile

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
# what a sandboxed machine with a closed network needs (see the README's "Browser tests")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Module-scoped: Playwright's sync API keeps an asyncio loop running in this thread while it is
    open, and later tests that call asyncio.run() must not find it."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: scripts/test installs Debian's chromium"
    profile = tempfile.mkdtemp(prefix="hearth-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def origin(server) -> str:
    """The shared server's origin (the page is at /, the API at /v1)."""
    return server.removesuffix("/v1")


class Console:
    """Every console error and uncaught exception of a page."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


@pytest.fixture
def page(browser, origin):
    page = browser.new_page()
    page.console = Console(page)
    page.goto(origin + "/")
    yield page
    page.close()


def metric(origin: str, name: str, **labels) -> float:
    """One sample of /metrics (0 when absent)."""
    text = httpx.get(f"{origin}/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", re.M)
    total = 0.0
    for found_labels, value in pattern.findall(text):
        if all(part in found_labels.split(",") for part in want.split(",") if part):
            total += float(value)
    return total
