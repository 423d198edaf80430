"""Access tokens: how they look, how they are hashed, and the store that keeps them.

A token is ``<id>-<secret>``: a random 12-hex-digit id (public, the key every lookup uses) and
160 random bits as 40 hex digits, from :mod:`secrets`. Only ``[0-9a-f-]`` is used, inside what
conda's path-token regex ``/t/([a-zA-Z0-9-]*)`` accepts.

The store (``tokens.json`` in the access directory, mode 0600, never inside the site) holds
names, scopes, dates and **one-way hashes only**: ``token add`` prints the token once and
nothing can show it again. It keeps one hash per consumer, because each checks a different one
with what it has built in:

* ``sha256`` (hex) of the token: sitegen's own check (:meth:`TokenStore.find`,
  constant-time);
* ``md5`` (base64url) of the token and of its three HTTP Basic tails (see below): nginx's
  ``secure_link`` module computes exactly this per request, which is the only digest stock
  nginx can compute without njs or perl;
* ``sha1`` (hex) of the token: Apache's ``sha1()`` expression function.

MD5 and SHA-1 are weak against collisions, not against finding a preimage of a random 160-bit
value, which is what forging a token from a leaked hash would take.

HTTP Basic with any login on nginx: the header is ``Basic `` + base64(login + ":" + token) and
nginx cannot decode base64, so it hashes a part of the header that does not depend on the login.
Base64 encodes 3-byte groups independently, so from the first group boundary inside the token
(``a`` = 0, 1 or 2 bytes into it, set by the login's length) the header ends with
``b64encode(token[a:])``, the *tail*: 72 characters and one "=" (a = 0), 72 with "==" (a = 1)
or 68 without padding (a = 2), so the padding tells ``a``. The store keeps the MD5 of each of
the three tails. A tail's first 12 characters encode ``token[a:a + 9]``, id bytes only: a
public lookup key derived from the id (:func:`basic_keys`), ``basic<a>:<12 characters>``. A
request passes only if its header ends with the base64 of ``token[a:]``, which holds the whole
secret part that the hash binds; the login and the at most 2 id bytes before the boundary are
not checked, and need not be: they are not secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sitegen.config.access import TOKEN_NAME_RE
from sitegen.config.operator_files import OperatorFileError, read_text_capped
from sitegen.layout import ACCESS_LOCK
from sitegen.store.lock import taking_turns

ID_HEX = 12
SECRET_HEX = 40  # 160 bits
TOKEN_RE = re.compile(rf"^([0-9a-f]{{{ID_HEX}}})-[0-9a-f]{{{SECRET_HEX}}}$")
STORE_MODE = 0o600
BASIC_ALIGNMENTS = (0, 1, 2)  # where the first base64 group boundary falls inside the token
BASIC_KEY_BYTES = 9  # encoded as 12 base64 characters, all inside the id for any alignment


# What ``token add`` writes into each field a server file is made of, matched whole
# (fullmatch: "$" would also let a final line end by).
_ID_RE = re.compile(rf"[0-9a-f]{{{ID_HEX}}}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_B64URL_MD5_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_SHA1_RE = re.compile(r"[0-9a-f]{40}")


class TokenError(ValueError):
    """A token command that cannot be done (unknown name, name taken, bad date, a store that
    cannot be read)."""


def new_token() -> str:
    return f"{secrets.token_hex(ID_HEX // 2)}-{secrets.token_hex(SECRET_HEX // 2)}"


def token_id(token: str) -> str | None:
    match = TOKEN_RE.match(token)
    return match.group(1) if match else None


def basic_header(name: str, token: str) -> str:
    """The ``Authorization`` value a client sends for login ``name`` and password ``token``."""
    return "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode("ascii")


def basic_tails(token: str) -> tuple[str, ...]:
    """Per alignment ``a``: what the base64 of every Basic header with password ``token`` ends
    with when the login puts the first group boundary ``a`` bytes into the token."""
    raw = token.encode()
    return tuple(base64.b64encode(raw[a:]).decode("ascii") for a in BASIC_ALIGNMENTS)


def basic_keys(tid: str) -> tuple[str, ...]:
    """Per alignment ``a``: ``basic<a>:`` + the first 12 characters of that tail, from the public
    id alone. nginx looks the tail's hash up by it, and logs it where other forms log the id."""
    raw = tid.encode()
    return tuple(
        f"basic{a}:" + base64.b64encode(raw[a : a + BASIC_KEY_BYTES]).decode("ascii")
        for a in BASIC_ALIGNMENTS
    )


def md5_b64url(text: str) -> str:
    """What nginx's ``secure_link`` compares: base64url MD5 without padding."""
    digest = hashlib.md5(text.encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class TokenRecord:
    """One token as stored: never the token itself."""

    name: str
    id: str
    sha256: str
    nginx_md5: str
    nginx_basic_md5s: tuple[str, ...]  # md5_b64url of basic_tails(token), per alignment
    apache_sha1: str
    channels: tuple[str, ...]
    created: str  # ISO 8601, UTC
    expires: str | None = None  # ISO 8601, UTC
    revoked: str | None = None  # when it was revoked

    @classmethod
    def issue(
        cls,
        name: str,
        token: str,
        channels: Iterable[str],
        now: dt.datetime,
        expires: dt.datetime | None,
    ) -> TokenRecord:
        tid = token_id(token)
        if tid is None:
            raise TokenError("malformed token")
        return cls(
            name=name,
            id=tid,
            sha256=hashlib.sha256(token.encode()).hexdigest(),
            nginx_md5=md5_b64url(token),
            nginx_basic_md5s=tuple(md5_b64url(tail) for tail in basic_tails(token)),
            apache_sha1=hashlib.sha1(token.encode(), usedforsecurity=False).hexdigest(),
            channels=tuple(sorted(set(channels))),
            created=_iso(now),
            expires=_iso(expires) if expires else None,
        )

    @property
    def expires_at(self) -> dt.datetime | None:
        return dt.datetime.fromisoformat(self.expires) if self.expires else None

    def state(self, now: dt.datetime) -> str:
        """'active', 'expired' or 'revoked'."""
        if self.revoked:
            return "revoked"
        expires = self.expires_at
        if expires is not None and expires <= now:
            return "expired"
        return "active"


def malformed_field(record: TokenRecord) -> str | None:
    """The first field of ``record`` that ``token add`` would not have written so, else None.
    The id names Apache's files and keys the nginx map, the hashes are their contents and the
    map's values: a hand edit must not carry a quote, a line end or a path into them. A name
    no command takes (a rename by hand) could not be revoked by name."""
    basic = record.nginx_basic_md5s
    checks = (
        ("name", TOKEN_NAME_RE.fullmatch(record.name)),
        ("id", _ID_RE.fullmatch(record.id)),
        ("sha256", _SHA256_RE.fullmatch(record.sha256)),
        ("nginx_md5", _B64URL_MD5_RE.fullmatch(record.nginx_md5)),
        (
            "nginx_basic_md5s",
            len(basic) == len(BASIC_ALIGNMENTS)
            and all(isinstance(md5, str) and _B64URL_MD5_RE.fullmatch(md5) for md5 in basic),
        ),
        ("apache_sha1", _SHA1_RE.fullmatch(record.apache_sha1)),
    )
    return next((field for field, ok in checks if not ok), None)


def _lookup_keys(tid: str) -> set[str]:
    # nginx's map compares strings ignoring case and refuses to load one with equal keys.
    return {key.lower() for key in (tid, *basic_keys(tid))}


def _clashes(token: str, records: Iterable[TokenRecord]) -> bool:
    """Whether a new token would share a lookup key with a stored one (improbable, but it
    would stop nginx from loading the token map)."""
    keys = _lookup_keys(token_id(token) or "")
    return any(keys & _lookup_keys(record.id) for record in records)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat()


def parse_expiry(text: str) -> dt.datetime:
    """A date, '2027-01-31' or '20270131' (end of that day, UTC), or a full ISO 8601 time (UTC
    when no zone)."""
    try:
        # Any date alone first: datetime.fromisoformat takes '20270131' too, as its midnight.
        day = dt.date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise TokenError(f"--expires {text!r}: expected a date like 2027-01-31") from None
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    try:
        # The store keeps it in UTC, where an offset west of it may carry it past 9999.
        return when.astimezone(dt.UTC)
    except OverflowError:
        raise TokenError(f"--expires {text!r}: after the year 9999 in UTC") from None


_LISTS = ("channels", "nginx_basic_md5s")


def _record(entry: object) -> TokenRecord:
    """A stored entry as a record: TypeError or ValueError when it is not what ``token add``
    writes (a name that is not text, an expiry without its UTC offset...), which would
    otherwise fail later, in whatever compares or prints it."""
    if not isinstance(entry, dict):
        raise TypeError("not a JSON object")
    if not all(isinstance(entry.get(key), list) for key in _LISTS):
        raise TypeError(f"{' and '.join(_LISTS)} must be lists")
    record = TokenRecord(**{**entry, **{key: tuple(entry[key]) for key in _LISTS}})
    texts = (
        record.name,
        record.id,
        record.sha256,
        record.nginx_md5,
        record.apache_sha1,
        record.created,
        *record.channels,
        *record.nginx_basic_md5s,
    )
    optional = (record.expires, record.revoked)
    if not all(isinstance(t, str) for t in texts) or any(
        o is not None and not isinstance(o, str) for o in optional
    ):
        raise TypeError("a value that is not text")
    field = malformed_field(record)
    if field is not None:
        raise ValueError(f"{field}: not as `sitegen token add` writes it")
    expires = record.expires_at  # ValueError when not ISO 8601
    if expires is not None and expires.tzinfo is None:
        raise ValueError(f"expires {record.expires!r} lacks its UTC offset")
    return record


class TokenStore:
    """``tokens.json`` in the access directory: read whole, written whole, atomically, 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[TokenRecord]:
        """The stored records; :class:`TokenError` naming the file when it cannot be read or
        holds anything ``token add`` would not have written (a hand-edited or damaged store),
        so that every command reports it in one line and the fetcher denies."""
        try:
            # Opened without blocking: a FIFO in its place must not hold the reader for ever.
            document = json.loads(read_text_capped(self.path))
        except FileNotFoundError:
            return []
        except OperatorFileError as exc:  # not a regular file, not UTF-8, unreadable
            raise TokenError(f"{self.path}: {exc}") from None
        except ValueError as exc:  # not JSON
            raise TokenError(f"{self.path}: not a token store: {exc}") from None
        entries = document.get("tokens", []) if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise TokenError(f'{self.path}: not a token store: expected {{"tokens": [...]}}')
        stale = [
            str(e.get("name")) for e in entries if isinstance(e, dict) and "nginx_basic_md5" in e
        ]
        if stale:
            # The hashes any-login Basic needs cannot be derived without the tokens themselves.
            names = ", ".join(stale)
            raise TokenError(
                f"{self.path}: {names}: stored by an older sitegen, whose nginx config took HTTP"
                " Basic only with the token's name as login; re-add each: delete its entry from"
                f" {self.path.name}, then `sitegen token add <name> ...` and hand out the new"
                " token (the old one stops working)"
            )
        records = []
        taken: dict[tuple[str, str], int] = {}  # (name or id, value) -> its entry's number
        for number, entry in enumerate(entries, 1):
            try:
                record = _record(entry)
            except (TypeError, ValueError) as exc:
                raise TokenError(f"{self.path}: malformed entry {number} ({exc})") from None
            # A copied entry: revoking its name would leave the other active, and nginx
            # refuses a token map with a key twice (every private channel with it).
            for key in (("name", record.name), *(("id", k) for k in _lookup_keys(record.id))):
                if key in taken:
                    raise TokenError(
                        f"{self.path}: entries {taken[key]} and {number} have the same {key[0]}"
                        " (no two tokens do: delete one)"
                    )
                taken[key] = number
            records.append(record)
        return records

    def save(self, records: list[TokenRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        text = json.dumps({"tokens": [asdict(r) for r in records]}, indent=2) + "\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, STORE_MODE)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, STORE_MODE)  # also when an old temp file had other bits
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Changes take turns with each other and with the writers of the server files (the
        access directory's lock): two at once would each save what the other did not see."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        with taking_turns(self.path.parent / ACCESS_LOCK, 0o600):
            yield

    def add(
        self,
        name: str,
        channels: Iterable[str],
        now: dt.datetime,
        expires: dt.datetime | None = None,
    ) -> str:
        """Store a new token's hashes; returns the token, which exists nowhere else."""
        with self._changing():
            records = self.load()
            if any(r.name == name for r in records):
                # Names stay taken after a revocation: logs and lists keep meaning one token.
                raise TokenError(f"a token named {name!r} exists already (names are never reused)")
            token = new_token()
            while _clashes(token, records):
                token = new_token()
            records.append(TokenRecord.issue(name, token, channels, now, expires))
            self.save(records)
        return token

    def revoke(self, name: str, now: dt.datetime) -> TokenRecord:
        with self._changing():
            records = self.load()
            for i, record in enumerate(records):
                if record.name == name:
                    if not record.revoked:
                        records[i] = replace(record, revoked=_iso(now))
                        self.save(records)
                    return records[i]
        raise TokenError(f"no token named {name!r}")

    def scoped_to(self, channel: str) -> list[str]:
        """The names of the tokens added for ``channel`` (``token add --channel``)."""
        return [r.name for r in self.load() if channel in r.channels]

    def drop_channel(self, channel: str) -> list[str]:
        """Take ``channel`` out of every token's scope, for ``sitegen remove``: a channel
        configured later under the same path starts with no reader. The names of the tokens
        that had it."""
        if not self.path.exists():
            return []
        with self._changing():
            records = self.load()
            names = [r.name for r in records if channel in r.channels]
            if names:
                kept = [
                    replace(r, channels=tuple(c for c in r.channels if c != channel))
                    for r in records
                ]
                self.save(kept)
        return names

    def find(self, token: str) -> TokenRecord | None:
        """The record of ``token`` (whatever its state), comparing hashes in constant time."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        found = None
        for record in self.load():
            # Every record is compared, so the time taken says nothing about which one matched.
            if hmac.compare_digest(record.sha256, digest):
                found = record
        return found
