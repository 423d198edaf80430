"""A MatchSpec's ``license`` and ``license_family`` keys, matched as conda matches them.

conda compares them ignoring case, ``*`` standing for any run of characters (its
CaseInsensitiveStrMatch): ``gsl[license_family=gpl]`` is a GPL package, and
``[license="GPL-3.0*"]`` any GPL-3.0 variant. rattler compares them exactly, as written, so a
spec naming one in another case, or with a ``*``, would match nothing: these keys are taken
out of the spec rattler matches (:func:`split_canonical`) and matched here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

_TEXT_KEYS = ("license", "license_family")
# One key="value" of a canonical spec's brackets (rattler quotes every value).
_BRACKET_ITEM = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@lru_cache(maxsize=1 << 16)
def split_canonical(canonical: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A canonical spec without its licence keys, and those keys as (key, pattern)."""
    head, bracket, body = canonical.partition("[")
    if not bracket or not any(f'{key}="' in body for key in _TEXT_KEYS):
        return canonical, ()
    items = _BRACKET_ITEM.findall(body)
    texts = tuple((key, value) for key, value in items if key in _TEXT_KEYS)
    rest = ",".join(f'{key}="{value}"' for key, value in items if key not in _TEXT_KEYS)
    return (f"{head}[{rest}]" if rest else head), texts


def licences_match(
    texts: Iterable[tuple[str, str]], record: dict[str, Any], *, unreadable: bool = False
) -> bool:
    """Whether a record's licence fields match every (key, pattern) of a spec. An absent field
    never does. Nor does one that is not text (a list, in a record ``keep_removed`` kept from
    when upstream wrote one), which the licenses filter reads as malformed rather than entry
    by entry; ``unreadable`` counts it as matching instead, for an exclude."""
    for key, pattern in texts:
        value = record.get(key)
        if isinstance(value, str):
            if _text_pattern(pattern).fullmatch(value.lower()) is None:
                return False
        elif value is None or not unreadable:
            return False
    return True


def unreadable_licence(texts: Iterable[tuple[str, str]], record: dict[str, Any]) -> bool:
    """Whether a licence field these keys read is there but not text."""
    return any(not isinstance(record.get(key), str | None) for key, _ in texts)


def clear_caches() -> None:
    split_canonical.cache_clear()
    _text_pattern.cache_clear()


@lru_cache(maxsize=1 << 10)
def _text_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(map(re.escape, pattern.lower().split("*"))), re.DOTALL)
