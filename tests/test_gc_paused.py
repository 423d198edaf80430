"""gc_paused: one switch for the whole process, shared by blocks that overlap across threads."""

from __future__ import annotations

import gc
import threading

import pytest

from sitegen.gc_pause import gc_paused

pytestmark = pytest.mark.unit


def test_the_gc_stays_paused_until_the_last_of_overlapping_blocks_ends() -> None:
    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait()

    thread = threading.Thread(target=other)
    try:
        with gc_paused():
            thread.start()
            inside.wait()
        # This thread's block ended first: the other one still runs, paused.
        assert not gc.isenabled()
    finally:
        release.set()
        thread.join()
    assert gc.isenabled()


def test_a_gc_switched_off_before_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
