"""A delaying, bandwidth-capping TCP proxy on 127.0.0.1, to make loopback look like a WAN.

Every chunk the client sends (an HTTP request: headers fit in one read) reaches the upstream
``--delay`` seconds later, so each request pays a round trip; each connection's download is
capped at ``--rate`` bytes/s by a token bucket (burst one read). New connections pay one extra
delay, like a TCP handshake. Run as ``python -m bench.proxy --port P --upstream-port U``; it
serves until killed. Runs in its own process so that its work never shares a GIL with a
measured client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

READ = 64 * 1024


async def _pipe_requests(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    try:
        while data := await reader.read(READ):
            await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _pipe_responses(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float
) -> None:
    loop = asyncio.get_running_loop()
    allowance = float(READ)  # token bucket: at most one read of burst
    last = loop.time()
    try:
        while data := await reader.read(READ):
            now = loop.time()
            allowance = min(float(READ), allowance + (now - last) * rate)
            last = now
            allowance -= len(data)
            if allowance < 0:
                await asyncio.sleep(-allowance / rate)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _handle(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_port: int,
    delay: float,
    rate: float,
) -> None:
    await asyncio.sleep(delay)
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        _pipe_requests(client_reader, up_writer, delay),
        _pipe_responses(up_reader, client_writer, rate),
    )
    with contextlib.suppress(Exception):
        up_writer.close()


async def serve(port: int, upstream_port: int, delay: float, rate: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, upstream_port, delay, rate), "127.0.0.1", port, backlog=256
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.03, help="seconds per request")
    parser.add_argument("--rate", type=float, default=5e6, help="bytes/s per connection")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.upstream_port, args.delay, args.rate))


if __name__ == "__main__":
    main()


class ProxyProcess:
    """Parent side: ``with ProxyProcess(upstream_port) as p: p.url`` runs the proxy above."""

    def __init__(self, upstream_port: int, delay: float = 0.03, rate: float = 5e6) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.rate = rate
        self.port = 0
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ProxyProcess:
        import subprocess
        import sys
        import time

        from bench.common import BenchError, project_env
        from testkit.server_process import free_port, wait_for_port

        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.proxy",
                "--port",
                str(self.port),
                "--upstream-port",
                str(self.upstream_port),
                "--delay",
                str(self.delay),
                "--rate",
                str(self.rate),
            ],
            env=project_env(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_for_port("127.0.0.1", self.port, self.proc, time.monotonic() + 10):
            self.__exit__()
            raise BenchError("the delaying proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        from testkit.server_process import terminate

        proc, self.proc = self.proc, None
        if proc is not None:
            terminate(proc, ((signal.SIGTERM, 5.0),))
