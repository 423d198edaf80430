"""Site-wide settings beside the channels: downloads, sizes, free space, history retention,
notification hooks, the CEP-16 shard grace period and the optional repodata variants, each
parsed from its own top-level key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path, PurePosixPath

import yaml

from sitegen.config.operator_files import OperatorFileError, open_regular
from sitegen.config.urls import PATH_TOKEN_RE
from sitegen.config.yaml_nodes import YamlNode, shown_value

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
DEFAULT_SHARD_GRACE_DAYS = 7.0
# mamba reuses a shard index it fetched for up to 24 hours (its repodata_shards_ttl), whatever
# the server's Cache-Control says: a shard pruned sooner than that after the index stopped
# naming it answers 404 to such a client, which then falls back to the whole repodata.json.
MIN_SHARD_GRACE_DAYS = 1.0
# Upper bounds of settings in seconds and in days: a day to wait; a century to keep.
MAX_TIMEOUT = 86400.0
MAX_DAYS = 36500


def parse_size(text: str) -> int:
    """'500MB', '1.5 GiB', '1024' -> bytes."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"expected a size like 500MB or 2GiB, got {shown_value(text)}")
    number, unit = match.groups()
    unit = (unit or "").upper()
    base = unit[:1] if unit not in ("", "B") else unit
    factor = _SIZE_UNITS[base]
    if "I" in unit:
        factor = 1024 ** {"K": 1, "M": 2, "G": 3, "T": 4}[base]
    # Decimal, not float: 2.01 * 10**6 in binary floating point is 2009999.99..., which would
    # set the limit one byte below the size written.
    size = Decimal(number) * factor
    if size >= 2**63:
        raise ValueError(f"{shown_value(text)} is too large")
    return int(size)


@dataclass(frozen=True)
class DownloadSettings:
    concurrency: int = 32
    per_host: int = 32
    retries: int = 4
    timeout: float = 60.0  # a wait for the answer or the next bytes
    # Opening a connection (TCP and TLS) to a live host takes well under a second: an upstream
    # that does not answer is known as such after this, not after ``timeout``.
    connect_timeout: float = 10.0
    # PEM file of the CAs that sign upstreams' certificates (a corporate TLS proxy's), in place
    # of the system's; a mirror's own ``ca_bundle`` wins.
    ca_bundle: str | None = None


@dataclass(frozen=True)
class HistoryRetention:
    """How many run records the ledger keeps; a record goes when it is past either bound."""

    # A mirror run every 10 minutes makes 144 records a day: 1000 is about a week of them, and
    # a year is the bound for the sites that run rarely.
    keep_runs: int = 1000
    keep_days: int = 365


@dataclass(frozen=True)
class NotifySettings:
    """Commands (argv, no shell) run after a run with its summary as JSON on stdin."""

    on_failure: tuple[str, ...] = ()
    on_success: tuple[str, ...] = ()
    timeout: float = 30.0


def parse_download(node: YamlNode) -> DownloadSettings:
    state = node.state
    start = len(state.errors)
    dl = node.mapping(
        ("concurrency", "per_host", "retries", "timeout", "connect_timeout", "ca_bundle")
    )
    default = DownloadSettings()

    def number(key: str, minimum: float) -> float | None:
        parse = partial(dl[key].number, minimum, MAX_TIMEOUT) if key in dl else None
        return state.attempt(parse) if parse else getattr(default, key)

    def integer(key: str, minimum: int, maximum: int) -> int | None:
        parse = partial(dl[key].integer, minimum, maximum) if key in dl else None
        return state.attempt(parse) if parse else getattr(default, key)

    concurrency, per_host, retries = (
        integer("concurrency", 1, 1024),
        integer("per_host", 1, 1024),
        integer("retries", 0, 100),
    )
    timeout, connect_timeout = number("timeout", 0.1), number("connect_timeout", 0.1)
    ca_bundle = (
        state.attempt(partial(parse_ca_bundle, dl["ca_bundle"])) if "ca_bundle" in dl else None
    )
    state.settle(start)
    assert concurrency is not None and per_host is not None and retries is not None
    assert timeout is not None and connect_timeout is not None
    return DownloadSettings(concurrency, per_host, retries, timeout, connect_timeout, ca_bundle)


def parse_ca_bundle(node: YamlNode) -> str:
    """An absolute path, so that it means the same to cron, systemd and a shell; whether it
    holds certificates is found out when the first connection needs them, as is a file not
    there (yet). What is there must be a file it can read: a FIFO would hold the run's first
    connection forever, and a directory is no PEM file."""
    path = node.path_text()
    if not PurePosixPath(path).is_absolute():
        raise node.error(f"must be an absolute path to a PEM file, got {shown_value(path)}")
    try:
        open_regular(Path(path)).close()
    except FileNotFoundError:
        pass
    except OperatorFileError as exc:
        raise node.error(f"{path}: {exc}") from None
    return path


def parse_http_url(node: YamlNode) -> str:
    """An http(s) URL with a host, without a trailing slash (``base_url``, ``mirror_of``)."""
    url = node.string().rstrip("/")
    if "${" in url:
        # Shown to clients as written: a reference here would reach the pages unfilled.
        raise node.error(
            "${ENV} references are filled in only in the URLs sitegen fetches (a source's,"
            " an installer folder's, an advisory feed's); write this URL out"
        )
    parts = node.url(url)
    key = node.path.rsplit(".", 1)[-1]
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise node.error(f"{key} must be an http(s) URL")
    if "@" in parts.netloc or PATH_TOKEN_RE.search(parts.path) or parts.query:
        # The pages show this URL to every visitor, in the snippets clients copy. Not quoted:
        # the message would put the secret into logs and cron mail.
        raise node.error(
            f"{key} holds a credential (a user:password@, a /t/<token>/ or a query string),"
            " and the pages publish it as written: write the URL without it (clients send"
            " their own credentials)"
        )
    if "#" in url:
        # Channel paths are joined to it: after a '#' they are no part of what clients request.
        raise node.error(f"{key} must not have a fragment ('#' and what follows)")
    return url


def parse_free_space(node: YamlNode) -> int:
    try:
        return parse_size(node.scalar())
    except ValueError as exc:
        raise node.error(str(exc)) from None


def parse_history(node: YamlNode) -> HistoryRetention:
    keys = node.mapping(("keep_runs", "keep_days"))
    default = HistoryRetention()
    return HistoryRetention(
        keep_runs=keys["keep_runs"].integer(1) if "keep_runs" in keys else default.keep_runs,
        keep_days=keys["keep_days"].integer(1, MAX_DAYS)
        if "keep_days" in keys
        else default.keep_days,
    )


def parse_notify(node: YamlNode) -> NotifySettings:
    keys = node.mapping(("on_failure", "on_success", "timeout"))
    commands = {}
    for key in ("on_failure", "on_success"):
        if key in keys:
            if not isinstance(keys[key].node, yaml.SequenceNode):
                raise keys[key].error("expected a command as a list of arguments, e.g. [curl, ...]")
            commands[key] = tuple(item.string() for item in keys[key].items())
            if not commands[key]:
                raise keys[key].error("the command is empty")
    timeout = (
        keys["timeout"].number(0.1, MAX_TIMEOUT) if "timeout" in keys else NotifySettings().timeout
    )
    return NotifySettings(**commands, timeout=timeout)


def parse_shards(node: YamlNode) -> float:
    """``shards: {grace_days}``: days a shard the index no longer names stays served."""
    shards = node.mapping(("grace_days",))
    return (
        shards["grace_days"].number(MIN_SHARD_GRACE_DAYS, MAX_DAYS)
        if "grace_days" in shards
        else DEFAULT_SHARD_GRACE_DAYS
    )


def parse_repodata(node: YamlNode) -> bool:
    """``repodata: {bz2}``: whether each subdir also gets ``repodata.json.bz2``. Off by
    default: no current client reads it, and single-stream bz2 of conda-forge-sized repodata
    costs tens of seconds a run; some mirror scripts still fetch it."""
    repodata = node.mapping(("bz2",))
    return repodata["bz2"].boolean() if "bz2" in repodata else False


@dataclass(frozen=True)
class StatsSettings:
    """``stats:``: the web server's access logs to count downloads from (``sitegen stats``)."""

    logs: tuple[Path, ...]
    retention_days: int = 90  # daily rows older than this are rolled into monthly ones


def parse_stats(node: YamlNode, base_dir: Path | None) -> StatsSettings:
    keys = node.mapping(("logs", "retention_days"))
    if "logs" not in keys:
        raise node.error("missing required key 'logs' (the web server's access log files)")
    logs = []
    for item in keys["logs"].items():
        path = Path(item.path_text())
        logs.append(base_dir / path if not path.is_absolute() and base_dir else path)
    if not logs:
        raise keys["logs"].error("name at least one access log")
    # At least 30: the 7- and 30-day figures are summed from daily rows.
    retention = keys["retention_days"].integer(30, MAX_DAYS) if "retention_days" in keys else 90
    return StatsSettings(logs=tuple(logs), retention_days=retention)
