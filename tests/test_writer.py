"""DiskWriter: downloaded bytes reach the pending file from worker threads, in order, with
errors reported, memory bounded, and nothing written once a stream is given up."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio
import trio.testing

from sitegen.store import writer as writer_mod
from sitegen.store.site import PendingFile, Site
from sitegen.store.writer import open_disk_writer

# A bound on how long any of these may hang if the writer deadlocks; never reached otherwise.
HANG_GUARD = 30


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few chunks, so that these small files take several hand-overs."""
    monkeypatch.setattr(writer_mod, "BATCH", 2500)


def _chunks(count: int, size: int) -> list[bytes]:
    return [bytes([i % 251]) * size for i in range(count)]


@pytest.mark.unit
async def test_chunks_land_in_order_and_are_seen_by_on_write(tmp_path: Path) -> None:
    site = Site(tmp_path)
    target = tmp_path / "a.conda"
    chunks = _chunks(200, 4096 + 7)
    digest = hashlib.sha256()
    with trio.fail_after(HANG_GUARD), site.pending(target) as pending:
        async with (
            open_disk_writer() as writer,
            writer.stream(pending, on_write=digest.update) as stream,
        ):
            for chunk in chunks:
                await stream.write(chunk)
            await stream.finish()
        pending.commit()
    assert target.read_bytes() == b"".join(chunks)
    assert digest.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


@pytest.mark.unit
async def test_parts_streamed_from_their_offsets_by_several_tasks(tmp_path: Path) -> None:
    site = Site(tmp_path)
    target = tmp_path / "big.conda"
    parts = _chunks(8, 50_000)
    with trio.fail_after(HANG_GUARD), site.pending(target) as pending:
        async with open_disk_writer() as writer, trio.open_nursery() as nursery:

            async def part(index: int) -> None:
                data = parts[index]
                async with writer.stream(pending, index * len(data)) as stream:
                    for start in range(0, len(data), 3000):
                        await stream.write(data[start : start + 3000])
                        await trio.lowlevel.checkpoint()  # interleave the parts
                    await stream.finish()

            for index in reversed(range(len(parts))):
                nursery.start_soon(part, index)
        pending.commit()
    assert target.read_bytes() == b"".join(parts)


@pytest.mark.unit
async def test_files_spread_over_workers_each_stay_whole(tmp_path: Path) -> None:
    site = Site(tmp_path)
    contents = {f"f{i}.conda": b"".join(_chunks(20, 1000 + i)) for i in range(12)}
    with trio.fail_after(HANG_GUARD):
        async with open_disk_writer(workers=3) as writer, trio.open_nursery() as nursery:

            async def one(name: str, data: bytes) -> None:
                with site.pending(tmp_path / name) as pending:
                    async with writer.stream(pending) as stream:
                        for start in range(0, len(data), 700):
                            await stream.write(data[start : start + 700])
                            await trio.lowlevel.checkpoint()
                        await stream.finish()
                    pending.commit()

            for name, data in contents.items():
                nursery.start_soon(one, name, data)
    assert {name: (tmp_path / name).read_bytes() for name in contents} == contents


class _FailingFile(PendingFile):
    def write_at(self, buffers: Sequence[bytes], offset: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.unit
async def test_a_failed_write_is_raised_by_finish_and_by_later_writes(tmp_path: Path) -> None:
    site = Site(tmp_path)
    with trio.fail_after(HANG_GUARD), site.pending(tmp_path / "a.conda") as good:
        failing = _FailingFile(site, good.target, good.fd, good.temp)
        async with open_disk_writer() as writer, writer.stream(failing) as stream:
            await stream.write(b"x" * 10)
            with pytest.raises(OSError, match="No space left"):
                await stream.finish()
            with pytest.raises(OSError, match="No space left"):
                await stream.write(b"y")


@pytest.mark.unit
async def test_producers_wait_while_the_disk_is_behind(tmp_path: Path) -> None:
    """At most max_buffered bytes wait for the disk: the transfers stop until it catches up,
    and every one of several waiting transfers goes on again (none is forgotten)."""
    site = Site(tmp_path)
    disk = threading.Event()  # the "disk" accepts nothing until set
    seen: list[int] = []

    def slow_disk(chunk: bytes) -> None:
        disk.wait(HANG_GUARD)
        seen.append(len(chunk))

    max_buffered, size, per_file, files = 10_000, 1_000, 30, 5
    sent = [0] * files
    with trio.fail_after(HANG_GUARD):
        async with open_disk_writer(workers=2, max_buffered=max_buffered) as writer:

            async def producer(index: int) -> None:
                with site.pending(tmp_path / f"p{index}.conda") as pending:
                    async with writer.stream(pending, on_write=slow_disk) as stream:
                        for _ in range(per_file):
                            await stream.write(b"z" * size)
                            sent[index] += 1
                        await stream.finish()
                    pending.commit()

            async with trio.open_nursery() as nursery:
                for index in range(files):
                    nursery.start_soon(producer, index)
                try:
                    await trio.testing.wait_all_tasks_blocked(cushion=0.05)
                    # Sent while the disk stood still: the bound, one batch more, and what
                    # each transfer gathers for its next batch.
                    batch = writer_mod.BATCH
                    assert sum(sent) * size <= max_buffered + 2 * batch + files * batch
                    assert sum(sent) < files * per_file
                finally:
                    disk.set()
    assert sent == [per_file] * files
    assert sum(seen) == files * per_file * size
    for index in range(files):
        assert (tmp_path / f"p{index}.conda").read_bytes() == b"z" * size * per_file


class _Gate:
    """An on_write that holds the worker inside the first chunk until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.calls: list[int] = []

    def __call__(self, chunk: bytes) -> None:
        self.entered.set()
        self.opened.wait(HANG_GUARD)
        self.calls.append(len(chunk))

    async def open_once_all_wait(self) -> None:
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        self.opened.set()


@pytest.mark.unit
async def test_a_stream_left_without_finish_writes_nothing_more(tmp_path: Path) -> None:
    """A failed transfer leaves its stream early: what was still queued is dropped, and once
    the stream is left nothing touches the file, so discarding it is safe."""
    site = Site(tmp_path)
    gate = _Gate()
    with trio.fail_after(HANG_GUARD):
        async with open_disk_writer(workers=1) as writer, trio.open_nursery() as nursery:
            with site.pending(tmp_path / "a.conda") as pending:
                with pytest.raises(RuntimeError):
                    async with writer.stream(pending, on_write=gate) as stream:
                        await stream.write(b"q" * 3000)  # a batch: sent at once
                        await trio.to_thread.run_sync(gate.entered.wait, HANG_GUARD)
                        for _ in range(9):
                            await stream.write(b"q" * 3000)
                        nursery.start_soon(gate.open_once_all_wait)
                        raise RuntimeError("the connection broke")
                after_exit = list(gate.calls)
                size = os.fstat(pending.fd).st_size
    assert after_exit == gate.calls == [3000]  # the batch in the worker's hands, no other
    assert size == 3000
    assert list(tmp_path.iterdir()) == []


@pytest.mark.unit
async def test_a_cancelled_transfer_leaves_its_stream_only_when_the_worker_has(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path)
    gate = _Gate()
    with trio.fail_after(HANG_GUARD):
        async with open_disk_writer(workers=1) as writer, trio.open_nursery() as nursery:
            with trio.CancelScope() as scope, site.pending(tmp_path / "a.conda") as pending:
                async with writer.stream(pending, on_write=gate) as stream:
                    await stream.write(b"c" * 3000)
                    await trio.to_thread.run_sync(gate.entered.wait, HANG_GUARD)
                    nursery.start_soon(gate.open_once_all_wait)
                    scope.cancel()
                    await trio.sleep_forever()
            after_exit = list(gate.calls)
    assert scope.cancelled_caught
    assert after_exit == gate.calls == [3000]


class _CountingFile(PendingFile):
    calls: list[int]

    def write_at(self, buffers: Sequence[bytes], offset: int) -> None:
        self.calls.append(sum(len(b) for b in buffers))
        super().write_at(buffers, offset)


@pytest.mark.unit
async def test_chunks_reach_the_worker_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each hand-over costs two GIL switches: a small file goes over once, a large one in
    batches of BATCH bytes."""
    monkeypatch.setattr(writer_mod, "BATCH", 1 << 20)
    site = Site(tmp_path)
    sizes = {"small.conda": 200 * 4096, "large.conda": 3 * (1 << 20) + 5}
    calls = {}
    with trio.fail_after(HANG_GUARD):
        async with open_disk_writer() as writer:
            for name, size in sizes.items():
                with site.pending(tmp_path / name) as plain:
                    pending = _CountingFile(site, plain.target, plain.fd, plain.temp)
                    pending.calls = calls[name] = []
                    async with writer.stream(pending) as stream:
                        for start in range(0, size, 4096):
                            await stream.write(b"b" * min(4096, size - start))
                        await stream.finish()
                    plain.commit()
    assert calls["small.conda"] == [200 * 4096]
    assert calls["large.conda"] == [1 << 20, 1 << 20, 1 << 20, 5]
    assert {name: (tmp_path / name).stat().st_size for name in sizes} == sizes


@pytest.mark.unit
async def test_then_runs_in_the_worker_after_the_last_byte(tmp_path: Path) -> None:
    """finish(then): the file is verified and named off the event loop, once it is whole;
    what ``then`` raises comes back from finish, and after a failed write it does not run."""
    site = Site(tmp_path)
    seen: list[tuple[int, bool]] = []
    with trio.fail_after(HANG_GUARD):
        async with open_disk_writer() as writer:
            with site.pending(tmp_path / "a.conda") as pending:
                async with writer.stream(pending) as stream:
                    for _ in range(5):
                        await stream.write(b"t" * 1000)

                    def commit() -> None:
                        in_worker = threading.current_thread() is not threading.main_thread()
                        seen.append((os.fstat(pending.fd).st_size, in_worker))
                        pending.commit()

                    await stream.finish(commit)

            with site.pending(tmp_path / "b.conda") as pending:
                async with writer.stream(pending) as stream:
                    await stream.write(b"u" * 10)

                    def refuse() -> None:
                        raise ValueError("checksum mismatch")

                    with pytest.raises(ValueError, match="checksum mismatch"):
                        await stream.finish(refuse)

            with site.pending(tmp_path / "c.conda") as good:
                failing = _FailingFile(site, good.target, good.fd, good.temp)
                async with writer.stream(failing) as stream:
                    await stream.write(b"v" * 10)
                    with pytest.raises(OSError, match="No space left"):
                        await stream.finish(lambda: seen.append((-1, False)))
    assert seen == [(5000, True)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.conda"]


# Run in a child process: were a stream to wait for a worker that is gone, it would wait
# inside a shielded scope, which no deadline in this process could end.
_WORKER_GONE = """
import sys, tempfile, pathlib, trio
from sitegen.store import writer as writer_mod
from sitegen.store.site import Site
from sitegen.store.writer import open_disk_writer

async def never_started(site, root):
    with trio.CancelScope() as scope:
        async with open_disk_writer() as writer:
            with site.pending(root / "a.conda") as pending:
                scope.cancel()  # before the worker tasks first ran: no thread starts
                async with writer.stream(pending) as stream:
                    await stream.write(b"x" * 10)
    print("never started: released")

async def died(site, root):
    def boom(self, worker):
        raise RuntimeError("worker crashed")
    writer_mod.DiskWriter._work = boom
    try:
        async with open_disk_writer(workers=1) as writer:
            with site.pending(root / "b.conda") as pending:
                async with writer.stream(pending) as stream:
                    await trio.sleep(0.2)  # the worker has died by now
                    await stream.write(b"y" * 10)
                    await stream.finish()
    except BaseException as exc:
        print("died:", type(exc).__name__, repr(exc)[:200])

root = pathlib.Path(sys.argv[1])
site = Site(root)
trio.run(never_started, site, root)
trio.run(died, site, root)
print("left:", sorted(p.name for p in root.iterdir()))
"""


@pytest.mark.integration
def test_streams_are_released_when_a_worker_is_gone(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WORKER_GONE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "never started: released"
    assert lines[1].startswith("died:") and "worker crashed" in lines[1], lines
    assert lines[2] == "left: []"
