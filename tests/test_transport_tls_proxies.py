"""Malformed host names, proxies from the environment, and TLS: what the download transport (or
httpx's own client behind a proxy) makes of them. Real HTTP and HTTPS on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import shutil
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from sitegen.cli import main
from sitegen.config import DownloadSettings, MirrorConfig
from sitegen.net import failures as failures_mod
from sitegen.net.client import open_client
from sitegen.net.transport import EventLoopTransport
from sitegen.net.upstream import Upstream, UpstreamError, make_client
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import example_packages, write_channel
from testkit.faults import redirect
from testkit.require import require_tool
from testkit.site import assert_channel_consistent, rewrite_repodata, site_config
from testkit.transport import FILES, get, peers, upstream_client, write_files
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path, upstream_server_factory) -> UpstreamServer:
    return upstream_server_factory(write_files(tmp_path / "upstream"))


# Host names no resolver looks up and TLS refuses as a server name.
ODD_HOSTS = {
    "leading dot": ".example",
    "two dots at the end": "mirror.example..",
    "empty label": "mirror..example",
    "label over 63": "x" * 64 + ".example",
    "name over 253": ".".join(["x" * 50] * 6),
}


async def test_repodata_from_a_malformed_host_fails_at_once_without_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No request can reach such a host: the retries (and their waits) would change nothing."""
    settings = DownloadSettings(concurrency=1, per_host=1, retries=3, timeout=10)
    url = f"http://{ODD_HOSTS['empty label']}/conda"
    mirror = MirrorConfig(name="odd", url=url, subdirs=("linux-64",))
    client = make_client(settings)
    try:
        upstream = Upstream(mirror, client, settings, trio.CapacityLimiter(1))
        with (
            caplog.at_level(logging.WARNING, logger="sitegen"),
            pytest.raises(UpstreamError, match="not a valid host name"),
        ):
            await upstream.fetch_repodata("linux-64", None)
    finally:
        await client.aclose()
    assert "attempt" not in caplog.text


@pytest.fixture
def connect_proxy() -> Iterator[tuple[str, list[bytes]]]:
    """A proxy that takes every CONNECT, as one that looks names up itself would, then hangs
    up: (its URL, the request lines it was sent)."""
    asked: list[bytes] = []

    class Tunnel(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            asked.append(self.rfile.readline().strip())
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            self.request.recv(1 << 16)

    proxy = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tunnel)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}", asked
    finally:
        proxy.shutdown()
        proxy.server_close()


def proxy_environment(monkeypatch: pytest.MonkeyPatch, https_proxy: str) -> None:
    """https through ``https_proxy`` (a CONNECT tunnel, TLS set up by the client), http
    direct, 127.0.0.1 never proxied: httpx's own client carries every request."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", https_proxy)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.mark.parametrize("host", list(ODD_HOSTS.values()), ids=list(ODD_HOSTS))
@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("proxied", [False, True], ids=["event loop", "httpx behind a proxy"])
async def test_a_redirect_to_a_malformed_host_name_fails_that_request(
    server: UpstreamServer,
    tls_server: UpstreamServer,
    connect_proxy: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    scheme: str,
    proxied: bool,
) -> None:
    """A transport error in plain words, whichever client carries the request: left to the
    name's lookup (http) or the TLS setup (https: the server name), the name was refused with
    a ValueError, UnicodeError or ssl.SSLError that httpx's own client let through as it was,
    past the code that catches transport errors."""
    origin = tls_server if scheme == "https" else server
    origin.add_fault("/away.bin", redirect(f"{scheme}://{host}/x.bin", 302))
    if proxied:
        proxy_environment(monkeypatch, connect_proxy[0])
    client = open_client(httpx.Timeout(10), "test", verify=False)
    assert isinstance(client.transport, EventLoopTransport) is not proxied
    try:
        with pytest.raises(httpx.RequestError) as failed:
            await get(client, f"{origin.url}/away.bin")
    finally:
        await client.aclose()
    assert failures_mod.describe_error(failed.value).startswith("not a valid host name: ")
    assert connect_proxy[1] == []  # the name never left the machine


@pytest.mark.parametrize("proxied", [False, True], ids=["event loop", "httpx behind a proxy"])
def test_malformed_host_names_fail_their_files_and_mirrors_not_the_run(
    tmp_path: Path,
    upstream_server_factory,
    connect_proxy: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    proxied: bool,
) -> None:
    """``sitegen mirror`` where a package file redirects to such a host and a subdir's CEP-15
    base_url names one: those files and that subdir fail, saying why; every other file and
    mirror is published. (A mirror's own URL with such a host is a configuration error.)"""
    packages = example_packages(seed=0)
    documents = write_channel(tmp_path / "up", packages, zst=True)
    server = upstream_server_factory(tmp_path / "up")
    moved = sorted(documents["linux-64"]["packages.conda"])[0]
    server.add_fault(f"/linux-64/{moved}", redirect(f"http://{ODD_HOSTS['empty label']}/x"))
    write_channel(tmp_path / "cdn", packages, zst=True)
    odd_base = f"https://{ODD_HOSTS['label over 63']}/pkgs"
    rewrite_repodata(
        tmp_path / "cdn", "linux-64", lambda document: document["info"].update(base_url=odd_base)
    )
    cdn = upstream_server_factory(tmp_path / "cdn")
    other = upstream_server_factory(tmp_path / "up")
    if proxied:
        proxy_environment(monkeypatch, connect_proxy[0])
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\n"
        "download: {concurrency: 8, per_host: 8, retries: 0, timeout: 10}\n"
        "channels:\n"
        f"  one/redirects: {{url: '{server.url}', subdirs: [linux-64]}}\n"
        f"  two/base-url: {{url: '{cdn.url}', subdirs: [linux-64]}}\n"
        f"  four/good: {{url: '{other.url}', subdirs: [linux-64]}}\n"
    )
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 1
    (run,) = (site / "history" / "runs").glob("*.json")
    record = json.loads(run.read_bytes())
    errors = {(c["channel"], c["subdir"]): c["errors"] for c in record["channels"] if c["errors"]}
    why = "not a valid host name: "
    assert set(errors) == {
        ("one/redirects", "linux-64"),
        ("two/base-url", "linux-64"),
    }, errors
    assert len(errors["one/redirects", "linux-64"]) == 1
    assert errors["one/redirects", "linux-64"][0].startswith(f"linux-64/{moved}: {why}")
    assert all(why in error for error in errors["two/base-url", "linux-64"])
    assert [m["channel"] for m in record["mirrors"] if m["errors"]] == []

    def published(channel: str, subdir: str) -> set[str]:
        document = assert_channel_consistent(site, channel)[subdir]
        return {*document["packages"], *document["packages.conda"]}

    def upstream(subdir: str) -> set[str]:
        return {*documents[subdir]["packages"], *documents[subdir]["packages.conda"]}

    assert published("four/good", "linux-64") == upstream("linux-64")
    assert published("one/redirects", "linux-64") == upstream("linux-64") - {moved}
    assert published("two/base-url", "noarch") == upstream("noarch")
    assert connect_proxy[1] == []


async def test_a_proxy_in_the_environment_gets_httpx_own_client(
    server: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    direct = open_client(httpx.Timeout(5), "test")
    assert isinstance(direct.transport, EventLoopTransport)
    await direct.aclose()
    # The test server plays the proxy: a proxied request names the whole URL.
    monkeypatch.setenv("HTTP_PROXY", server.url)
    proxied = open_client(httpx.Timeout(5), "test")
    try:
        assert not isinstance(proxied.transport, EventLoopTransport)
        async with proxied.stream("http://upstream.invalid/f1.bin") as response:
            await response.aread()
    finally:
        await proxied.aclose()
    (request,) = server.wait_for_requests(1)
    assert request.header("host") == "upstream.invalid"


# --------------------------------------------------------------------------- TLS


@pytest.fixture
def tls(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate no CA signed (made by openssl)."""
    openssl = shutil.which("openssl")
    require_tool(openssl is not None, "openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=x"]
    names = ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [str(openssl), *request, *names, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def tls_server(tmp_path: Path, tls: ssl.SSLContext, upstream_server_factory) -> UpstreamServer:
    root = tmp_path / "tls-upstream"
    root.mkdir()
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    return upstream_server_factory(root, tls=tls)


async def test_https_without_verification_when_asked(tls_server: UpstreamServer) -> None:
    seen = peers(tls_server, [f"/{n}" for n in FILES])
    async with upstream_client(verify=False) as client:
        for name, data in FILES.items():
            assert await get(client, f"{tls_server.url}/{name}") == data
    assert len(set(seen)) == 1  # kept alive over TLS too


async def test_https_certificates_are_verified_by_default(tls_server: UpstreamServer) -> None:
    async with upstream_client() as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await get(client, f"{tls_server.url}/{next(iter(FILES))}")
    assert tls_server.requests == []


@pytest.mark.parametrize("verify_tls", [False, True])
async def test_verify_tls_decides_a_mirror_run_over_https(
    tmp_path: Path, tls: ssl.SSLContext, upstream_server_factory, verify_tls: bool
) -> None:
    root = tmp_path / "channel"
    write_channel(root, example_packages(seed=0), zst=True)
    server = upstream_server_factory(root, tls=tls)
    body = f"""
channels:
  secure:
    url: {server.url}
    subdirs: [linux-64]
    verify_tls: {str(verify_tls).lower()}
"""
    report = await run_mirror(site_config(tmp_path / "site", body), MirrorOptions(progress=False))
    if verify_tls:
        assert report.failed
        assert "TLS certificate not trusted" in " ".join(report.mirrors[0].errors)
        assert not (tmp_path / "site" / "secure" / "linux-64" / "repodata.json").exists()
    else:
        assert not report.failed, report.errors
        assert_channel_consistent(tmp_path / "site", "secure")
        assert list((tmp_path / "site" / "secure" / "linux-64").glob("*.conda"))
