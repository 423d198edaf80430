"""The web servers' side of private channels: the server files listing readers, the keys of
the credential forms clients send, the guarded configs and the tokens' last use in their logs."""

from __future__ import annotations

import base64
import datetime as dt
import grp
import hashlib
import os
import re
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from sitegen.access.server_files import (
    AccessError,
    AccessPaths,
    apache_files,
    nginx_map_text,
    write_server_files,
)
from sitegen.access.tokens import (
    TokenStore,
    basic_header,
    basic_keys,
    basic_tails,
    md5_b64url,
    new_token,
)
from sitegen.config import load_config, parse_config
from sitegen.tools.webconf import WebconfOptions, render_webconf
from testkit.tokens import NOW
from testkit.tokens import access_config as _config


@pytest.mark.unit
def test_server_files_list_readers_with_expiry_and_revocation(tmp_path: Path) -> None:
    text = _config(
        tmp_path,
        extra="access: {groups: {team: [ci]}}",
        channel="access: private\nreaders: [team]",
    )
    config = parse_config(text)
    store = AccessPaths.of(config).store
    ci = store.add("ci", [], NOW)
    store.add("direct", ["internal/licensed"], NOW, dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    store.add("gone", ["internal/licensed"], NOW)
    store.add("nobody", [], NOW)  # reads nothing: no entry anywhere
    store.revoke("gone", NOW)
    records = {r.name: r for r in store.load()}
    lines = nginx_map_text(config, list(records.values())).splitlines()
    ci_id = ci.split("-")[0]
    assert f'"internal/licensed {ci_id}" "{md5_b64url(ci)}";' in lines
    for key, md5 in zip(basic_keys(ci_id), records["ci"].nginx_basic_md5s, strict=True):
        assert f'"internal/licensed {key}" "{md5}";' in lines
    assert (
        f'"internal/licensed {records["direct"].id}" "{records["direct"].nginx_md5},1798761600";'
        in lines
    )
    assert any(line.endswith(f'"{records["gone"].nginx_md5},1";') for line in lines)
    assert not any(records["nobody"].id in line or "pub" in line for line in lines)
    files = apache_files(config, list(records.values()))
    assert files[f"internal/licensed/{ci_id}.sha1"] == hashlib.sha1(ci.encode()).hexdigest()
    assert files[f"internal/licensed/{ci_id}.until"] == "99991231235959"
    assert files[f"internal/licensed/{records['gone'].id}.until"] == "00000000000000"
    assert not any(records["nobody"].id in name for name in files)


@pytest.mark.unit
def test_basic_header_is_what_clients_send() -> None:
    header = basic_header("ci", "abc")
    assert base64.b64decode(header.removeprefix("Basic ")) == b"ci:abc"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("login", "alignment"),
    [("", 2), ("a", 1), ("ab", 0), ("ci", 0), ("someone-else", 2), ("\u00e9", 0)],
)
def test_a_basic_header_with_any_login_ends_with_a_tail_keyed_by_the_id(
    login: str, alignment: int
) -> None:
    token = new_token()
    tid = token.split("-")[0]
    encoded = basic_header(login, token).removeprefix("Basic ")
    tails = basic_tails(token)
    # Exactly one tail ends the header, and its padding tells which.
    assert [a for a, tail in enumerate(tails) if encoded.endswith(tail)] == [alignment]
    tail = tails[alignment]
    assert (len(tail), len(tail) - len(tail.rstrip("="))) == [(72, 1), (72, 2), (68, 0)][alignment]
    # The tail carries the whole secret; its key comes from the public id alone.
    assert token.split("-")[1] in base64.b64decode(tail).decode()
    assert basic_keys(tid)[alignment] == f"basic{alignment}:{tail[:12]}"


@pytest.mark.unit
def test_the_nginx_map_holds_quoted_basic_keys_and_rejects_tampered_hashes(
    tmp_path: Path,
) -> None:
    config = parse_config(_config(tmp_path, channel="access: private\nreaders: [ci, bob]"))
    store = AccessPaths.of(config).store
    store.add("ci", [], NOW)
    store.add("bob", [], NOW)
    records = store.load()
    lines = nginx_map_text(config, records).splitlines()[1:]
    entry = re.compile(
        r'^"internal/licensed (?:[0-9a-f]{12}|basic[012]:[A-Za-z0-9+/]{12})" "[A-Za-z0-9_-]{22}";$'
    )
    assert len(lines) == 2 * 4 and all(entry.match(line) for line in lines), lines
    for record in records:
        for key in basic_keys(record.id):
            assert sum(f' {key}" ' in line for line in lines) == 1
    bad = replace(records[0], nginx_basic_md5s=(*records[0].nginx_basic_md5s[:2], '";x'))
    with pytest.raises(AccessError, match="malformed"):
        nginx_map_text(config, [bad])
    with pytest.raises(AccessError, match="malformed"):
        nginx_map_text(config, [replace(records[0], nginx_basic_md5s=("a" * 22,))])


@pytest.mark.unit
def test_a_new_token_never_shares_an_nginx_lookup_key_with_a_stored_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nginx compares map keys ignoring case and refuses a map with two equal ones."""
    store = TokenStore(tmp_path / "tokens.json")
    first = store.add("first", [], NOW)
    # Same first 9 id bytes: the same basic0 key.
    clashing = first[:9] + ("000" if first[9:12] != "000" else "111") + first[12:]
    fresh = new_token()
    offers = iter([clashing, fresh])
    monkeypatch.setattr("sitegen.access.tokens.new_token", lambda: next(offers))
    assert store.add("second", [], NOW) == fresh


@pytest.mark.unit
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_webconf_guards_private_channels_only(server: str, tmp_path: Path) -> None:
    private = parse_config(_config(tmp_path))
    public = parse_config(_config(tmp_path, channel=""))
    options = WebconfOptions(prefix="/conda", standalone=True, state_dir=tmp_path / "state")
    text = render_webconf(server, private, options)
    marker = "secure_link" if server == "nginx" else "sha1("
    assert marker in text and "internal/licensed" in text
    assert str(tmp_path / "site-access") in text
    # The one log format carries the token's public id only where a channel is private.
    assert "token=" in text
    plain = render_webconf(server, public, options)
    assert marker not in plain and "token=" not in plain
    assert "/t/[A-Za-z0-9-]+" not in plain  # no path-token handling besides masking the log


@pytest.mark.unit
def test_last_use_is_read_from_either_servers_access_log(tmp_path: Path) -> None:
    from sitegen.access.usage import last_used

    store = TokenStore(tmp_path / "tokens.json")
    store.add("ci", [], NOW)
    store.add("alice", [], NOW)
    store.add("never", [], NOW)
    records = store.load()
    ci = next(r for r in records if r.name == "ci")
    alice = next(r for r in records if r.name == "alice")
    lines = [
        # nginx
        f'127.0.0.1 - - [05/Dec/2026:18:51:13 +0000] "GET /c/t/***/x/ HTTP/1.1" 200 11 "-" token={ci.id}',
        f'127.0.0.1 - - [05/Dec/2026:18:52:13 +0000] "GET /c/x/ HTTP/1.1" 403 11 "-" token={ci.id}',
        f'127.0.0.1 - - [05/Dec/2026:18:53:00 +0000] "GET /c/x/ HTTP/1.1" 304 0 "-" token={basic_keys(alice.id)[1]}',
        '127.0.0.1 - - [05/Dec/2026:18:54:00 +0000] "GET /c/x/ HTTP/1.1" 200 0 "-" token=-',
        # Apache
        f'127.0.0.1 - - [05/Dec/2026:18:50:00 +0000] "GET /c/x/ HTTP/1.1" 200 5 "curl" token={ci.id}',
        "garbage",
    ]
    used = last_used(lines, records)
    assert used == {
        "ci": dt.datetime(2026, 12, 5, 18, 51, 13, tzinfo=dt.UTC),
        "alice": dt.datetime(2026, 12, 5, 18, 53, tzinfo=dt.UTC),
    }


@pytest.mark.unit
def test_token_files_are_not_world_readable_when_a_group_is_set(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    (tmp_path / "channels.yaml").write_text(
        textwrap.dedent(f"""\
            output: site
            access: {{group: {group}}}
            channels:
              internal/licensed: {{url: https://example.org/x, subdirs: [noarch], access: private}}
            """)
    )
    config = load_config(tmp_path / "channels.yaml")
    store = AccessPaths.of(config).store
    store.add("ci", ["internal/licensed"], dt.datetime.now(dt.UTC))
    paths = write_server_files(config).paths
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert paths.nginx_map.stat().st_mode & 0o777 == 0o640
    assert all(p.stat().st_mode & 0o007 == 0 for p in paths.apache_dir.rglob("*"))
