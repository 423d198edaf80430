"""A record's licence read as an SPDX expression (``MIT OR Apache-2.0``,
``(MIT OR Apache-2.0) AND BSD-3-Clause``, ``GPL-2.0-or-later WITH Classpath-exception-2.0``),
so that the ``licenses`` filter judges each licence the expression names.

conda-forge writes SPDX expressions; older channels write free text (``BSD 3-Clause``,
``GPL v2 or later``). Both read the same way: the operators ``AND``, ``OR`` and ``WITH`` in any
case, parentheses, and every run of other words one licence. Text that is no expression
(unbalanced parentheses, an operator without an operand) still names the licences its words
do, for an exclude; but it grants none, so an include matches such text only whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
_NOT_WORDS = frozenset({"and", "or", "with", "(", ")"})
# Upstream writes the text: nesting past this is no licence, and must not exhaust the stack.
_MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Term:
    """One licence of an expression: ``licence`` alone, or ``licence WITH exception``."""

    licence: str
    exception: str | None = None

    def texts(self) -> tuple[str, ...]:
        # An exception only grants more than its licence: a glob naming the licence names it.
        if self.exception is None:
            return (self.licence,)
        return (f"{self.licence} with {self.exception}", self.licence)


@dataclass(frozen=True, slots=True)
class Either:
    """``a OR b``: the user may take any one part."""

    parts: tuple[Expression, ...]


@dataclass(frozen=True, slots=True)
class Both:
    """``a AND b``: every part applies."""

    parts: tuple[Expression, ...]


Expression = Term | Either | Both


def parse(text: str) -> Expression | None:
    """The expression of a lower-cased licence text; None when it is none."""
    tokens = _TOKEN.findall(text)
    parser = _Parser(tokens)
    try:
        expression = parser.either()
    except ValueError:
        return None
    return expression if parser.done() else None


def named(text: str) -> Iterator[str]:
    """Every licence a lower-cased licence text names, whichever parts a user takes, read
    word by word: so even text that is no expression (``(MIT OR AGPL-3.0``) names its
    licences, for an exclude to find."""
    words: list[str] = []
    for token in [*_TOKEN.findall(text), ")"]:
        if token not in _NOT_WORDS:
            words.append(token)
            continue
        if words:
            yield " ".join(words)
        if token == "with" and words:
            words.append(token)  # "licence with exception", then the licence alone
        else:
            words = []


def allowed(expression: Expression, match: Callable[[str], bool]) -> bool:
    """Whether the package may be used under licences that ``match`` accepts only: one part
    of each ``OR``, every part of each ``AND``."""
    if isinstance(expression, Term):
        return any(map(match, expression.texts()))
    if isinstance(expression, Either):
        return any(allowed(part, match) for part in expression.parts)
    return all(allowed(part, match) for part in expression.parts)


class _Parser:
    """Recursive descent over the tokens, ``AND`` binding tighter than ``OR`` (as SPDX)."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = tokens
        self._at = 0
        self._depth = 0

    def done(self) -> bool:
        return self._at == len(self._tokens)

    def _peek(self) -> str | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self, token: str) -> bool:
        if self._peek() == token:
            self._at += 1
            return True
        return False

    def either(self) -> Expression:
        parts = [self._both()]
        while self._take("or"):
            parts.append(self._both())
        return parts[0] if len(parts) == 1 else Either(tuple(parts))

    def _both(self) -> Expression:
        parts = [self._operand()]
        while self._take("and"):
            parts.append(self._operand())
        return parts[0] if len(parts) == 1 else Both(tuple(parts))

    def _operand(self) -> Expression:
        if self._take("("):
            self._depth += 1
            if self._depth > _MAX_DEPTH:
                raise ValueError("nested too deeply")
            inner = self.either()
            if not self._take(")"):
                raise ValueError("unbalanced parentheses")
            self._depth -= 1
            return inner
        licence = self._words()
        exception = self._words() if self._take("with") else None
        return Term(licence, exception)

    def _words(self) -> str:
        words: list[str] = []
        while (token := self._peek()) is not None and token not in _NOT_WORDS:
            words.append(token)
            self._at += 1
        if not words:
            raise ValueError("an operator without an operand")
        return " ".join(words)
