"""Upstream secrets stay out of the commands sitegen starts (their environment) and out of
what it prints when a password or a token holds URL delimiters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.tools.example_channel import write_channel
from testkit.invariant import make_sandbox
from testkit.small_channel import CHANNEL, small_packages
from testkit.upstream import UpstreamServer, respond

pytestmark = pytest.mark.integration
TOKEN, ENV = "tk-review-5ecret-0123456789abcdef", "SITEGEN_REVIEW_TOKEN"


def _dumper(tmp_path: Path) -> tuple[str, Path]:
    dump, script = tmp_path / "dump.txt", tmp_path / "dump.py"
    script.write_text(
        f"#!{sys.executable}\nimport os,sys\nopen({str(dump)!r},'w')"
        ".write(repr(sys.argv)+repr(dict(os.environ))+sys.stdin.read())\n"
    )
    script.chmod(0o755)
    return str(script), dump


def _config(tmp_path: Path, url: str, extra: str = "", private: str = "") -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text(
        f"output: {make_sandbox(tmp_path)}\n{extra}\ndownload: {{retries: 0, timeout: 2}}\n"
        f"channels:\n  {CHANNEL}:\n    url: {url}\n    subdirs: [linux-64]\n{private}"
    )
    return path


def test_notify_hook_env_has_no_upstream_token(tmp_path, monkeypatch):
    write_channel(tmp_path / "up/t" / TOKEN / "chan", small_packages(), zst=True)
    monkeypatch.setenv(ENV, TOKEN)
    hook, dump = _dumper(tmp_path)
    with UpstreamServer(tmp_path / "up") as server:
        cfg = _config(
            tmp_path, f"{server.url}/t/${{{ENV}}}/chan", f"notify: {{on_success: [{hook}]}}"
        )
        assert main(["mirror", "-c", str(cfg), "--no-progress"]) == 0
    assert '"status"' in dump.read_text() and TOKEN not in dump.read_text()


def test_access_reload_env_has_no_upstream_token(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, TOKEN)
    hook, dump = _dumper(tmp_path)
    cfg = _config(
        tmp_path,
        f"https://example.org/t/${{{ENV}}}/c",
        f"access: {{reload: [{hook}]}}",
        "    access: private\n",
    )
    assert main(["token", "add", "ci", "--channel", CHANNEL, "--reload", "-c", str(cfg)]) == 0
    assert dump.exists() and TOKEN not in dump.read_text()


@pytest.mark.parametrize("password", ["PWpartONE/PWpartTWO", "PWpartONE?PWpartTWO", "PWpartONE#x"])
def test_password_with_url_delimiters_not_on_stderr(tmp_path, password):
    write_channel(tmp_path / "up/chan", small_packages(), zst=True)
    with UpstreamServer(tmp_path / "up") as server:
        host = server.url.split("//", 1)[1]
        cfg = _config(tmp_path, f"http://user:${{{ENV}}}@{host}/chan")
        proc = subprocess.run(
            [sys.executable, "-m", "sitegen", "mirror", "-c", str(cfg), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, ENV: password},
        )
    assert "PWpartONE" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("segment", "token"),
    [("t", "PWpartONE/PWpartTWO"), ("key", "PWpartONE&k=PWpartTWO")],
)
def test_token_holding_url_delimiters_not_in_the_log(tmp_path, segment, token):
    """A token that a URL pattern cuts in two (a '/' inside /t/<token>/, '&k=' as in a query):
    messages hide it whole, also in a package URL away from the mirror's own (a CEP-15
    info.base_url relative to it), where a failed attempt names it."""
    root = tmp_path / "up" / segment / token
    write_channel(root / "chan", small_packages())
    (root / "pkgs").mkdir()
    (root / "chan" / "linux-64").rename(root / "pkgs" / "linux-64")
    (root / "chan" / "linux-64").mkdir()
    document = json.loads((root / "pkgs" / "linux-64" / "repodata.json").read_bytes())
    document["info"]["base_url"] = "../../pkgs/linux-64/"
    (root / "chan" / "linux-64" / "repodata.json").write_text(json.dumps(document))
    with UpstreamServer(tmp_path / "up") as server:
        fn = "beta-2.0-h1_0.conda"
        server.add_fault(f"/{segment}/{token}/pkgs/linux-64/{fn}", respond(503))
        cfg = _config(tmp_path, f"{server.url}/{segment}/${{{ENV}}}/chan")
        cfg.write_text(cfg.read_text().replace("retries: 0", "retries: 1"))
        proc = subprocess.run(
            [sys.executable, "-m", "sitegen", "mirror", "-c", str(cfg), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, ENV: token},
        )
    assert proc.returncode == 1 and f"{fn}: attempt 1 of 2 failed" in proc.stderr
    assert "PWpart" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("password", ["PWpartONE/PWpartTWO", "PWpartONE?PWpartTWO"])
def test_a_proxy_url_that_does_not_parse_is_named_not_quoted(tmp_path, password):
    """A proxy password holding '/' or '?' unencoded makes the proxy's URL read as a host and
    a port: the run says which variable is wrong, and no part of the password reaches the
    log, the run's record or its pages, for the mirror nor for the advisory feed."""
    write_channel(tmp_path / "up/chan", small_packages(), zst=True)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["HTTPS_PROXY"] = f"http://user:{password}@127.0.0.1:9"
    with UpstreamServer(tmp_path / "up") as server:
        feeds = f"filters: {{advisories: {{feeds: ['{server.url}/all.zip']}}}}"
        cfg = _config(tmp_path, f"{server.url}/chan", feeds)
        proc = subprocess.run(
            [sys.executable, "-m", "sitegen", "-v", "mirror", "-c", str(cfg), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "PWpart" not in output, output
    assert "HTTPS_PROXY" in output and "unexpected error" not in output
    site = tmp_path / "sandbox"
    files = [p for p in site.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files)
    assert [p for p in files if b"PWpart" in p.read_bytes()] == []
