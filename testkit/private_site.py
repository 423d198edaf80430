"""A site with private channels for tests against real web servers, and what they check.

:func:`private_site` mirrors the example upstream into a public, a private and a private
passive channel and issues tokens with ``sitegen token``; the helpers send each credential form
(:func:`bearer`, :func:`basic`, path tokens in the URL) and search logs and output files for
tokens (:func:`assert_no_token_anywhere`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import io
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote_to_bytes

import trio

from sitegen.access.server_files import AccessPaths, write_server_files
from sitegen.cli import main
from sitegen.config import SiteConfig, load_config
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.web.render import render_site
from testkit.apache import server_user, world_readable_dir
from testkit.upstream import ExampleUpstream

PREFIX = "/anaconda"
PUBLIC = "cloud/conda-forge"
PRIVATE = "internal/licensed"
PULL = "internal/pull"  # private and passive: package files come through the fetcher
# Public and passive, in a private site only (``private_site(..., site=True)``): behind any token.
OPEN_PULL = "cloud/pull"
# HTTP Basic logins giving the token each base64 alignment (login + ":" is 1, 2 or 3 bytes mod
# 3), the token's name among them.
BASIC_LOGINS = ("", "a", "ab", "ci", "someone-else")


@dataclass
class PrivateSite:
    root: Path  # the world-readable directory holding everything
    config_path: Path
    config: SiteConfig
    tokens: dict[str, str]  # name -> token, as `sitegen token add` printed them
    upstream: ExampleUpstream


def token_add(config: Path, *args: str) -> str:
    """``sitegen token add ARGS``: what it prints on stdout (the token, once, alone)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main(["token", "add", *args, "-c", str(config)])
    lines = out.getvalue().splitlines()
    if status != 0 or len(lines) != 1:
        raise AssertionError(f"sitegen token add {args}: status {status}, stdout {lines}")
    return lines[0]


@contextlib.contextmanager
def private_site(example_upstream: ExampleUpstream, site: bool = False) -> Iterator[PrivateSite]:
    """A public channel, a private one and a private passive one, mirrored from the example
    upstream with pages rendered, in a directory the web server user can read. Tokens: ``ci``
    (reads through the group), ``alice`` (granted by ``--channel``), ``gone`` (revoked),
    ``outsider`` (reads no channel), ``old`` (expired). ``site``: the whole site is private
    (``access: {site: private}``), with a public passive channel too, :data:`OPEN_PULL`."""
    user = server_user()
    group = user.split(":")[1] if user else None
    open_pull = (
        f"  {OPEN_PULL}:\n    mirrors:\n      - {{name: open-pull, url: {example_upstream.url},"
        " subdirs: [linux-64], mode: passive}\n"
    )
    with world_readable_dir() as root:
        config_path = root / "channels.yaml"
        config_path.write_text(
            textwrap.dedent(f"""\
                output: site
                download: {{retries: 0}}
                access:
                  {"site: private" if site else ""}
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
            + (open_pull if site else "")
        )
        config = load_config(config_path)
        report = trio.run(run_mirror, config, MirrorOptions(progress=False))
        assert not report.failed
        render_site(config)
        tokens = {
            "ci": token_add(config_path, "ci"),  # reads through the group
            "alice": token_add(config_path, "alice", "--channel", PRIVATE),
            "gone": token_add(config_path, "gone", "--channel", PRIVATE),
            "outsider": token_add(config_path, "outsider"),  # reads nothing
        }
        with contextlib.redirect_stderr(io.StringIO()):
            assert main(["token", "revoke", "gone", "-c", str(config_path)]) == 0
        tokens["old"] = add_expired(config, "old", PRIVATE)
        write_server_files(config)
        yield PrivateSite(root, config_path, config, tokens, example_upstream)


def add_expired(config: SiteConfig, name: str, *channels: str) -> str:
    """A token issued with an expiry that has passed since (the command refuses past dates);
    the web server's files are left for the caller to write."""
    store = AccessPaths.of(config).store
    now = dt.datetime.now(dt.UTC)
    token = store.add(name, channels, now, now + dt.timedelta(days=1))
    past = (now - dt.timedelta(minutes=1)).isoformat()
    store.save([replace(r, expires=past) if r.name == name else r for r in store.load()])
    return token


def request(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def basic(name: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def packages_of(site: Path, channel: str) -> list[str]:
    """The .conda files the channel's published linux-64 repodata lists."""
    document = json.loads((site / channel / "linux-64" / "repodata.json").read_bytes())
    return list(document["packages.conda"])


def package_of(site: Path, channel: str) -> str:
    return packages_of(site, channel)[0]


def wrong_token(token: str) -> str:
    return token[:-4] + ("0000" if not token.endswith("0000") else "1111")


def assert_no_token_anywhere(private_site: PrivateSite, state_dir: Path) -> None:
    """No token (nor its secret half) in the logs, the site, the access files or the config."""
    secrets = [t for token in private_site.tokens.values() for t in (token, token[13:])]
    searched = [*state_dir.rglob("*"), *private_site.root.rglob("*")]
    logs = [p for p in searched if p.name in ("access.log", "error.log")]
    assert len(logs) >= 2 and any(p.stat().st_size for p in logs if p.name == "access.log")
    for path in searched:
        if path.is_file():
            data = path.read_bytes()
            if path.name in ("access.log", "error.log"):
                data += b"\n" + unquote_to_bytes(data)  # a token percent-encoded is still one
            for secret in secrets:
                where = data.find(secret.encode())
                line = data[data.rfind(b"\n", 0, max(where, 0)) + 1 :][:200]
                assert where < 0, f"a token is in {path}: {line!r}"


def wait_for_log(path: Path) -> None:
    """nginx writes a request's line after answering it: give the last one a moment."""
    size = -1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and path.stat().st_size != size:
        size = path.stat().st_size
        time.sleep(0.2)


def token_list(config: Path, access_log: Path) -> dict[str, list[str]]:
    command = ["token", "list", "--access-log", str(access_log), "-c", str(config)]
    result = subprocess.run(
        [sys.executable, "-m", "sitegen", *command], capture_output=True, text=True, check=True
    )
    return {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}


def wait_status(url: str, path: str, headers: dict[str, str], status: int) -> bool:
    """nginx's workers pick up a reload within moments; wait for it, briefly."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if request(url, path, headers)[0] == status:
            return True
        time.sleep(0.1)
    return False
