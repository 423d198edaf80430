"""Every mirror run brings the web server's token files in line with channels.yaml: a reader
taken out of ``readers`` (or of a group) loses access at the next scheduled run, and the web
server is reloaded (``access.reload``) only when a file changed."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from sitegen.access.server_files import AccessPaths
from sitegen.cli import main
from sitegen.config import load_config
from sitegen.tools.example_channel import write_channel
from testkit.small_channel import CHANNEL, small_packages

pytestmark = pytest.mark.integration


def _reloader(tmp_path: Path, status: int = 0) -> tuple[Path, Path]:
    """A reload command that counts its runs in a file."""
    count, script = tmp_path / "reloads.txt", tmp_path / f"reload-{status}.py"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nopen({str(count)!r}, 'a').write('x')\nsys.exit({status})\n"
    )
    script.chmod(0o755)
    return script, count


def _write(path: Path, upstream: Path, readers: str, reload: Path) -> Path:
    path.write_text(
        f"output: {path.parent / 'site'}\n"
        f"access: {{groups: {{team: [alice, bob]}}, reload: [{reload}]}}\n"
        f"channels:\n  {CHANNEL}:\n    url: file://{upstream}\n    subdirs: [linux-64]\n"
        f"    access: private\n    readers: {readers}\n"
    )
    return path


def _readers_in_files(config_path: Path) -> set[str]:
    """The token ids the nginx map and the Apache files let read the channel."""
    paths = AccessPaths.of(load_config(config_path))
    ids = {r.id: r.name for r in paths.store.load()}
    in_map = {name for tid, name in ids.items() if tid in paths.nginx_map.read_text()}
    in_apache = {ids[p.stem] for p in (paths.apache_dir / CHANNEL).glob("*.sha1") if p.stem in ids}
    assert in_map == in_apache
    return in_map


def test_a_reader_taken_out_of_channels_yaml_loses_access_at_the_next_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = tmp_path / "up" / "chan"
    write_channel(upstream, small_packages())
    reload, reloads = _reloader(tmp_path)
    config_path = _write(tmp_path / "channels.yaml", upstream, "[team]", reload)
    store = AccessPaths.of(load_config(config_path)).store
    now = dt.datetime.now(dt.UTC)
    store.add("alice", [], now)
    store.add("bob", [], now)  # stored, but no token command wrote the server's files since

    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert _readers_in_files(config_path) == {"alice", "bob"}
    assert reloads.read_text() == "x"
    assert "no token" not in caplog.text

    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert reloads.read_text() == "x", "nothing changed: no reload"

    _write(config_path, upstream, "[alice]", reload)  # bob no longer reads the channel
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert _readers_in_files(config_path) == {"alice"}
    assert reloads.read_text() == "xx"

    # A reload that fails fails the run's status (the files are written all the same).
    failing, _ = _reloader(tmp_path, status=3)
    _write(config_path, upstream, "[alice, bob]", failing)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 1
    assert _readers_in_files(config_path) == {"alice", "bob"}


def test_a_run_names_the_readers_with_no_token_in_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A typo in ``readers`` locks the person out: the run says which name, of which channel."""
    upstream = tmp_path / "up" / "chan"
    write_channel(upstream, small_packages())
    reload, _ = _reloader(tmp_path)
    config_path = _write(tmp_path / "channels.yaml", upstream, "[alcie, team]", reload)
    store = AccessPaths.of(load_config(config_path)).store
    store.add("alice", [], dt.datetime.now(dt.UTC))

    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [w for w in warnings if "no token" in w] == [
        f"access: channel {CHANNEL}: readers alcie, bob (group team) in channels.yaml name no"
        " token in the token store: a typo, or a token not issued yet (`sitegen token add NAME`)"
    ]
    assert _readers_in_files(config_path) == {"alice"}


def test_a_damaged_token_store_fails_the_runs_status_not_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hand edit that leaves tokens.json unreadable (here a trailing comma) is an error of
    the run, naming the file; the channels are mirrored all the same."""
    upstream = tmp_path / "up" / "chan"
    write_channel(upstream, small_packages())
    reload, reloads = _reloader(tmp_path)
    config_path = _write(tmp_path / "channels.yaml", upstream, "[alice]", reload)
    store = AccessPaths.of(load_config(config_path)).store
    store.path.parent.mkdir(parents=True)
    store.path.write_text('{"tokens": [],}')

    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 1
    assert (tmp_path / "site" / CHANNEL / "linux-64" / "repodata.json").is_file()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("token files" in e and str(store.path) in e for e in errors), errors
    assert not reloads.exists()
