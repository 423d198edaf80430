"""A token store that is old, damaged, unreadable or tampered with: every command reports it,
every request is denied, and nothing of it reaches a server file."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from sitegen.access.check import TokenCheck
from sitegen.access.server_files import (
    AccessError,
    AccessPaths,
    private_channels,
    write_server_files,
)
from sitegen.access.tokens import TokenError, TokenStore
from sitegen.cli import main
from sitegen.config import SiteConfig, parse_config
from testkit.fifo import finished_without_writer
from testkit.tokens import NOW
from testkit.tokens import access_config as _config


def _store_with_ci(tmp_path: Path) -> tuple[Path, SiteConfig, TokenStore, str]:
    """A private channel read by the token ``ci``, which is in the store (and returned)."""
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(_config(tmp_path, channel="access: private\nreaders: [ci]"))
    config = parse_config(config_path.read_text())
    store = AccessPaths.of(config).store
    return config_path, config, store, store.add("ci", [], NOW)


@pytest.mark.unit
def test_a_store_from_before_any_login_basic_says_to_re_add_its_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    config_path, config, store, token = _store_with_ci(tmp_path)
    document = json.loads(store.path.read_text())
    (entry,) = document["tokens"]
    del entry["nginx_basic_md5s"]
    entry["nginx_basic_md5"] = "A" * 22  # one hash of the whole header, keyed by the login
    store.path.write_text(json.dumps(document))
    with pytest.raises(TokenError, match=r"ci: stored by an older sitegen.*sitegen token add"):
        store.load()
    for command in (["token", "list"], ["token", "add", "x"], ["webconf", "nginx"]):
        assert main([*command, "-c", str(config_path)]) == 2, command
        out, err = capsys.readouterr()
        assert "re-add" in err and "Traceback" not in err and out == "", command
    # The passive fetcher's own check denies, logged, rather than failing the request.
    (channel,) = private_channels(config)
    check = TokenCheck(config)
    assert check.refusal(channel, [(b"authorization", f"Bearer {token}".encode())], NOW) == 401
    assert "re-add" in caplog.text and token not in caplog.text


def _stored(document: object) -> bytes:
    return json.dumps(document).encode()


# (id, what a hand edit or a damage leaves of a store holding the one entry given)
DAMAGED_STORES = [
    ("trailing comma", lambda entry: b'{"tokens": [],}'),
    ("not UTF-8", lambda entry: b"\xff\xfe{}"),
    ("a list at the top", lambda entry: _stored([entry])),
    ("tokens not a list", lambda entry: _stored({"tokens": entry})),
    ("an entry not an object", lambda entry: _stored({"tokens": ["ci"]})),
    ("a name that is not text", lambda entry: _stored({"tokens": [{**entry, "name": 7}]})),
    ("channels a string", lambda entry: _stored({"tokens": [{**entry, "channels": "x/y"}]})),
    ("an unknown key", lambda entry: _stored({"tokens": [{**entry, "colour": "red"}]})),
    # Well-typed, but no token add writes it: a name no command takes (a rename by hand), an
    # id or a hash of another form.
    ("a name with a space", lambda entry: _stored({"tokens": [{**entry, "name": "ci runner"}]})),
    (
        "an id in capitals",
        # Not .upper() alone: a random id of digits only has no letter to raise.
        lambda entry: _stored({"tokens": [{**entry, "id": "A" + entry["id"][1:].upper()}]}),
    ),
    ("a hash cut short", lambda entry: _stored({"tokens": [{**entry, "apache_sha1": "ab"}]})),
    # Two entries no two `token add` write: `token revoke NAME` would revoke one of them and
    # leave the other active; nginx refuses a map with a key twice, every private channel.
    ("an entry twice", lambda entry: _stored({"tokens": [entry, entry]})),
    (
        "a name twice",
        lambda entry: _stored({"tokens": [entry, {**entry, "id": "0" * 12, "sha256": "0" * 64}]}),
    ),
    ("an id twice", lambda entry: _stored({"tokens": [entry, {**entry, "name": "ci-copy"}]})),
    (
        "an expiry that is no time",
        lambda entry: _stored({"tokens": [{**entry, "expires": "soon"}]}),
    ),
    (
        "an expiry without its offset",
        lambda entry: _stored({"tokens": [{**entry, "expires": "2027-01-31T12:00"}]}),
    ),
]


@pytest.mark.unit
@pytest.mark.parametrize("damage", [pytest.param(d, id=case) for case, d in DAMAGED_STORES])
def test_a_damaged_store_is_reported_by_every_command_and_denies_every_request(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    damage,
) -> None:
    """A hand-edited or damaged tokens.json is one line naming the file (exit 2) from each
    command, not a traceback; the fetcher's check denies, logged."""
    import io

    config_path, config, store, token = _store_with_ci(tmp_path)
    (entry,) = json.loads(store.path.read_text())["tokens"]
    store.path.write_bytes(damage(entry))
    with pytest.raises(TokenError, match=re.escape(str(store.path))):
        store.load()
    with pytest.raises(AccessError, match=re.escape(str(store.path))):
        write_server_files(config)
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    commands = (["token", "list"], ["token", "add", "x"], ["token", "revoke", "ci"])
    for command in (*commands, ["token", "check"], ["webconf", "nginx"]):
        assert main([*command, "-c", str(config_path)]) == 2, command
        out, err = capsys.readouterr()
        assert str(store.path) in err and "Traceback" not in err and out == "", command
        assert len(err.strip().splitlines()) == 1, err
    (channel,) = private_channels(config)
    assert (
        TokenCheck(config).refusal(channel, [(b"authorization", f"Bearer {token}".encode())], NOW)
        == 401
    )
    assert str(store.path) in caplog.text and token not in caplog.text


@pytest.mark.unit
def test_a_store_that_cannot_be_read_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path, _, store, _ = _store_with_ci(tmp_path)
    store.path.unlink()
    store.path.mkdir()
    assert main(["token", "list", "-c", str(config_path)]) == 2
    err = capsys.readouterr().err
    assert f"{store.path}: not a regular file" in err and "Traceback" not in err


@pytest.mark.unit
@pytest.mark.parametrize("field", ["id", "nginx_md5", "apache_sha1"])
def test_a_stored_hash_or_id_ending_in_a_line_end_never_reaches_a_server_file(
    tmp_path: Path, field: str
) -> None:
    """The id names the Apache files (a file name with a line end), the hashes are their
    contents and the nginx map's values."""
    _config_path, config, store, _token = _store_with_ci(tmp_path)
    (record,) = store.load()
    store.save([replace(record, **{field: getattr(record, field) + "\n"})])
    with pytest.raises(AccessError, match="malformed"):
        write_server_files(config)
    apache = AccessPaths.of(config).apache_dir
    assert not [p for p in apache.rglob("*") if "\n" in p.name]


@pytest.mark.unit
def test_a_tampered_store_or_an_unknown_group_never_reaches_a_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path, config, store, _token = _store_with_ci(tmp_path)
    (record,) = store.load()
    store.save([replace(record, nginx_md5='x"; include /etc/shadow; "')])
    with pytest.raises(AccessError, match="malformed"):
        write_server_files(config)
    assert main(["webconf", "nginx", "-c", str(config_path)]) == 2
    assert "malformed" in capsys.readouterr().err
    store.save([record])  # intact again: the group alone stops the next command
    grouped = _config(tmp_path, extra="access: {group: no-such-group-here}")
    config_path.write_text(grouped)
    assert (
        main(["token", "add", "x", "--channel", "internal/licensed", "-c", str(config_path)]) == 2
    )
    out, err = capsys.readouterr()
    assert "not a group" in err and out == ""  # no token was issued
    assert [r.name for r in store.load()] == ["ci"]


@pytest.mark.unit
def test_a_named_pipe_in_place_of_the_store_or_a_token_file_holds_nothing_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read as it is, a FIFO would hold every command, run (with the access lock, so all that
    come after it too) and fetcher check for ever: one where tokens.json is is a store that
    cannot be read, one where a token file is is replaced by the file."""
    config_path, config, store, _token = _store_with_ci(tmp_path)
    paths = AccessPaths.of(config)
    os.mkfifo(paths.nginx_map)
    assert finished_without_writer(paths.nginx_map, lambda: write_server_files(config))
    assert paths.nginx_map.is_file() and "internal/licensed" in paths.nginx_map.read_text()

    store.path.unlink()
    os.mkfifo(store.path)
    status: list[int] = []
    assert finished_without_writer(
        store.path, lambda: status.append(main(["token", "list", "-c", str(config_path)]))
    )
    assert status == [2]
    assert f"{store.path}: not a regular file" in capsys.readouterr().err
