"""Browser fixtures: the app served on 127.0.0.1 (the main conftest's live server, on the run's
PostgreSQL and Redis), a real `rq worker` process on the run's queues, and Debian's Chromium
driven by Playwright (never a downloaded browser). A test that fails leaves a screenshot of
its page in tests/artifacts/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.browsing import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PHONE, ROOT

# The suite shares two cores with everything else a run does: give pages time to settle.
EXPECT_TIMEOUT_MS = 15_000


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/browser.sh (make test does) to install Debian's chromium")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def rq_worker(app, live_server):
    """A real `rq worker` process on the run's validation, payouts and default queues, with the
    test environment (DATABASE_URL, REDIS_URL, Stripe stand-in) it inherits from this process."""
    from marketplace.jobs import QUEUES, queue_name

    rq = shutil.which("rq", path=str(Path(sys.executable).parent)) or "rq"
    queues = [queue_name(name, app) for name in QUEUES]
    process = subprocess.Popen(
        [rq, "worker", "--url", app.config["REDIS_URL"], "--worker-class", "rq.worker.SimpleWorker",
         "--quiet", *queues],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    yield process
    # The test is over and the tables are about to be emptied: nothing in flight needs finishing.
    process.terminate()
    try:
        process.wait(timeout=1)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PageErrors(list):
    """Uncaught script errors and console errors (a CSP violation is one) seen by a page."""


def _watch(page, errors: PageErrors) -> None:
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    # A 4xx answer is logged as "Failed to load resource"; the pages expect those and show them.
    page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
            and errors.append(f"console: {msg.text}"))


@pytest.fixture
def open_page(browser, request, live_server):
    """open_page(viewport=PHONE) → a Playwright page in a fresh context (its own sessionStorage).

    Dialogs are recorded and dismissed (the XSS test asserts none opened); on failure every page
    is saved as tests/artifacts/<test name>-<n>.png.
    """
    contexts, pages = [], []

    def make(viewport: dict | None = None):
        context = browser.new_context(viewport=viewport or PHONE, base_url=live_server, accept_downloads=True)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.dialogs = []
        page.errors = PageErrors()
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        _watch(page, page.errors)
        contexts.append(context)
        pages.append(page)
        return page

    yield make
    call = getattr(request.node, "report_call", None)
    if call is not None and call.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        for n, page in enumerate(pages):
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}-{n}.png"), full_page=True)
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"could not save a screenshot of page {n}: {exc}")
    for context in contexts:
        context.close()
