"""Private channels behind real nginx and real Apache, run from ``sitegen webconf --standalone``.

A site with a public and a private channel (both mirrored from the example upstream, pages
rendered) is served by each server; tokens are issued with ``sitegen token``. Every credential
form conda, mamba and pixi send is tried against repodata, a package file and a page (curl for
``.netrc``), py-rattler installs through its authentication storage and through a ``/t/``
URL, and afterwards every log and output file is searched for the tokens.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import trio

from sitegen.access.server_files import AccessPaths, write_server_files
from sitegen.cli import main
from sitegen.config import SiteConfig, load_config
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.web.render import render_site
from testkit.access import fetcher_subprocess, install_with_auth, rattler_auth_file
from testkit.apache import require_server, server_user, webconf_server, world_readable_dir
from testkit.upstream import ExampleUpstream

PREFIX = "/anaconda"
PUBLIC = "cloud/conda-forge"
PRIVATE = "internal/licensed"
PULL = "internal/pull"  # private and passive: package files come through the fetcher


@dataclass
class PrivateSite:
    root: Path  # the world-readable directory holding everything
    config_path: Path
    config: SiteConfig
    tokens: dict[str, str]  # name -> token, as `sitegen token add` printed them
    upstream: ExampleUpstream


def _token_add(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["token", "add", *args, "-c", str(config)]) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1  # the token, once, and nothing else on stdout
    return out


@pytest.fixture
def private_site(
    example_upstream: ExampleUpstream, capsys: pytest.CaptureFixture[str]
) -> Iterator[PrivateSite]:
    user = server_user()
    group = user.split(":")[1] if user else None
    with world_readable_dir() as root:
        config_path = root / "channels.yaml"
        config_path.write_text(
            textwrap.dedent(f"""\
                output: site
                download: {{retries: 0}}
                access:
                  dir: {root}/access
                  {f"group: {group}" if group else ""}
                  groups: {{team: [ci]}}
                  reload: [true]
                channels:
                  {PUBLIC}: {{url: {example_upstream.url}, subdirs: [linux-64]}}
                  {PRIVATE}:
                    access: private
                    readers: [team]
                    mirrors:
                      - {{name: licensed, url: {example_upstream.url}, subdirs: [linux-64]}}
                  {PULL}:
                    access: private
                    readers: [team]
                    mirrors:
                      - name: pull
                        url: {example_upstream.url}
                        subdirs: [linux-64]
                        mode: passive
                """)
        )
        config = load_config(config_path)
        report = trio.run(run_mirror, config, MirrorOptions(progress=False))
        assert not report.failed
        render_site(config)
        tokens = {
            "ci": _token_add(config_path, capsys, "ci"),  # reads through the group
            "alice": _token_add(config_path, capsys, "alice", "--channel", PRIVATE),
            "gone": _token_add(config_path, capsys, "gone", "--channel", PRIVATE),
            "outsider": _token_add(config_path, capsys, "outsider"),  # reads nothing
        }
        assert main(["token", "revoke", "gone", "-c", str(config_path)]) == 0
        # A token issued with an expiry that has passed since (the command refuses past dates).
        store = AccessPaths.of(config).store
        now = dt.datetime.now(dt.UTC)
        tokens["old"] = store.add("old", [PRIVATE], now, now + dt.timedelta(days=1))
        records = store.load()
        past = (now - dt.timedelta(minutes=1)).isoformat()
        store.save([replace(r, expires=past) if r.name == "old" else r for r in records])
        write_server_files(config)
        yield PrivateSite(root, config_path, config, tokens, example_upstream)


def _request(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _basic(name: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _package(site: Path, channel: str) -> str:
    document = json.loads((site / channel / "linux-64" / "repodata.json").read_bytes())
    return next(iter(document["packages.conda"]))


def _wrong(token: str) -> str:
    return token[:-4] + ("0000" if not token.endswith("0000") else "1111")


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_every_credential_form_on_every_kind_of_file(
    server: str, private_site: PrivateSite, tmp_path: Path
) -> None:
    require_server(server)
    site = private_site.config.output
    tokens = private_site.tokens
    ci = tokens["ci"]
    (site / PRIVATE / "linux-64" / "current_repodata.json").unlink()  # an optional file
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    files = {
        "repodata": "linux-64/repodata.json",
        "package": f"linux-64/{_package(site, PRIVATE)}",
        "page": "",  # the channel's index.html
    }
    with running:
        url = running.url
        for kind, rel in files.items():
            private = f"{PREFIX}/{PRIVATE}/{rel}"
            expected_body = (site / PRIVATE / (rel or "index.html")).read_bytes()
            cases: list[tuple[str, str, dict[str, str], int]] = [
                ("no credentials", private, {}, 401),
                ("wrong Bearer", private, _bearer(_wrong(ci)), 401),
                ("wrong path token", f"/t/{_wrong(ci)}{private}", {}, 401),
                ("wrong Basic", private, _basic("ci", _wrong(ci)), 401),
                ("token of no reader", private, _bearer(tokens["outsider"]), 401),
                ("revoked Bearer", private, _bearer(tokens["gone"]), 403),
                ("revoked path token", f"{PREFIX}/t/{tokens['gone']}/{PRIVATE}/{rel}", {}, 403),
                ("revoked Basic", private, _basic("gone", tokens["gone"]), 403),
                ("expired Bearer", private, _bearer(tokens["old"]), 403),
                ("expired path token", f"/t/{tokens['old']}{private}", {}, 403),
                ("Bearer", private, _bearer(ci), 200),
                ("Bearer, direct grant", private, _bearer(tokens["alice"]), 200),
                ("path token after the host", f"/t/{ci}{private}", {}, 200),
                ("path token after the prefix", f"{PREFIX}/t/{ci}/{PRIVATE}/{rel}", {}, 200),
                ("Basic", private, _basic("ci", ci), 200),
            ]
            for what, path, headers, status in cases:
                got, response_headers, body = _request(url, path, headers)
                assert got == status, f"{server} {kind}: {what}: {got}"
                if status == 401:
                    assert response_headers["www-authenticate"].startswith("Basic "), what
                if status == 200:
                    assert body == expected_body, f"{kind}: {what}"
                else:
                    assert ci.encode() not in body
            # The public channel stays public, with or without a token in the URL.
            public = f"{PREFIX}/{PUBLIC}/{rel}"
            assert _request(url, public)[0] == 200, kind
            assert _request(url, f"/t/{ci}{public}")[0] == 200, kind

        # ~/.netrc: Basic with the token as password, as conda and pixi read it.
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine 127.0.0.1 login ci password {ci}\n")
        netrc.chmod(0o600)
        curl = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--netrc-file", str(netrc),
             f"{url}{PREFIX}/{PRIVATE}/linux-64/repodata.json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert curl.stdout == "200"

        # An authorised request for a missing optional file is a clean 404 (clients fall
        # back); without a token it is still 401: absence tells nothing.
        for optional in ("repodata_shards.msgpack.zst", "current_repodata.json"):
            path = f"{PREFIX}/{PRIVATE}/linux-64/{optional}"
            assert _request(url, path, _bearer(ci))[0] == 404, optional
            status, _, body = _request(url, f"/t/{ci}{path}")
            assert status == 404 and ci.encode() not in body, optional
            assert _request(url, path, _basic("ci", ci))[0] == 404, optional
            assert _request(url, path)[0] == 401, optional

    # The log tells when each token was last used (a 401 or 403 is not a use).
    access_log = running.state_dir / "access.log"
    _wait_for_log(access_log)
    listing = _token_list(private_site.config_path, access_log)
    assert listing["ci"][-1] != "-" and listing["alice"][-1] != "-"
    assert listing["outsider"][-1] == listing["gone"][-1] == listing["old"][-1] == "-"
    _assert_no_token_anywhere(private_site, running.state_dir)


def _wait_for_log(path: Path) -> None:
    """nginx writes a request's line after answering it: give the last one a moment."""
    import time

    size = -1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and path.stat().st_size != size:
        size = path.stat().st_size
        time.sleep(0.2)


def _token_list(config: Path, access_log: Path) -> dict[str, list[str]]:
    command = ["token", "list", "--access-log", str(access_log), "-c", str(config)]
    result = subprocess.run(
        [sys.executable, "-m", "sitegen", *command], capture_output=True, text=True, check=True
    )
    return {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}


def _assert_no_token_anywhere(private_site: PrivateSite, state_dir: Path) -> None:
    """No token (nor its secret half) in the logs, the site, the access files or the config."""
    secrets = [t for token in private_site.tokens.values() for t in (token, token[13:])]
    searched = [*state_dir.rglob("*"), *private_site.root.rglob("*")]
    logs = [p for p in searched if p.name in ("access.log", "error.log")]
    assert len(logs) >= 2 and any(p.stat().st_size for p in logs if p.name == "access.log")
    for path in searched:
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"a token is in {path}"


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_rattler_installs_with_its_auth_storage_and_with_a_path_token(
    server: str,
    private_site: PrivateSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_server(server)
    token = private_site.tokens["ci"]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        channel = f"{running.url}{PREFIX}/{PRIVATE}"
        entries = {
            "bearer": {"BearerToken": token},
            "basic": {"BasicHTTP": {"username": "ci", "password": token}},
        }
        for kind, entry in entries.items():
            auth_file = rattler_auth_file(tmp_path / f"auth-{kind}.json", "127.0.0.1", entry)
            monkeypatch.setenv("RATTLER_AUTH_FILE", str(auth_file))
            installed = install_with_auth(channel, ["numpy"], tmp_path / kind)
            assert "numpy" in installed, kind
        monkeypatch.delenv("RATTLER_AUTH_FILE")
        # conda's placement: /t/<token>/ right after the channel location (the prefix).
        with_token = f"{running.url}{PREFIX}/t/{token}/{PRIVATE}"
        installed = install_with_auth(with_token, ["numpy"], tmp_path / "path-token")
        assert "numpy" in installed
        # And without any credential, nothing.
        with pytest.raises(Exception, match="401"):
            install_with_auth(channel, ["numpy"], tmp_path / "anonymous")
    _assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_revocation_takes_effect_with_at_most_a_reload(
    server: str, private_site: PrivateSite, capsys: pytest.CaptureFixture[str]
) -> None:
    require_server(server)
    config_path = private_site.config_path
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    path = f"{PREFIX}/{PRIVATE}/linux-64/repodata.json"
    with running:
        url = running.url
        assert _request(url, path, _bearer(private_site.tokens["alice"]))[0] == 200
        # nginx reads the map when it reloads: access.reload signals this very server.
        assert running.proc is not None
        text = config_path.read_text().replace(
            "reload: [true]", f"reload: [kill, -HUP, '{running.proc.pid}']"
        )
        config_path.write_text(text)
        assert main(["token", "revoke", "alice", "--reload", "-c", str(config_path)]) == 0
        new = _token_add(config_path, capsys, "bob", "--channel", PRIVATE, "--reload")
        assert main(["token", "list", "-c", str(config_path)]) == 0
        listing = capsys.readouterr().out
        assert "alice" in listing and "revoked" in listing and new not in listing
        assert _wait_status(url, path, _bearer(private_site.tokens["alice"]), 403)
        assert _wait_status(url, path, _bearer(new), 200)


def _wait_status(url: str, path: str, headers: dict[str, str], status: int) -> bool:
    """nginx's workers pick up a reload within moments; wait for it, briefly."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _request(url, path, headers)[0] == status:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.unit
def test_token_files_are_not_world_readable_when_a_group_is_set(tmp_path: Path) -> None:
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    (tmp_path / "channels.yaml").write_text(
        textwrap.dedent(f"""\
            output: site
            access: {{group: {group}}}
            channels:
              {PRIVATE}: {{url: https://example.org/x, subdirs: [noarch], access: private}}
            """)
    )
    config = load_config(tmp_path / "channels.yaml")
    store = AccessPaths.of(config).store
    store.add("ci", [PRIVATE], dt.datetime.now(dt.UTC))
    paths = write_server_files(config)
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert paths.nginx_map.stat().st_mode & 0o777 == 0o640
    assert all(p.stat().st_mode & 0o007 == 0 for p in paths.apache_dir.rglob("*"))


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_the_fetcher_serves_a_private_channel_only_behind_the_check(
    server: str, private_site: PrivateSite, tmp_path: Path
) -> None:
    require_server(server)
    site = private_site.config.output
    token = private_site.tokens["ci"]
    fn = _package(site, PULL)
    path = f"{PREFIX}/{PULL}/linux-64/{fn}"
    target = site / PULL / "linux-64" / fn
    upstream = private_site.upstream.server
    before = len(upstream.requests)  # the active channels' downloads

    def package_requests() -> list[str]:
        return [r.path for r in upstream.requests[before:] if r.path.endswith(fn)]

    with fetcher_subprocess(private_site.config_path, tmp_path / "fetcher.log") as address:
        running = webconf_server(
            server,
            private_site.config,
            private_site.root / "state",
            prefix=PREFIX,
            fetcher=address,
        )
        with running, httpx.Client(base_url=running.url, follow_redirects=True) as client:
            for headers in ({}, _bearer(_wrong(token)), _bearer(private_site.tokens["gone"])):
                assert client.get(path, headers=headers).status_code in (401, 403)
                assert client.head(path, headers=headers).status_code in (401, 403)
            assert package_requests() == [] and not target.exists()
            # HEAD is answered without a download, GET fetches, verifies and stores once.
            head = client.head(path, headers=_bearer(token))
            assert head.status_code == 200 and package_requests() == []
            got = client.get(f"/t/{token}{path}")
            assert got.status_code == 200
            assert got.content == target.read_bytes() and len(package_requests()) == 1
            # The web server sent the file: nginx through X-Accel-Redirect (the fetcher's
            # own header is gone), Apache after a redirect back to the static URL.
            assert "x-sitegen-fetcher" not in got.headers
            if server == "apache":
                assert [r.status_code for r in got.history] == [302]
                assert str(got.url).endswith(f"/t/{token}{path}")
            again = client.get(path, headers=_basic("ci", token))
            assert again.status_code == 200 and len(package_requests()) == 1
    _assert_no_token_anywhere(private_site, running.state_dir)
