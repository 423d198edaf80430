"""The token store: random tokens kept as hashes only, their state and expiry, names never
reused, compared in constant time, changed in turns."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from sitegen.access.tokens import (
    TOKEN_RE,
    TokenError,
    TokenStore,
    basic_tails,
    md5_b64url,
    new_token,
    parse_expiry,
)
from sitegen.cli import main
from sitegen.layout import ACCESS_LOCK
from sitegen.store.lock import taking_turns
from testkit.tokens import NOW
from testkit.tokens import access_config as _config
from testkit.zone import local_zone


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


@pytest.mark.unit
def test_an_expiry_at_the_end_of_the_year_9999_is_written_in_any_local_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apache's files hold the expiry in local time: east of UTC the last day of 9999 ends in
    a year no date holds. An offset that puts the expiry itself past 9999 in UTC is refused."""
    config = tmp_path / "channels.yaml"
    config.write_text(_config(tmp_path))
    add = ["token", "add", "--channel", "internal/licensed", "-c", str(config)]
    with local_zone(monkeypatch, "JST-9"):
        assert main([*add, "forever", "--expires", "9999-12-31"]) == 0
        (record,) = TokenStore(tmp_path / "site-access" / "tokens.json").load()
        until = tmp_path / "site-access" / "apache" / "internal" / "licensed" / f"{record.id}.until"
        assert until.read_text() == "99991231235959"
        capsys.readouterr()
        assert main([*add, "later", "--expires", "9999-12-31T23:00-05:00"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and "--expires" in err and "Traceback" not in err
        assert main(["token", "revoke", "forever", "-c", str(config)]) == 0
        assert until.read_text() == "00000000000000"
