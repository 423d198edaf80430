"""One access-log line: its fields, what its path points at, which client asked.

Two formats, one compiled regex each, over bytes (a log may hold anything):

* ``combined``, the default of nginx and Apache::

      1.2.3.4 - user [05/Dec/2026:18:34:46 +0000] "GET /p HTTP/1.1" 200 512 "ref" "agent"

* the format ``sitegen webconf`` configures (:data:`NGINX_FORMAT`, :data:`APACHE_FORMAT`):
  ``combined`` without the user name or the referer (always ``"-"``), with ``/t/<token>/`` path
  segments masked by the server, plus the ``X-Sitegen-Fetcher`` answer header of the
  passive-mirror fetcher (``fetched``: downloaded on this request; ``stored``: already on disk;
  ``-``: the web server served the file itself).

Quoted fields may hold ``\\"`` (Apache escapes quotes that way; nginx writes ``\\x22``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import Enum
from urllib.parse import unquote

from sitegen.conda.schema import PACKAGE_SUFFIXES
from sitegen.layout import CHANNELDATA, INSTALLER_PAGE, SHARDS_DIR, present_metadata_files
from sitegen.sync.installer_listing import NAME_RE as INSTALLER_NAME_RE

# The referer is never logged (nothing here reads it): a page browsed under /t/<token>/ is the
# referer of every file it loads, token and all, in whatever spelling the browser kept. Its
# field stays, as "-", so that lines keep the combined layout.
# nginx: the log format and the map that masks tokens (``$sitegen_request``); webconf emits them.
NGINX_FORMAT = (
    '$remote_addr - - [$time_local] "$sitegen_request" $status $body_bytes_sent'
    ' "-" "$http_user_agent" "$sitegen_fetcher"'
)
# Apache: SITEGEN_URI is the target (path and query) with any /t/<token>/ masked, set by
# SetEnvIfExpr rules webconf emits; %b writes "-" for no body, as combined does. Quotes escaped
# for a LogFormat string.
APACHE_FORMAT = (
    '%a - - %t \\"%m %{SITEGEN_URI}e %H\\" %>s %b \\"-\\" \\"%{User-Agent}i\\"'
    ' \\"%{X-Sitegen-Fetcher}o\\"'
)

_QUOTED = rb'"([^"\\]*(?:\\.[^"\\]*)*)"'
_QUOTED_SKIP = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
# Groups: address, time, request, status, body bytes, user agent.
_COMBINED = (
    rb"(\S+) \S+ \S+ \[([^\]]{26})\] "
    + _QUOTED
    + rb" (\d{3}) (\d{1,15}|-) "
    + _QUOTED_SKIP
    + rb" "
    + _QUOTED
)
# Other fields may follow (custom formats), but not a quoted one: that is the sitegen format.
COMBINED_RE = re.compile(_COMBINED + rb'(?! ")')
# The same groups, then the fetcher's outcome (and, where a channel is private, which token's
# public id was used: `sitegen token list --access-log` reads that).
SITEGEN_RE = re.compile(_COMBINED + rb" " + _QUOTED + rb"(?: token=\S+)?\r?$")

MAX_LINE = 16 * 1024  # longer lines are skipped unread (a request line is far shorter)

# A .bz2 is metadata whether or not this site publishes it now (the shard index is one too).
REFRESH_FILES = frozenset(present_metadata_files())
# Characters a package file name or shard name may hold; anything else (markup, quotes,
# spaces) marks a path as hostile.
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+!-]*$")
_SUBDIR_RE = re.compile(r"^(?:noarch|[a-z0-9]+-[a-z0-9_]+)$")
# Markup, quotes, spaces and control characters have no business in a path of the site.
_HOSTILE_RE = re.compile(r"[<>\"'`{}|\\^\s\x00-\x1f\x7f]")

_MONTHS = {
    b"Jan": 1,
    b"Feb": 2,
    b"Mar": 3,
    b"Apr": 4,
    b"May": 5,
    b"Jun": 6,
    b"Jul": 7,
    b"Aug": 8,
    b"Sep": 9,
    b"Oct": 10,
    b"Nov": 11,
    b"Dec": 12,
}
_TIME_RE = re.compile(rb"^(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")
# The minutes and seconds of a time stamp, from its byte 14 on (``:MM:SS``): the keys of the
# day cache (see day_key) leave them out, so a line's are checked apart, on every line.
CLOCK_RE = re.compile(rb":[0-5]\d:[0-5]\d ")


def utc_day(stamp: bytes) -> str | None:
    """``05/Dec/2026:23:30:00 -0100`` -> ``2026-12-06`` (the UTC day); None when invalid."""
    match = _TIME_RE.match(stamp)
    if match is None or match.group(2) not in _MONTHS:
        return None
    day, month, year, hour, minute, second, sign, off_h, off_m = match.groups()
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    try:
        local = datetime(
            int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
        moment = local - offset if sign == b"+" else local + offset
    except (ValueError, OverflowError):
        return None
    return moment.date().isoformat()


def day_key(stamp: bytes) -> bytes:
    """The part of a time stamp its UTC day depends on, a cache key: day, hour and offset, and
    the minutes too when the offset has minutes of its own (05:45 +0530 is 00:15 UTC, 05:15
    the day before); with a whole-hour offset, nearly every log's, the minutes cannot move
    the day, and leaving them out keeps the key to 24 a day. The seconds, and mostly the
    minutes, being left out, a stamp is looked up only once :data:`CLOCK_RE` passed them."""
    if stamp.endswith(b"00"):
        return stamp[:14] + stamp[20:]
    return stamp[:17] + stamp[20:]


class Kind(Enum):
    PACKAGE = "package"  # a .conda or .tar.bz2 file of a channel subdir
    REFRESH = "refresh"  # repodata, current_repodata, channeldata or the shard index
    SHARD = "shard"  # one repodata shard
    INSTALLER = "installer"  # a file of an installer folder (installers: in channels.yaml)
    OTHER = "other"  # pages, assets, paths outside any channel
    HOSTILE = "hostile"  # dot-segments, markup or undecodable bytes: counted as skipped


# kind, channel (or installer folder), subdir ("" for an installer), file name
Target = tuple[Kind, str, str, str]


def _longest_tail(head: tuple[str, ...], paths: frozenset[str]) -> str | None:
    """The longest run of segments ending ``head`` that is one of ``paths``."""
    for start in range(len(head)):
        candidate = "/".join(head[start:])
        if candidate in paths:
            return candidate
    return None


# Heads (the segments before a subdir) cached before the cache is cleared: a log of endless
# distinct paths does not grow the run's memory.
HEAD_CACHE_LIMIT = 100_000


class PathClassifier:
    """Tells what a request path points at, given the site's channel paths and installer
    folders.

    The site may be served under any URL prefix (``/conda/cloud/x/...``), so a channel is
    recognised as the longest run of segments before the subdir that is a channel path, and an
    installer folder as the longest run before the file name that is a folder's path.
    ``/t/<token>/`` segments are dropped first and never kept.
    """

    def __init__(self, channels: Iterable[str], installers: Iterable[str] = ()) -> None:
        self.channels = frozenset(channels)
        self.installers = frozenset(installers)
        self._heads: dict[tuple[str, ...], str | None] = {}

    def channel_of(self, head: tuple[str, ...]) -> str | None:
        if head in self._heads:
            return self._heads[head]
        if len(self._heads) >= HEAD_CACHE_LIMIT:
            self._heads.clear()
        found = self._heads[head] = _longest_tail(head, self.channels)
        return found

    def classify(self, target: str) -> Target:
        path = target.split("?", 1)[0].split("#", 1)[0]
        if not path.startswith("/"):
            return (Kind.HOSTILE, "", "", "")
        try:
            path = unquote(path, errors="strict")
        except UnicodeDecodeError:
            return (Kind.HOSTILE, "", "", "")
        segments = path.split("/")[1:]
        if _HOSTILE_RE.search(path) or any(s in (".", "..") for s in segments):
            return (Kind.HOSTILE, "", "", "")
        segments = strip_tokens(segments)
        if len(segments) < 2:
            return (Kind.OTHER, "", "", "")
        fn = segments[-1]
        if not _SAFE_NAME_RE.match(fn):
            hostile = fn.endswith(PACKAGE_SUFFIXES) or fn in REFRESH_FILES
            return (Kind.HOSTILE if hostile else Kind.OTHER, "", "", "")
        found = self._in_channel(segments, fn)
        if found[0] is Kind.OTHER and self.installers and fn != INSTALLER_PAGE:
            # A folder's files are looked for where no channel's are: no folder is, holds or
            # lies in a channel (the configuration sees to that). Its page is no download.
            folder = _longest_tail(tuple(segments[:-1]), self.installers)
            if folder is not None and INSTALLER_NAME_RE.match(fn):
                return (Kind.INSTALLER, folder, "", fn)
        return found

    def _in_channel(self, segments: list[str], fn: str) -> Target:
        if fn == CHANNELDATA:
            channel = self.channel_of(tuple(segments[:-1]))
            if channel is not None:
                return (Kind.REFRESH, channel, "", fn)
        if len(segments) >= 4 and segments[-2] == SHARDS_DIR:
            subdir, head = segments[-3], tuple(segments[:-3])
            kind = Kind.SHARD
        else:
            subdir, head = segments[-2], tuple(segments[:-2])
            if fn in REFRESH_FILES:
                kind = Kind.REFRESH
            elif fn.endswith(PACKAGE_SUFFIXES):
                kind = Kind.PACKAGE
            else:
                return (Kind.OTHER, "", "", "")
        if not _SUBDIR_RE.match(subdir):
            return (Kind.OTHER, "", "", "")
        channel = self.channel_of(head)
        if channel is None:
            return (Kind.OTHER, "", "", "")
        return (kind, channel, subdir, fn)


def strip_tokens(segments: list[str]) -> list[str]:
    """Drop every ``t/<token>`` pair: tokens are secrets and never reach the counts."""
    if "t" not in segments:
        return segments
    out: list[str] = []
    skip = 0
    for index, segment in enumerate(segments):
        if skip:
            skip -= 1
            continue
        if segment == "t" and index + 2 < len(segments):
            skip = 1
            continue
        out.append(segment)
    return out


# Joins the parts of a count's key (channel|subdir|file, folder|file, tool|version): no
# channel path, subdir, file name, tool or version holds it (all are validated).
SEP = "|"


def join(*parts: str) -> str:
    return SEP.join(parts)


def split(key: str) -> list[str]:
    return key.split(SEP)


def split_package(fn: str) -> tuple[str, str, str]:
    """``numpy-2.1.0-py312h1_0.conda`` -> (name, version, build); ("", "", "") if not so."""
    for suffix in PACKAGE_SUFFIXES:
        if fn.endswith(suffix):
            parts = fn[: -len(suffix)].rsplit("-", 2)
            if len(parts) == 3 and all(parts):
                return parts[0], parts[1], parts[2]
    return ("", "", "")


TOOLS = ("pixi", "micromamba", "mamba", "rattler", "conda")  # by precedence: see tool_of
OTHER_TOOL = "other"
# "name/version" tokens; a tool counts only as a token of its own (not conda-libmamba-solver/).
_TOOL_RE = re.compile(
    r"(?:^|[\s(;])(py-rattler|pixi|micromamba|mamba|rattler|conda)/([0-9][\w.+-]{0,31})"
)


def tool_of(agent: str) -> tuple[str, str]:
    """The conda client behind a user agent: (tool, version), or ("other", "").

    An agent names its own tool and often the libraries it builds on (mamba 1.x says
    ``mamba/1.5.8 conda/23.11``, pixi says ``pixi/0.39 rattler/...``): the most specific
    tool named wins.
    """
    found = {}
    for name, version in _TOOL_RE.findall(agent):
        found.setdefault("rattler" if name == "py-rattler" else name, version)
    for tool in TOOLS:
        if tool in found:
            return tool, found[tool]
    return OTHER_TOOL, ""
