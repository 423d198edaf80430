"""Headless Chromium (Debian's) driven by playwright, for the tests of the rendered pages in a
real browser."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from testkit.require import missing, require_tool

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots for people to look at.
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# The channel the example upstream is mirrored into.
CHANNEL = "cloud/example"


def sync_playwright_or_skip(chromium: str = CHROMIUM) -> Any:
    """playwright's ``sync_playwright``; skips naming what is missing (fails when ``CI=true``)."""
    require_tool(os.access(chromium, os.X_OK), "chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright Python package is missing (pip install -e '.[test]')")
    return sync_playwright


def no_horizontal_scroll(page: Any) -> bool:
    """Whether the playwright ``page`` fits the width of its viewport."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
