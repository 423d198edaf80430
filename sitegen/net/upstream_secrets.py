"""The secrets of a mirror's URL kept out of what the site stores of its upstream.

A mirror's URL takes its token or password from the environment (``${NAME}`` in channels.yaml),
and upstream may echo it in what it serves: an anaconda.org-style channel under ``/t/<token>/``
may write its own URL as CEP-15's ``info.base_url``. What the site keeps of a repodata body (the
copy kept for conditional requests, the ``base_url`` of the origins map) holds each such value
written back as its reference, as channels.yaml writes it: ``${NAME}``, or ``%24%7BNAME%7D``
where the value stood percent-encoded (as it does in a URL's user:password part). The values
are filled in again where the body is parsed and where a request is made. Where it is parsed,
a record holding a credential of the URL (its token or password) is refused: published, it
would hand that credential to every reader of the site (see sitegen.conda.record_secrets).

Upstream may write ``${NAME}`` itself, as text: filled in, it would hand the value of the
variable to every reader of the site (a user name, a password too short to refuse records by),
or send it where upstream's ``base_url`` points. So what upstream wrote is escaped where the
references are written: a ``$`` before ``{`` is kept as ``${}``, and a ``%`` before ``24%7B``
as ``%24%7B%7D`` (each the reference form of an empty name, which no reference has), and only
what :meth:`UpstreamSecrets.hide` wrote is filled in again.

The validators kept for a conditional request (an ETag, a Last-Modified) are upstream's text
too, and may echo the URL asked for: they are kept the same way, and filled in again to be
sent back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote

from sitegen.conda.record_secrets import SecretSearch
from sitegen.config import MirrorConfig
from sitegen.config.urls import ENV_REF_RE, MIN_CREDENTIAL, MIN_SECRET

# Upstream's text that could be read as a reference, and the escape it is kept as: the
# character, as a regular expression that takes it alone (a value may start right after it),
# the text it is found by, and that text escaped.
_ESCAPES = (
    (r"\$(?=\{)", "$", "${}", "${"),
    (r"%(?=24%7B)", "%", "%24%7B%7D", "%24%7B"),
)


class _Replace:
    """Some texts each replaced by its own in one pass, left to right (at one place, the
    first that is there, in order), as ``re.sub`` does with their alternation. A body of
    hundreds of megabytes where only one of them occurs (the common case) is replaced at the
    speed of ``bytes.replace``: for that one, the two are the same."""

    def __init__(self, pattern: str, replacements: dict[str, str], found: dict[str, str]) -> None:
        """``pattern`` finds what ``replacements`` replaces (the key being what it matched);
        ``found`` maps each of the texts the pattern finds, as plain text, to its
        replacement (so that ``str.replace`` does what the pattern does)."""
        self._text = re.compile(pattern)
        self._bytes = re.compile(pattern.encode())
        self._replacements = replacements
        self._encoded = {key.encode(): value.encode() for key, value in replacements.items()}
        self._found = {key.encode(): value.encode() for key, value in found.items()}

    def text(self, text: str) -> str:
        return self._text.sub(lambda match: self._replacements[match[0]], text)

    def bytes(self, data: bytes) -> bytes:
        """The same object when nothing is replaced."""
        # Each text's first byte is looked for first: memchr, where a longer one is searched.
        present = [key for key in self._found if key[:1] in data and key in data]
        if not present:
            return data
        if len(present) == 1:
            return data.replace(present[0], self._found[present[0]])
        return self._bytes.sub(lambda match: self._encoded[match[0]], data)


class _JsonSpellings:
    """Some texts as a JSON string may spell them with escapes (``\\u0074`` for ``t``,
    ``\\/`` for ``/``), at least one of their characters so (:class:`_Replace` has taken them
    as they are), each replaced by its own. What replaces one stands for the text as it is,
    which decodes the same where JSON allows each of its characters unescaped."""

    def __init__(self, replacements: dict[str, str]) -> None:
        """``replacements``: text -> its replacement, longest first; a text JSON must escape a
        character of (``"``, ``\\``, a control character) is left out, as is one holding what
        an escape of :data:`_ESCAPES` starts (a ``$``, a ``%24``), which may stand beside
        what :class:`_Replace` wrote."""
        usable = {
            text: replacement.encode()
            for text, replacement in replacements.items()
            if not any(c in '"\\$' or c < " " for c in text) and "%24" not in text
        }
        self._replacements = list(usable.values())
        # With each '/' as '\\/' and nothing else escaped, as some encoders write every '/':
        # found as fast as :class:`_Replace` finds a text (that one more backslash before it
        # would escape its first character changes nothing: that character is kept).
        self._slashed = {
            text.replace("/", "\\/").encode(): replacement
            for text, replacement in usable.items()
            if "/" in text
        }
        units = {unit for text in usable for char in text for unit in _utf16(char)}
        self._spelt: re.Pattern[bytes] | None = None
        if not usable:
            return
        # A \\u escape of one of their characters, which documents seldom hold (but of one
        # beyond ASCII): the others are looked for only then.
        codes = b"|".join(b"%04x" % unit for unit in units)
        self._hint = re.compile(rb"\\u(?i:%b)" % codes)
        # After an even run of backslashes (kept): one more would escape the first character.
        spelt = b"|".join(b"(%b)" % b"".join(map(_spelt_char, text)) for text in usable)
        self._spelt = re.compile(rb"(?<!\\)((?:\\\\)*)(?:%b)" % spelt)

    def bytes(self, data: bytes) -> bytes:
        """The same object when nothing is replaced."""
        if self._spelt is None or b"\\" not in data:
            return data
        for slashed, replacement in self._slashed.items():
            if slashed in data:
                data = data.replace(slashed, replacement)
        if self._hint.search(data) is None:
            return data
        replaced = self._spelt.sub(
            lambda match: match[1] + self._replacements[(match.lastindex or 2) - 2], data
        )
        return data if replaced == data else replaced


def _utf16(char: str) -> tuple[int, ...]:
    """The UTF-16 code units of ``char``, which JSON's ``\\u`` escapes spell."""
    code = ord(char)
    if code < 0x10000:
        return (code,)
    code -= 0x10000
    return (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))


def _spelt_char(char: str) -> bytes:
    """A pattern of ``char`` as a JSON string may spell it."""
    escape = b"".join(rb"\\u(?i:%04x)" % unit for unit in _utf16(char))
    slash = rb"|\\/" if char == "/" else b""
    return b"(?:%b|%b%b)" % (re.escape(char.encode()), escape, slash)


class UpstreamSecrets:
    """The values of one mirror's ${ENV} references, and the references that stand for them."""

    def __init__(self, values: Mapping[str, str], credentials: Iterable[str] = ()) -> None:
        """``values``: ${ENV} name -> value; ``credentials``: those names whose values are
        credentials (see MirrorConfig.credential_env)."""
        pairs: dict[str, str] = {}
        for name, value in values.items():
            if len(value) < MIN_SECRET:
                continue
            reference = f"${{{name}}}"
            pairs[value] = reference
            pairs.setdefault(quote(value, safe=""), quote(reference, safe=""))
        self._values = bool(pairs)
        # Longest first: a value holding another is replaced whole; values before escapes,
        # which take one character, so that an escape never cuts a value.
        pairs = dict(sorted(pairs.items(), key=lambda pair: len(pair[0]), reverse=True))
        patterns = [*map(re.escape, pairs), *(pattern for pattern, *_ in _ESCAPES)]
        self._hide = _Replace(
            "|".join(patterns),
            {**pairs, **{char: escape for _p, char, escape, _t in _ESCAPES}},
            {**pairs, **{text: escape + text[1:] for _p, _c, escape, text in _ESCAPES}},
        )
        self._spellings = _JsonSpellings(pairs)
        references = {reference: value for value, reference in pairs.items()}
        references |= {escape: char for _p, char, escape, _t in _ESCAPES}
        self._reveal = _Replace("|".join(map(re.escape, references)), references, references)
        # What no published record may hold.
        self.in_records = SecretSearch(
            value for name in credentials if len(value := values.get(name, "")) >= MIN_CREDENTIAL
        )

    @classmethod
    def of(cls, mirror: MirrorConfig, environ: Mapping[str, str] | None = None) -> UpstreamSecrets:
        env = os.environ if environ is None else environ
        values = {name: env[name] for name in mirror.secret_env if name in env}
        return cls(values, mirror.credential_env)

    @classmethod
    def of_url(cls, url: str, environ: Mapping[str, str] | None = None) -> UpstreamSecrets:
        """The secrets of a URL other than a mirror's, as channels.yaml writes it (an advisory
        feed's): every ${ENV} value it takes."""
        env = os.environ if environ is None else environ
        return cls({name: env[name] for name in ENV_REF_RE.findall(url) if name in env})

    def __bool__(self) -> bool:
        return self._values

    def hide(self, data: bytes) -> bytes:
        """``data`` with each value written as its reference, and what could be read as one
        escaped; the same object when it holds neither."""
        return self._hide.bytes(data)

    def hide_document(self, data: bytes) -> bytes:
        """:meth:`hide` for a JSON document, where a value may be spelt with JSON's escapes
        too: spelt so, it is written as its reference as well, which :meth:`reveal` fills in
        as the value is, so that the document decodes as it did (a value holding a character
        JSON must escape, or a ``$``, is left as it is spelt). The same object when it holds
        none of them."""
        return self._spellings.bytes(self.hide(data))

    def reveal(self, data: bytes) -> bytes:
        """What :meth:`hide` gave, as it was (the same object when it holds no reference)."""
        return self._reveal.bytes(data)

    def hide_text(self, text: str) -> str:
        """:meth:`hide` for text (a URL)."""
        return self._hide.text(text)

    def reveal_text(self, text: str) -> str:
        """:meth:`reveal` for text (a URL)."""
        return self._reveal.text(text)

    def hide_validator(self, value: str | None) -> str | None:
        """:meth:`hide` for a validator kept one character per byte, as it came (see
        sitegen.net.upstream.validator): a value is found as the bytes upstream sends."""
        return _per_byte(value, self.hide, self.hide_text)

    def reveal_validator(self, value: str | None) -> str | None:
        """:meth:`reveal` for what :meth:`hide_validator` gave."""
        return _per_byte(value, self.reveal, self.reveal_text)


def _per_byte(
    value: str | None, on_bytes: Callable[[bytes], bytes], on_text: Callable[[str], str]
) -> str | None:
    if value is None:
        return None
    try:
        return on_bytes(value.encode("latin-1")).decode("latin-1")
    except UnicodeEncodeError:  # not one byte per character: kept by an older version
        return on_text(value)
