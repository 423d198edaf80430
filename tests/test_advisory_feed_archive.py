"""Advisory feeds, the parts that need no network: an OSV zip archive read safely (bombs, names
that climb out, members that are not advisories, damage) and the ``feeds`` setting (URLs,
their secrets, how status shows them)."""

from __future__ import annotations

import gc
import io
import json
import logging
import os
import weakref
import zipfile
from pathlib import Path

import pytest

from sitegen.config import ConfigError, child_environment, make_scrub, parse_config
from sitegen.filters import feeds, osv
from sitegen.filters.advisories import policy_of, show
from sitegen.filters.feeds import site_feeds, with_feeds, with_kept_feeds
from sitegen.filters.osv_archive import ArchiveError, ArchiveLimits, read_archive
from testkit.advisories import write_feed, zlib_advisory

pytestmark = pytest.mark.unit

FEED = "https://osv.example.org/conda/all.zip"


def zip_of(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def advisory(n: int) -> bytes:
    return json.dumps({**zlib_advisory(), "id": f"TEST-{n}"}).encode()


# --------------------------------------------------------------------------- reading


def test_json_members_are_advisories_and_the_rest_is_passed_over(tmp_path):
    archive = zip_of(
        tmp_path / "all.zip",
        {
            "TEST-1.json": advisory(1),
            "nested/TEST-2.JSON": json.dumps([json.loads(advisory(2))]).encode(),
            "README.md": b"\x00\xff not an advisory",
            "nested/": b"",
            "LICENSE": b"Apache-2.0",
        },
    )
    found = read_archive(archive)
    assert [a.id for a in found] == ["TEST-1", "TEST-2"]
    assert found[0].affected[0].name == "zlib" and found[0].score == 9.8


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../escape.json", "climbs out"),
        ("a/../../escape.json", "climbs out"),
        ("/etc/cron.d/x.json", "absolute"),
        ("C:/x.json", "absolute"),
        ("a\\..\\x.json", "backslash"),
        ("new\nline.json", "control characters"),
        ("esc\x1b[31m.json", "control characters"),
    ],
)
def test_a_member_name_that_climbs_out_refuses_the_archive(tmp_path, name, why):
    archive = zip_of(tmp_path / "all.zip", {"TEST-1.json": advisory(1), name: advisory(2)})
    with pytest.raises(ArchiveError, match="unsafe member name") as caught:
        read_archive(archive)
    assert why in str(caught.value)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)  # quoted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.zip"]  # nothing extracted


def test_a_member_past_its_cap_is_refused_unread_or_as_it_decompresses(tmp_path):
    # 17 MiB of zeros deflate to a few kilobytes: a bomb by ratio, stopped at the 16 MiB cap.
    bomb = zip_of(tmp_path / "bomb.zip", {"TEST-1.json": advisory(1), "big.json": bytes(17 << 20)})
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ArchiveError, match=r"'big\.json' is larger than 16 MiB"):
        read_archive(bomb)
    # A header stating less than the member holds: zipfile reads no more than it states, and
    # the checksum of that much does not match.
    liar = tmp_path / "liar.zip"
    data = bytearray(zip_of(liar, {"TEST-1.json": advisory(1) + b" " * 4000}).read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.infolist()[0]
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")  # uncompressed size
    local = info.header_offset
    data[local + 22 : local + 26] = (100).to_bytes(4, "little")
    liar.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="not a readable zip archive"):
        read_archive(liar)


def test_member_count_and_total_size_are_capped(tmp_path):
    many = zip_of(tmp_path / "many.zip", {f"TEST-{n}.json": advisory(n) for n in range(30)})
    assert len(read_archive(many)) == 30
    with pytest.raises(ArchiveError, match="more than 20 members"):
        read_archive(many, ArchiveLimits(members=20))
    size = len(advisory(1))
    with pytest.raises(ArchiveError, match="decompress to more than"):
        read_archive(many, ArchiveLimits(total_bytes=size * 10))
    # A zip directory far larger than the members allowed need is refused before it is parsed.
    entries = zip_of(tmp_path / "entries.zip", {f"{n}.txt": b"" for n in range(2000)})
    with pytest.raises(ArchiveError, match="zip directory is larger than"):
        read_archive(entries, ArchiveLimits(directory_bytes=1000, member_bytes=500))


def test_the_versions_and_events_the_advisories_keep_are_capped(tmp_path):
    """What an advisory keeps of a member (its listed versions and range events) takes ten
    times the member's bytes in memory: a member of ``"1",`` repeated deflates a thousandfold,
    so the decompressed cap alone let an archive of a few megabytes hold tens of gigabytes."""
    listed = {**zlib_advisory(), "id": "TEST-LISTED"}
    listed["affected"] = [{**listed["affected"][0], "versions": ["1"] * 3000}]
    archive = zip_of(
        tmp_path / "all.zip", {"TEST-1.json": advisory(1), "L.json": json.dumps(listed).encode()}
    )
    assert archive.stat().st_size < 5000
    assert len(read_archive(archive, ArchiveLimits(versions=3004))) == 2  # 3000 + 2 + 2 events
    with pytest.raises(ArchiveError, match="more than 3,003 versions and range events"):
        read_archive(archive, ArchiveLimits(versions=3003))


def test_a_damaged_or_empty_archive_is_refused(tmp_path):
    good = write_feed(tmp_path / "good.zip", [zlib_advisory()])
    (tmp_path / "cut.zip").write_bytes(good[: len(good) // 2])
    (tmp_path / "html.zip").write_bytes(b"<html>Service Unavailable</html>")
    flipped = bytearray(good)
    start = flipped.index(b"TEST-ZLIB-1.json") + len("TEST-ZLIB-1.json")
    flipped[start + 10] ^= 0xFF  # inside the compressed data: CRC or inflate fails
    (tmp_path / "flipped.zip").write_bytes(bytes(flipped))
    zip_of(tmp_path / "empty.zip", {})
    zip_of(tmp_path / "readme.zip", {"README.md": b"no advisories here"})
    for name in ("cut.zip", "html.zip", "flipped.zip"):
        with pytest.raises(ArchiveError, match="not a readable zip archive"):
            read_archive(tmp_path / name)
    for name in ("empty.zip", "readme.zip"):
        with pytest.raises(ArchiveError, match="holds no advisories"):
            read_archive(tmp_path / name)
    with pytest.raises(ArchiveError, match="cannot read"):
        read_archive(tmp_path / "absent.zip")


def test_a_member_that_is_no_valid_advisory_refuses_the_archive_naming_it(tmp_path):
    bad = json.dumps({**zlib_advisory(), "id": "TEST-2", "aliases": "CVE-1"}).encode()
    archive = zip_of(tmp_path / "all.zip", {"TEST-1.json": advisory(1), "TEST-2.json": bad})
    with pytest.raises(ArchiveError, match=r"member 'TEST-2.json': aliases: expected a list"):
        read_archive(archive)
    zip_of(archive, {"TEST-3.json": b"{not json"})
    with pytest.raises(ArchiveError, match=r"member 'TEST-3.json': line 1: not valid JSON"):
        read_archive(archive)


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("a/" + "x" * 60_000 + "/../../escape.json", advisory(2), "unsafe member name 'a/xxx"),
        ("x" * 60_000 + ".json", b"{not json", "member 'xxx"),
    ],
)
def test_a_long_member_name_is_quoted_clipped(tmp_path, name, data, words):
    """A zip member's name may be 65,535 bytes long: quoted by its start and its length."""
    archive = zip_of(tmp_path / "all.zip", {"TEST-1.json": advisory(1), name: data})
    with pytest.raises(ArchiveError) as caught:
        read_archive(archive)
    message = str(caught.value)
    assert words in message and "... (60,0" in message, message[:300]
    assert len(message) < 300, message[:300]


def test_an_encrypted_member_refuses_the_archive(tmp_path):
    data = bytearray(zip_of(tmp_path / "all.zip", {"TEST-1.json": advisory(1)}).read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general purpose flags
        at = data.index(signature) + offset
        data[at] |= 0x1
    (tmp_path / "all.zip").write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="encrypted"):
        read_archive(tmp_path / "all.zip")


# --------------------------------------------------------------------------- the setting


def config_text(feeds: str, files: str = "") -> str:
    return (
        f"output: site\nfilters:\n  advisories: {{feeds: {feeds}{files}, min_score: 7}}\n"
        "channels:\n  cloud/forge:\n    url: https://conda.example.org/forge\n"
        "    subdirs: [linux-64]\n"
    )


def test_feeds_alone_or_beside_files_and_how_status_shows_them(tmp_path):
    config = parse_config(config_text(f"[{FEED}, {FEED}]"), environ={})
    policy = policy_of(config.filters)
    assert policy is not None and policy.feeds == (FEED,) and policy.advisories == ()
    assert show(config.filters) == {"feeds": [FEED], "min_score": 7.0, "allow": []}
    (tmp_path / "zlib.json").write_text(json.dumps(zlib_advisory()))
    both = parse_config(config_text(f"[{FEED}]", ", files: [zlib.json]"), base_dir=tmp_path)
    assert [a.id for a in policy_of(both.filters).in_force] == ["TEST-ZLIB-1"]
    assert site_feeds(both) == [FEED]
    with pytest.raises(ConfigError, match=r"missing required key 'files'.* or 'feeds'"):
        parse_config(config_text("[]").replace("feeds: [], ", ""))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://osv.example.org/all.zip", "URL must start with https:// or http://"),
        ("file:///srv/osv/all.zip", "URL must start with https:// or http://"),
        ("https:///all.zip", "URL has no host"),
        ("https://osv.example.org/t/tk-secret/all.zip", "literal token"),
        ("https://osv.example.org/all.zip#part", "must not have a fragment"),
        ("https://osv.example.org/${UNSET_FEED_TOKEN}/all.zip", "UNSET_FEED_TOKEN is not set"),
    ],
)
def test_a_feed_url_is_checked_like_a_mirror_url(url, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(config_text(f"['{url}']"), environ={})
    assert "tk-secret" not in str(caught.value)


def test_a_feed_urls_secrets_are_scrubbed_and_kept_from_child_processes(monkeypatch):
    monkeypatch.setenv("FEED_TOKEN", "tk-feed-secret")
    monkeypatch.setenv("FEED_PASSWORD", "pw/with?odd#chars")
    url = (
        "https://reader:${FEED_PASSWORD}@osv.example.org/t/${FEED_TOKEN}/all.zip?key=${FEED_TOKEN}"
    )
    config = parse_config(config_text(f"['{url}']"), environ=os.environ)
    assert config.secret_env == ("FEED_PASSWORD", "FEED_TOKEN")
    scrub = make_scrub(config)
    assert scrub("fetching tk-feed-secret, pw%2Fwith%3Fodd%23chars") == "fetching ***, ***"
    children = child_environment(config)
    assert "FEED_TOKEN" not in children and "FEED_PASSWORD" not in children
    assert show(config.filters)["feeds"] == ["https://***@osv.example.org/t/***/all.zip?key=***"]


def keep_copy(path: Path, advisories: list[dict]) -> tuple[osv.Advisory, ...]:
    """A feed's copy at ``path``, as a run keeps one: its advisories as read."""
    archive = path.parent / "served.zip"
    write_feed(archive, advisories)
    read = read_archive(archive)
    path.write_bytes(feeds.encode_copy(read))
    archive.unlink()
    return read


def test_the_pages_read_the_kept_copies_and_a_missing_copy_adds_nothing(tmp_path):
    config = parse_config(config_text(f"[{FEED}]"), environ={})
    assert policy_of(with_kept_feeds(config, tmp_path).filters).in_force == ()
    copy = feeds.kept_copy(tmp_path, FEED)
    copy.parent.mkdir(parents=True)
    keep_copy(copy, [zlib_advisory()])
    kept = with_kept_feeds(config, tmp_path)
    assert [a.id for a in policy_of(kept.filters).in_force] == ["TEST-ZLIB-1"]
    assert kept.channels[0].filters is config.channels[0].filters  # no feed: the same level
    assert with_feeds(config, {}) == config


def test_httpx_request_lines_lose_query_values(caplog):
    import sitegen.net.upstream  # noqa: F401 (installs the filter on httpx's logger)

    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info(
            'HTTP Request: GET %s "HTTP/1.1 200 OK"', "https://osv.example.org/all.zip?key=tk-q"
        )
    assert "tk-q" not in caplog.text and "all.zip?key=***" in caplog.text


@pytest.fixture
def decoded(monkeypatch) -> list[bytes]:
    """The copies feeds.read_copy decodes, in order."""
    decodes: list[bytes] = []
    decoder = feeds._COPY

    class Counting:
        def decode(self, data: bytes) -> tuple:
            decodes.append(data)
            return decoder.decode(data)

    monkeypatch.setattr(feeds, "_COPY", Counting())
    return decodes


def test_a_copy_is_decoded_once_as_it_is_on_disk_and_let_go_once_replaced(tmp_path, decoded):
    kept = tmp_path / "feed-copy.msgpack"
    keep_copy(kept, [zlib_advisory()])
    first = feeds.read_copy(kept)
    assert first is not None and feeds.read_copy(kept) is first and len(decoded) == 1
    # A new copy written beside it, then renamed into place (as a run keeps one), and
    # remembered as written: not decoded.
    scratch = tmp_path / "scratch.msgpack"
    second = keep_copy(scratch, [zlib_advisory(fixed="1.3.2")])
    scratch.rename(kept)
    feeds.remember(kept, second)
    assert feeds.read_copy(kept) is second and len(decoded) == 1
    # The first copy's advisories are let go once a later copy is read: the name holds another.
    gone = weakref.ref(first[0])
    del first
    keep_copy(scratch, [zlib_advisory(fixed="1.3.3")])
    feeds.read_copy(scratch)
    gc.collect()
    assert gone() is None


def test_a_copy_another_sitegen_kept_stands_in_until_the_feed_is_fetched_again(
    tmp_path, monkeypatch, decoded
):
    """The copy's name holds a digest of the code that read it: this sitegen's is the one its
    runs and renders read, one another sitegen kept stands in only while there is none, and
    a damaged copy is no copy."""
    ours = feeds.kept_copy(tmp_path, FEED)
    ours.parent.mkdir(parents=True)
    with monkeypatch.context() as scoped:
        scoped.setattr(feeds, "_reader_digest", lambda: b"another sitegen")
        theirs = feeds.kept_copy(tmp_path, FEED)
    assert theirs != ours and theirs.parent == ours.parent
    assert feeds.kept_advisories(tmp_path, FEED) is None
    other = keep_copy(theirs, [zlib_advisory(fixed="9.9")])
    assert feeds.kept_advisories(tmp_path, FEED) == other
    assert feeds.read_copy(ours) is None
    current = keep_copy(ours, [zlib_advisory()])
    assert feeds.kept_advisories(tmp_path, FEED) == current != other
    # Damaged (cut short by a power cut): not read; the other copy stands in.
    ours.write_bytes(ours.read_bytes()[:10])
    assert feeds.read_copy(ours) is None
    assert feeds.kept_advisories(tmp_path, FEED) == other
    theirs.write_bytes(b"\x93 not msgpack of advisories")
    assert feeds.kept_advisories(tmp_path, FEED) is None


def test_a_severity_a_feed_scores_nothing_for_leaves_its_advisory_unscored_not_the_feed_refused(
    tmp_path,
):
    """In an operator's file an unreadable vector is an error to fix; in a feed nobody here can
    fix it: its advisory counts as unscored, which blocks at any min_score (the vector that
    cannot be read may be the highest), and the rest of the feed is used."""
    odd = zlib_advisory()
    odd["severity"] = [
        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"},  # 5.3
        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/XX:Q"},
    ]
    other = {**zlib_advisory(), "id": "TEST-ZLIB-2"}
    archive = tmp_path / "feed.zip"
    write_feed(archive, [odd, other])
    first, second = read_archive(archive)
    assert first.score is None and first.vectors == (odd["severity"][0]["score"],)
    assert len(first.unscored) == 1 and first.unscored[0].startswith("severity[1].score:")
    assert "invalid CVSS_V3 vector" in first.unscored[0]
    assert second.score == 9.8 and second.unscored == ()
    config = parse_config(
        f"output: {tmp_path / 'site'}\nfilters: {{advisories: {{feeds: [https://osv.test/all.zip],"
        " min_score: 9}}\nchannels: {c: {url: https://up.test/c, subdirs: [noarch]}}\n"
    )
    policy = policy_of(with_feeds(config, {"https://osv.test/all.zip": (first,)}).filters)
    assert policy is not None and policy.blocks(first, first.affected[0])

    # The same advisory as an operator's own file is an error naming where.
    (tmp_path / "own.json").write_text(json.dumps(odd))
    with pytest.raises(ValueError, match=r"severity\[1\]\.score: invalid CVSS_V3 vector"):
        osv.read_file(tmp_path / "own.json")

    # An affected entry's own severity: read as its score; unreadable in a feed, that entry is
    # unscored (not scored by the advisory's 5.3), and blocks.
    low = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"
    entry = {
        **zlib_advisory(),
        "id": "TEST-ZLIB-3",
        "severity": [{"type": "CVSS_V3", "score": low}],
    }
    entry["affected"] = [
        {**entry["affected"][0], "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}]},
        {**entry["affected"][0], "severity": [{"type": "CVSS_V3", "score": low}]},
    ]
    write_feed(archive, [entry])
    (third,) = read_archive(archive)
    bad, good = third.affected
    assert third.score == 5.3 and len(third.unscored) == 1
    assert third.unscored[0].startswith("affected[0].severity[0].score:")
    assert bad.unscored and third.score_for(bad) is None and policy.blocks(third, bad)
    assert not good.unscored and third.score_for(good) == 5.3 and not policy.blocks(third, good)
    (tmp_path / "own.json").write_text(json.dumps({**entry, "affected": entry["affected"][1:]}))
    assert osv.read_file(tmp_path / "own.json")[0].affected[0].score == 5.3


def test_a_served_archive_is_read_with_its_urls_secrets_hidden(tmp_path, monkeypatch):
    """What is shown of an advisory holds the feed's secrets as ``***``; what it names is not
    changed: an entry naming a credential refuses the archive, a user name is ordinary text."""
    monkeypatch.setenv("FEED_TOKEN", "tk-feed-secret")
    monkeypatch.setenv("FEED_USER", "reader")
    url = "https://${FEED_USER}:x@osv.example.org/t/${FEED_TOKEN}/all.zip"
    echoing = {
        **zlib_advisory(),
        "id": "GHSA-tk-feed-secret",
        "summary": "${jndi:ldap://reader} through /t/tk%2Dfeed%2Dsecret/",
    }
    echoing["affected"][0]["package"] = {"purl": "pkg:pypi/pdfreader"}
    archive = tmp_path / "all.zip"
    write_feed(archive, [echoing])
    (advisory,) = feeds.read_served(url, archive)
    assert advisory.id == "GHSA-***" and advisory.summary == "${jndi:ldap://***} through /t/***/"
    assert advisory.names == {"pypi/pdfreader"}
    naming = {**zlib_advisory(), "affected": [{**echoing["affected"][0], "versions": ["1.0"]}]}
    naming["affected"][0]["package"] = {"purl": "pkg:pypi/tk-feed-secret"}
    write_feed(archive, [naming])
    with pytest.raises(ArchiveError, match="an affected entry holds a credential"):
        feeds.read_served(url, archive)
    assert feeds.read_served(FEED, archive)[0].names == {"pypi/tk-feed-secret"}
