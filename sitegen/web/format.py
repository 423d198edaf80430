"""Formatting shared by the page models and the templates: times, sizes, links, free text.

Pure string operations (no disk, no network). :data:`FILTERS` are the ones the templates
call by name (``{{ size|bytes }}``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from sitegen.conda.version import InvalidVersionError, parse_version
from sitegen.sync.progress import human_bytes

_PLAIN_URL = re.compile(r"^[A-Za-z0-9._/-]*$")
# A name may hold "+" (g++), which no version operator starts with; "!" and "=" may start one.
_DEP_NAME_RE = re.compile(r"^\s*(?:[^\s:]+::)?([A-Za-z0-9_+][A-Za-z0-9_.+-]*)")


# --------------------------------------------------------------------------- links


@lru_cache(maxsize=1 << 14)
def _directory_step(from_dir: str, to_dir: str) -> str:
    """The relative URL prefix leading from directory ``from_dir`` to ``to_dir`` ('' = same)."""
    source = from_dir.split("/") if from_dir else []
    target = to_dir.split("/") if to_dir else []
    common = 0
    for a, b in zip(source, target, strict=False):
        if a != b:
            break
        common += 1
    rest = target[common:]
    return "../" * (len(source) - common) + "".join(f"{segment}/" for segment in rest)


def relative_href(target: str, page: str) -> str:
    """A URL from the page ``page`` to the site path ``target`` (both relative to the root).

    A pure string operation (no file system), called for every link of every page: cached,
    per target and the page's directory (what the link depends on, but for a link to the page
    itself or to an anchor), as every page of a directory links to the same files (the
    stylesheet, the history) and a package page to the same dependencies build after build.
    """
    if target and "#" not in target:
        return _relative_from(target, page.rpartition("/")[0])
    return _relative_href(target, page)


@lru_cache(maxsize=1 << 16)
def _relative_from(target: str, page_dir: str) -> str:
    """The URL from a page of the directory ``page_dir`` to ``target`` (a file, no anchor)."""
    target_dir, _, name = target.rpartition("/")
    return url_quote(_directory_step(page_dir, target_dir) + name or "./")


@lru_cache(maxsize=1 << 12)
def _relative_href(target: str, page: str) -> str:
    anchor = ""
    if "#" in target:
        target, anchor = target.split("#", 1)
        anchor = "#" + quote(anchor)
    page_dir, _, page_name = page.rpartition("/")
    if not target:
        return quote(page_name) + anchor
    return _relative_from(target, page_dir) + anchor


def directory_href(directory: str, page: str) -> str:
    """The relative URL prefix from the page ``page`` to the site directory ``directory``:
    :func:`url_quote` of it followed by a file name of that directory is the link
    :func:`relative_href` makes to that file (a file name holds no ``#``). For pages that
    link to many files of a few directories (a package page: a link per package file)."""
    return _directory_step(page.rpartition("/")[0], directory)


def url_quote(path: str) -> str:
    """Percent-encode a relative URL path (file names may hold '+', '!' or '=')."""
    return path if _PLAIN_URL.match(path) else quote(path)


def root_prefix(page: str) -> str:
    """The relative path from ``page`` up to the site root: '' at the root, '../..' deeper."""
    depth = page.count("/")
    return "/".join([".."] * depth) if depth else "."


def safe_link(value: Any) -> str | None:
    """An upstream-provided URL, only when it is a plain http(s) URL; None otherwise."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if len(url) > 2000 or any(ord(ch) < 33 or ch in "<>\"'`\\" for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


# --------------------------------------------------------------------------- times and sizes


def format_time(seconds: float | None) -> str:
    """'2024-06-01 12:00 UTC', or '' when unknown."""
    if not seconds:
        return ""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def iso_time(seconds: float | None) -> str:
    if not seconds:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def format_date_ms(ms: int | None) -> str:
    if not ms:
        return ""
    if type(ms) is int and ms > 0:
        return _format_day(ms // 86_400_000)  # the same day as gmtime(ms / 1000)
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


@lru_cache(maxsize=1 << 16)
def _format_day(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_bytes(n: int | float | None) -> str:
    return human_bytes(n or 0)


# --------------------------------------------------------------------------- upstream text

# The bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): in upstream text
# they would reorder what a page shows around them (a dependency spec that reads as another,
# "Trojan Source"). They are shown as U+FFFD, which also tells that the text held one.
# Direction marks (U+200E, U+200F) open no run that could reach beyond the text: kept.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)], "\ufffd")


def shown_text(value: Any) -> Any:
    """``value`` with its bidi controls made visible, when it is plain text; anything else as
    it is. Every value a template prints passes here (the environment's ``finalize``), as does
    the text of the search index, which the pages' script shows.

    Markup is left alone: it is HTML a template made (a block assignment, a page's rendered
    rows), whose values passed here when it was printed; translating it again would cost a
    pass over a whole page's text per print (a large package page is one such value)."""
    if type(value) is str and not value.isascii():
        return value.translate(_BIDI_CONTROLS)
    return value


# What XML 1.0 allows nowhere, not even as a character reference: the C0 controls but tab and
# the line ends, surrogates, U+FFFE and U+FFFF. One of them in the feed leaves it unreadable to
# every feed reader (a hand-edited run record may name anything).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    """``value`` with each character XML cannot hold shown as U+FFFD."""
    return _NOT_XML.sub("\ufffd", value)


def clip(value: Any, limit: int) -> str:
    """Upstream free text as one bounded line ('' when it is not a string)."""
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def paragraphs(value: Any, limit: int) -> list[str]:
    """Upstream free text as paragraphs (apart at blank lines; their line breaks kept, runs of
    spaces made one), at most ``limit`` characters in all ([] when it is not a string)."""
    if not isinstance(value, str):
        return []
    out: list[str] = []
    left = limit
    for block in re.split(r"\n\s*\n", value.replace("\r\n", "\n").replace("\r", "\n")):
        text = "\n".join(" ".join(line.split()) for line in block.split("\n") if line.strip())
        if not text:
            continue
        if len(text) > left:
            out.append(text[: max(left - 1, 0)].rstrip() + "…")
            break
        out.append(text)
        left -= len(text)
    return out


def strings(value: Any) -> list[str]:
    """The strings of an upstream list (a record's depends, constrains); [] if no list."""
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]


def split_filename(fn: str) -> tuple[str, str, str]:
    """'numpy-2.1.0-py312h_0.conda' -> ('numpy', '2.1.0', 'py312h_0')."""
    if fn.endswith(".conda"):  # PACKAGE_SUFFIXES, spelled out: called for every file of a run
        stem = fn[:-6]
    elif fn.endswith(".tar.bz2"):
        stem = fn[:-8]
    else:
        stem = fn
    parts = stem.rsplit("-", 2)
    if len(parts) != 3:
        return stem, "", ""
    return parts[0], parts[1], parts[2]


@lru_cache(maxsize=1 << 18)
def dependency_name(spec: str) -> str | None:
    """The package name a dependency spec starts with (a cheap guess, used only for links)."""
    match = _DEP_NAME_RE.match(spec)
    return match.group(1).lower() if match else None


def version_sort_key(version: str) -> tuple[int, Any]:
    """Orders versions as conda does; strings that are no version come first."""
    try:
        return (1, parse_version(version))
    except InvalidVersionError:
        return (0, version)


def newest_version(versions: Iterable[str]) -> str:
    return max(versions, key=version_sort_key, default="")


# The template filters: ``{{ size|bytes }}``, ``{{ seconds|time }}``... (``href`` needs the
# page, so the environment makes it).
FILTERS: dict[str, Callable[..., str]] = {
    "bytes": format_bytes,
    "time": format_time,
    "iso": iso_time,
    "date_ms": format_date_ms,
    "duration": format_duration,
    "quote": url_quote,
}
