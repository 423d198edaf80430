"""The ``channel`` source kind: an upstream conda channel at an http(s):// or file:// URL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import SplitResult

from sitegen.config.urls import (
    ENV_REF_RE,
    MAX_LABEL,
    MAX_NAME,
    fill_url,
    is_host_name,
    redact_url,
)
from sitegen.config.yaml_nodes import ConfigError, YamlNode, shown_value

# A literal anaconda.org token in a URL: /t/<token>/ where <token> is not an ${ENV} reference.
LITERAL_TOKEN_RE = re.compile(r"/t/(?!\$\{)[^/]+(/|$)")


def parse_url(
    node: YamlNode, schemes: tuple[str, ...] = ("https", "http", "file"), query: bool = False
) -> str:
    """The URL as written (a channel's, by default); ${ENV} references stay unresolved (they
    hold secrets). ``query``: whether it may have a query string (a file's URL, fetched as it
    is, may; a channel's, which subdirs and file names are joined to, may not)."""
    url = node.string()
    if "${" in ENV_REF_RE.sub("", url):
        # Not filled in, it would be sent as written ('{' has no place in a URL) and under
        # /t/ pass for a reference where the check for a token written out looks.
        raise node.error(
            "'${' that does not open a ${NAME} reference (NAME: letters, digits and '_', not"
            " starting with a digit, then '}')"
        )
    parts = node.url(ENV_REF_RE.sub("x", url))
    if parts.scheme not in schemes:
        names = [f"{scheme}://" for scheme in schemes]
        listed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
        raise node.error(f"URL must start with {listed}, got {shown_value(redact_url(url))}")
    if parts.scheme != "file" and not parts.netloc:
        raise node.error(f"URL has no host: {shown_value(redact_url(url))}")
    if parts.scheme != "file" and not _host_name(parts.hostname or ""):
        raise node.error(
            f"not a valid host name: an empty label, a label over {MAX_LABEL} characters or a"
            f" name over {MAX_NAME}: {shown_value(redact_url(url))}"
        )
    if parts.scheme == "file" and not parts.path:
        raise node.error("file:// URL has no path")
    if parts.scheme == "file" and not ENV_REF_RE.search(url):
        problem = _file_url_problem(parts)
        if problem is not None:
            raise node.error(f"{problem}, got {shown_value(redact_url(url))}")
    if LITERAL_TOKEN_RE.search(url):
        raise node.error(
            "the URL holds a literal token (/t/<token>/); write /t/${ENV_VAR}/ and set the"
            " token in that environment variable"
        )
    if parts.fragment or (parts.query and not query):
        raise node.error(
            "URL must not have a fragment"
            if query
            else "URL must not have a query string or fragment"
        )
    environ = node.state.environ
    if environ is not None:
        # Only the variable's name goes into the message: its value would be a secret.
        missing = list(dict.fromkeys(v for v in ENV_REF_RE.findall(url) if v not in environ))
        if missing:
            plural = "s" if len(missing) > 1 else ""
            verb = "are" if len(missing) > 1 else "is"
            raise node.error(f"environment variable{plural} {', '.join(missing)} {verb} not set")
        # An empty token, user or host is never meant (a unit's `Environment=TOKEN=`): the URL
        # would reach upstream as /t//org, and every message shows the token as *** all the same.
        empty = list(dict.fromkeys(v for v in ENV_REF_RE.findall(url) if environ[v] == ""))
        if empty:
            plural = "s" if len(empty) > 1 else ""
            verb = "are" if len(empty) > 1 else "is"
            raise node.error(
                f"environment variable{plural} {', '.join(empty)} {verb} set but empty"
            )
        _check_filled(node, url, environ)
    return url


def _file_url_problem(parts: SplitResult) -> str | None:
    """Why a file:// URL names no directory of this machine, or None. The run reads its path
    alone: a host ('file://srv/conda', two slashes for three) would be dropped unseen, and a
    relative path read against whatever directory the run starts in (cron's, not the
    operator's); either way the run finds no channel there and publishes an empty one."""
    if parts.netloc not in ("", "localhost"):
        return "a file:// URL names no host: write three slashes before the absolute path"
    if not parts.path.startswith("/"):
        return "the path of a file:// URL must be absolute (file:///srv/conda/channel)"
    return None


def _host_name(host: str) -> bool:
    try:
        raw = host.encode("ascii") if host.isascii() else host.encode("idna")
    except UnicodeError:  # IDNA refuses an empty label or one that encodes too long
        return False
    return is_host_name(raw)


def _check_filled(node: YamlNode, url: str, environ: Mapping[str, str]) -> None:
    """A URL valid as written may not be once its references are filled in (a host variable
    holding a port that is no number, or a space)."""
    names = list(dict.fromkeys(ENV_REF_RE.findall(url)))
    if not names:
        return
    try:
        parts = node.url(fill_url(url, environ))
        if parts.scheme != "file" and not _host_name(parts.hostname or ""):
            raise ConfigError("not a valid host name")
        if parts.scheme == "file" and _file_url_problem(parts) is not None:
            raise ConfigError("not a directory of this machine")
    except ConfigError:
        # Only the variables' names go into the message: a value may be a secret.
        raise node.error(
            f"not a valid URL once {', '.join(names)} from the environment are filled in"
        ) from None
