"""What of a package's own metadata is published: ``info/index.json`` as its repodata record,
less the keys that describe the machine it was built on and the one only the channel can
know, and the descriptive fields of
``info/about.json`` for ``channeldata.json`` and the pages; neither with anything that cannot
be written out as JSON in UTF-8.
"""

from __future__ import annotations

import json
from typing import Any

from sitegen.conda.record_check import REASON_BAD_FIELDS, REASON_BAD_TEXT
from sitegen.conda.schema import INDEXED_TIMESTAMP

# The descriptive fields of about.json that channeldata.json and the pages use.
ABOUT_FIELDS = (
    "summary",
    "description",
    "home",
    "dev_url",
    "doc_url",
    "doc_source_url",
    "source_url",
    "license",
    "license_family",
    "license_file",
)
# index.json keys conda-index leaves out of repodata: they describe the machine a package was
# built on or the old package format, no client reads them from repodata, and repodata served
# by conda-index (conda-forge, defaults) never carries them.
BUILD_KEYS = frozenset(
    {
        "arch",
        "platform",
        "has_prefix",
        "mtime",
        "ucs",
        "requires_features",
        "binstar",
        "target-triplet",
        "machine",
        "operatingsystem",
    }
)

# CEP-47's indexed_timestamp is when the channel first published the file (clients cut
# exclude-newer windows by it): the channel sets it, a package claiming one does not.
LEFT_OUT = BUILD_KEYS | {INDEXED_TIMESTAMP}


def published_index(index: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``index`` without :data:`LEFT_OUT`, the rest in its order."""
    return {key: value for key, value in index.items() if key not in LEFT_OUT}


def unwritable(value: Any) -> str | None:
    """Why ``value`` cannot be written out as JSON in UTF-8 (the reason upstream records get),
    or None when it can."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return REASON_BAD_TEXT
    except (ValueError, RecursionError):  # NaN or an infinity
        return REASON_BAD_FIELDS
    return None


def about_fields(about: Any) -> dict[str, Any]:
    """The descriptive fields, as text (license_file: a name or a list of names); a field
    that cannot be written out (a lone surrogate escape) is left out."""
    if not isinstance(about, dict):
        return {}
    out: dict[str, Any] = {}
    for key in ABOUT_FIELDS:
        value = about.get(key)
        if unwritable(value) is not None:
            continue
        if isinstance(value, str) and value.strip():
            out[key] = value
        elif key == "license_file" and isinstance(value, list):
            names = [v for v in value if isinstance(v, str)]
            if names:
                out[key] = names
    return out
