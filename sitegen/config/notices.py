"""``notices:`` of a channel in channels.yaml: what conda shows users of the channel.

channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64, noarch]
    notices:
      - message: This mirror moves to https://conda.example.org on 2027-01-31.
        level: warning          # info (default), warning or critical
        created: 2026-12-01     # optional: shown beside the message
        expires: 2027-02-01     # optional: shown through that day (UTC), gone after it
        interval: 86400         # optional: seconds before conda shows it again
        id: move-2027           # optional: default derived from the message
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sitegen.conda.notices import LEVELS, ChannelNotice
from sitegen.config.model import ChannelConfig
from sitegen.config.yaml_nodes import ConfigError, ParseState, YamlNode, child_path, shown_value

NOTICE_KEYS = ("message", "level", "created", "expires", "interval", "id")


def notices_of(keys: dict[str, YamlNode]) -> tuple[ChannelNotice, ...]:
    """The notices of a channel's keys (none when it has no ``notices:``). No two may have one
    id: conda remembers by id which notices a user has seen, so whoever saw one of them would
    never be shown the other."""
    if "notices" not in keys:
        return ()
    notices: list[ChannelNotice] = []
    ids: dict[str, int] = {}
    for index, item in enumerate(keys["notices"].items()):
        notice = _notice(item)
        first = ids.setdefault(notice.notice_id, index)
        if first != index:
            raise item.error(
                f"id {shown_value(notice.id)} is that of notices[{first}] too (conda shows one notice"
                " of an id)"
                if notice.id
                else f"the same message as notices[{first}], so the same id (conda shows one"
                " notice of an id); give one of them an 'id'"
            )
        notices.append(notice)
    return tuple(notices)


def _notice(node: YamlNode) -> ChannelNotice:
    keys = node.mapping(NOTICE_KEYS)
    if "message" not in keys:
        raise node.error("a notice needs a 'message'")
    message = keys["message"].string()
    if not message.strip():
        # conda would show it as an empty notice, and the page an empty box.
        raise keys["message"].error("a message of blanks only: a notice needs some text")
    level = keys["level"].string() if "level" in keys else "info"
    if level not in LEVELS:
        raise keys["level"].error(f"expected one of {', '.join(LEVELS)}, got {shown_value(level)}")
    created = _moment(keys["created"]) if "created" in keys else None
    expires = _moment(keys["expires"], through_the_day=True) if "expires" in keys else None
    if created is not None and expires is not None and expires <= created:
        raise keys["expires"].error("a notice must expire after it was created")
    notice_id = keys["id"].string() if "id" in keys else ""
    if notice_id and notice_id.splitlines() != [notice_id]:
        # conda keeps the ids a user has seen one a line (read back with str.splitlines): an
        # id of several lines is never found there, and the notice is shown again and again.
        raise keys["id"].error("holds a line break: conda would show the notice again and again")
    return ChannelNotice(
        message=message,
        level=level,
        created=created,
        expires=expires,
        interval=keys["interval"].integer(minimum=1) if "interval" in keys else None,
        id=notice_id,
        line=node.line,
    )


def check_notice_ids(channels: Iterable[ChannelConfig], state: ParseState) -> None:
    """No two channels' notices may share an id unless they say the same. conda keeps the ids
    of the notices a user has seen in one list for all channels, so whoever saw one of them
    would never be shown the other; one notice posted on several channels is shown once."""
    first: dict[str, tuple[str, ChannelNotice]] = {}
    for channel in channels:
        for index, notice in enumerate(channel.notices):
            path, other = first.setdefault(notice.notice_id, (channel.path, notice))
            if path == channel.path or other.message == notice.message:
                continue  # one channel's own are told apart by notices_of
            where = child_path(child_path(child_path("channels", channel.path), "notices"), index)
            state.add(
                ConfigError(
                    f"{state.filename}:{notice.line}: {where}: id {shown_value(notice.notice_id)}"
                    f" is that of a notice of channel {path!r} too (line {other.line}), with"
                    " another message (conda remembers the ids of the notices a user has seen,"
                    " whatever the channel); give one of them another 'id'",
                    line=notice.line,
                )
            )


def _moment(node: YamlNode, through_the_day: bool = False) -> datetime:
    """A date (midnight UTC) or a date and time (UTC unless it says otherwise). An expiry
    given as a date (``through_the_day``) is the end of that day, as for tokens and approvals:
    a notice to expire on 2027-01-31 is still shown that day."""
    text = node.string()
    example = "2027-01-31 or 2027-01-31T12:00Z"
    try:
        moment = datetime.fromisoformat(text)
        # In UTC here, as it is compared and published: a time at the very ends of the
        # calendar may have no UTC equivalent.
        moment = (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(
            UTC
        )
    except (ValueError, OverflowError):
        raise node.error(f"expected a date such as {example}, got {shown_value(text)}") from None
    if not (through_the_day and _is_date(text)):
        return moment
    try:
        return moment + timedelta(days=1)
    except OverflowError:
        raise node.error(f"a date before 9999-12-31, got {shown_value(text)}") from None


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
