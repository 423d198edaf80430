"""Secrets in upstream URLs stay out of the passive fetcher's logs and of the site's files."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from pathlib import Path

import httpx
import pytest
import trio
import zstandard

from sitegen.access.tokens import new_token
from sitegen.config import load_config
from sitegen.layout import upstream_cache_dir, upstream_validators_path
from sitegen.passive.listen import listener_address, open_listeners, serve_fetcher
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import example_packages, write_channel
from testkit.small_channel import set_repodata
from testkit.upstream import UpstreamServer, respond

pytestmark = pytest.mark.integration


async def test_relative_cep15_base_url_does_not_put_the_token_in_the_fetchers_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Upstream repodata at /t/<token>/forge/linux-64/ says info.base_url "../../pkgs/linux-64/"
    (CEP-15 allows a relative one): packages at /t/<token>/pkgs/linux-64/. One transient 503
    makes download() log a retry; that line must not hold the token."""
    token = secrets.token_hex(16)
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    root = tmp_path / "upstream"
    forge = root / "t" / token / "forge"
    records = write_channel(forge, example_packages(seed=0), zst=False)
    for subdir in ("linux-64", "noarch"):
        pkgs = root / "t" / token / "pkgs" / subdir
        pkgs.mkdir(parents=True)
        for entry in (forge / subdir).iterdir():
            if entry.name != "repodata.json":
                shutil.move(entry, pkgs / entry.name)
        path = forge / subdir / "repodata.json"
        document = json.loads(path.read_bytes())
        document["info"]["base_url"] = f"../../pkgs/{subdir}/"
        path.write_text(json.dumps(document))
    fn = next(iter(records["linux-64"]["packages.conda"]))
    site = tmp_path / "site"
    with UpstreamServer(root) as server:
        (tmp_path / "channels.yaml").write_text(
            f"output: {site}\n"
            "download: {retries: 1, timeout: 30}\n"
            "channels:\n"
            "  cloud/forge:\n"
            f"    url: {server.url}/t/${{SITEGEN_TEST_TOKEN}}/forge\n"
            "    subdirs: [linux-64]\n"
            "    mode: passive\n"
        )
        config = load_config(tmp_path / "channels.yaml")
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        server.add_fault(f"/t/{token}/pkgs/linux-64/{fn}", respond(503), times=1)
        caplog.clear()
        listeners = await open_listeners("127.0.0.1", 0)
        with caplog.at_level(logging.DEBUG):
            async with trio.open_nursery() as nursery:
                fetcher = await nursery.start(serve_fetcher, config, listeners)
                reply = await fetcher.reply("GET", f"/cloud/forge/linux-64/{fn}")
                nursery.cancel_scope.cancel()
    assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
    leaked = [r.getMessage() for r in caplog.records if token in r.getMessage()]
    assert not leaked, leaked


def files_holding(site: Path, token: str) -> list[str]:
    """The files under the site that hold the token, compressed ones read decompressed."""
    found = []
    for path in site.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".zst":
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if token.encode() in data:
            found.append(str(path.relative_to(site)))
    return sorted(found)


@pytest.mark.parametrize("mode", ["passive", "active"])
async def test_a_cep15_base_url_echoing_the_token_is_stored_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Upstream repodata at /t/<token>/forge/linux-64/ says info.base_url
    "<host>/t/<token>/pkgs/linux-64/": its packages live there. No file under the site (the
    origins map, the upstream repodata kept for conditional requests, any other) holds the
    token, yet the packages are fetched from there: by the run (active), by the fetcher
    (passive), and again once upstream answers 304 and the kept body is read back."""
    token = secrets.token_hex(16)
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    root = tmp_path / "upstream"
    forge = root / "t" / token / "forge"
    records = write_channel(forge, example_packages(seed=0), zst=True)
    fn = next(iter(records["linux-64"]["packages.conda"]))
    site = tmp_path / "site"

    def holding_the_token() -> list[str]:
        return files_holding(site, token)

    with UpstreamServer(root) as server:
        for subdir in ("linux-64", "noarch"):
            pkgs = root / "t" / token / "pkgs" / subdir
            pkgs.mkdir(parents=True)
            for entry in (forge / subdir).iterdir():
                if not entry.name.startswith("repodata"):
                    shutil.move(entry, pkgs / entry.name)
            document = json.loads((forge / subdir / "repodata.json").read_bytes())
            document["info"]["base_url"] = f"{server.url}/t/{token}/pkgs/{subdir}/"
            set_repodata(forge, subdir, json.dumps(document).encode())
        (tmp_path / "channels.yaml").write_text(
            f"output: {site}\n"
            "download: {retries: 0, timeout: 30}\n"
            "channels:\n"
            "  cloud/forge:\n"
            f"    url: {server.url}/t/${{SITEGEN_TEST_TOKEN}}/forge\n"
            "    subdirs: [linux-64]\n"
            f"    mode: {mode}\n"
        )
        config = load_config(tmp_path / "channels.yaml")
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        assert holding_the_token() == []
        # Upstream unchanged: the kept body is read back, and must still lead to the packages.
        (site / "cloud" / "forge" / "linux-64" / fn).unlink(missing_ok=True)
        report = await run_mirror(config, MirrorOptions(progress=False))
        assert not report.failed, report.channels
        assert server.count("/linux-64/repodata.json.zst", status=304) == 1
        if mode == "passive":
            listeners = await open_listeners("127.0.0.1", 0)
            async with trio.open_nursery() as nursery:
                fetcher = await nursery.start(serve_fetcher, config, listeners)
                reply = await fetcher.reply("GET", f"/cloud/forge/linux-64/{fn}")
                nursery.cancel_scope.cancel()
            assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        stored = (site / "cloud" / "forge" / "linux-64" / fn).read_bytes()
        assert stored == (root / "t" / token / "pkgs" / "linux-64" / fn).read_bytes()
        assert holding_the_token() == []


async def test_a_kept_body_holding_the_token_is_kept_again_without_it_on_a_304(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A site whose upstream repodata was kept before the secrets of a mirror's URL were left
    out of it: the copy holds the token upstream echoes in info.base_url. A run that upstream
    answers 304 keeps it again without the token, even one that finds nothing else changed
    since the site was built (and so parses nothing); the next 304 reads that copy back, and
    the packages are still fetched from the base_url it names."""
    token = secrets.token_hex(16)
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    root = tmp_path / "upstream"
    forge = root / "t" / token / "forge"
    records = write_channel(forge, example_packages(seed=0), zst=True)
    fn = next(iter(records["linux-64"]["packages.conda"]))
    site = tmp_path / "site"
    with UpstreamServer(root) as server:
        pkgs = root / "t" / token / "pkgs" / "linux-64"
        pkgs.mkdir(parents=True)
        for entry in (forge / "linux-64").iterdir():
            if not entry.name.startswith("repodata"):
                shutil.move(entry, pkgs / entry.name)
        document = json.loads((forge / "linux-64" / "repodata.json").read_bytes())
        document["info"]["base_url"] = f"{server.url}/t/{token}/pkgs/linux-64/"
        set_repodata(forge, "linux-64", json.dumps(document).encode())
        (tmp_path / "channels.yaml").write_text(
            f"output: {site}\n"
            "download: {retries: 0, timeout: 30}\n"
            "channels:\n"
            "  cloud/forge:\n"
            f"    url: {server.url}/t/${{SITEGEN_TEST_TOKEN}}/forge\n"
            "    subdirs: [linux-64]\n"
        )
        config = load_config(tmp_path / "channels.yaml")
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        # The copy as an earlier sitegen kept it: upstream's bytes as served, token and all,
        # and the validators it wrote with them.
        cache = upstream_cache_dir(site, "cloud-forge", "linux-64")
        validators = json.loads(upstream_validators_path(cache).read_bytes())
        earlier = {k: validators[k] for k in ("variant", "etag", "last_modified")}
        upstream_validators_path(cache).write_text(json.dumps(earlier))
        kept = cache / validators["variant"]
        kept.write_bytes((forge / "linux-64" / kept.name).read_bytes())
        assert files_holding(site, token) == [str(kept.relative_to(site))]

        with caplog.at_level(logging.INFO, logger="sitegen"):
            assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        assert files_holding(site, token) == []
        assert server.count("/linux-64/repodata.json.zst", status=304) == 1
        assert "nothing changed upstream or in the configuration" in caplog.text

        (site / "cloud" / "forge" / "linux-64" / fn).unlink()
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        assert server.count("/linux-64/repodata.json.zst", status=304) == 2
        stored = (site / "cloud" / "forge" / "linux-64" / fn).read_bytes()
        assert stored == (pkgs / fn).read_bytes()
        assert files_holding(site, token) == []


async def fetcher_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, targets: list[str]
) -> list[str]:
    """What a fetcher of a passive channel (its upstream never reached) logs at -v while it
    answers each of ``targets`` 404."""
    (tmp_path / "channels.yaml").write_text(
        f"output: {tmp_path / 'site'}\n"
        "channels:\n"
        "  cloud/forge:\n"
        "    url: http://upstream.invalid/forge\n"
        "    subdirs: [linux-64]\n"
        "    mode: passive\n"
    )
    config = load_config(tmp_path / "channels.yaml")
    listeners = await open_listeners("127.0.0.1", 0)
    with caplog.at_level(logging.DEBUG, logger="sitegen"):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_fetcher, config, listeners)
            address = listener_address(listeners)
            async with httpx.AsyncClient(base_url=f"http://{address}") as client:
                for target in targets:
                    assert (await client.get(target)).status_code == 404, target
            nursery.cancel_scope.cancel()
    # The client's own log (httpx) is the test's, not the fetcher's.
    return [r.getMessage() for r in caplog.records if r.name.startswith("sitegen")]


async def test_a_path_token_sent_straight_to_the_fetcher_stays_out_of_its_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The web server strips /t/<token>/ before it hands a request on, but any local user can
    reach the fetcher directly with the path a client would send the web server. At -v the
    fetcher logs every request: the token must not be in it, however the path encodes it."""
    token = new_token()
    targets = [
        f"/t/{token}/cloud/forge/linux-64/a-1.0-0.conda",
        f"/%74/{token}/cloud/forge/linux-64/a-1.0-0.conda",
        f"/t%2F{token}%2Fcloud/forge/linux-64/a-1.0-0.conda",
        f"/cloud/forge/linux-64/a-1.0-0.conda?token={token}",
        f"/cloud/forge/linux-64/a-1.0-0.conda?token=%22{token}%22",
        f"/cloud/forge/linux-64/a-1.0-0.conda?token=%27{token}",
    ]
    logged = await fetcher_log(tmp_path, caplog, targets)
    assert len([line for line in logged if "-> 404" in line]) == len(targets), logged
    assert not [line for line in logged if token.split("-")[1] in line], logged


async def test_a_query_value_holding_an_escaped_separator_or_a_quote_is_hidden_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The fetcher decodes a request target before hiding its query values: an escaped '&' or
    '#' (``%26``, ``%23``), a quote (``%22``, ``'``) or white space (``%20``, ``%0A``, a
    no-break space) inside a value does not end it, and the rest of the secret after it is not
    logged. Ordinary targets still read plainly."""
    secret = secrets.token_hex(16)
    fn = "/cloud/forge/linux-64/a-1.0-0.conda"
    escapes = ("%26", "%23", "%22", "'", "%20", "%0A", "%09", "%C2%A0")
    targets = [f"{fn}?token=ab{escape}{secret}" for escape in escapes]
    ordinary = {
        "/cloud/forge/linux-64/a%20b%26c-1.0-0.conda?x=1&y=2": (
            "/cloud/forge/linux-64/a%20b%26c-1.0-0.conda?x=***&y=***"
        ),
        f"{fn}?token=%22ab%22&y=2": f"{fn}?token=%22***%22&y=***",
    }
    logged = await fetcher_log(tmp_path, caplog, [*targets, *ordinary])
    assert len([line for line in logged if "-> 404" in line]) == len(targets) + 2, logged
    assert not [line for line in logged if secret in line], logged
    for shown_target in ordinary.values():
        assert any(f"GET {shown_target} -> 404" in line for line in logged), logged
