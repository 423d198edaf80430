"""Real-parts test infrastructure: an HTTP upstream, real nginx, and a real conda client."""

from __future__ import annotations

import os
from typing import Self

import pytest


def in_ci() -> bool:
    """True when the environment says ``CI=true`` (the CI script sets it)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def require_tool(available: bool, what: str, package: str | None = None) -> None:
    """Skip when a real tool is missing locally; in CI (``CI=true``) that is a failure."""
    if available:
        return
    message = f"{what} is not installed (run .ci/run, or apt-get install -y {package or what})"
    if in_ci():
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


class StartStop:
    """``with server:`` starts a test server and stops it on the way out; subclasses define
    ``start()`` (returning the server) and ``stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
