"""Values checked before they go into an nginx or Apache configuration (see
:mod:`sitegen.tools.webconf`): a path, URL prefix, address, server or user name that could
smuggle a quote, a ``;``, a brace or a newline into the config is refused.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

# Paths, server and user names are matched whole (fullmatch): "$" would also let a final line
# end by. A prefix is stripped first, and a host name comes out of a fullmatch.
# An absolute filesystem path: segments of safe characters, never "." or "..".
_PATH_RE = re.compile(r"(?:/[A-Za-z0-9._@+-]+)+")
# A URL path prefix: "" (the site at the root) or /segment[/segment...]; no dot-segments.
_PREFIX_RE = re.compile(r"^(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_SERVER_NAME_RE = re.compile(r"(?:_|\*\.)?[A-Za-z0-9.-]*")
_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


class WebconfError(ValueError):
    """An option that cannot be put into a web server configuration safely."""


def check_path(value: str | Path, what: str) -> str:
    """An absolute path safe to write unquoted or quoted into nginx and Apache configs."""
    text = str(value)
    if text != "/":
        text = text.rstrip("/")
    if not _PATH_RE.fullmatch(text) or any(s in (".", "..") for s in text.split("/")):
        raise WebconfError(
            f"{what} {text!r} must be an absolute path of letters, digits and . _ @ + -"
            " (no spaces, quotes or other special characters)"
        )
    return text


def normalize_prefix(value: str) -> str:
    """'/conda/', 'conda' -> '/conda'; '' or '/' -> '' (the site at the server's root)."""
    text = value.strip()
    if text and not text.startswith("/"):
        text = "/" + text
    text = text.rstrip("/")
    if not _PREFIX_RE.match(text):
        raise WebconfError(
            f"prefix {value!r} must be a URL path like /conda or /mirrors/conda: segments of"
            " letters, digits and . _ - that do not start with a dot"
        )
    if "t" in text.split("/"):
        # /t/ is where conda's path token stands: the servers' logs mask the segment after
        # every t segment and `sitegen stats` drops both, so the channel paths after it would
        # be misread (as README says of channel paths).
        raise WebconfError(
            f"prefix {value!r} must not have a segment 't': /t/<token>/ is conda's path token,"
            " and the logs and download statistics read the segment after it as one"
        )
    if any(s.startswith("__sitegen") for s in text.split("/")):
        # The nginx config's own internal locations (/__sitegen_stored/, /__sitegen_quiet/,
        # /__sitegen_denied/) are at the server's root: a site served there would be read as
        # the fetcher's stored files, past the token check, and a path token's rewrite never
        # leads under __sitegen names.
        raise WebconfError(
            f"prefix {value!r} must not have a segment starting with '__sitegen': the web"
            " server config's own internal locations are named so"
        )
    return text


def check_address(value: str, what: str) -> str:
    """'HOST:PORT' (or just 'PORT', meaning 127.0.0.1) -> a normalized 'host:port'."""
    text = value.strip()
    if re.fullmatch(r"\d{1,5}", text):
        host, port_text = "127.0.0.1", text
    else:
        match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})", text)
        if not match:
            raise WebconfError(f"{what} {value!r} must be HOST:PORT, e.g. 127.0.0.1:8080")
        host, port_text = match.groups()
    port = int(port_text)
    if not 0 < port < 65536:
        raise WebconfError(f"{what} {value!r}: port must be between 1 and 65535")
    bare = host[1:-1] if host.startswith("[") else host
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        if host.startswith("[") or not _HOSTNAME_RE.match(host):
            raise WebconfError(
                f"{what} {value!r}: {host!r} is not an IP address or host name"
            ) from None
        return f"{host}:{port}"
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def check_server_name(value: str) -> str:
    if not value or not _SERVER_NAME_RE.fullmatch(value) or len(value) > 253:
        raise WebconfError(f"server name {value!r} must be a host name (or _ for any)")
    return value


def check_user(value: str) -> tuple[str, str]:
    """'user' or 'user:group' -> (user, group)."""
    user, _, group = value.partition(":")
    group = group or user
    if not _USER_RE.fullmatch(user) or not _USER_RE.fullmatch(group):
        raise WebconfError(f"user {value!r} must be a system user name, optionally :group")
    return user, group
