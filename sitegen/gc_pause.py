"""A pause of the cyclic garbage collector around work on millions of records.

Building or walking millions of record dicts triggers the collector over and over (more
than doubling the time at 500,000 records), and records form no cycles.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

# How many gc_paused blocks are open, in any thread, and whether the GC was on before the
# first: it is one switch for the whole process, so it goes back on when the last block ends,
# never while another thread's block still runs.
_pause_lock = threading.Lock()
_pauses = 0
_resume = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: building or walking millions of record dicts
    triggers it over and over (more than doubling the time at 500k records), and records
    form no cycles. Blocks may overlap, in one thread or several: the GC resumes when the
    last ends (and only if it was on when the first began)."""
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()
