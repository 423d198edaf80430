"""Real tools the tests need: skip locally when one is missing, fail when ``CI=true``."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when the environment says ``CI=true`` (the CI script sets it)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def require_tool(available: bool, what: str, package: str | None = None) -> None:
    """Skip when a real tool is missing locally; in CI (``CI=true``) that is a failure."""
    if not available:
        missing(f"{what} is not installed (run .ci/run, or apt-get install -y {package or what})")


def missing(message: str) -> NoReturn:
    """Skip the test for want of what ``message`` names; in CI (``CI=true``) fail it."""
    if in_ci():
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)
