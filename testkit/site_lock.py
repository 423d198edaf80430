"""Another process holding a site's lock, as a run in progress would."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

HOLDER = (
    "import time; from pathlib import Path; from sitegen.store.lock import SiteLock\n"
    "SiteLock(Path({state!r})).acquire(); print('locked', flush=True)\n"
    "time.sleep(60)"
)


@contextlib.contextmanager
def lock_held(state: Path) -> Iterator[subprocess.Popen[str]]:
    """A process holding the lock of the site state folder ``state`` (a site's ``.sitegen``)
    from the start of the block, killed at its end (or before, by the block)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(state=str(state))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
