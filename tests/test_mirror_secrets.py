"""End to end, tokens in upstream URLs: they work, and they stay out of logs, errors, the
site and its history."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import trio

from sitegen.cli import main
from sitegen.tools.example_channel import write_channel
from testkit.example_mirror import (
    CHANNEL,
    LINUX,
    NOARCH,
    PACKAGES,
    spec,
)
from testkit.site import (
    channel_config,
    fns,
    mirror_unchecked,
    published,
)
from testkit.upstream import ExampleUpstream, respond

pytestmark = pytest.mark.integration


# --------------------------------------------------------------------------- secrets


async def test_token_url_works_and_the_token_stays_secret(
    tmp_path: Path, upstream_server_factory, monkeypatch, caplog
) -> None:
    token = "secret123"
    root = tmp_path / "upstream"
    write_channel(root / "t" / token / "chan", PACKAGES, zst=True)
    server = upstream_server_factory(root)
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    # Make one subdir fail too, so that error messages are part of what is checked.
    server.add_fault(f"/t/{token}/chan/noarch/repodata.json.zst", respond(503))
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        "download: {retries: 0}\n"
        f"channels:\n  {CHANNEL}:\n"
        f"    url: {server.url}/t/${{SITEGEN_TEST_TOKEN}}/chan\n"
        "    subdirs: [linux-64]\n"
    )
    caplog.set_level(logging.DEBUG)

    status = await trio.to_thread.run_sync(
        main, ["-v", "mirror", "-c", str(config_path), "--no-progress"]
    )
    assert status == 1  # noarch failed
    assert server.count(f"/t/{token}/chan/linux-64/repodata.json.zst", status=200) == 1
    (error,) = [r.getMessage() for r in caplog.records if "HTTP 503" in r.getMessage()]
    assert f"{server.url}/t/***/chan/noarch/repodata.json.zst" in error

    server.clear_faults()
    caplog.clear()
    status = await trio.to_thread.run_sync(
        main, ["-v", "mirror", "-c", str(config_path), "--no-progress"]
    )
    assert status == 0
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert published(site, CHANNEL, "noarch") == NOARCH
    assert server.count(f"/t/{token}/chan/linux-64/{sorted(LINUX)[0]}", status=200) == 1

    assert token not in caplog.text
    for path in site.rglob("*"):
        assert token not in path.name
        if path.is_file() and not path.name.endswith((".conda", ".tar.bz2")):
            assert token.encode() not in path.read_bytes(), path
    runs = [json.loads(p.read_bytes()) for p in (site / "history" / "runs").glob("*.json")]
    assert {r["mirrors"][0]["source"] for r in runs} == {f"{server.url}/t/***/chan"}


async def test_unset_token_variable_fails_the_mirror_without_requests(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("SITEGEN_TEST_UNSET", raising=False)
    site = tmp_path / "site"
    config = channel_config(site, f"{example_upstream.url}/t/${{SITEGEN_TEST_UNSET}}/chan")
    report = await mirror_unchecked(config)
    assert report.failed
    assert any("SITEGEN_TEST_UNSET" in e for e in report.mirrors[0].errors)
    assert example_upstream.server.requests == []


async def test_a_variable_making_the_url_invalid_fails_the_mirror_cleanly(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch
) -> None:
    """Configuration parsed without the environment (a library caller), the variable set to
    a value no URL can hold: the mirror fails with a message naming the variable, not its
    value, and the run ends normally."""
    monkeypatch.setenv("SITEGEN_TEST_HOST", "127.0.0.1:no-port-secret")
    site = tmp_path / "site"
    config = channel_config(site, "http://${SITEGEN_TEST_HOST}/chan")
    report = await mirror_unchecked(config)
    assert report.failed
    errors = report.mirrors[0].errors
    assert any("not a valid URL once SITEGEN_TEST_HOST" in e for e in errors), errors
    assert not any("no-port-secret" in e for e in errors)
    assert example_upstream.server.requests == []


async def test_token_stays_out_of_library_logs(
    tmp_path: Path, upstream_server_factory, monkeypatch, caplog
) -> None:
    """run_mirror used as a library (no CLI log setup): not even httpx's request lines, which
    carry every URL at INFO, may show the token. httpx's own client (and its logging) carries
    the requests when a proxy is set in the environment: here the test server plays the proxy."""
    token = "secret456"
    root = tmp_path / "upstream"
    write_channel(root / "t" / token / "chan", [spec("zlib", version="1.3.1")], zst=True)
    server = upstream_server_factory(root)
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.DEBUG)
    site = tmp_path / "site"
    report = await mirror_unchecked(
        channel_config(site, "http://upstream.invalid/t/${SITEGEN_TEST_TOKEN}/chan")
    )
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == fns(PACKAGES, "zlib", "1.3.1")
    assert any(r.name == "httpx" for r in caplog.records)  # the request lines were logged
    assert token not in caplog.text
