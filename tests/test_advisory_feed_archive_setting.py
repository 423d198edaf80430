"""The feeds setting (URLs, their secrets, status) and the archives' copies kept and read."""

from __future__ import annotations

import gc
import json
import logging
import os
import weakref
from pathlib import Path

import pytest

from sitegen.config import ConfigError, child_environment, make_scrub, parse_config
from sitegen.filters import feeds, osv
from sitegen.filters.advisories import policy_of, show
from sitegen.filters.feeds import site_feeds, with_feeds, with_kept_feeds
from sitegen.filters.osv_archive import ArchiveError, read_archive
from sitegen.layout import advisory_feed_dir, feed_copy
from testkit.advisories import write_feed, zlib_advisory

# Every folder of the state reached through no link (the store judges it in a run).
REACHABLE = bool

pytestmark = pytest.mark.unit

FEED = "https://osv.example.org/conda/all.zip"


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
    assert policy_of(with_kept_feeds(config, tmp_path, REACHABLE).filters).in_force == ()
    copy = feeds.kept_copy(tmp_path, FEED)
    copy.parent.mkdir(parents=True)
    keep_copy(copy, [zlib_advisory()])
    kept = with_kept_feeds(config, tmp_path, REACHABLE)
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


def test_a_copy_is_decoded_once_as_it_is_on_disk_and_let_go_once_replaced(tmp_path):
    """A decode makes new advisories: the very ones handed out again were not decoded again."""
    kept = tmp_path / "feed-copy.msgpack"
    keep_copy(kept, [zlib_advisory()])
    first = feeds.read_copy(kept)
    assert first is not None and feeds.read_copy(kept) is first
    # A new copy written beside it, then renamed into place (as a run keeps one), and
    # remembered as written: not decoded.
    scratch = tmp_path / "scratch.msgpack"
    second = keep_copy(scratch, [zlib_advisory(fixed="1.3.2")])
    scratch.rename(kept)
    feeds.remember(kept, second)
    assert feeds.read_copy(kept) is second
    # The first copy's advisories are let go once a later copy is read: the name holds another.
    gone = weakref.ref(first[0])
    del first
    keep_copy(scratch, [zlib_advisory(fixed="1.3.3")])
    feeds.read_copy(scratch)
    gc.collect()
    assert gone() is None


def test_a_copy_another_sitegen_kept_stands_in_until_the_feed_is_fetched_again(tmp_path):
    """The copy's name holds a digest of the code that read it: this sitegen's is the one its
    runs and renders read, one another sitegen kept stands in only while there is none, and
    a damaged copy is no copy."""
    ours = feeds.kept_copy(tmp_path, FEED)
    ours.parent.mkdir(parents=True)
    # Another sitegen's reader has another digest: its copy has another key in the same folder.
    theirs = feed_copy(advisory_feed_dir(tmp_path, FEED), "0" * 24)
    assert theirs != ours and theirs.parent == ours.parent
    assert feeds.kept_advisories(tmp_path, FEED, REACHABLE) is None
    other = keep_copy(theirs, [zlib_advisory(fixed="9.9")])
    assert feeds.kept_advisories(tmp_path, FEED, REACHABLE) == other
    assert feeds.read_copy(ours) is None
    current = keep_copy(ours, [zlib_advisory()])
    assert feeds.kept_advisories(tmp_path, FEED, REACHABLE) == current != other
    # Damaged (cut short by a power cut): not read; the other copy stands in.
    ours.write_bytes(ours.read_bytes()[:10])
    assert feeds.read_copy(ours) is None
    assert feeds.kept_advisories(tmp_path, FEED, REACHABLE) == other
    theirs.write_bytes(b"\x93 not msgpack of advisories")
    assert feeds.kept_advisories(tmp_path, FEED, REACHABLE) is None


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


# Severity entries a feed may carry that name no vector to score: no type, no score, neither.
INCOMPLETE_SEVERITY = [
    {"score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
    {"type": "CVSS_V3"},
    {},
]


def test_a_feed_severity_entry_without_type_or_score_is_unscored_not_the_feed_refused(tmp_path):
    """What such an entry scores is as unknown as for a vector that does not parse: its
    advisory (or affected entry) is unscored and blocks at any min_score, counted with the
    others, and the rest of the feed is read."""
    odd = zlib_advisory()
    odd["severity"] = [*odd["severity"], *INCOMPLETE_SEVERITY]
    odd["affected"][0]["severity"] = [{"type": "CVSS_V3"}]
    other = {**zlib_advisory(), "id": "TEST-ZLIB-2"}
    archive = tmp_path / "feed.zip"
    write_feed(archive, [odd, other])
    first, second = read_archive(archive)
    assert first.score is None and first.vectors == (odd["severity"][0]["score"],)
    assert first.unscored == (
        "severity[1]: missing required key 'type'",
        "severity[2]: missing required key 'score'",
        "severity[3]: missing required key 'type'",
        "affected[0].severity[0]: missing required key 'score'",
    )
    (entry,) = first.affected
    assert entry.unscored and first.score_for(entry) is None
    assert second.score == 9.8 and second.unscored == ()


@pytest.mark.parametrize("entry", INCOMPLETE_SEVERITY)
def test_an_operator_file_severity_entry_without_type_or_score_is_an_error(tmp_path, entry):
    """An operator's own file is theirs to fix: the entry refuses it, naming where."""
    odd = zlib_advisory()
    odd["severity"] = [*odd["severity"], entry]
    (tmp_path / "own.json").write_text(json.dumps(odd))
    with pytest.raises(ValueError, match=r"severity\[1\]: missing required key"):
        osv.read_file(tmp_path / "own.json")


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
