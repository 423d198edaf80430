"""JSON read the way the standard library reads what msgspec refuses, for upstream repodata
that is JSON but for a few values: bytes that are not UTF-8, lone surrogate escapes, numbers
beyond a double (``1e999``), integers of more digits than Python turns into an int. Each such
value is read as something no published document may hold (a lone surrogate, an infinity),
so that the record or entry holding it is left out (see :mod:`sitegen.conda.records`), not
the whole document."""

from __future__ import annotations

import json
from typing import Any


def loads(data: bytes) -> Any:
    """``data`` (bytes, or a map of them) decoded: bad bytes become lone surrogates, numbers
    beyond a double and integers beyond ``sys.get_int_max_str_digits()`` infinities. Raises
    ValueError for what is not JSON, RecursionError for what is nested too deeply."""
    return json.loads(str(data, "utf-8", "surrogateescape"), parse_int=_int_or_infinite)


def _int_or_infinite(digits: str) -> int | float:
    # An integer ``int`` refuses to read (json.loads would then refuse the whole document)
    # means no number a record could: read as an infinity, it is refused as ``1e999`` is.
    try:
        return int(digits)
    except ValueError:
        return float(digits)


def has_bad_text(value: Any) -> bool:
    """True when value holds text that is not UTF-8 (a lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def has_bad_number(value: Any) -> bool:
    """True when value holds NaN or an infinity (only :func:`loads` produces them)."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return True
    return False


def sound(value: Any) -> bool:
    """True when value can be written out again as JSON in UTF-8."""
    return not has_bad_text(value) and not has_bad_number(value)
