"""The credentials of a mirror's URL, looked for in what its upstream's repodata says.

An upstream may write the token or password it is reached with into its records: its own URL
of each file as a record's ``url``, or, a hostile one, anywhere (a dependency, a summary, a
package's name), or beside them. Published, that would hand a private upstream's credential to
every reader of a public mirror, so :func:`sitegen.conda.records.parse_repodata` refuses such
records, and leaves out such entries of the rest of the document. At
conda-forge size (800,000 records) the document is searched once, as bytes, and its records are
looked at one by one only when it may hold one.
"""

from __future__ import annotations

import json
import mmap
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote

import msgspec

# A JSON escape that may stand for any character (``\\uXXXX``), or for '/' (``\\/``).
_ANY_ESCAPE = re.compile(rb"\\[u/]")
# A percent-escape, which may stand for any byte of a value (``%74`` for ``t``, ``%2d`` for
# ``-``): a URL spells a value so however it is encoded, not only as sitegen encodes it.
_PERCENT_ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}")

# What an error message puts after a value it quotes only the start of (see
# sitegen.config.yaml_nodes.shown_value): ``'abc...' (1,234 characters)``.
CLIPPED = "... ("
# The least of a value's start taken for the value where a message cut it off.
_CUT_START = 3
_CUT = re.compile("['\"]?" + re.escape(CLIPPED))
# What a cut leaves of a percent-escape it went through (``%6``, ``%``), or of a character
# whose UTF-8 bytes it went between (decoded, U+FFFD): the value's start stands before it.
_CUT_ESCAPE = re.compile("\ufffd*(?:%[0-9A-Fa-f]?)?\\Z")


# Cached: text is hidden message by message (one for each record refused, of hundreds of
# thousands), always for the same few values.
@lru_cache(maxsize=256)
def spellings(value: str) -> tuple[str, ...]:
    """``value`` as a message may quote it, longest first: as it is, as ``repr()`` (or
    ``!r``) escapes it within either quote, and as JSON escapes it, characters outside ASCII
    as they are or as ``\\uXXXX``. There a backslash, a quote or a control character is spelt
    escaped, and no search for the value as it is finds it."""
    # With a '"' appended, repr() quotes with "'" and escapes each "'" of the value; within
    # '"' (how repr() quotes a value holding "'" but no '"') an "'" stands unescaped.
    in_single = repr(value + '"')[1:-2]
    forms = {
        value,
        in_single,
        in_single.replace("\\'", "'"),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    return tuple(sorted(forms, key=len, reverse=True))


def _cut_size(before: str, form: str) -> int:
    """How many of ``form``'s first characters (at least :data:`_CUT_START`, not all of them)
    ``before`` ends with; 0 for fewer."""
    for size in range(min(len(form) - 1, len(before)), _CUT_START - 1, -1):
        if before.endswith(form[:size]):
            return size
    return 0


def hide_value(text: str, value: str) -> str:
    """``text`` with ``value`` written as ``***``, in any of its :func:`spellings`: where it is
    whole, and where a message cut it off after its first characters (before
    :data:`CLIPPED`), which no search for the whole value finds. Error messages quote only the
    start of a long value, and a value holding a secret is quoted before anything hides it."""
    forms = spellings(value)
    for form in forms:
        text = text.replace(form, "***")
    if CLIPPED not in text:
        return text
    parts = []
    start = 0
    for cut in _CUT.finditer(text):
        before = text[start : cut.start()]
        whole = _CUT_ESCAPE.sub("", before)
        size = max(_cut_size(whole, form) for form in forms)
        if size:
            before = whole[:-size] + "***"
        parts += [before, cut.group()]
        start = cut.end()
    parts.append(text[start:])
    return "".join(parts)


def hide_values(text: str, values: Iterable[str]) -> str:
    """``text`` with each of ``values`` (longest first, each also as sitegen percent-encodes
    it) hidden by :func:`hide_value`, then again in ``text`` percent-decoded when that finds
    one: a URL spells a value in any percent-encoding (``%74`` for ``t``), whole or cut short
    by a message quoting it. Text whose escapes spell no value is left as it is."""
    values = tuple(values)
    for value in values:
        text = hide_value(text, value)
    decoded = unquote(text)
    if decoded == text:
        return text
    hidden = decoded
    for value in values:
        hidden = hide_value(hidden, value)
    return hidden if hidden != decoded else text


class SecretSearch:
    """Finds any of some secret values, as they are or percent-encoded (as a URL's
    ``user:password`` part holds them, or any other way a URL may)."""

    def __init__(self, values: Iterable[str]) -> None:
        forms = {form for value in values if value for form in (value, quote(value, safe=""))}
        # Longest first: a value holding another is hidden whole.
        self._text = tuple(sorted(forms, key=len, reverse=True))
        # As JSON text spells them: as they are, or with the escapes JSON requires ('"', '\\',
        # control characters).
        spelt = {form.encode() for form in forms}
        spelt |= {msgspec.json.encode(form)[1:-1] for form in forms}
        self._bytes = tuple(spelt)

    def __bool__(self) -> bool:
        return bool(self._text)

    def may_spell(self, data: bytes | mmap.mmap | msgspec.Raw) -> bool:
        """Whether the JSON text ``data`` may spell a value: it holds one, or an escape that
        JSON allows for any character (``\\uXXXX``, or ``\\/``), with which a value may be
        written in bytes no search for the value finds."""
        if type(data) is msgspec.Raw:
            data = bytes(data)
        # find, not in: a body read through a map (sitegen.store.spill) is searched alike.
        if any(data.find(form) >= 0 for form in self._bytes):
            return True
        # One byte is found fastest: most documents hold no escape at all.
        if data.find(b"\\") >= 0 and _ANY_ESCAPE.search(data) is not None:
            return True
        return data.find(b"%") >= 0 and _PERCENT_ESCAPE.search(data) is not None

    def holds(self, value: Any) -> bool:
        """Whether a decoded JSON value holds a value in any text, key or number inside."""
        stack = [value]  # not recursive: nesting as deep as the decoder takes is no error
        while stack:
            item = stack.pop()
            kind = type(item)
            if kind is dict:
                stack.extend(item)
                stack.extend(item.values())
            elif kind is list:
                stack.extend(item)
            elif kind is str or kind is int or kind is float:
                text = item if kind is str else repr(item)
                if self._in_text(text):
                    return True
        return False

    def _in_text(self, text: str) -> bool:
        if any(form in text for form in self._text):
            return True
        return "%" in text and any(form in unquote(text) for form in self._text)

    def in_record(self, fn: str, encoded: object, raw: dict[str, Any]) -> bool:
        """Whether a record holds a value: in its file name (which joins name, version and
        build, so a value split across them is found there) or in any of its fields (``raw``).
        Its bytes as upstream wrote them (``encoded``, when the document was decoded lazily: a
        ``msgspec.Raw``) tell first whether they can, which spares walking the fields of nearly
        every record."""
        if self.holds(fn):
            return True
        return (type(encoded) is not msgspec.Raw or self.may_spell(encoded)) and self.holds(raw)

    def take_out(
        self, info: dict[str, Any], removed: list[Any], extra: dict[str, Any]
    ) -> list[str]:
        """Take what holds a value out of a document's parts beside its records, published as
        upstream wrote them: entries of ``info`` (but ``base_url``, CEP-15's place of the
        packages, which the caller keeps with its secrets written as their references and
        never publishes), of ``removed``, and keys sitegen does not know. Returns what went,
        as ``info.<key>``, ``removed`` and ``<key>``."""
        gone = [
            key for key, value in info.items() if key != "base_url" and self.holds([key, value])
        ]
        for key in gone:
            del info[key]
        parts = [f"info.{key}" for key in gone]
        kept = [entry for entry in removed if not self.holds(entry)]
        if len(kept) < len(removed):
            removed[:] = kept
            parts.append("removed")
        gone = [key for key, value in extra.items() if self.holds([key, value])]
        for key in gone:
            del extra[key]
        return parts + gone

    def hide(self, text: str) -> str:
        """``text`` with each value written as ``***``, however percent-encoded (see
        :func:`hide_values`)."""
        return hide_values(text, self._text)
