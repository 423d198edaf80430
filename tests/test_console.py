"""What a person at a terminal or a cron log sees while a run goes wrong: every retry as it
happens with its cause in plain words, a heartbeat while requests hang, the deletion guard's
reason and hint, and log lines that start on their own line beside the live progress line."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from sitegen.conda.records import Repodata
from sitegen.config import DownloadSettings, MirrorConfig
from sitegen.net.activity import Activity, heartbeat
from sitegen.net.download import download
from sitegen.net.download_job import DownloadJob
from sitegen.net.failures import describe_error
from sitegen.net.upstream import Upstream, UpstreamError, make_client
from sitegen.store.site import Site
from sitegen.store.writer import open_disk_writer
from sitegen.sync.merge import DeletionGuard, Feed, merge_subdir
from sitegen.sync.progress import Progress
from sitegen.sync.report import (
    ERROR,
    FETCHED,
    ChannelSubdirReport,
    MirrorReport,
    MirrorSubdirReport,
    RunReport,
)
from sitegen.sync.report_build import RunResults, build_report
from sitegen.sync.report_log import finish, log_channel_summary
from testkit.raw_server import RawServer
from testkit.records import rec
from testkit.upstream import UpstreamHandler, UpstreamServer

# --------------------------------------------------------------------------- a silent upstream


@pytest.mark.integration
def test_a_silent_upstream_is_reported_attempt_by_attempt_while_the_run_goes_on(
    tmp_path: Path,
) -> None:
    """An upstream that accepts and never answers: each failed attempt is on stderr as it
    happens (which repodata, which attempt of how many, why), long before the run ends."""
    with RawServer("silent", max_seconds=30) as raw:
        url = raw.url
        config = tmp_path / "channels.yaml"
        config.write_text(
            f"output: {tmp_path / 'site'}\n"
            "download: {retries: 3, timeout: 1, connect_timeout: 1}\n"
            f"channels:\n  silent:\n    url: {url}\n    subdirs: [linux-64]\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "sitegen", "mirror", "-c", str(config), "--no-progress"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        watchdog = threading.Timer(60, proc.kill)
        watchdog.start()
        try:
            assert proc.stderr is not None
            seen: list[str] = []
            for line in proc.stderr:
                seen.append(line)
                if "attempt 1 of 4 failed" in line:
                    still_running = proc.poll() is None
                    break
            else:
                pytest.fail("no retry line before the run ended:\n" + "".join(seen))
            rest = proc.stderr.read()
            status = proc.wait()
        finally:
            watchdog.cancel()
            proc.kill()
            proc.wait()
    assert still_running, "the retry line came only after the run ended"
    first = seen[-1]
    assert re.search(rf"{url}/(linux-64|noarch)/repodata.json.zst: attempt 1 of 4 failed:", first)
    assert "timed out waiting for an answer (ReadTimeout); trying again in" in first
    for subdir in ("linux-64", "noarch"):
        for attempt in (2, 3):
            assert f"{subdir}/repodata.json.zst: attempt {attempt} of 4 failed" in rest
        assert f"{subdir}/repodata.json.zst: timed out waiting for an answer (ReadTimeout)" in rest
    assert "attempt 4 of 4" not in rest  # the last one is the failure, not a retry
    assert "(ReadTimeout) after 4 attempts" in rest
    assert status == 1


def _stall_after(size: int):
    """Announce a longer body, send ``size`` bytes of it, then nothing (until the client
    hangs up)."""

    def hook(handler: UpstreamHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(size * 4))
        handler.end_headers()
        handler.wfile.write(b"x" * size)
        handler.wfile.flush()
        handler.close_connection = True
        handler.rfile.read(1)  # returns when the client closes the connection

    return hook


@pytest.mark.integration
async def test_a_stalled_download_says_after_how_many_bytes(
    tmp_path: Path, upstream_server_factory, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "upstream"
    (root / "linux-64").mkdir(parents=True)
    server: UpstreamServer = upstream_server_factory(root)
    server.add_fault("/linux-64/stuck-1-0.conda", _stall_after(700))
    settings = DownloadSettings(concurrency=1, per_host=1, retries=1, timeout=0.5)
    mirror = MirrorConfig(name="m", url=server.url, subdirs=("linux-64",))
    record = rec("stuck", "1", "0", size=2800, sha256="0" * 64, subdir="linux-64")
    site = Site(tmp_path / "site")
    client = make_client(settings)
    try:
        upstream = Upstream(mirror, client, settings, trio.CapacityLimiter(1))
        job = DownloadJob(upstream, record, site.path("linux-64", record.fn))
        with caplog.at_level(logging.WARNING, logger="sitegen"):
            async with open_disk_writer() as writer:
                result = await download(job, site, writer, retries=1)
    finally:
        await client.aclose()
    assert not result.ok
    # Whichever notices first on a loaded machine: the read timeout, or the pace a transfer
    # must keep (net/failures); either way the bytes it stalled after are told.
    stalled = r"stalled after 700 bytes \((ReadTimeout|TooSlowError)\)"
    assert re.fullmatch(f"stuck-1-0.conda: {stalled}", result.error), result.error
    (retry,) = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert retry.startswith(f"{server.url}/linux-64/stuck-1-0.conda: attempt 1 of 2 failed:")
    assert re.search(f"{stalled}; trying again in", retry), retry


# --------------------------------------------------------------------------- causes in words


def _connect_error(cause: BaseException) -> httpx.ConnectError:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise httpx.ConnectError("x") from exc
    except httpx.ConnectError as error:
        return error


@pytest.mark.unit
def test_transport_failures_are_described_in_plain_words() -> None:
    unknown_host = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "self-signed certificate in certificate chain"
    cases = {
        _connect_error(unknown_host): "name resolution failed: Name or service not known",
        _connect_error(ConnectionRefusedError(111, "Connection refused")): "connection refused",
        httpx.ConnectTimeout("timed out connecting"): "timed out connecting (ConnectTimeout)",
        httpx.ReadTimeout("x"): "timed out waiting for an answer (ReadTimeout)",
        trio.TooSlowError(): "timed out waiting for an answer (TooSlowError)",
    }
    for exc, words in cases.items():
        assert describe_error(exc).startswith(words), describe_error(exc)
    assert describe_error(httpx.ReadTimeout("x"), 4096) == "stalled after 4096 bytes (ReadTimeout)"
    tls = describe_error(_connect_error(untrusted))
    assert tls.startswith("TLS certificate not trusted: self-signed certificate in certificate")
    assert "ca_bundle" in tls and "verify_tls: false" in tls
    # No plain words known: the kind alone, never the text (it may quote a token URL).
    assert describe_error(httpx.ConnectError("http://u:secret@host/")) == "ConnectError"


@pytest.mark.integration
async def test_an_upstream_that_does_not_accept_times_out_connecting_soon() -> None:
    """A listening socket whose backlog is full: the kernel leaves the next connection
    attempt unanswered, as a host behind a dropping firewall does."""
    assert DownloadSettings().connect_timeout == 10.0
    settings = DownloadSettings(retries=0, timeout=60, connect_timeout=0.5)
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        host, port = listener.getsockname()
        queued = [socket.create_connection((host, port))]
        url = f"http://{host}:{port}"
        mirror = MirrorConfig(name="m", url=url, subdirs=("linux-64",))
        client = make_client(settings)
        try:
            upstream = Upstream(mirror, client, settings, trio.CapacityLimiter(1))
            with trio.fail_after(5), pytest.raises(UpstreamError) as failed:
                await upstream.request(f"{url}/linux-64/repodata.json", {})
        finally:
            await client.aclose()
            for sock in queued:
                sock.close()
    assert str(failed.value) == (
        f"{url}/linux-64/repodata.json: timed out connecting (ConnectTimeout) after 1 attempts"
    )


@pytest.mark.integration
async def test_a_refused_connection_is_named_so() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        host, port = closed.getsockname()
    url = f"http://{host}:{port}"
    settings = DownloadSettings(retries=0)
    client = make_client(settings)
    try:
        mirror = MirrorConfig(name="m", url=url, subdirs=("linux-64",))
        upstream = Upstream(mirror, client, settings, trio.CapacityLimiter(1))
        with pytest.raises(UpstreamError) as failed:
            await upstream.request(f"{url}/noarch/repodata.json", {})
    finally:
        await client.aclose()
    assert str(failed.value).endswith(": connection refused (ConnectError) after 1 attempts")


# --------------------------------------------------------------------------- heartbeat


@pytest.mark.unit
def test_a_run_waiting_on_the_network_says_so_every_ten_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    activity = Activity()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat, activity)
            with activity.transfer("https://up/linux-64/big-1-0.conda") as big:
                activity.add(big, 2_500_000)
                await trio.sleep(5)
                with activity.transfer("https://up/noarch/repodata.json.zst"):
                    await trio.sleep(30)  # the heartbeats at 10, 20 and 30 s
            await trio.sleep(25)  # nothing in flight: nothing to say
            nursery.cancel_scope.cancel()

    with caplog.at_level(logging.INFO, logger="sitegen"):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    beats = [r.getMessage() for r in caplog.records]
    assert beats == [
        "waiting on the network: 1 request in flight:"
        " https://up/linux-64/big-1-0.conda (10 s, 2.5 MB); 2.5 MB received so far",
        "waiting on the network: 2 requests in flight:"
        " https://up/linux-64/big-1-0.conda (20 s, 2.5 MB),"
        " https://up/noarch/repodata.json.zst (15 s, 0 B); 2.5 MB received so far",
        "waiting on the network: 2 requests in flight:"
        " https://up/linux-64/big-1-0.conda (30 s, 2.5 MB),"
        " https://up/noarch/repodata.json.zst (25 s, 0 B); 2.5 MB received so far",
    ]


# --------------------------------------------------------------------------- the console


@pytest.mark.unit
def test_a_log_line_during_the_live_progress_line_starts_on_its_own_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        progress = Progress(2, 2000, live=True)
        progress.add_bytes(1000)
        logging.getLogger("sitegen").warning("received SIGINT: stopping")
        progress.add_bytes(1000)
        progress.close()
    finally:
        root.removeHandler(handler)
    before, after = terminal.getvalue().split("received SIGINT: stopping\n")
    assert "0/2 files" in before and before.endswith("\r\x1b[K")  # the line cleared first
    assert "0/2 files, 2.0 KB/2.0 KB" in after and after.endswith("\n")  # drawn again
    assert not handler.filters  # the terminal is left as it was found


def _held_report() -> ChannelSubdirReport:
    previous = rec("a", "1", "0", subdir="linux-64")
    published = Repodata(subdir="linux-64", records={previous.fn: previous})
    held = merge_subdir(
        "c", "linux-64", [Feed("m", published, {})], [], published, DeletionGuard(0.5)
    )
    assert held is not None
    report = RunReport(id="r", started=0.0)
    build_report(report, set(), RunResults(mirrors=[], merged=[held]))
    (cr,) = report.channels
    return cr


@pytest.mark.unit
def test_a_held_subdir_says_why_and_what_it_still_publishes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cr = _held_report()
    assert (cr.status, cr.packages) == ("held", 1)
    with caplog.at_level(logging.INFO, logger="sitegen"):
        log_channel_summary(cr)
    error, summary = caplog.records
    assert error.levelno == logging.ERROR
    assert error.getMessage().startswith(
        "c/linux-64: would remove 1 of 1 published files (100%), more than the allowed 50%"
    )
    assert "--force-delete" in error.getMessage()
    assert summary.getMessage() == "c/linux-64: held, still publishes its previous 1 file"


@pytest.mark.unit
def test_a_dry_run_summary_says_would_download(caplog: pytest.LogCaptureFixture) -> None:
    dry = ChannelSubdirReport("c", "noarch", status="dry-run", packages=3, downloaded_files=2)
    with caplog.at_level(logging.INFO, logger="sitegen"):
        log_channel_summary(dry)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == "c/noarch: dry-run, 3 files (+0 ~0 -0), would download 2 files (0 B)"


@pytest.mark.unit
def test_a_mirror_that_could_not_read_upstream_says_failed_not_kept_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = MirrorReport("m", "c", "https://up.example/c", errors=["connection refused"])
    down.subdirs["linux-64"] = MirrorSubdirReport(upstream=ERROR)
    read = MirrorReport("n", "d", "https://up.example/d")
    read.subdirs["linux-64"] = MirrorSubdirReport(upstream=FETCHED, records=1, kept=1)
    report = RunReport(id="r", started=0.0, mirrors=[down, read])
    with caplog.at_level(logging.INFO, logger="sitegen"):
        finish(report)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["m: failed: upstream could not be read", "n: kept 1 record"]


@pytest.mark.unit
def test_a_mirror_that_was_not_run_says_so_not_that_upstream_could_not_be_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No subdir tried: an ${ENV} unset, a CA bundle missing, an advisory feed never had.
    unusable = MirrorReport("m", "c", "https://up.example/c", errors=["advisory feed ..."])
    with caplog.at_level(logging.INFO, logger="sitegen"):
        finish(RunReport(id="r", started=0.0, mirrors=[unusable]))
    assert [r.getMessage() for r in caplog.records] == ["m: failed: not run"]


@pytest.mark.unit
def test_a_local_source_whose_folder_could_not_be_read_says_the_folder(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = MirrorReport("m", "c", "/srv/inbox", kind="local", errors=["no such folder"])
    gone.subdirs["linux-64"] = MirrorSubdirReport(upstream=ERROR)
    with caplog.at_level(logging.INFO, logger="sitegen"):
        finish(RunReport(id="r", started=0.0, mirrors=[gone]))
    assert [r.getMessage() for r in caplog.records] == ["m: failed: the folder could not be read"]
