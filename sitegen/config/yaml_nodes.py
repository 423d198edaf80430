"""Walking a composed YAML document with line numbers, collecting every error on the way.

Each :class:`YamlNode` knows the key path that led to it, so an error names the file, the
line and the key path (``channels.yaml:7: channels.cloud/x.subdirs: expected a list``). The
parser reports every error of a file at once: sections that fail are recorded in the shared
:class:`ParseState` and skipped, and what depends on them is not checked.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import SplitResult, urlsplit

import yaml

from sitegen.conda.record_secrets import CLIPPED

T = TypeVar("T")

# More than this many errors are most likely one mistake repeated; the rest are not listed.
MAX_ERRORS = 20

# What YAML's escapes ("\x01", "\e", "\uFFFE") can put in a string but no XML document can hold
# (the history feed carries the title), nor a file name (NUL): the C0 controls but tab, newline
# and carriage return, and the two noncharacters XML leaves out.
_UNSHOWABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# The most of a value an error quotes: one pasted by mistake (a number of 10,000 digits) would
# otherwise fill the terminal and the log with it.
_SHOWN_CHARS = 40
_SHOWN_REASON_CHARS = 200
# The most of a mapping key a key path or a message shows: every key a configuration spells
# (a channel path of a few segments of up to 100 characters) is shown whole, while YAML's
# explicit form (``? key``) lets a key of any length past PyYAML's limit of 1,024 characters
# on a plain one, and the key path repeats it in every error beneath it.
_SHOWN_KEY_CHARS = 200


def shown_value(text: str, chars: int = _SHOWN_CHARS) -> str:
    """``text`` quoted for an error message: its start and its length when it is long."""
    if len(text) <= chars:
        return repr(text)
    return f"{text[:chars]!r}{CLIPPED}{len(text):,} characters)"


def shown_key(key: str) -> str:
    """A mapping key as a key path shows it: as written, or its start and its length."""
    if len(key) <= _SHOWN_KEY_CHARS:
        return key
    return f"{key[:_SHOWN_KEY_CHARS]}{CLIPPED}{len(key):,} characters)"


def child_path(path: str, key: str | int) -> str:
    """The key path of a mapping's ``key`` (text) or a list's item ``key`` (its index) below
    the node at ``path``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    shown = shown_key(key)
    return f"{path}.{shown}" if path else shown


def shown_reason(text: str) -> str:
    """A parser's reason for refusing a value, for an error message: it may quote the value
    whole, so a long one is cut after its first 200 characters."""
    if len(text) <= _SHOWN_REASON_CHARS:
        return text
    return f"{text[:_SHOWN_REASON_CHARS]}{CLIPPED}{len(text):,} characters)"


class ConfigError(Exception):
    """Problems in channels.yaml, one per line, each naming the file, line and key path.

    ``line`` is where the (first) problem is, for listing several in the order of the file.
    """

    def __init__(self, *errors: str, line: int = 0) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
        self.line = line


class Reported(Exception):
    """A section had errors, already recorded: whatever builds on it is skipped."""


class ParseState:
    """What one parse of a file shares: its name, the errors so far and the environment.

    ``environ`` is what ``${VAR}`` references are checked against; None leaves them unchecked
    (they are then resolved when a run starts). ``base_dir`` is where files the configuration
    names (advisories, lockfiles) are found; None: the working directory.
    """

    def __init__(
        self,
        filename: str,
        environ: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
    ) -> None:
        self.filename = filename
        self.environ = environ
        self.base_dir = base_dir
        self.errors: list[tuple[int, str]] = []

    def add(self, error: ConfigError) -> None:
        """Record an error; past MAX_ERRORS, stop the whole parse."""
        self.errors.extend((error.line, text) for text in error.errors)
        if len(self.errors) > MAX_ERRORS:
            raise Reported

    def attempt(self, parse: Callable[[], T]) -> T | None:
        """The value of ``parse()``, or None after recording why it failed."""
        try:
            return parse()
        except Reported:
            return None
        except ConfigError as exc:
            self.add(exc)
            return None

    def settle(self, start: int) -> None:
        """Skip the rest of a section when errors were recorded since ``start``."""
        if len(self.errors) > start:
            raise Reported

    def failure(self) -> ConfigError:
        """The errors recorded so far (at least one), as one ConfigError in file order."""
        errors = [text for _line, text in sorted(self.errors[:MAX_ERRORS], key=lambda e: e[0])]
        if len(self.errors) > MAX_ERRORS:
            errors.append(f"{self.filename}: stopped after {MAX_ERRORS} errors")
        return ConfigError(*errors)


def unknown_key(key: str, allowed: tuple[str, ...], nested: Mapping[str, tuple[str, ...]]) -> str:
    """What to say of an unknown key: where it belongs, or what it misspells, and the choices."""
    choices = f"expected one of: {', '.join(allowed)}"
    for parent, keys in nested.items():
        if key in keys and parent in allowed:
            return f"unknown key {key!r} here; it belongs under {parent!r} (indent it there)"
    shown = shown_value(key, _SHOWN_KEY_CHARS)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    if close:
        return f"unknown key {shown}; did you mean {close[0]!r}? {choices}"
    return f"unknown key {shown}; {choices}"


class YamlNode:
    """A YAML node plus the key path that led to it, for precise error messages (only: a
    long key is clipped in it, see :func:`shown_key`)."""

    def __init__(self, node: yaml.Node, path: str, state: ParseState) -> None:
        self.node = node
        self.path = path
        self.state = state

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    @property
    def is_null(self) -> bool:
        return self.node.tag.endswith(":null")

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.node, yaml.MappingNode)

    @property
    def is_scalar(self) -> bool:
        return isinstance(self.node, yaml.ScalarNode)

    def error(self, message: str) -> ConfigError:
        where = self.path or "(top level)"
        return ConfigError(f"{self.state.filename}:{self.line}: {where}: {message}", line=self.line)

    def child(self, node: yaml.Node, key: str | int) -> YamlNode:
        return YamlNode(node, child_path(self.path, key), self.state)

    def mapping(
        self, allowed: tuple[str, ...], nested: Mapping[str, tuple[str, ...]] | None = None
    ) -> dict[str, YamlNode]:
        """The keys of a mapping; bad keys (unknown, duplicate, not strings) are recorded and
        left out, so the other keys are still checked. An unknown key is told the allowed key
        it most likely misspells, or (``nested``: allowed key -> its own keys) the key of
        ``allowed`` it belongs under."""
        if not isinstance(self.node, yaml.MappingNode):
            raise self.error("expected a mapping of keys to values")
        out: dict[str, YamlNode] = {}
        for key_node, value_node in self.node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.state.add(
                    YamlNode(key_node, self.path, self.state).error("keys must be strings")
                )
                continue
            child = self.child(value_node, key)
            if key in out:
                self.state.add(YamlNode(key_node, child.path, self.state).error("duplicate key"))
            elif allowed and key not in allowed:
                self.state.add(
                    YamlNode(key_node, child.path, self.state).error(
                        unknown_key(key, allowed, nested or {})
                    )
                )
            else:
                out[key] = child
        return out

    def raw_keys(self) -> set[str]:
        """The string keys of a mapping node, without checking anything."""
        if isinstance(self.node, yaml.MappingNode):
            return {k.value for k, _ in self.node.value if isinstance(k, yaml.ScalarNode)}
        return set()

    def items(self) -> list[YamlNode]:
        if isinstance(self.node, yaml.ScalarNode) and self.node.tag.endswith(":str"):
            return [self]  # a single string where a list is expected reads as a one-item list
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.error("expected a list")
        return [self.child(n, i) for i, n in enumerate(self.node.value)]

    def scalar(self) -> str:
        if not isinstance(self.node, yaml.ScalarNode):
            raise self.error("expected a single value")
        value = self.node.value
        # YAML escapes can spell what no file name, page or feed can hold.
        found = _UNSHOWABLE.search(value)
        if found is not None:
            char = found.group()
            kind = "noncharacter" if char >= "\ufffe" else "control character"
            raise self.error(f"holds a {kind} (U+{ord(char):04X})")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.error("is not valid Unicode text (a lone surrogate escape)") from None
        return value

    def string(self) -> str:
        value = self.scalar()
        if self.is_null or value == "":
            raise self.error("expected a non-empty string")
        return value

    def boolean(self) -> bool:
        value = self.scalar().lower()
        if value in ("true", "yes", "on"):
            return True
        if value in ("false", "no", "off"):
            return False
        raise self.error(f"expected true or false, got {shown_value(self.scalar())}")

    def integer(self, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
        text = self.scalar()
        try:
            value = int(text)
        except ValueError:
            # int() refuses a number of more than 4,300 digits: still a number, just too large.
            digits = text.strip().removeprefix("-").removeprefix("+")
            if digits.isascii() and digits.isdigit():
                value = -math.inf if text.strip().startswith("-") else math.inf
            else:
                raise self.error(f"expected a whole number, got {shown_value(text)}") from None
        if value < minimum:
            raise self.error(f"must be at least {minimum}")
        if value > maximum:
            raise self.error(f"must be at most {maximum}")
        return value

    def path_text(self) -> str:
        """A path as written. Only the URLs sitegen fetches have their ${ENV} references filled
        in: one in a path would silently name a directory of that very name (``${SITE}``)."""
        text = self.string()
        if "${" in text:
            raise self.error(
                "${ENV} references are filled in only in the URLs sitegen fetches (a source's,"
                " an installer folder's, an advisory feed's), not in a path; write the path out"
            )
        return text

    def local_path(self) -> Path:
        """A path as written, within what a file system takes (a name up to 255 bytes, the
        whole up to 4,095), so that using it fails only for what is on disk."""
        path = Path(self.path_text())
        if any(len(part.encode()) > 255 for part in path.parts):
            raise self.error("a name in the path is longer than 255 bytes")
        if len(str(path).encode()) > 4095:
            raise self.error("the path is longer than 4,095 bytes")
        return path

    def file_path(self) -> Path:
        """A path to a file the configuration names, relative to the configuration's directory."""
        try:
            path = self.local_path().expanduser()
        except RuntimeError:  # ~user of no known user
            raise self.error(f"cannot expand {self.string()!r}: no such user") from None
        if not path.is_absolute() and self.state.base_dir is not None:
            path = self.state.base_dir / path
        return path

    def number(self, minimum: float = 0.0, maximum: float | None = None) -> float:
        try:
            value = float(self.scalar())
        except ValueError:
            raise self.error(f"expected a number, got {shown_value(self.scalar())}") from None
        if not math.isfinite(value):
            raise self.error(f"expected a finite number, got {shown_value(self.scalar())}")
        if value < minimum or (maximum is not None and value > maximum):
            raise self.error(
                f"must be between {minimum} and {maximum}"
                if maximum is not None
                else f"must be at least {minimum}"
            )
        return value

    def url(self, text: str) -> SplitResult:
        """``text`` (this node's URL, perhaps with references filled in) split into its parts;
        an error for what no HTTP client could request (a bad port or IPv6 host, whitespace or
        control characters)."""
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
            raise self.error("URL holds whitespace or control characters")
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 (parsed on access: raises for a port that is not a number)
        except ValueError as exc:
            # Not urllib's reason: it quotes the host part, or what it read as the port, and
            # either may hold a password written out whose '/' or '?' ended the host early.
            why = str(exc)
            if "IPv6" in why:
                why = "a '[' or ']' that makes no IPv6 host"
            elif "Port" in why:
                why = "the port is not a number up to 65535"
            else:
                why = "its host part holds characters that Unicode normalization changes"
            raise self.error(f"not a valid URL: {why}") from None
        return parts
