"""Real tools the tests need: skip locally when one is missing, fail when ``CI=true``."""

from __future__ import annotations

import os
import subprocess
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


def unprivileged() -> list[str]:
    """A command prefix under which file permissions bind: none for a user; for root a user
    namespace of its own (``unshare -U``), where root keeps its own files' owner rights but
    no power over permissions."""
    if os.geteuid() != 0:
        return []
    try:
        probe = subprocess.run(["unshare", "-U", "true"], capture_output=True, timeout=30)
    except FileNotFoundError:
        missing("unshare is not installed (apt-get install -y util-linux)")
    if probe.returncode != 0:
        missing(f"no user namespace for root to drop its powers in: {probe.stderr!r}")
    return ["unshare", "-U"]


def without_inotify() -> tuple[str, ...]:
    """A command prefix under which no inotify instance can be made, as when a user's
    ``fs.inotify.max_user_instances`` are taken: a user namespace of its own (``unshare -U
    -r``) whose limit is set to 0; the rest of the machine keeps its limits."""
    prefix = (
        "unshare",
        "-U",
        "-r",
        "sh",
        "-c",
        'echo 0 > /proc/sys/user/max_inotify_instances && exec "$@"',
        "sh",
    )
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    except FileNotFoundError:
        missing("unshare is not installed (apt-get install -y util-linux)")
    if probe.returncode != 0:
        missing(f"no user namespace with an inotify limit of its own: {probe.stderr!r}")
    return prefix
