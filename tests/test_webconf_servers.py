"""``sitegen webconf``: generated nginx and Apache configs, checked and run by the real servers.

The servers run exactly the generated ``--standalone`` configs on 127.0.0.1, serving a site
mirrored from the example upstream through the symlink deploy of the seeds
(``ln -s site www/anaconda``, the config pointing at the link), and py-rattler installs from
them. nginx or Apache missing: the test skips with the reason (fails when ``CI=true``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import zstandard

from sitegen.access.server_files import write_server_files
from sitegen.cli import main
from sitegen.conda.run_exports import encode_run_exports
from sitegen.config import parse_config
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.webconf import (
    LONG_CACHE,
    PRIVATE_SHORT_CACHE,
    SHORT_CACHE,
    WebconfOptions,
    render_webconf,
)
from testkit.apache import (
    check_snippet,
    require_server,
    server_user,
    webconf_server,
)
from testkit.client import solve_and_install
from testkit.installers import serve_index, write_folder
from testkit.private_site import token_add
from testkit.upstream import ExampleUpstream
from testkit.webconf import CHANNEL
from testkit.webconf import webconf_config as _config

PREFIX = "/anaconda"
OCTETS = "application/octet-stream"


def _get(
    url: str, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("prefix", ["", "/conda", "/mirrors/conda"])
def test_generated_configs_pass_the_servers_own_check(
    server: str, prefix: str, public_dir: Path
) -> None:
    require_server(server)
    (public_dir / "site").mkdir()
    for mode in ("active", "passive"):
        config = _config(public_dir / "site", mode=mode)
        webconf_server(server, config, public_dir / f"state-{mode}", prefix=prefix).check()


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_snippets_pass_the_servers_own_check(server: str, public_dir: Path) -> None:
    """The non-standalone outputs, included the way a sysadmin would include them."""
    require_server(server)
    (public_dir / "site").mkdir()
    config = _config(public_dir / "site", mode="passive")
    state = public_dir / "state"
    state.mkdir()
    snippet = state / f"sitegen-{server}.conf"
    # nginx's with a listen address; Apache's as a conf-available snippet, then a <VirtualHost>
    listens = ["127.0.0.1:8080"] if server == "nginx" else [None, "127.0.0.1:8080"]
    for listen in listens:
        options = WebconfOptions(prefix="/conda", listen=listen)
        snippet.write_text(render_webconf(server, config, options))
        check_snippet(server, snippet, state)


@pytest.fixture
def mirrored_site(example_upstream: ExampleUpstream, public_dir: Path) -> Path:
    """An active mirror of the example upstream in a world-readable directory, symlinked to
    ``www/anaconda``; returns the symlink."""
    site = public_dir / "srv" / "site"
    site.parent.mkdir()
    config = _config(site, url=example_upstream.url)
    report = trio.run(run_mirror, config, MirrorOptions(progress=False))
    assert not report.failed
    (public_dir / "www").mkdir()
    link = public_dir / "www" / "anaconda"
    link.symlink_to(site)
    return link


def _published(site: Path, subdir: str) -> dict[str, dict[str, Any]]:
    document = json.loads((site / CHANNEL / subdir / "repodata.json").read_bytes())
    return {**document["packages"], **document["packages.conda"]}


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_real_server_serves_the_site_through_the_symlink(
    server: str, mirrored_site: Path, public_dir: Path, tmp_path: Path
) -> None:
    require_server(server)
    link = mirrored_site
    config = _config(link.resolve())
    running = webconf_server(server, config, public_dir / "state", prefix=PREFIX, root=link)
    # Test fixtures in the site: a directory without index.html, one with it, private files.
    (link / "listing-test").mkdir()
    (link / "listing-test" / "secret-name.txt").write_text("x")
    (link / "pages-test").mkdir()
    (link / "pages-test" / "index.html").write_text("<p>sitegen page</p>")
    (link / "pages-test" / "feed.atom").write_text("<feed/>")
    subdir_dir = link / CHANNEL / "linux-64"
    (subdir_dir / ".sitegen-tmp-numpy.conda.1234").write_bytes(b"partial")
    (link / ".sitegen").mkdir(exist_ok=True)
    (link / ".sitegen" / "token-test").write_text("private")
    # CEP-12, as a mirror of an upstream serving one publishes it (this upstream has none).
    exports = encode_run_exports("linux-64", {}, _published(link, "linux-64"))
    (subdir_dir / "run_exports.json").write_bytes(exports)
    (subdir_dir / "run_exports.json.zst").write_bytes(zstandard.compress(exports))

    with running:
        url = running.url
        base = f"{PREFIX}/{CHANNEL}/linux-64"
        expected_types = {
            "repodata.json": "application/json",
            "repodata.json.zst": "application/zstd",
            "repodata.json.bz2": "application/x-bzip2",
            "current_repodata.json": "application/json",
            "run_exports.json": "application/json",
            "run_exports.json.zst": "application/zstd",
        }
        for name, ctype in expected_types.items():
            status, headers, body = _get(url, f"{base}/{name}")
            assert status == 200, name
            assert headers["content-type"] == ctype, name
            assert headers["cache-control"] == SHORT_CACHE, name
            assert "content-encoding" not in headers, name
            assert body == (subdir_dir / name).read_bytes(), name
        status, headers, _ = _get(url, f"{PREFIX}/{CHANNEL}/channeldata.json")
        assert (status, headers["content-type"], headers["cache-control"]) == (
            200,
            "application/json",
            SHORT_CACHE,
        )

        published = _published(link, "linux-64")
        conda = next(fn for fn in published if fn.endswith(".conda"))
        tarbz2 = next(fn for fn in published if fn.endswith(".tar.bz2"))
        for fn, ctype in ((conda, "application/octet-stream"), (tarbz2, "application/x-bzip2")):
            status, headers, body = _get(url, f"{base}/{fn}")
            assert status == 200, fn
            assert headers["content-type"] == ctype, fn
            assert headers["cache-control"] == LONG_CACHE, fn
            assert "content-encoding" not in headers, fn
            assert hashlib.sha256(body).hexdigest() == published[fn]["sha256"]

        # A subdir without one: a plain 404, from which build tools read the packages.
        for name in ("run_exports.json", "run_exports.json.zst"):
            status, _, _ = _get(url, f"{PREFIX}/{CHANNEL}/noarch/{name}")
            assert status == 404, name

        # Errors are never cached as if they were packages.
        status, headers, _ = _get(url, f"{base}/missing-1.0-0.conda")
        assert status == 404 and "immutable" not in headers.get("cache-control", "")
        # An error says no-referrer as every other answer does.
        for path, expected in (
            (f"{base}/missing-1.0-0.conda", 404),
            (f"{PREFIX}/missing.html", 404),
            (f"{PREFIX}/.sitegen/", 403),
            (PREFIX, 301),
        ):
            status, headers, _ = _get(url, path)
            assert (status, headers.get("referrer-policy")) == (expected, "no-referrer"), path

        # Directory listings are off; index.html pages are served.
        status, _, body = _get(url, f"{PREFIX}/listing-test/")
        assert status in (403, 404) and b"secret-name" not in body
        status, headers, body = _get(url, f"{PREFIX}/pages-test/")
        assert (status, body) == (200, b"<p>sitegen page</p>")
        assert headers["content-type"].startswith("text/html")
        assert headers["cache-control"] == SHORT_CACHE
        status, headers, _ = _get(url, f"{PREFIX}/pages-test/feed.atom")  # the history feed
        assert (status, headers["content-type"]) == (200, "application/atom+xml")
        status, headers, _ = _get(url, PREFIX)
        assert status == 301 and headers["location"].endswith(f"{PREFIX}/")
        # TRACE would echo a request, credentials included, back to a page's script.
        status, _, body = _get(url, f"{PREFIX}/", {"Authorization": "Bearer x"}, "TRACE")
        assert status == 405 and b"Bearer" not in body

        # Private state and temporary files are forbidden, however the path is spelled.
        for path in (
            f"{PREFIX}/.sitegen/",
            f"{PREFIX}/.sitegen/token-test",
            f"{PREFIX}/%2esitegen/token-test",
            f"{PREFIX}/.sitegen/lock",
            f"{base}/.sitegen-tmp-numpy.conda.1234",
        ):
            status, _, body = _get(url, path)
            assert status == 403, path
            assert b"private" not in body and b"partial" not in body

        installed = solve_and_install(
            [f"{url}{PREFIX}/{CHANNEL}"],
            ["numpy"],
            tmp_path / "env",
            cache_dir=tmp_path / "cache",
        )
    names = {p.name: p for p in installed}
    assert {"numpy", "python"} <= set(names)
    for package in installed:
        assert package.url.startswith(f"{url}{PREFIX}/{CHANNEL}/")


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_folder_redirect_keeps_the_clients_scheme_and_host(server: str, public_dir: Path) -> None:
    """The prefix and a folder asked for without their slash are redirected to it at the
    address the client asked for: behind a TLS proxy (https, another host and port than the
    server listens on), never to the server's own scheme, host or port."""
    require_server(server)
    site = public_dir / "site"
    (site / "folder").mkdir(parents=True)
    (site / "index.html").write_text("<p>root</p>")
    (site / "folder" / "index.html").write_text("<p>folder</p>")
    asked = "https://mirror.example"
    config = _config(site, base_url=f"{asked}{PREFIX}")
    running = webconf_server(server, config, public_dir / "state", prefix=PREFIX)
    proxied = {"Host": "mirror.example", "X-Forwarded-Proto": "https"}
    with running:
        for path in (PREFIX, f"{PREFIX}/folder"):
            status, headers, _ = _get(running.url, path, proxied)
            assert status == 301, path
            target = httpx.URL(asked + path).join(headers["location"])
            assert str(target) == f"{asked}{path}/", (path, headers["location"])


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("private", [False, True], ids=["public", "private-site"])
def test_installer_folders_are_served_as_static_files(
    server: str, private: bool, public_dir: Path, upstream_server_factory
) -> None:
    """The generated configs serve an installer folder's files as stored (never compressed,
    revalidated: a "latest" installer changes under its name, whatever it is named, a package
    file's or a shard's, in a folder named shards too) and its page; on a private site
    likewise, through a path token (nginx serves those under its quiet head) and a Bearer token
    alike. A file's type is its name's last extension's, plain bytes for one the site does not
    serve otherwise: never none (a browser would guess one from the bytes), nor that of an
    extension before the last (an upstream's ``setup.html.sh`` is no page of the site)."""
    require_server(server)
    folder = public_dir / "upstream" / "miniconda"
    files = {
        "Miniconda3-latest-Linux-x86_64.sh": b"#!/bin/sh\n" * 400,
        "Miniconda3-latest-Windows-x86_64.exe": b"MZ" * 1800,
        "Miniconda3-latest-MacOSX-arm64.pkg": b"xar!" * 900,
        "Miniconda3-latest-Linux-x86_64.conda": b"PK" * 700,
        "Miniconda3-latest-Linux-x86_64.tar.bz2": b"BZh9" * 500,
        f"{'ab' * 32}.msgpack.zst": b"(not a shard)" * 100,
        "setup.html.sh": b"<html><script>alert(1)</script></html>" * 100,
        "setup.svg.exe": b"<svg xmlns='http://www.w3.org/2000/svg'/>" * 100,
    }
    bzip2 = ("Miniconda3-latest-Linux-x86_64.tar.bz2",)
    types = {name: "application/x-bzip2" if name in bzip2 else OCTETS for name in files}
    write_folder(folder, files)
    upstream = upstream_server_factory(folder.parent)
    serve_index(upstream, "/miniconda/")
    site = public_dir / "site"
    user = server_user()
    group = f"group: {user.split(':')[1]}, " if user else ""
    access = f"access: {{site: private, {group}dir: {public_dir}/access}}" if private else ""
    text = f"""\
        output: {site}
        download: {{retries: 0}}
        {access}
        channels: {{}}
        installers:
          installers/miniconda:
            url: {upstream.url}/miniconda/
          installers/shards:
            url: {upstream.url}/miniconda/
        """
    config_path = _write(public_dir / "channels.yaml", text)
    config = parse_config(textwrap.dedent(text), base_dir=site.parent)
    assert not trio.run(run_mirror, config, MirrorOptions(progress=False)).failed
    assert main(["render", "-c", str(config_path)]) == 0
    revalidated = SHORT_CACHE
    ways = [(PREFIX, {})]
    if private:
        token = token_add(config_path, "ci")
        write_server_files(config)
        revalidated = PRIVATE_SHORT_CACHE
        ways = [(f"/t/{token}{PREFIX}", {}), (PREFIX, {"Authorization": f"Bearer {token}"})]
    running = webconf_server(server, config, public_dir / "state", prefix=PREFIX)
    with running:
        for head, headers in ways:
            for name, data in files.items():
                for folder in ("installers/miniconda", "installers/shards"):
                    path = f"{head}/{folder}/{name}"
                    status, answer, body = _get(running.url, path, headers)
                    assert (status, body) == (200, data), (head, path)
                    assert "content-encoding" not in answer, path
                    assert answer["cache-control"] == revalidated, (head, path)
                    assert answer.get("content-type") == types[name], (head, path)
            status, answer, body = _get(running.url, f"{head}/installers/miniconda/", headers)
            assert status == 200 and answer["content-type"].startswith("text/html")
            assert b"Miniconda3-latest-Linux-x86_64.sh" in body
    # The folder taken out of channels.yaml stays served (see Installer folders), and a config
    # written afterwards, for a channel now, still never calls its files immutable: another
    # channel, or the very folder the installer folders are left in (where a folder stands
    # in a subdir's place), active or passive.
    head, headers = ways[-1]
    for channel, mode in ((CHANNEL, "active"), ("installers", "active"), ("installers", "passive")):
        spec = f"{{url: {upstream.url}, subdirs: [linux-64], mode: {mode}}}"
        later_text = text.replace("channels: {}", f"channels: {{{channel}: {spec}}}")
        later = parse_config(
            textwrap.dedent(later_text.split("installers:\n")[0]), base_dir=site.parent
        )
        with webconf_server(server, later, public_dir / "state", prefix=PREFIX) as running:
            for name in (
                "miniconda/Miniconda3-latest-Linux-x86_64.conda",
                "miniconda/Miniconda3-latest-Linux-x86_64.tar.bz2",
                "miniconda/Miniconda3-latest-Linux-x86_64.sh",
                f"shards/{'ab' * 32}.msgpack.zst",
            ):
                status, answer, _ = _get(running.url, f"{head}/installers/{name}", headers)
                assert (status, answer["cache-control"]) == (200, revalidated), (channel, name)


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path
