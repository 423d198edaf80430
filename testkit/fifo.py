"""Named pipes under names sitegen reads: what a reader blocked on one is let go by, and
whether some work got past one without waiting for a writer."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


def let_reader_go(fifo: Path) -> bool:
    """Open ``fifo`` for writing and close it, so a reader blocked on it reads an empty file;
    False when nobody reads it (yet)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        return False
    return True


def finished_without_writer(fifo: Path, work: Callable[[], None], within: float = 30) -> bool:
    """Run ``work`` in a thread; True when it ended within ``within`` seconds with nobody
    writing to ``fifo``. A thread still waiting then is let go (by a writer that closes at
    once) and waited for, so that no test leaves it behind."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(within)
    blocked = thread.is_alive()
    if blocked:
        let_reader_go(fifo)
        thread.join()
    return not blocked
