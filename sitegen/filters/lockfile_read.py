"""Read the package files a lockfile pins: ``pixi.lock``, ``conda-lock.yml`` and ``@EXPLICIT``
files (``conda list --explicit --md5``).

Each pin is a package URL with its checksums. What identifies the file on a mirror is its
subdir (the URL's last directory) and file name, plus the checksum: the channel part of the URL
is where the environment was solved, which a mirror need not be. PyPI entries and packages pixi
builds from source (a local path, a git repository, a source archive) pin nothing a conda
channel serves and are skipped.

Every problem is a :class:`LockfileError` naming the file, the line and (for YAML) the key path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sitegen.conda.schema import PACKAGE_SUFFIXES
from sitegen.config.operator_files import OperatorFileError, read_text_capped
from sitegen.config.urls import redact_url
from sitegen.config.yaml_nodes import (
    ConfigError,
    ParseState,
    Reported,
    YamlNode,
    shown_value,
)
from sitegen.config.yaml_syntax import compose_yaml

# A lockfile of a large environment is a few megabytes.
MAX_FILE_BYTES = 64 * 1024 * 1024
_DIGITS = {"md5": 32, "sha256": 64}
# Matched whole (fullmatch): "$" would also let a final line end by, which YAML can spell.
_HEX = {kind: re.compile(f"[0-9a-f]{{{n}}}") for kind, n in _DIGITS.items()}


class LockfileError(ValueError):
    """A lockfile that cannot be read; the message names file, line and key."""


@dataclass(frozen=True)
class Pin:
    subdir: str
    fn: str
    url: str  # as written in the lockfile
    sha256: str | None = None
    md5: str | None = None

    def matches(self, raw: dict[str, object]) -> bool:
        """Whether a repodata record is this file: by the strongest checksum both list.
        Either side may write its hex in upper case (repodata records accept it)."""
        theirs = raw.get("sha256")
        if self.sha256 and isinstance(theirs, str) and theirs:
            return theirs.lower() == self.sha256.lower()
        theirs = raw.get("md5")
        if self.md5 and isinstance(theirs, str) and theirs:
            return theirs.lower() == self.md5.lower()
        return True  # no checksum in common: the subdir and file name decide


def read_lockfile(path: Path) -> tuple[Pin, ...]:
    try:
        text = read_text_capped(path, MAX_FILE_BYTES)
    except FileNotFoundError as exc:
        raise LockfileError(f"{path}: cannot read: {exc.strerror}") from None
    except OperatorFileError as exc:
        raise LockfileError(f"{path}: {exc}") from None
    # Windows tools start UTF-8 with a byte order mark, which would hide a first '#' or
    # '@EXPLICIT' (YAML skips it by itself).
    text = text.removeprefix("\ufeff")
    if any(line.strip() == "@EXPLICIT" for line in text.splitlines()):
        return parse_explicit(text, str(path))
    return parse_yaml_lockfile(text, str(path))


def parse_explicit(text: str, filename: str) -> tuple[Pin, ...]:
    """``conda list --explicit [--md5 | --sha256]``: one URL a line, optionally ``#<md5>``,
    ``#<sha256>`` or ``#sha256:<sha256>`` (CEP 23), after an ``@EXPLICIT`` line."""
    pins = []
    started = False
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line == "@EXPLICIT":
            started = True
            continue
        if not started:
            raise LockfileError(f"{filename}:{number}: a package line before @EXPLICIT")
        url, _, checksum = line.partition("#")
        md5 = sha256 = None
        if checksum.startswith("sha256:"):
            sha256 = _checksum("sha256", checksum[len("sha256:") :].lower(), filename, number)
        elif len(checksum) == _DIGITS["sha256"]:
            # conda's --sha256 writes the digest bare: told from an md5 by its length.
            sha256 = _checksum("sha256", checksum.lower(), filename, number)
        elif checksum:
            md5 = _checksum("md5", checksum.lower(), filename, number)
        pin = _pin(url.strip(), sha256, md5)
        if isinstance(pin, str):
            raise LockfileError(f"{filename}:{number}: {pin}")
        pins.append(pin)
    return tuple(pins)


def parse_yaml_lockfile(text: str, filename: str) -> tuple[Pin, ...]:
    """A pixi.lock (``packages:`` with ``conda:`` URLs, or ``kind: conda`` entries before
    format 6) or a conda-lock.yml (``package:`` entries with ``manager: conda``)."""
    try:
        root = compose_yaml(text, filename)
    except ConfigError as exc:
        raise LockfileError(str(exc)) from None
    if root is None:
        raise LockfileError(f"{filename}:1: the file is empty")
    state = ParseState(filename)
    try:
        pins = _yaml_pins(YamlNode(root, "", state))
    except Reported:
        pins = ()
    except ConfigError as exc:
        state.add(exc)
        pins = ()
    if state.errors:
        raise LockfileError(str(state.failure()))
    return pins


def _yaml_pins(top: YamlNode) -> tuple[Pin, ...]:
    keys = top.mapping(())
    if "package" in keys:  # conda-lock
        return tuple(p for item in keys["package"].items() if (p := _conda_lock_entry(item)))
    if "packages" in keys:  # pixi
        return tuple(p for item in keys["packages"].items() if (p := _pixi_entry(item)))
    raise top.error("not a pixi.lock ('packages'), conda-lock.yml ('package') or @EXPLICIT file")


def _conda_lock_entry(item: YamlNode) -> Pin | None:
    keys = item.mapping(())
    manager = keys["manager"].string() if "manager" in keys else "conda"
    if manager != "conda":
        return None
    if "url" not in keys:
        raise item.error("missing required key 'url'")
    hashes = keys["hash"].mapping(("md5", "sha256")) if "hash" in keys else {}
    return _yaml_pin(keys["url"], hashes.get("sha256"), hashes.get("md5"))


def _pixi_entry(item: YamlNode) -> Pin | None:
    keys = item.mapping(())
    if "conda" in keys:
        url_node = keys["conda"]
    elif "kind" in keys and keys["kind"].string() == "conda":
        if "url" not in keys:
            raise item.error("missing required key 'url'")
        url_node = keys["url"]
    else:
        return None  # pypi
    if _is_source(url_node.string(), "name" in keys):
        return None
    return _yaml_pin(url_node, keys.get("sha256"), keys.get("md5"))


def _is_source(location: str, named: bool) -> bool:
    """Whether a pixi ``conda:`` location is a package pixi builds from source: a local path,
    or (format 6) a git repository or source archive, told by a file name that is no package
    file, as pixi tells it. A source package always names itself (its location cannot), so a
    location without a name is a package file's URL mistyped, for :func:`_pin` to refuse."""
    if "://" not in location:
        return True
    try:
        path = urlsplit(location).path
    except ValueError:  # for _pin to refuse, naming the URL
        return False
    return named and not unquote(path.rsplit("/", 1)[-1]).endswith(PACKAGE_SUFFIXES)


def _yaml_pin(url: YamlNode, sha256: YamlNode | None, md5: YamlNode | None) -> Pin:
    checksums = {}
    for kind, node in (("sha256", sha256), ("md5", md5)):
        if node is not None:
            value = node.string().lower()
            if not _HEX[kind].fullmatch(value):
                raise node.error(f"expected a {kind} checksum ({_DIGITS[kind]} hex digits)")
            checksums[kind] = value
    pin = _pin(url.string(), checksums.get("sha256"), checksums.get("md5"))
    if isinstance(pin, str):
        raise url.error(pin)
    return pin


def _pin(url: str, sha256: str | None, md5: str | None) -> Pin | str:
    """The pin of a package URL, or why the URL is not one. A lockfile solved against a private
    channel holds its token in every URL: the URL is shown with it hidden, and hidden before
    it is cut short, which could leave the token's start."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a '[' that opens no IPv6 host
        return f"not a package URL: {shown_value(redact_url(url))}"
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if parts.scheme not in ("http", "https", "file") or len(segments) < 2:
        return f"not a package URL: {shown_value(redact_url(url))}"
    fn, subdir = segments[-1], segments[-2]
    if not fn.endswith(PACKAGE_SUFFIXES):
        return f"not a .conda or .tar.bz2 file: {shown_value(redact_url(url))}"
    return Pin(subdir=subdir, fn=fn, url=url, sha256=sha256, md5=md5)


def _checksum(kind: str, value: str, filename: str, number: int) -> str:
    if not _HEX[kind].fullmatch(value):
        raise LockfileError(
            f"{filename}:{number}: expected a {kind} checksum, got {shown_value(value)}"
        )
    return value
