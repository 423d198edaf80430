"""``sitegen stats`` on logs written by real nginx and real Apache running the configs of
``sitegen webconf``: curl fetches repodata, packages, ranges, missing and hostile paths, and the
counts in ``stats.json`` are exactly what was fetched, across a rotation and compression of the
log, with incremental runs reading only new bytes."""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import trio

from sitegen import layout
from sitegen.cli import main
from sitegen.config import SiteConfig, load_config
from sitegen.stats.report import PassiveCounts, StatsDoc, decode_doc
from sitegen.stats.run import run_stats
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.apache import require_server, webconf_server
from testkit.client import solve_and_install
from testkit.faults import slow_drip
from testkit.fetcher import fetcher_process
from testkit.require import require_tool
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

PREFIX = "/conda"
CHANNEL = "cloud/example"
TOKEN = "tk-Secret-0042"
CONDA = "conda/24.1.2 requests/2.31.0 CPython/3.12.4 Linux/6.5.0 debian/12 glibc/2.36"
PIXI = "pixi/0.39.0"
MICROMAMBA = "micromamba/2.0.5"


def _write_config(public_dir: Path, upstream: str, log: Path, mode: str = "active") -> Path:
    path = public_dir / "channels.yaml"
    path.write_text(
        f"output: {public_dir / 'site'}\n"
        "download: {retries: 0}\n"
        "channels:\n"
        f"  {CHANNEL}:\n"
        f"    url: {upstream}\n"
        "    subdirs: [linux-64]\n"
        f"    mode: {mode}\n"
        "stats:\n"
        f"  logs: [{log}]\n"
    )
    return path


def curl(url: str, agent: str, byte_range: str | None = None) -> int:
    """The final status, redirects followed as conda clients follow them (Apache sends a
    client back to the static URL once the passive fetcher stored a file)."""
    command = ["curl", "-s", "-L", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}"]
    command += ["-A", agent, url] + (["-r", byte_range] if byte_range else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)
    return int(done.stdout)


def wait_for_lines(log: Path, count: int) -> None:
    """The server writes a line after answering: wait until ``count`` lines are there."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        logs = [log, *log.parent.glob(log.name + ".*")]
        have = sum(p.read_bytes().count(b"\n") for p in logs if not p.name.endswith(".gz"))
        if have >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{log}: fewer than {count} lines")


def _doc(config: SiteConfig) -> StatsDoc:
    return decode_doc((config.output / "stats.json").read_bytes())


def _published(config: SiteConfig) -> dict[str, int]:
    repodata = json.loads((config.output / CHANNEL / "linux-64" / "repodata.json").read_bytes())
    entries = {**repodata["packages"], **repodata["packages.conda"]}
    return {fn: entry["size"] for fn, entry in entries.items()}


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_stats_count_exactly_what_the_real_server_served(
    server: str, example_upstream: ExampleUpstream, public_dir: Path
) -> None:
    require_server(server)
    require_tool(shutil.which("curl") is not None, "curl")
    state = public_dir / "state"
    log = state / "access.log"
    config_path = _write_config(public_dir, example_upstream.url, log)
    config = load_config(config_path)
    assert not trio.run(run_mirror, config, MirrorOptions(progress=False)).failed
    sizes = _published(config)
    conda = sorted(fn for fn in sizes if fn.endswith(".conda"))[0]
    tarbz2 = sorted(fn for fn in sizes if fn.endswith(".tar.bz2"))[0]
    (config.output / "index.html").write_text("<p>a page, not a download</p>")
    running = webconf_server(server, config, state, prefix=PREFIX)
    with running:
        base = f"{running.url}{PREFIX}/{CHANNEL}/linux-64"
        expected = [
            (curl(f"{base}/repodata.json", CONDA), 200),
            (curl(f"{base}/repodata.json", MICROMAMBA), 200),
            (curl(f"{base}/{conda}", CONDA), 200),
            (curl(f"{base}/{conda}", PIXI, "0-99"), 206),
            (curl(f"{base}/{conda}", PIXI, "100-199"), 206),
            (curl(f"{base}/{tarbz2}", MICROMAMBA), 200),
            (curl(f"{base}/missing-1.0-0.conda", CONDA), 404),
            (curl(f"{base}/missing-1.0-0.conda", PIXI), 404),
            (curl(f"{running.url}{PREFIX}/t/{TOKEN}/{CHANNEL}/linux-64/{conda}", CONDA), 404),
            # A token with nothing after it, written plainly or not.
            (curl(f"{running.url}{PREFIX}/t/{TOKEN}", CONDA), 404),
            (curl(f"{running.url}{PREFIX}/%74/{TOKEN}", CONDA), 404),
            (curl(f"{base}/%3Cscript%3Ealert(1)%3C%2Fscript%3E-1-0.conda", CONDA), 404),
            (curl(f"{running.url}{PREFIX}/index.html", "Mozilla/5.0"), 200),
        ]
        assert [status for status, _ in expected] == [want for _, want in expected]
        wait_for_lines(log, len(expected))
        raw = log.read_bytes()
        assert TOKEN.encode() not in raw and b"/t/***/" in raw  # masked by the server

        assert main(["stats", "-c", str(config_path)]) == 0
        doc = _doc(config)
        assert doc.totals.downloads == 3  # conda (200), conda (two ranges: one), tar.bz2
        assert doc.totals.bytes == sizes[conda] + 200 + sizes[tarbz2]
        assert doc.totals.refreshes == 2
        files = {f.file: (f.downloads, f.bytes) for f in doc.files}
        assert files == {conda: (2, sizes[conda] + 200), tarbz2: (1, sizes[tarbz2])}
        # The token URL is a 404 here too: counted under the file it named, token dropped.
        assert [(m.file, m.requests) for m in doc.missing] == [
            ("missing-1.0-0.conda", 2),
            (conda, 1),
        ]
        assert doc.skipped == {"hostile": 1}
        assert {(t.tool, t.version, t.client_days) for t in doc.tools} == {
            ("conda", "24.1.2", 1),
            ("micromamba", "2.0.5", 1),
            ("pixi", "0.39.0", 1),
        }
        assert doc.periods[-1].clients == 3 and doc.periods[-1].requests == len(expected) - 1
        state_file = layout.stats_state_path(config.output)
        for secret in (TOKEN.encode(), b"127.0.0.1", CONDA.encode()):
            assert secret not in state_file.read_bytes()
            assert secret not in (config.output / "stats.json").read_bytes()

        # An incremental run reads exactly the new lines.
        before = log.stat().st_size
        assert curl(f"{base}/{tarbz2}", CONDA) == 200
        wait_for_lines(log, len(expected) + 1)
        result = run_stats(config)
        assert (result.lines, result.bytes_read) == (1, log.stat().st_size - before)
        assert _doc(config).totals.downloads == 4

        if server == "nginx":  # rotation the logrotate way: rename, reopen, compress
            assert curl(f"{base}/{conda}", MICROMAMBA) == 200
            wait_for_lines(log, len(expected) + 2)
            log.rename(state / "access.log.1")
            assert running.proc is not None
            running.proc.send_signal(signal.SIGUSR1)  # nginx reopens its logs
            deadline = time.monotonic() + 10
            while not log.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert curl(f"{base}/{conda}", MICROMAMBA) == 200
            wait_for_lines(log, len(expected) + 3)
            with open(state / "access.log.1", "rb") as src:
                (state / "access.log.1.gz").write_bytes(gzip.compress(src.read()))
            (state / "access.log.1").unlink()
            result = run_stats(config)
            assert result.lines == 2
            assert _doc(config).totals.downloads == 6
    assert run_stats(config).lines == 0
    assert _doc(config).totals.downloads == (6 if server == "nginx" else 4)


def test_mirror_counts_downloads_at_the_end_when_configured(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "logs" / "access.log"
    log.parent.mkdir()
    fn = "zlib-1.3.1-h0_0.conda"
    log.write_bytes(
        f'192.0.2.1 - - [05/Dec/2026:10:00:00 +0000] "GET /{CHANNEL}/linux-64/{fn} HTTP/1.1"'
        f' 200 10 "-" "{CONDA}"\n'.encode()
    )
    config_path = _write_config(tmp_path, example_upstream.url, log)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    doc = _doc(load_config(config_path))
    assert [(f.file, f.downloads) for f in doc.files] == [(fn, 1)]
    # Without a stats: section, `sitegen stats` says what is missing (exit status 2).
    plain = tmp_path / "plain.yaml"
    plain.write_text(config_path.read_text().split("stats:")[0])
    capsys.readouterr()
    assert main(["stats", "-c", str(plain)]) == 2
    assert "no 'stats:' section" in capsys.readouterr().err


def _passive_mirror(public_dir: Path, upstream: str) -> tuple[Path, SiteConfig]:
    """A passive mirror of ``upstream`` published in ``public_dir``, its server's access log
    in ``public_dir/state``: the config's path, and the config."""
    log = public_dir / "state" / "access.log"
    config_path = _write_config(public_dir, upstream, log, mode="passive")
    config = load_config(config_path)
    assert not trio.run(run_mirror, config, MirrorOptions(progress=False)).failed
    return config_path, config


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_passive_channel_tells_fetched_from_served_from_disk(
    server: str, example_upstream: ExampleUpstream, public_dir: Path, tmp_path: Path
) -> None:
    require_server(server)
    require_tool(shutil.which("curl") is not None, "curl")
    config_path, config = _passive_mirror(public_dir, example_upstream.url)
    state = public_dir / "state"
    log = state / "access.log"
    conda = sorted(fn for fn in _published(config) if fn.endswith(".conda"))[0]
    with fetcher_process(config_path, tmp_path / "fetcher.log") as fetcher:
        web = webconf_server(server, config, state, prefix=PREFIX, fetcher=fetcher.address)
        with web:
            url = f"{web.url}{PREFIX}/{CHANNEL}/linux-64/{conda}"
            assert curl(url, CONDA) == 200  # not stored yet: the fetcher downloads it
            assert curl(url, PIXI) == 200  # stored now: the web server serves the file
            wait_for_lines(log, 3 if server == "apache" else 2)  # Apache: a redirect, too
    run_stats(config)
    (channel,) = _doc(config).channels
    assert channel.downloads == 2
    assert channel.passive == PassiveCounts(fetched=1, stored=0, disk=1)


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_file_the_fetcher_streams_as_it_lands_is_counted_as_fetched(
    server: str, example_upstream: ExampleUpstream, public_dir: Path, tmp_path: Path
) -> None:
    """A download slower than the fetcher waits for is sent by the fetcher itself as it lands,
    not through the web server's static answer: it counts as fetched all the same."""
    require_server(server)
    require_tool(shutil.which("curl") is not None, "curl")
    config_path, config = _passive_mirror(public_dir, example_upstream.url)
    state = public_dir / "state"
    log = state / "access.log"
    published = _published(config)
    conda = sorted(fn for fn in published if fn.endswith(".conda"))[0]
    # Some 3 s for the file: past the fetcher's wait for a download to end before it streams.
    interval = 3.0 / -(-published[conda] // 256)
    example_upstream.server.add_fault(f"/linux-64/{conda}", slow_drip(256, interval))
    with fetcher_process(config_path, tmp_path / "fetcher.log") as fetcher:
        web = webconf_server(server, config, state, prefix=PREFIX, fetcher=fetcher.address)
        with web:
            assert curl(f"{web.url}{PREFIX}/{CHANNEL}/linux-64/{conda}", CONDA) == 200
            wait_for_lines(log, 1)
    assert '"fetched"' in log.read_text()
    run_stats(config)
    (channel,) = _doc(config).channels
    assert channel.downloads == 1
    assert channel.passive == PassiveCounts(fetched=1, stored=0, disk=0)


def test_a_rattler_install_is_counted_file_by_file(
    example_upstream: ExampleUpstream, public_dir: Path, tmp_path: Path
) -> None:
    require_server("nginx")
    state = public_dir / "state"
    config_path = _write_config(public_dir, example_upstream.url, state / "access.log")
    config = load_config(config_path)
    assert not trio.run(run_mirror, config, MirrorOptions(progress=False)).failed
    with webconf_server("nginx", config, state, prefix=PREFIX) as web:
        installed = solve_and_install(
            [f"{web.url}{PREFIX}/{CHANNEL}"], ["numpy"], tmp_path / "env", cache_dir=tmp_path / "c"
        )
        wait_for_lines(state / "access.log", len(installed) + 1)
    assert installed
    run_stats(config)
    doc = _doc(config)
    sizes = _published(config)
    assert {f.file: (f.downloads, f.bytes) for f in doc.files} == {
        p.file_name: (1, sizes[p.file_name]) for p in installed
    }
    assert doc.totals.refreshes >= 1 and doc.missing == [] and doc.skipped == {}
    assert [(t.tool, t.client_days) for t in doc.tools] == [("rattler", 1)]
