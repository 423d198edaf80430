"""The files the web server checks tokens against, written from the token store.

Both hold hashes only (see :mod:`sitegen.access.tokens`) and live in the access directory,
outside the site:

* ``nginx-tokens.map``: ``map`` entries, included by the config ``sitegen webconf nginx``
  prints. Key: ``"<scope> <token id>"`` (path token, Bearer) or ``"<scope> basic<a>:<key>"``
  (the scope as :func:`nginx_scope` names it)
  (HTTP Basic with any login: one entry per alignment ``a``, see :mod:`sitegen.access.tokens`;
  the key is base64, ``[A-Za-z0-9+/]``, nothing nginx unquotes in a double-quoted string);
  value: ``"<md5>[,<expiry epoch>]"`` for ``secure_link``, which then answers
  "1" (the right token, in time), "0" (the right token, expired: revoked tokens expire in 1970)
  or "" (anything else). nginx reads it when it (re)loads its configuration.
* ``apache/<scope>/<token id>.sha1`` and ``.until`` (``YYYYMMDDHHMMSS``, the server's local
  time, like Apache's ``%{TIME}``): read by Apache's ``file()`` expression on every request,
  so changes apply at once.

A scope is a private channel's path, or ``_site`` (:data:`~sitegen.layout.SITE_TOKEN_SCOPE`)
for every path of a site with ``access: {site: private}``. Every token that may read a scope gets
entries, the revoked and expired ones too: a right but dead token answers 403, a wrong one 401.
Every token of the store may read the site; a private channel's readers only, the channel.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import grp
import hashlib
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sitegen.access.tokens import (
    TokenError,
    TokenRecord,
    TokenStore,
    basic_keys,
    malformed_field,
)
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.config.operator_files import OperatorFileError, read_text_capped
from sitegen.layout import (
    ACCESS_LOCK,
    APACHE_TOKENS_DIR,
    NGINX_TOKENS_MAP,
    SITE_TOKEN_SCOPE,
    TOKENS_FILE,
    access_dir,
)
from sitegen.store.lock import taking_turns

# nginx finds a map's exact keys in a hash whose buckets hold 64 bytes on most machines (its
# map_hash_bucket_size, a CPU cache line): a key longer than 46 characters fits in none, and
# nginx refuses the whole configuration. "<who>" takes up to 19 ("basic<a>:<key>").
NGINX_SCOPE_MAX = 46 - 1 - 19
REVOKED_EPOCH = 1  # secure_link treats any expiry in the past as expired; 0 would mean "none"
APACHE_NEVER = "99991231235959"
APACHE_REVOKED = "00000000000000"


class AccessError(ValueError):
    """The token files cannot be written (unknown group, a tampered token store)."""


def check_record(record: TokenRecord) -> TokenRecord:
    """Everything written into a server file must be exactly what ``token add`` stores: a
    hand-edited store must not smuggle a quote or a path into the configuration."""
    if malformed_field(record) is not None:
        raise AccessError(f"token store: the entry {record.name!r} is malformed")
    return record


@dataclass(frozen=True)
class AccessPaths:
    """Where the access files of a site are."""

    dir: Path
    group: str | None

    @classmethod
    def of(cls, config: SiteConfig) -> AccessPaths:
        directory = config.access.dir or access_dir(config.output)
        return cls(Path(directory).absolute(), config.access.group)

    def gid(self) -> int:
        """The group the web server reads the files as; -1: none configured."""
        if not self.group:
            return -1
        try:
            return grp.getgrnam(self.group).gr_gid
        except KeyError:
            raise AccessError(
                f"access.group {self.group!r} is not a group on this system"
            ) from None

    @property
    def store(self) -> TokenStore:
        return TokenStore(self.dir / TOKENS_FILE)

    @property
    def nginx_map(self) -> Path:
        return self.dir / NGINX_TOKENS_MAP

    @property
    def apache_dir(self) -> Path:
        return self.dir / APACHE_TOKENS_DIR


def private_channels(config: SiteConfig) -> tuple[ChannelConfig, ...]:
    return tuple(c for c in config.channels if c.private)


def token_guarded(config: SiteConfig) -> bool:
    """Whether any path of the site answers only to a token: the whole site is private, or a
    channel is."""
    return config.access.site_private or bool(private_channels(config))


def readers_of(
    config: SiteConfig, channel: ChannelConfig, records: Iterable[TokenRecord]
) -> list[TokenRecord]:
    """Tokens that may read ``channel``: named by its ``readers`` (directly or through a
    group) or added for it with ``sitegen token add --channel``."""
    names = {name for reader in channel.readers for name in config.access.members(reader)}
    return [check_record(r) for r in records if r.name in names or channel.path in r.channels]


def unknown_readers(
    config: SiteConfig, records: Iterable[TokenRecord]
) -> list[tuple[str, tuple[str, ...]]]:
    """(channel, readers) for the private channels whose ``readers`` name a token the store
    does not hold, directly or as a member of an ``access.groups`` group (``carl (group
    team)``): a typo there locks the person out without an error, so the commands that read
    both say so. Names only, never a token."""
    stored = {r.name for r in records}
    groups = dict(config.access.groups)
    out = []
    for channel in private_channels(config):
        missing: dict[str, None] = {}
        for reader in channel.readers:
            if reader in groups:
                missing.update(
                    (f"{name} (group {reader})", None)
                    for name in groups[reader]
                    if name not in stored
                )
            elif reader not in stored:
                missing[reader] = None
        if missing:
            out.append((channel.path, tuple(missing)))
    return out


def unknown_readers_lines(unknown: Iterable[tuple[str, tuple[str, ...]]]) -> list[str]:
    """One line per channel of :func:`unknown_readers`' answer, saying what to do."""
    return [
        f"channel {path}: {'readers' if len(names) > 1 else 'reader'} {', '.join(names)}"
        " in channels.yaml name no token in the token store: a typo, or a token not issued"
        " yet (`sitegen token add NAME`)"
        for path, names in unknown
    ]


def scopes(config: SiteConfig, records: list[TokenRecord]) -> list[tuple[str, list[TokenRecord]]]:
    """(scope, the tokens that may read it): the whole site when it is private (any token of
    the store), then each private channel (its readers)."""
    out = []
    if config.access.site_private:
        out.append((SITE_TOKEN_SCOPE, [check_record(r) for r in records]))
    out += [(c.path, readers_of(config, c, records)) for c in private_channels(config)]
    return out


def nginx_scope(scope: str) -> str:
    """A scope as the nginx map names it: itself when its keys fit nginx's hash, else "_" and
    a digest of it, which no channel path can be (each starts with a letter or digit) nor
    the whole site's. Short scopes keep their names, so the configs of those stay valid."""
    if len(scope) <= NGINX_SCOPE_MAX:
        return scope
    return "_" + hashlib.sha256(scope.encode()).hexdigest()[:16]


def nginx_map_text(config: SiteConfig, records: list[TokenRecord]) -> str:
    lines = ["# written by sitegen from the token store: hashes only; do not edit\n"]
    for path, readers in scopes(config, records):
        scope = nginx_scope(path)
        for record in readers:
            if record.revoked:
                expiry = f",{REVOKED_EPOCH}"
            elif record.expires_at is not None:
                expiry = f",{int(record.expires_at.timestamp())}"
            else:
                expiry = ""
            lines.append(f'"{scope} {record.id}" "{record.nginx_md5}{expiry}";\n')
            for key, md5 in zip(basic_keys(record.id), record.nginx_basic_md5s, strict=True):
                lines.append(f'"{scope} {key}" "{md5}{expiry}";\n')
    return "".join(lines)


def apache_until(record: TokenRecord) -> str:
    if record.revoked:
        return APACHE_REVOKED
    expires = record.expires_at
    if expires is None:
        return APACHE_NEVER
    try:
        local = expires.astimezone()  # local time, as %{TIME} is
    except OverflowError:
        # Local time east of UTC puts the end of 9999 in a year no date holds, past every
        # %{TIME}; west of it, the start of year 1 before every one.
        return APACHE_NEVER if expires.year == dt.MAXYEAR else APACHE_REVOKED
    return local.strftime("%Y%m%d%H%M%S")


def apache_files(config: SiteConfig, records: list[TokenRecord]) -> dict[str, str]:
    """Relative path under ``apache/`` -> content (no newline: ``file()`` keeps it)."""
    out: dict[str, str] = {}
    for scope, readers in scopes(config, records):
        for record in readers:
            out[f"{scope}/{record.id}.sha1"] = record.apache_sha1
            out[f"{scope}/{record.id}.until"] = apache_until(record)
    return out


@dataclass(frozen=True)
class WrittenFiles:
    """What :func:`write_server_files` did: where, and whether any file changed (nginx then
    needs a reload)."""

    paths: AccessPaths
    changed: bool
    # readers of channels.yaml naming no token in the store (see unknown_readers)
    unknown: tuple[tuple[str, tuple[str, ...]], ...] = ()


def write_server_files(config: SiteConfig) -> WrittenFiles:
    """(Re)write the nginx map and the Apache files from the token store and the readers
    channels.yaml names; a file already as it should be is left alone.

    The files carry expiry times, which the servers compare with their own clock: an expiry
    needs no rewrite, a revocation, a new token or a reader taken out of channels.yaml does
    (plus an nginx reload). Writers take turns (a lock in the access directory), each reading
    the store afresh, so the last files written always say what the store says last: a run
    that read the store before a revocation cannot write its older files after it.
    """
    paths = AccessPaths.of(config)
    gid = paths.gid()
    dir_mode, file_mode = (0o750, 0o640) if paths.group else (0o755, 0o644)
    _make_dir(paths.dir, dir_mode, gid)
    with taking_turns(paths.dir / ACCESS_LOCK, 0o600):
        try:
            records = paths.store.load()
        except TokenError as exc:
            raise AccessError(str(exc)) from None
        changed = _write(paths.nginx_map, nginx_map_text(config, records), file_mode, gid)
        wanted = apache_files(config, records)
        _make_dir(paths.apache_dir, dir_mode, gid)
        for relative, content in wanted.items():
            target = paths.apache_dir / relative
            for parent in reversed(target.relative_to(paths.apache_dir).parents):
                _make_dir(paths.apache_dir / parent, dir_mode, gid)
            changed = _write(target, content, file_mode, gid) or changed
        changed = _remove_stale(paths.apache_dir, set(wanted)) or changed
    return WrittenFiles(paths, changed, tuple(unknown_readers(config, records)))


def _make_dir(path: Path, mode: int, gid: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if gid >= 0:
        os.chown(path, -1, gid)


def _write(path: Path, text: str, mode: int, gid: int) -> bool:
    """Write ``path`` unless it holds ``text`` already; whether it was written."""
    # Read without blocking: a FIFO in its place must not hold the writers' lock for ever.
    with contextlib.suppress(OSError, OperatorFileError):
        if read_text_capped(path) == text:
            os.chmod(path, mode)
            if gid >= 0:
                os.chown(path, -1, gid)
            return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        if gid >= 0:
            os.chown(tmp, -1, gid)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _remove_stale(root: Path, wanted: set[str]) -> bool:
    """Remove the files of tokens that no longer read a scope, and of scopes no longer
    private; whether there were any."""
    removed = False
    for path in sorted(root.rglob("*"), reverse=True):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and relative not in wanted:
            path.unlink()
            removed = True
        elif path.is_dir() and not any(w.startswith(relative + "/") for w in wanted):
            shutil.rmtree(path, ignore_errors=True)
            removed = True
    return removed
