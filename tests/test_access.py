"""Private channels without servers: channels.yaml, the token store, the generated files, the
``sitegen token`` commands and what ``sitegen webconf`` prints for them."""

from __future__ import annotations

import base64
import datetime as dt
import grp
import hashlib
import json
import os
import re
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from sitegen.access.check import TokenCheck
from sitegen.access.server_files import (
    AccessError,
    AccessPaths,
    apache_files,
    nginx_map_text,
    private_channels,
    write_server_files,
)
from sitegen.access.tokens import (
    TOKEN_RE,
    TokenError,
    TokenStore,
    basic_header,
    basic_keys,
    basic_tails,
    md5_b64url,
    new_token,
    parse_expiry,
)
from sitegen.cli import main
from sitegen.config import ConfigError, SiteConfig, load_config, parse_config
from sitegen.layout import ACCESS_LOCK, access_dir
from sitegen.store.lock import taking_turns
from sitegen.tools.webconf import WebconfOptions, render_webconf
from testkit.zone import local_zone

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _config(tmp_path: Path, extra: str = "", channel: str = "access: private") -> str:
    template = textwrap.dedent("""\
        output: {site}
        {extra}
        channels:
          pub: {{url: https://example.org/pub, subdirs: [noarch]}}
          internal/licensed:
            url: https://example.org/lic
            subdirs: [noarch]
            {channel}
        """)
    channel = channel.replace("\n", "\n    ")
    return template.format(site=tmp_path / "site", extra=extra, channel=channel)


# --------------------------------------------------------------------------- channels.yaml


@pytest.mark.unit
def test_channels_are_public_unless_made_private(tmp_path: Path) -> None:
    text = _config(
        tmp_path,
        extra="access: {groups: {team: [ci, alice]}, reload: [nginx, -s, reload]}",
        channel="access: private\nreaders: [team, bob]",
    )
    config = parse_config(text)
    public, private = config.channels
    assert (public.access, public.private, public.readers) == ("public", False, ())
    assert (private.access, private.private, private.readers) == ("private", True, ("team", "bob"))
    assert config.access.members("team") == ("ci", "alice")
    assert config.access.members("bob") == ("bob",)
    assert config.access.reload == ("nginx", "-s", "reload")
    # Beside the site, never inside it.
    assert access_dir(config.output) == tmp_path / "site-access"


@pytest.mark.unit
def test_long_form_channels_take_access_too(tmp_path: Path) -> None:
    text = textwrap.dedent(f"""\
        output: {tmp_path}/site
        channels:
          internal/licensed:
            access: private
            readers: [ci]
            mirrors:
              - {{name: lic, url: https://example.org/lic, subdirs: [noarch]}}
        """)
    (channel,) = parse_config(text).channels
    assert channel.private and channel.readers == ("ci",)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("access: secret", "expected 'public' or 'private'"),
        ("readers: [ci]", "readers only apply to a channel with access: private"),
        ("access: private\nreaders: ['bad name']", "invalid token or group name"),
        # A line end after the name ("$" alone would let it by).
        ('access: private\nreaders: ["ci\\n"]', "invalid token or group name"),
    ],
)
def test_bad_access_settings_name_file_line_and_key(
    tmp_path: Path, channel: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(_config(tmp_path, channel=channel))
    assert "channels.yaml:" in str(info.value)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('access: {group: "www-data\\n"}', "invalid system group name"),
        ('access: {groups: {"team\\n": [ci]}}', "invalid group name"),
    ],
)
def test_a_group_name_ending_in_a_line_end_is_refused(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_config(tmp_path, extra=extra))


@pytest.mark.unit
def test_a_channel_cannot_be_called_t(tmp_path: Path) -> None:
    """/t/<token>/ is conda's path token: a channel there could never be reached."""
    text = textwrap.dedent(f"""\
        output: {tmp_path}/site
        channels:
          t/x: {{url: https://example.org/x, subdirs: [noarch]}}
        """)
    with pytest.raises(ConfigError, match="collides"):
        parse_config(text)


# --------------------------------------------------------------------------- tokens


@pytest.mark.unit
def test_tokens_are_random_long_and_conda_safe() -> None:
    seen = {new_token() for _ in range(200)}
    assert len(seen) == 200
    for token in seen:
        assert TOKEN_RE.match(token)
        secret = token.split("-", 1)[1]
        assert len(secret) * 4 >= 128  # hex digits: 4 bits each


@pytest.mark.unit
def test_the_store_holds_hashes_only_and_is_private(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "access" / "tokens.json")
    token = store.add("ci", ["internal/licensed"], NOW, parse_expiry("2027-01-31"))
    text = store.path.read_text()
    assert token not in text and token.split("-")[1] not in text
    assert store.path.stat().st_mode & 0o777 == 0o600
    (record,) = store.load()
    assert record.sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert record.nginx_md5 == md5_b64url(token)
    assert record.nginx_basic_md5s == tuple(md5_b64url(tail) for tail in basic_tails(token))
    assert record.expires == "2027-01-31T23:59:59+00:00"
    assert json.loads(text)["tokens"][0]["name"] == "ci"


@pytest.mark.unit
def test_a_token_is_found_with_its_state(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    live = store.add("live", [], NOW)
    dying = store.add("dying", [], NOW, NOW + dt.timedelta(days=1))
    store.add("other", [], NOW)

    def state(token: str, now: dt.datetime = NOW) -> str | None:
        record = store.find(token)
        return record and f"{record.name} {record.state(now)}"

    assert state(live) == "live active"
    assert state(live[:-1] + "x") is None
    assert state(dying) == "dying active"
    assert state(dying, NOW + dt.timedelta(days=2)) == "dying expired"
    store.revoke("live", NOW)
    assert state(live) == "live revoked"


@pytest.mark.unit
def test_names_are_never_reused_and_revoking_an_unknown_name_fails(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    store.add("ci", [], NOW)
    store.revoke("ci", NOW)
    with pytest.raises(TokenError, match="exists already"):
        store.add("ci", [], NOW)
    with pytest.raises(TokenError, match="no token named"):
        store.revoke("nobody", NOW)
    with pytest.raises(TokenError, match="expected a date"):
        parse_expiry("next tuesday")


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
    assert f"{store.path}: cannot read it" in err and "Traceback" not in err


# --------------------------------------------------------------------------- commands


@pytest.mark.unit
def test_token_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "channels.yaml"
    config.write_text(_config(tmp_path))
    assert main(["token", "add", "ci", "--channel", "internal/licensed", "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert TOKEN_RE.match(token) and token not in err
    access = tmp_path / "site-access"
    for path in access.rglob("*"):
        if path.is_file():
            assert token not in path.read_text(), path
    assert "reload" in err  # says how the change reaches nginx
    assert (access / "nginx-tokens.map").is_file()

    assert main(["token", "add", "pubtoken", "--channel", "pub", "-c", str(config)]) == 2
    assert "not a private channel" in capsys.readouterr().err
    past = ["token", "add", "late", "--channel", "internal/licensed", "--expires", "2001-01-01"]
    assert main([*past, "-c", str(config)]) == 2
    assert main(["token", "add", "bad name", "-c", str(config)]) == 2
    # A line end after the name would split its line of `token list` and `token check`.
    assert main(["token", "add", "ops\n", "-c", str(config)]) == 2
    assert "invalid token name" in capsys.readouterr().err

    assert main(["token", "list", "-c", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "ci" in listing and "active" in listing and "internal/licensed" in listing
    assert token not in listing
    assert main(["token", "revoke", "ci", "-c", str(config)]) == 0
    assert main(["token", "list", "-c", str(config)]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["token", "revoke", "ci", "--reload", "-c", str(config)]) == 2
    assert "access.reload" in capsys.readouterr().err


# --------------------------------------------------------------------------- webconf


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
def test_a_token_is_checked_and_revoked_by_value_from_stdin_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    config = tmp_path / "channels.yaml"
    config.write_text(_config(tmp_path))
    assert main(["token", "add", "ci", "--channel", "internal/licensed", "-c", str(config)]) == 0
    token = capsys.readouterr().out.strip()

    def stdin(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text + "\n"))

    stdin(token)
    assert main(["token", "check", "-c", str(config)]) == 0
    assert capsys.readouterr().out.split() == ["ci", "active", "internal/licensed"]
    stdin(token[:-1] + "0" if not token.endswith("0") else token[:-1] + "1")
    assert main(["token", "check", "-c", str(config)]) == 1
    assert capsys.readouterr().out.strip() == "unknown token"
    stdin(token)
    assert main(["token", "revoke", "--stdin", "-c", str(config)]) == 0
    assert "'ci' revoked" in capsys.readouterr().err
    stdin(token)
    assert main(["token", "check", "-c", str(config)]) == 1
    assert capsys.readouterr().out.split()[:2] == ["ci", "revoked"]
    assert main(["token", "revoke", "-c", str(config)]) == 2  # neither a name nor --stdin


@pytest.mark.unit
def test_page_model_for_private_channels(tmp_path: Path) -> None:
    from sitegen.access.pages import TOKEN_PLACEHOLDER, token_snippets, visibility

    seen = visibility(parse_config(_config(tmp_path)))
    assert (seen["pub"].label, seen["pub"].details_public) == ("", True)
    assert (seen["internal/licensed"].label, seen["internal/licensed"].details_public) == (
        "private",
        False,
    )
    snippets = token_snippets("https://mirror.example.org/conda/", "internal/licensed")
    assert snippets.conda_url == "https://mirror.example.org/conda/t/<TOKEN>/internal/licensed"
    assert snippets.channel_url == "https://mirror.example.org/conda/internal/licensed"
    assert snippets.netrc == "machine mirror.example.org login <NAME> password <TOKEN>"
    assert json.loads(snippets.rattler_auth_file) == {
        "mirror.example.org": {"BearerToken": TOKEN_PLACEHOLDER}
    }
    assert (
        token_snippets("http://127.0.0.1:8080", "x").conda_url
        == "http://127.0.0.1:8080/t/<TOKEN>/x"
    )


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
    grouped = _config(tmp_path, extra="access: {group: no-such-group-here}")
    config_path.write_text(grouped)
    assert (
        main(["token", "add", "x", "--channel", "internal/licensed", "-c", str(config_path)]) == 2
    )
    out, err = capsys.readouterr()
    assert "not a group" in err and out == ""  # no token was issued
    assert [r.name for r in store.load()] == ["ci"]


@pytest.mark.unit
def test_the_fetchers_check_reads_every_credential_form() -> None:
    from sitegen.access.check import credential

    token = new_token()
    forms = [
        [(b"Authorization", f"Bearer {token}".encode())],
        [(b"authorization", basic_header("whoever", token).encode())],
        [(b"X-Sitegen-Token", token.encode())],
        [(b"X-Sitegen-Uri", f"/conda/t/{token}/internal/licensed/x.conda".encode())],
    ]
    for headers in forms:
        assert credential(headers) == token, headers
    for headers in (
        [],
        [(b"Authorization", b"Bearer nope")],
        [(b"Authorization", b"Basic !!!")],
        [(b"X-Sitegen-Uri", b"/conda/internal/licensed/x.conda")],
    ):
        assert credential(headers) is None, headers


@pytest.mark.unit
def test_the_fetchers_check_lets_a_token_read_only_the_channels_it_is_granted(
    tmp_path: Path,
) -> None:
    """Scopes: a token named by one private channel's readers (directly or through a group)
    or added for it reads that channel, never another private one (401, as from the web
    servers); an expired or revoked token reads none (403 where it was a reader's, 401
    elsewhere)."""
    config = parse_config(
        textwrap.dedent(f"""\
            output: {tmp_path / "site"}
            access: {{groups: {{team: [ci]}}}}
            channels:
              internal/licensed:
                url: https://example.org/lic
                subdirs: [noarch]
                access: private
                readers: [team]
              internal/other:
                url: https://example.org/other
                subdirs: [noarch]
                access: private
            """)
    )
    licensed, other = private_channels(config)
    assert (licensed.path, other.path) == ("internal/licensed", "internal/other")
    store = AccessPaths.of(config).store
    ci = store.add("ci", [], NOW)
    granted = store.add("granted", ["internal/other"], NOW)
    dying = store.add("dying", ["internal/other"], NOW, NOW + dt.timedelta(hours=1))
    check = TokenCheck(config)

    def refusal(channel, token: str, now: dt.datetime = NOW) -> int | None:
        return check.refusal(channel, [(b"Authorization", f"Bearer {token}".encode())], now)

    assert refusal(licensed, ci) is None and refusal(other, ci) == 401
    assert refusal(other, granted) is None and refusal(licensed, granted) == 401
    assert refusal(other, dying) is None
    assert refusal(other, dying, NOW + dt.timedelta(hours=2)) == 403
    store.revoke("granted", NOW)
    assert refusal(other, granted) == 403 and refusal(licensed, granted) == 401


@pytest.mark.unit
def test_the_credential_scheme_is_read_in_any_case() -> None:
    """``bearer``, ``BASIC``: the scheme's case does not matter (README, Private channels)."""
    from sitegen.access.check import credential

    token = new_token()
    basic = basic_header("whoever", token).split(" ", 1)[1]
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert credential([(b"Authorization", f"{scheme} {token}".encode())]) == token
    for scheme in ("basic", "BASIC"):
        assert credential([(b"authorization", f"{scheme} {basic}".encode())]) == token


@pytest.mark.unit
def test_every_stored_token_is_compared_by_its_hash_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup compares the token's SHA-256 with every record through
    hmac.compare_digest, whichever matches, so its time tells nothing about the store."""
    import hmac

    store = TokenStore(tmp_path / "tokens.json")
    tokens = [store.add(name, [], NOW) for name in ("a", "b", "c")]
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def compare_digest(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    found = store.find(tokens[0])
    assert found is not None and found.name == "a"
    digest = hashlib.sha256(tokens[0].encode()).hexdigest()
    assert sorted(compared) == sorted((r.sha256, digest) for r in store.load())


@pytest.mark.unit
def test_an_expiry_without_a_zone_is_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with local_zone(monkeypatch, "America/New_York"):
        assert parse_expiry("2027-01-31T12:00") == dt.datetime(2027, 1, 31, 12, tzinfo=dt.UTC)
        assert parse_expiry("2027-01-31") == dt.datetime(2027, 1, 31, 23, 59, 59, tzinfo=dt.UTC)


@pytest.mark.unit
def test_a_date_alone_expires_at_the_end_of_that_day_in_either_iso_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    end = dt.datetime(2027, 1, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert parse_expiry("2027-01-31") == parse_expiry("20270131") == end
    assert parse_expiry("20270131T120000Z") == dt.datetime(2027, 1, 31, 12, tzinfo=dt.UTC)
    config = tmp_path / "channels.yaml"
    config.write_text(_config(tmp_path))
    for name, day in (("extended", "2999-01-31"), ("basic", "29990131")):
        add = ["token", "add", name, "--channel", "internal/licensed", "--expires", day]
        assert main([*add, "-c", str(config)]) == 0
    capsys.readouterr()
    assert main(["token", "list", "-c", str(config)]) == 0
    rows = [row.split() for row in capsys.readouterr().out.splitlines()[1:]]
    assert [(row[0], row[-1]) for row in rows] == [
        ("extended", "2999-01-31T23:59:59+00:00"),
        ("basic", "2999-01-31T23:59:59+00:00"),
    ]


@pytest.mark.unit
def test_the_store_stays_private_over_a_leftover_temporary(tmp_path: Path) -> None:
    """A temporary left by an earlier writer with other mode bits does not make the store
    readable by others."""
    store = TokenStore(tmp_path / "tokens.json")
    leftover = tmp_path / f".tokens.json.{os.getpid()}.tmp"
    leftover.write_text("{}")
    leftover.chmod(0o644)
    store.add("ci", [], NOW)
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert not leftover.exists()


@pytest.mark.unit
def test_token_commands_name_readers_with_no_token_in_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "channels.yaml"
    access = "access: {groups: {team: [alice, carl]}}"
    config.write_text(_config(tmp_path, access, "access: private\nreaders: [team, bbo]"))
    assert main(["token", "add", "alice", "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert "internal/licensed: readers carl (group team), bbo" in err
    assert main(["token", "list", "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "internal/licensed: readers carl (group team), bbo" in err
    assert "alice" not in err and token not in out + err

    assert main(["token", "add", "bbo", "-c", str(config)]) == 0
    assert main(["token", "add", "carl", "-c", str(config)]) == 0
    capsys.readouterr()
    assert main(["token", "list", "-c", str(config)]) == 0
    assert "no token" not in capsys.readouterr().err


@pytest.mark.unit
def test_store_changes_wait_for_the_access_lock(tmp_path: Path) -> None:
    """Adds and revocations take turns with each other and with the server files' writers:
    run at once, each would save a store without the other's change."""
    store = TokenStore(tmp_path / "access" / "tokens.json")
    when = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    store.add("first", ["c/p"], when)
    done = threading.Event()

    def add() -> None:
        store.add("second", ["c/p"], when)
        store.revoke("first", when)
        done.set()

    with taking_turns(tmp_path / "access" / ACCESS_LOCK, 0o600):
        worker = threading.Thread(target=add)
        worker.start()
        assert not done.wait(0.5)
        assert [r.name for r in store.load()] == ["first"]
    worker.join(10)
    assert done.is_set()
    assert [(r.name, bool(r.revoked)) for r in store.load()] == [("first", True), ("second", False)]
    assert store.drop_channel("c/p") == ["first", "second"]
    assert store.drop_channel("c/p") == [] and store.scoped_to("c/p") == []
