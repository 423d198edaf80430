"""Write-behind for downloads: received bytes go to disk from worker threads.

Copying bytes into the page cache (and hashing them) costs about as much CPU as receiving
them. Done in the event loop, that copy would hold up every transfer while the other cores
idle, and a slow disk or network filesystem would stall them all. The event loop hands the
bytes to a worker thread instead and goes back to the sockets: ``os.pwritev`` and
``hashlib`` release the GIL, so receiving, copying and hashing run side by side.

Handing over has its price (the GIL changes hands twice per batch), so a stream gathers what
arrives into batches of ``BATCH`` bytes; a file smaller than that reaches its worker once,
together with the request to report back when it is on disk. Each stream keeps to one worker,
so its batches land in order. At most ``max_buffered`` bytes wait in the queues (besides the
batch each transfer is gathering); beyond that the transfers wait, so a slow disk slows the
download instead of filling memory. A stream someone reads while it is written (``on_landed``)
hands over every chunk as it comes and is told, in the event loop, how far the file is on disk
each time a chunk lands. A stream never outlives its worker: should a worker's
thread end (or, cancelled early, never start), whatever waits on it is released with an error.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from itertools import cycle

import trio

from sitegen.store.interface import PendingWrite

BATCH = 1 << 20
MAX_BUFFERED = 64 << 20
WORKERS = 2


class FileStream:
    """Bytes on their way into one pending file, written one after the other from ``start``."""

    def __init__(
        self,
        writer: DiskWriter,
        worker: _Worker,
        pending: PendingWrite,
        start: int,
        on_write: Callable[[bytes], object] | None,
        on_landed: Callable[[int], object] | None = None,
    ) -> None:
        self.writer = writer
        self.worker = worker
        self.pending = pending
        self.on_write = on_write  # run in the worker on every chunk, in order (a hash update)
        # Told in the event loop the file offset up to which the stream's bytes are on disk.
        self.on_landed = on_landed
        self.error: BaseException | None = None  # the first failure; later batches are skipped
        self.abandoned = False
        self._position = start  # where the batch being gathered goes
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._settled = trio.Event()
        self._then: Callable[[], object] | None = None

    async def write(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self._batch.append(data)
        self._batch_size += len(data)
        # A reader follows the file: a slow upstream must not keep what came waiting for a batch.
        if self._batch_size >= BATCH or self.on_landed is not None:
            await self._send(settle=False)

    async def finish(self, then: Callable[[], object] | None = None) -> None:
        """Wait until every byte given is written and ``then`` (if given) has run in the worker
        after them, e.g. to verify and commit the file off the event loop; raise what writing
        them or ``then`` raised."""
        if not self._settled.is_set():
            self._then = then
            await self._send(settle=True)
            await self._settled.wait()
        if self.error is not None:
            raise self.error

    async def _send(self, settle: bool) -> None:
        batch, size, position = self._batch, self._batch_size, self._position
        self._batch, self._batch_size, self._position = [], 0, position + size
        await self.writer._put(_Item(self, batch, size, position, settle))

    async def _abandon(self) -> None:
        """Skip what was not written yet; wait until the worker is done with this stream."""
        self.abandoned = True
        self.writer._enqueue(_Item(self, [], 0, self._position, settle=True))
        await self._settled.wait()


class _Item:
    __slots__ = ("batch", "position", "settle", "size", "stream")

    def __init__(
        self, stream: FileStream, batch: list[bytes], size: int, position: int, settle: bool
    ) -> None:
        self.stream = stream
        self.batch = batch
        self.size = size
        self.position = position
        self.settle = settle  # report back once this item is done


class _Worker:
    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()  # None: stop
        self.written = 0  # bytes taken off the queue; only this worker's thread adds to it
        self.gone = False  # its thread ended or never started; set by the event loop


class DiskWriter:
    """Worker threads that write (and hash) what the event loop receives."""

    def __init__(self, workers: int, max_buffered: int) -> None:
        self.max_buffered = max_buffered
        self._workers = [_Worker() for _ in range(workers)]
        self._assign = cycle(self._workers)
        self._token = trio.lowlevel.current_trio_token()
        self._queued = 0  # bytes put on the queues; only the event loop adds to it
        self._room: trio.Event | None = None  # transfers waiting for the disk to catch up
        self._room_lock = threading.Lock()

    @asynccontextmanager
    async def stream(
        self,
        pending: PendingWrite,
        start: int = 0,
        on_write: Callable[[bytes], object] | None = None,
        on_landed: Callable[[int], object] | None = None,
    ) -> AsyncIterator[FileStream]:
        """A stream into ``pending`` from offset ``start``. On the way out nothing of it is
        still queued, so the file can be committed or discarded safely; left without
        :meth:`FileStream.finish`, whatever was not written yet is dropped."""
        stream = FileStream(self, next(self._assign), pending, start, on_write, on_landed)
        try:
            yield stream
        finally:
            if not stream._settled.is_set():
                with trio.CancelScope(shield=True):
                    await stream._abandon()

    def _buffered(self) -> int:
        return self._queued - sum(worker.written for worker in self._workers)

    async def _put(self, item: _Item) -> None:
        while self._buffered() > self.max_buffered:
            # One event for every waiting transfer; the worker that drains the queues sets it.
            with self._room_lock:
                if self._room is None:
                    self._room = trio.Event()
                room = self._room
            if self._buffered() > self.max_buffered:  # a worker may have drained them since
                await room.wait()
        self._enqueue(item)

    def _enqueue(self, item: _Item) -> None:
        if item.stream.worker.gone:
            _drop(item)
            return
        self._queued += item.size
        item.stream.worker.queue.put(item)

    async def _run(self, worker: _Worker) -> None:
        try:
            await trio.to_thread.run_sync(self._work, worker)
        finally:
            self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        """The worker's thread ended (or, cancelled early, never started): release every stream
        still waiting on it, so none waits forever, and any transfer waiting for room."""
        worker.gone = True
        while True:
            try:
                item = worker.queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._queued -= item.size
                _drop(item)
        room = self._take_room()
        if room is not None:
            room.set()

    def _work(self, worker: _Worker) -> None:
        while (item := worker.queue.get()) is not None:
            stream = item.stream
            if item.batch and stream.error is None and not stream.abandoned:
                try:
                    if stream.on_write is not None:
                        for chunk in item.batch:
                            stream.on_write(chunk)
                    stream.pending.write_at(item.batch, item.position)
                except BaseException as exc:
                    stream.error = exc
                else:
                    if stream.on_landed is not None:
                        end = item.position + item.size
                        self._token.run_sync_soon(stream.on_landed, end)
            worker.written += item.size
            if item.settle:
                if stream._then is not None and stream.error is None and not stream.abandoned:
                    try:
                        stream._then()
                    except BaseException as exc:
                        stream.error = exc
                self._token.run_sync_soon(stream._settled.set)
            if self._room is not None and self._buffered() <= self.max_buffered // 2:
                room = self._take_room()
                if room is not None:
                    self._token.run_sync_soon(room.set)

    def _take_room(self) -> trio.Event | None:
        """The event transfers wait on for room, now theirs to set (from either thread)."""
        with self._room_lock:
            room, self._room = self._room, None
        return room


@asynccontextmanager
async def open_disk_writer(
    workers: int = WORKERS, max_buffered: int = MAX_BUFFERED
) -> AsyncIterator[DiskWriter]:
    """A running DiskWriter; its threads end with the block, after the last queued write."""
    writer = DiskWriter(workers, max_buffered)
    async with trio.open_nursery() as nursery:
        for worker in writer._workers:
            nursery.start_soon(writer._run, worker)
        try:
            yield writer
        finally:
            for worker in writer._workers:
                worker.queue.put(None)


def _drop(item: _Item) -> None:
    """An item no worker will take: its stream fails (and is told, when it waits)."""
    stream = item.stream
    if stream.error is None and not stream.abandoned:
        stream.error = OSError("the disk writer has stopped")
    if item.settle:
        stream._settled.set()
