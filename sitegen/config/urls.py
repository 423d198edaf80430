"""The URLs channels.yaml writes: their ${ENV} references filled in, the credentials among
them found, their secrets hidden from what is shown, and the shape of their host names."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote

from sitegen.conda.record_secrets import hide_values

ENV_REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# What DNS carries (RFC 1035): labels of 1 to 63 octets, names of at most 253 written out.
MAX_LABEL = 63
MAX_NAME = 253


def is_host_name(raw_host: bytes) -> bool:
    """Whether a URL's host (IDNA-encoded, an IP address without brackets) has the shape of a
    DNS name; one dot at the end (a fully qualified name) is allowed."""
    name = raw_host[:-1] if raw_host.endswith(b".") else raw_host
    labels = name.split(b".")
    return 0 < len(name) <= MAX_NAME and all(0 < len(label) <= MAX_LABEL for label in labels)


def split_userinfo(url: str) -> tuple[str, str, str]:
    """``url`` as (``scheme://``, its ``user:password`` part, the rest from the host on); the
    middle one empty when it has none."""
    scheme, sep, rest = url.partition("://")
    userinfo, _at, location = rest.rpartition("@")
    if not sep or "/" in userinfo:  # no user:password part (an '@' may be in the path)
        return "", "", url
    return scheme + sep, userinfo, location


def fill_url(url: str, env: Mapping[str, str]) -> str:
    """``url`` with its ${ENV} references filled in from ``env`` (contains secrets: never log
    it). A value in the user:password part is percent-encoded there: a password holding '/',
    '?' or '#' would otherwise end the part early, and be read (and shown) as a host or a
    path."""

    def plain(match: re.Match[str]) -> str:
        return env[match.group(1)]

    def encoded(match: re.Match[str]) -> str:
        return quote(env[match.group(1)], safe="")

    start, userinfo, location = split_userinfo(url)
    if not userinfo:
        return ENV_REF_RE.sub(plain, url).rstrip("/")
    userinfo, location = ENV_REF_RE.sub(encoded, userinfo), ENV_REF_RE.sub(plain, location)
    return f"{start}{userinfo}@{location}".rstrip("/")


# The path segment after a `/t/`: where anaconda.org-style channels, and sitegen's own private
# channels, take a token.
PATH_TOKEN_RE = re.compile(r"/t/([^/]+)")


def credential_names(url: str) -> tuple[str, ...]:
    """The ${ENV} names in the places of ``url`` that hold a credential: the token of
    ``/t/<token>/``, the password of ``user:password@``, and a user name with no password
    (``${KEY}@``: an API key, as some repositories take one, is the whole credential). A user
    name beside a password, host or other path segment filled in from the environment is no
    secret, and may be as common as ``conda``."""
    _start, userinfo, location = split_userinfo(url)
    user, _colon, password = userinfo.partition(":")
    places = [password or user, *PATH_TOKEN_RE.findall(location)]
    return tuple(dict.fromkeys(name for place in places for name in ENV_REF_RE.findall(place)))


# A query parameter's value: signed URLs and token-in-query hosts (`?token=`, `?sig=`,
# `X-Amz-Signature=`) carry secrets there, and which names do varies by host, so every value
# is hidden and only the names stay readable. A quote opening a value is kept and the value
# after it hidden: a value may be written in quotes, or a request line's %22 decoded into one.
# A quote ends a value only where the URL ends after it (a few closing marks, then a space, the
# text's end, '&' or '#'), so that the closing quote of a URL quoted in a message stays; one
# inside a value (`?key=ab"cd`) is hidden with the rest of it. The marks are bounded: a quote
# looks only a few characters on, and a long run of quotes takes linear time.
_QUERY_VALUE_RE = re.compile(
    r"([?&][^=&?#\s]*=['\"]?)(?:[^&#\s'\"]|['\"](?![)\]}>,.;:!?'\"]{0,4}(?:[\s&#]|$)))+"
)


# A URL's user:password part, up to the last '@' before the path: a password may hold an
# unencoded '@' or '/', and the host is what follows the last '@'. With an '@' before the
# first '/', the part runs to the last '@' before that '/' (as RFC 3986 and urllib read it),
# then on through any further '@' of the same word before a '/'.
_USERINFO_RE = re.compile(r"//[^/@]+@(?:[^/@\s]*@)*")
# With no '@' before the first '/', but `user:password` standing there rather than
# `host:port` (what follows the ':' is not a port's digits; an IPv6 address is in brackets),
# the password holds a '/': the part runs to the last '@' of the word, wherever the path
# starts. A path holding an '@' after such a password is hidden with it: the two cannot be
# told apart, and hiding too much shows no secret. A password of digits up to a '/' reads as
# a port, a user name holding a '/' as a host: those are left as they are, and only
# :func:`scrub_names`, which knows the values, hides them.
_SLASHED_USERINFO_RE = re.compile(r"//(?!\[)[^/@:\s]*:(?!\d+[/?#])[^/?#@\s]*/")
_WORD_RE = re.compile(r"\S+")


def _hide_slashed_userinfo(word: re.Match[str]) -> str:
    # Word by word, and only from the first such start: a regex running from every start to
    # the word's last '@' would take time growing with the square of a word (a request line
    # that serve logs) holding many of them and no '@'.
    text = word.group()
    start = _SLASHED_USERINFO_RE.search(text)
    if start is None:
        return text
    at = text.rfind("@")
    return text if at < start.end() else f"{text[: start.start()]}//***@{text[at + 1 :]}"


def redact_url(url: str) -> str:
    """Hide anaconda.org-style tokens, ${ENV} references, user:password parts and query
    values."""
    url = ENV_REF_RE.sub("***", url)
    # The user:password part first: a password holding '/t/' or '?k=' would otherwise be cut
    # by the patterns below, and the rest of it no longer read as a user:password part.
    url = _USERINFO_RE.sub("//***@", url)
    if "//" in url:
        url = _WORD_RE.sub(_hide_slashed_userinfo, url)
    url = PATH_TOKEN_RE.sub("/t/***", url)
    return _QUERY_VALUE_RE.sub(r"\1***", url)


# A shorter ${ENV} value is not told apart from ordinary text: hidden, it would garble every
# message that happens to hold it.
MIN_SECRET = 4
# A credential (see MirrorConfig.credential_env) shorter than this refuses no upstream record
# holding it. Unlike hiding, refusing is not undone: a short value turns up in ordinary record
# text by chance (a password `test` in every record of `pytest`), and records that leak nothing
# would be refused by the thousand, for a value too short to be a secret anyway (guessed in a
# few million tries; anaconda.org tokens run to 30 characters and more).
MIN_CREDENTIAL = 8


def _secret_values(names: Iterable[str]) -> set[str]:
    """The values of these ${ENV} references, also as they stand in a URL (percent-encoded,
    see MirrorConfig.source_url); only values long enough to tell apart."""
    values = {value for name in names if len(value := os.environ.get(name, "")) >= MIN_SECRET}
    return values | {quote(value, safe="") for value in values}


def scrub_names(names: Iterable[str]) -> Callable[[str], str]:
    """A function that hides in text the values of these ${ENV} names, then what
    :func:`redact_url` hides."""
    secrets = sorted(_secret_values(names), key=len, reverse=True)

    def scrub(text: str) -> str:
        # The values first: the URL patterns could cut one in two (a '/' inside /t/<token>/,
        # '&k=' read as a query) and leave a part no whole value matches.
        return redact_url(hide_values(str(text), secrets))

    return scrub
