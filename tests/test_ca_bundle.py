"""Upstreams behind a corporate TLS proxy: their certificates are signed by a CA of the
company's own, trusted through ``ca_bundle`` (per mirror or site-wide) or the environment's
REQUESTS_CA_BUNDLE / SSL_CERT_FILE. Real HTTPS on 127.0.0.1 with a CA made by openssl."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import trio

from sitegen.cli import main
from sitegen.config import DownloadSettings, parse_config
from sitegen.config.yaml_nodes import ConfigError
from sitegen.net.activity import Activity
from sitegen.net.failures import UpstreamError, describe_error
from sitegen.net.feed import open_feed_client
from sitegen.net.transport import EventLoopTransport, trusted_cas
from sitegen.net.upstream import make_client
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import example_packages, write_channel
from testkit.require import require_tool
from testkit.site import assert_channel_consistent, site_config
from testkit.upstream import UpstreamServer


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    require_tool(openssl is not None, "openssl")
    subprocess.run([str(openssl), *args], check=True, capture_output=True)


@pytest.fixture
def company_ca(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """(the CA's certificate, a server context whose certificate for 127.0.0.1 it signed)."""
    tls = tmp_path / "tls"
    tls.mkdir()
    ca_key, ca, key, request, cert = (
        tls / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    days = ("-days", "1")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", *days, "-subj", "/CN=Example Corp CA",
        "-keyout", str(ca_key), "-out", str(ca),
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(request),
    )  # fmt: skip
    extensions = tls / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
    )
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", *days, "-extfile", str(extensions), "-out", str(cert),
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return ca, context


@pytest.fixture
def https_upstream(
    tmp_path: Path, company_ca: tuple[Path, ssl.SSLContext], upstream_server_factory
) -> UpstreamServer:
    root = tmp_path / "channel"
    write_channel(root, example_packages(seed=0), zst=True)
    return upstream_server_factory(root, tls=company_ca[1])


@pytest.fixture(autouse=True)
def _no_ca_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


async def _run(site: Path, url: str, mirror_extra: str = "", download_extra: str = ""):
    download = "download: {concurrency: 8, per_host: 8, retries: 0, timeout: 10"
    body = f"""
channels:
  secure:
    url: {url}
    subdirs: [linux-64]
{mirror_extra}
"""
    config = site_config(site, body, download=download + download_extra + "}")
    return await run_mirror(config, MirrorOptions(progress=False))


@pytest.mark.integration
@pytest.mark.parametrize("where", ["nowhere", "mirror", "site", "REQUESTS_CA_BUNDLE"])
async def test_a_company_ca_is_trusted_where_it_is_named(
    tmp_path: Path,
    company_ca: tuple[Path, ssl.SSLContext],
    https_upstream: UpstreamServer,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    ca = company_ca[0]
    site = tmp_path / "site"
    mirror_extra = f"    ca_bundle: {ca}" if where == "mirror" else ""
    download_extra = f", ca_bundle: {ca}" if where == "site" else ""
    if where == "REQUESTS_CA_BUNDLE":
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    report = await _run(site, https_upstream.url, mirror_extra, download_extra)
    if where == "nowhere":
        assert report.failed
        errors = " ".join(report.mirrors[0].errors)
        assert "TLS certificate not trusted: unable to get local issuer certificate" in errors
        assert https_upstream.requests == []
        assert not (site / "secure" / "linux-64" / "repodata.json").exists()
    else:
        assert not report.failed, (report.errors, report.mirrors[0].errors)
        assert_channel_consistent(site, "secure")
        assert list((site / "secure" / "linux-64").glob("*.conda"))


@pytest.mark.integration
@pytest.mark.parametrize("ca_bundle", [False, True])
async def test_httpx_own_client_trusts_the_same_ca(
    tmp_path: Path,
    company_ca: tuple[Path, ssl.SSLContext],
    https_upstream: UpstreamServer,
    monkeypatch: pytest.MonkeyPatch,
    ca_bundle: bool,
) -> None:
    """With a proxy in the environment, requests go through httpx's own client; 127.0.0.1 is
    exempt from the proxy here, so the TLS is the upstream's own."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    settings = DownloadSettings(retries=0, timeout=10)
    client = make_client(settings, ca_bundle=str(company_ca[0]) if ca_bundle else None)
    try:
        assert not isinstance(client.transport, EventLoopTransport)
        url = f"{https_upstream.url}/linux-64/repodata.json"
        if ca_bundle:
            async with client.stream(url) as response:
                assert response.status_code == 200
        else:
            with pytest.raises(httpx.ConnectError) as failed:
                async with client.stream(url):
                    pass
            assert describe_error(failed.value).startswith("TLS certificate not trusted")
    finally:
        await client.aclose()


@pytest.mark.integration
async def test_a_mirrors_own_ca_bundle_wins_over_the_environment(
    tmp_path: Path,
    company_ca: tuple[Path, ssl.SSLContext],
    https_upstream: UpstreamServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nothing-here.pem"))
    report = await _run(tmp_path / "site", https_upstream.url, f"    ca_bundle: {company_ca[0]}")
    assert not report.failed, report.mirrors[0].errors


@pytest.mark.integration
async def test_a_missing_ca_bundle_is_named_and_nothing_is_fetched(
    tmp_path: Path, https_upstream: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "corp-ca.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(missing))
    report = await _run(tmp_path / "site", https_upstream.url)
    assert report.mirrors[0].errors == [
        f"REQUESTS_CA_BUNDLE {missing}: no such file (a PEM file of CAs)"
    ]
    assert https_upstream.requests == []


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["fifo", "directory"])
@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
async def test_a_ca_bundle_of_the_environment_that_is_no_regular_file_is_named_so(
    tmp_path: Path,
    https_upstream: UpstreamServer,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    variable: str,
) -> None:
    """A FIFO or a directory named by the environment is said to be what it is, not missing;
    the FIFO is never read (TLS would wait on it forever), and nothing is fetched."""
    bundle = tmp_path / "corp-ca.pem"
    if kind == "fifo":
        os.mkfifo(bundle)
    else:
        bundle.mkdir()
    monkeypatch.setenv(variable, str(bundle))
    why = f"{variable} {bundle}: not a regular file (a PEM file of CAs)"
    with trio.fail_after(30):
        report = await _run(tmp_path / "site", https_upstream.url)
        async with AsyncExitStack() as stack:
            feeds = await open_feed_client(DownloadSettings(retries=0), stack, Activity())
            with pytest.raises(UpstreamError, match="the feed: ") as caught:
                await feeds.fetch(https_upstream.url, "the feed", None, tmp_path / "feed.zip")
    assert report.mirrors[0].errors == [why]
    assert str(caught.value) == f"the feed: {why}"
    assert https_upstream.requests == []


@pytest.mark.unit
def test_which_ca_bundle_counts() -> None:
    env = {"REQUESTS_CA_BUNDLE": "/r.pem", "SSL_CERT_FILE": "/s.pem"}
    assert trusted_cas("/c.pem", env) == ("/c.pem", "ca_bundle")
    assert trusted_cas(None, env) == ("/r.pem", "REQUESTS_CA_BUNDLE")
    assert trusted_cas(None, {"SSL_CERT_FILE": "/s.pem"}) == ("/s.pem", "SSL_CERT_FILE")
    assert trusted_cas(None, {}) is None


@pytest.mark.unit
def test_ca_bundle_and_connect_timeout_in_the_configuration() -> None:
    config = parse_config(
        "output: /srv/site\n"
        "download: {connect_timeout: 3, ca_bundle: /etc/ssl/corp.pem}\n"
        "channels:\n"
        "  a:\n    url: https://a.example\n    subdirs: [linux-64]\n"
        "    ca_bundle: /etc/ssl/other.pem\n"
        "  b:\n    url: https://b.example\n    subdirs: [linux-64]\n"
    )
    assert (config.download.connect_timeout, config.download.timeout) == (3.0, 60.0)
    assert config.download.ca_bundle == "/etc/ssl/corp.pem"
    assert [m.ca_bundle for _c, m in config.mirrors] == ["/etc/ssl/other.pem", None]
    with pytest.raises(
        ConfigError, match=r"channels.yaml:4: download.ca_bundle: must be an absolute path"
    ):
        parse_config(
            "output: /srv/site\n"
            "download:\n  timeout: 5\n  ca_bundle: corp.pem\n"
            "channels: {a: {url: 'https://a.example', subdirs: [linux-64]}}\n"
        )


@pytest.mark.unit
@pytest.mark.parametrize("kind", ["fifo", "directory"])
@pytest.mark.parametrize("where", ["mirror", "site"])
def test_a_ca_bundle_that_is_no_regular_file_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, where: str
) -> None:
    """A FIFO or a directory is no PEM file (and reading a FIFO would wait forever): the
    configuration names it, its line and key, rather than a run calling it missing."""
    bundle = tmp_path / "corp-ca.pem"
    if kind == "fifo":
        os.mkfifo(bundle)
    else:
        bundle.mkdir()
    download = f"download: {{ca_bundle: {bundle}}}\n" if where == "site" else ""
    mirror = f"    ca_bundle: {bundle}\n" if where == "mirror" else ""
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\n{download}channels:\n"
        f"  a:\n    url: https://a.example\n    subdirs: [linux-64]\n{mirror}"
    )
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err
    key = "download.ca_bundle" if where == "site" else "channels.a.ca_bundle"
    line = 2 if where == "site" else 6
    assert f"channels.yaml:{line}: {key}: {bundle}: not a regular file" in err, err
    assert not (tmp_path / "site").exists()
