"""Channel notices (CEP-6): configured per channel in channels.yaml, published as the channel's
notices.json in the format conda reads, shown on the channel's page while active."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.conda.notices import LEVELS, NEVER, ChannelNotice, encode_notices
from sitegen.config import ConfigError, parse_config
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.web.channel import channel_model, summarize_channel
from sitegen.web.render import render_site
from testkit.site import channel_config
from testkit.upstream import ExampleUpstream

CHANNEL = "cloud/example"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def read_like_conda(data: bytes) -> list[dict[str, Any]]:
    """What conda's reader (conda.notices.types.ChannelNoticeResponse) makes of the bytes, with
    everything it would silently replace by a default made an error instead: an unknown level
    (read as info), a time ``datetime.fromisoformat`` cannot read or a time missing (read as
    none). Both times are required: ``conda notices --json`` (ChannelNotice.to_dict) calls
    ``isoformat()`` on each, and fails on a notice without one; conda's cache of a channel's
    notices counts one without ``expired_at`` as expired. conda up to 26.7.0 reads the expiry
    from ``expired_at`` only, later ones from ``expires_at`` first, then ``expired_at``."""
    document = json.loads(data)
    notices = document.get("notices", ())
    assert isinstance(notices, list)
    out = []
    for notice in notices:
        assert isinstance(notice["id"], str) and notice["id"]
        # conda keeps the ids a user has seen one a line (str.splitlines): one of several
        # lines would never be found there, and the notice shown again and again.
        assert notice["id"].splitlines() == [notice["id"]]
        assert isinstance(notice["message"], str)
        assert notice["level"] in ("info", "warning", "critical")
        assert "expires_at" not in notice  # would stand in for expired_at in later conda only
        parsed = dict(notice)
        for key in ("created_at", "expired_at"):
            parsed[key] = datetime.fromisoformat(notice[key])
            assert parsed[key].tzinfo is not None
        interval = notice.get("interval")
        assert interval is None or (type(interval) is int and interval > 0)
        out.append(parsed)
    return out


def config_text(notices: str) -> str:
    return f"""
output: /tmp/site
channels:
  {CHANNEL}:
    url: https://conda.example.org/example
    subdirs: [linux-64]
    notices:
{notices}"""


# --------------------------------------------------------------------------- unit


@pytest.mark.unit
def test_notices_parse_from_channels_yaml() -> None:
    config = parse_config(
        config_text(
            """      - message: Moving to a new host on 2027-01-31.
        level: warning
        created: 2026-12-01
        expires: 2027-02-01T12:00:00+01:00
        interval: 86400
        id: move-2027
      - message: Plain information.
"""
        )
    )
    (channel,) = config.channels
    move, info = channel.notices
    assert move == ChannelNotice(
        message="Moving to a new host on 2027-01-31.",
        level="warning",
        created=datetime(2026, 12, 1, tzinfo=UTC),
        expires=datetime(2027, 2, 1, 11, 0, tzinfo=UTC),
        interval=86400,
        id="move-2027",
    )
    assert (info.level, info.created, info.expires, info.interval) == ("info", None, None, None)


@pytest.mark.unit
def test_a_notice_expiring_on_a_date_is_shown_through_that_day() -> None:
    """An expiry given as a date ends with that day (UTC), as a token's or an approval's
    does; one given as a time ends then; ``created`` as a date is that day's start."""
    config = parse_config(
        config_text(
            """      - message: Through the last day of January.
        created: 2027-01-31
        expires: 2027-01-31
      - message: Until noon.
        expires: 2027-01-31T12:00Z
"""
        )
    )
    whole_day, until_noon = config.channels[0].notices
    assert whole_day.created == datetime(2027, 1, 31, tzinfo=UTC)
    assert whole_day.expires == datetime(2027, 2, 1, tzinfo=UTC)
    assert until_noon.expires == datetime(2027, 1, 31, 12, tzinfo=UTC)
    late_that_day = datetime(2027, 1, 31, 23, 59, tzinfo=UTC)
    shown = read_like_conda(encode_notices([whole_day, until_noon], late_that_day) or b"")
    assert [n["message"] for n in shown] == ["Through the last day of January."]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("notice", "marker", "words"),
    [
        ("- message: x\n  level: urgent\n", "urgent", "expected one of info, warning, critical"),
        ("- level: info\n", "level", "a notice needs a 'message'"),
        ('- message: " \\t "\n', "message", "a message of blanks only"),
        ("- message: x\n  expires: next week\n", "next week", "expected a date"),
        ("- message: x\n  colour: red\n", "colour", "unknown key 'colour'"),
        ('- message: x\n  id: "move\\n2027"\n', "move\\n2027", "a line break"),
        ('- message: x\n  id: "move\\u20282027"\n', "move\\u20282027", "a line break"),
        (
            "- message: x\n  created: 2027-01-02\n  expires: 2027-01-01\n",
            "2027-01-01",
            "must expire after it was created",
        ),
    ],
)
def test_a_bad_notice_is_an_error_naming_its_line(notice: str, marker: str, words: str) -> None:
    text = config_text(textwrap.indent(notice, "      "))
    line = next(n for n, text_line in enumerate(text.splitlines(), 1) if marker in text_line)
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    message = str(caught.value)
    assert words in message and "notices[0]" in message
    assert f":{line}:" in message


@pytest.mark.unit
@pytest.mark.parametrize(
    ("notices", "marker", "words"),
    [
        (
            "- message: Moving on 2027-01-31.\n  id: move\n- message: Moved.\n  id: move\n",
            "Moved.",
            "id 'move' is that of notices[0] too",
        ),
        (
            "- message: Read the docs.\n  level: info\n- message: Read the docs.\n",
            "- message: Read the docs.",
            "the same message as notices[0], so the same id",
        ),
    ],
)
def test_two_notices_of_one_id_are_an_error(notices: str, marker: str, words: str) -> None:
    """conda remembers the notices a user has seen by id: of two with one id, whoever saw one
    would never be shown the other."""
    text = config_text(textwrap.indent(notices, "      "))
    line = [n for n, text_line in enumerate(text.splitlines(), 1) if marker in text_line][-1]
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    message = str(caught.value)
    assert f":{line}: channels.{CHANNEL}.notices[1]: " in message and words in message, message


@pytest.mark.unit
def test_two_channels_notices_of_one_id_with_other_messages_are_an_error() -> None:
    """conda keeps the ids of the notices a user has seen in one list, whatever the channel:
    of two channels' notices with one id, whoever saw one would never be shown the other. One
    notice posted on several channels (one message, one id) is shown once, as it should be."""
    text = f"""
output: /tmp/site
channels:
  {CHANNEL}:
    url: https://conda.example.org/example
    subdirs: [linux-64]
    notices:
      - message: Maintenance on 2027-01-31.
        id: maintenance
      - message: Moving to a new host.
        id: move
  cloud/other:
    url: https://conda.example.org/other
    subdirs: [linux-64]
    notices:
      - message: Maintenance on 2027-01-31.
        id: maintenance
      - message: Read-only from 2027-02-01.
        id: move
"""
    line = text.splitlines().index("      - message: Read-only from 2027-02-01.") + 1
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    (message,) = caught.value.errors
    assert message.startswith(f"channels.yaml:{line}: channels.cloud/other.notices[1]: "), message
    assert f"id 'move' is that of a notice of channel '{CHANNEL}' too" in message
    shared = text.replace("Read-only from 2027-02-01.", "Moving to a new host.")
    assert [len(c.notices) for c in parse_config(shared).channels] == [2, 2]


@pytest.mark.unit
def test_notices_json_is_what_conda_reads_and_leaves_out_expired_notices() -> None:
    notices = [
        ChannelNotice("Gone.", "critical", expires=NOW - timedelta(seconds=1)),
        ChannelNotice("Read me.", "warning", created=NOW - timedelta(days=1), interval=3600),
        ChannelNotice("Soon gone.", "info", expires=NOW + timedelta(days=1), id="soon"),
    ]
    read = read_like_conda(encode_notices(notices, NOW) or b"")
    assert [n["message"] for n in read] == ["Read me.", "Soon gone."]
    first, second = read
    assert first["level"] == "warning" and first["interval"] == 3600
    assert first["created_at"] == NOW - timedelta(days=1) and first["expired_at"] == NEVER
    assert second["id"] == "soon" and second["expired_at"] == NOW + timedelta(days=1)
    # Ids are stable (conda remembers which ones a user has seen) and distinct.
    again = read_like_conda(encode_notices(notices, NOW) or b"")
    assert [n["id"] for n in again] == [n["id"] for n in read]
    assert len({n["id"] for n in read}) == 2
    assert encode_notices(notices[:1], NOW) is None  # nothing active: nothing to publish
    assert set(LEVELS) == {"info", "warning", "critical"}


@pytest.mark.unit
def test_a_notice_without_its_times_is_published_with_both() -> None:
    """conda fails on a notice without ``created_at`` or ``expired_at`` (see read_like_conda):
    one without ``expires`` never expires, and one without ``created`` carries the time it was
    first published, kept by every later run that publishes it (read back from the
    notices.json published before)."""
    notices = [ChannelNotice("Plain."), ChannelNotice("Dated.", created=NOW - timedelta(days=2))]
    first = encode_notices(notices, NOW) or b""
    plain, dated = read_like_conda(first)
    assert (plain["created_at"], plain["expired_at"]) == (NOW, NEVER)
    assert (dated["created_at"], dated["expired_at"]) == (NOW - timedelta(days=2), NEVER)
    later = NOW + timedelta(days=3)
    assert encode_notices(notices, later, published=first) == first
    # Another notice in the file is published as it was first, the new one from now.
    added = [*notices, ChannelNotice("New.")]
    *_, new = read_like_conda(encode_notices(added, later, published=first) or b"")
    assert new["created_at"] == later
    # A published file that cannot be read vouches for no time.
    (plain,) = read_like_conda(encode_notices(notices[:1], later, published=b"{") or b"")
    assert plain["created_at"] == later


@pytest.mark.unit
def test_the_channel_page_model_holds_the_active_notices_only() -> None:
    config = parse_config(
        config_text(
            "      - message: Old.\n        expires: 2026-01-01\n"
            "      - message: New.\n        level: critical\n"
        )
    )
    (channel,) = config.channels
    model = channel_model(channel, summarize_channel(CHANNEL, {}), [], NOW)
    assert model["notices"] == [{"level": "critical", "message": "New.", "created": None}]


# --------------------------------------------------------------------------- a mirror run


@pytest.mark.integration
async def test_a_run_publishes_notices_json_and_the_page_shows_it(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    notices = """
notices:
  - message: "Maintenance <b>tonight</b> & tomorrow."
    level: warning
    created: 2026-12-01
  - message: An old notice.
    expires: 2020-01-01
"""
    config = channel_config(site, example_upstream.url, extra=notices)
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed" and not report.failed
    published = site / CHANNEL / "notices.json"
    (notice,) = read_like_conda(published.read_bytes())
    assert notice["message"] == "Maintenance <b>tonight</b> & tomorrow."
    assert notice["level"] == "warning"
    assert notice["created_at"] == datetime(2026, 12, 1, tzinfo=UTC)

    await trio.to_thread.run_sync(render_site, config)
    page = (site / CHANNEL / "index.html").read_text()
    assert "Maintenance &lt;b&gt;tonight&lt;/b&gt; &amp; tomorrow." in page
    assert "notice-warning" in page and "An old notice." not in page

    # The notices taken out of the configuration: the file goes, and so does the page's box.
    plain = channel_config(site, example_upstream.url)
    report = await run_mirror(plain, MirrorOptions(progress=False))
    assert report.status == "completed" and not report.failed
    assert not published.exists()
    await trio.to_thread.run_sync(render_site, plain)
    assert "Maintenance" not in (site / CHANNEL / "index.html").read_text()
