"""A record's licence read as an SPDX expression (``MIT OR Apache-2.0``,
``(MIT OR Apache-2.0) AND BSD-3-Clause``, ``GPL-2.0-or-later WITH Classpath-exception-2.0``) by
license-expression, so that the ``licenses`` filter judges each licence the expression names.

conda-forge writes SPDX expressions; older channels write free text (``BSD 3-Clause``,
``GPL v2 or later``). license-expression reads both the same way: the operators ``AND``, ``OR`` and
``WITH`` in any case, parentheses, and every run of other words one licence. Text it cannot read
(unbalanced parentheses, an operator without an operand, a ``/`` in a name, more than 32
parentheses) still names the licences its words do, for an exclude; but it grants none, so an
include matches such text only whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from license_expression import (
    AND,
    KW_WITH,
    OR,
    LicenseExpression,
    LicenseWithExceptionSymbol,
    Licensing,
)

_LICENSING = Licensing()
# Built here, once: license-expression builds it on first use, which two threads could race.
_TOKENIZER = _LICENSING.get_advanced_tokenizer()
# Upstream writes the text, and an expression is walked by recursion (here and in
# license-expression's own methods): more parentheses than this is no licence, and nesting them
# must not exhaust the stack.
_MAX_PARENTHESES = 32


@dataclass(frozen=True, slots=True)
class Terms:
    """What one licence text says: every licence it names, and its expression when it is one."""

    names: tuple[str, ...]
    expression: LicenseExpression | None  # None for text license-expression cannot read

    def names_any(self, match: Callable[[str], bool]) -> bool:
        """Whether ``match`` accepts any licence the text names, whichever parts a user takes:
        ``AGPL*`` names ``Apache-2.0 AND AGPL-3.0-only``, whose package carries AGPL code, and
        ``MIT OR GPL-3.0-only`` too, which a GPL clause still covers, and text that is no
        expression but names one (``(MIT OR AGPL-3.0``)."""
        return any(map(match, self.names))

    def allowed(self, match: Callable[[str], bool]) -> bool:
        """Whether the package may be used under licences that ``match`` accepts only: one part
        of each ``OR``, every part of each ``AND`` (``[MIT, Apache-2.0]`` takes
        ``MIT OR Apache-2.0`` and ``MIT OR GPL-3.0-only``, used as MIT, not
        ``MIT AND GPL-3.0-only``). Text that is no expression grants none."""
        return self.expression is not None and _allowed(self.expression, match)


# A channel writes a few thousand distinct licence texts, each read once across its records,
# subdirs and runs; the bound keeps a hostile upstream's unique texts from piling up.
@lru_cache(maxsize=8192)
def read(text: str) -> Terms:
    """The terms of a lower-cased licence text."""
    expression = _parsed(text)
    if expression is None:
        return Terms(_named(_TOKENIZER.tokenize(text)), None)
    names = tuple(name for symbol in expression.get_symbols() for name in _texts(symbol))
    return Terms(names, expression)


def _parsed(text: str) -> LicenseExpression | None:
    """The expression of the text; None when license-expression cannot read it."""
    if text.count("(") > _MAX_PARENTHESES:
        return None
    try:
        return _LICENSING.parse(text)
    # Not only ExpressionError: on some malformed text (``( )) MIT``, ``(OR MIT``) the parser
    # of boolean.py under it fails with an IndexError or an AssertionError. Upstream writes the
    # text, and whatever fails to read is no expression.
    except Exception:
        return None


def _named(tokens: Iterable[Any]) -> tuple[str, ...]:
    """Every licence the tokens of text that is no expression name. license-expression's parser
    refuses such text whole, and its own grouping of words into licences refuses a name with a
    character outside SPDX's (``MIT/X11``); an exclude must find a licence whatever surrounds
    it, so the tokenizer's words are joined here as the parser joins them: each run of them
    between operators or parentheses is one licence, ``licence WITH exception`` also that
    licence alone."""
    names: list[str] = []
    words: list[str] = []
    for token in [*tokens, None]:
        if token is not None and token.value is None:  # a word of a licence's name
            words.append(token.string)
            continue
        if words:
            names.append(" ".join(words))
        if token is not None and token.value == KW_WITH and words:
            words.append("with")
        else:
            words = []
    return tuple(names)


def _texts(symbol: LicenseExpression) -> tuple[str, ...]:
    """The texts a glob may name one licence of an expression by."""
    if isinstance(symbol, LicenseWithExceptionSymbol):
        # An exception only grants more than its licence: a glob naming the licence names it.
        licence = symbol.license_symbol.key
        return (f"{licence} with {symbol.exception_symbol.key}", licence)
    return (symbol.key,)


def _allowed(node: LicenseExpression, match: Callable[[str], bool]) -> bool:
    if isinstance(node, AND):
        return all(_allowed(part, match) for part in node.args)
    if isinstance(node, OR):
        return any(_allowed(part, match) for part in node.args)
    return any(map(match, _texts(node)))
