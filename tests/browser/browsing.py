"""What the browser tests share besides fixtures: Chromium's path and flags, viewports, and where pictures go."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}


def readme_screenshot(page, name: str) -> None:
    """A picture for the README, taken by the tests themselves.

    Every run saves it under tests/artifacts/; with UPDATE_SCREENSHOTS=1 it also replaces the
    committed copy in docs/screenshots/ (so ordinary runs leave the work tree clean).
    """
    import os

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def console_log_in(page, api_key: str) -> None:
    """Open the console and log in with an API key, as a brand or an admin does."""
    page.goto("/console/")
    page.fill("#api-key", api_key)
    page.click("#login-form button[type=submit]")


def worker_log_in(page, email: str, password: str) -> None:
    """Open the worker client and log in with e-mail and password."""
    page.goto("/app/")
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("#login-form button[type=submit]")
