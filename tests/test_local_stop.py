"""A stop while a local source's package is being indexed ends the read of that file at its
next read: a ``.tar.bz2`` is decompressed to its end, minutes for a large one, and a stop must
not wait for that."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from sitegen.sync.report import STOPPED
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec
from testkit.local import drop, local_config

pytestmark = pytest.mark.integration

BIG = PackageSpec("big", "1.0", "0", payload_size=2 << 20)


async def _reads_of_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: bool) -> int:
    """The package reads of a run over a folder holding one .tar.bz2; with ``stop``, the run
    is cancelled (as a stop cancels it) during the first of them."""
    folder = tmp_path / "incoming"
    drop(folder, BIG, "tar.bz2")
    config = local_config(tmp_path / "site", folder)
    package = str(folder / BIG.filename("tar.bz2"))
    reads = 0
    real = os.pread

    with trio.CancelScope() as scope:

        def counted(fd: int, size: int, offset: int) -> bytes:
            nonlocal reads
            if os.readlink(f"/proc/self/fd/{fd}") == package:
                reads += 1
                if stop and reads == 1:
                    trio.from_thread.run_sync(scope.cancel)
            return real(fd, size, offset)

        monkeypatch.setattr(os, "pread", counted)
        report = await run_mirror(config, MirrorOptions(progress=False))
    monkeypatch.undo()
    if stop:
        assert scope.cancelled_caught or report.status == STOPPED
    return reads


async def test_a_stop_ends_the_indexing_of_a_file_at_its_next_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = await _reads_of_one_run(tmp_path / "whole", monkeypatch, stop=False)
    assert whole >= 3  # the file takes several reads: a stop has somewhere to land
    assert await _reads_of_one_run(tmp_path / "stopped", monkeypatch, stop=True) == 1
