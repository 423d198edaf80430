"""``licenses``: include and exclude records by licence and licence family glob."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sitegen.conda.records import Record
from sitegen.config.model import FilterSpec
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.exceptions import may_take_back
from sitegen.filters.kind import (
    Check,
    FilterContext,
    FilterKind,
    glob_matcher,
    parse_globs,
    show_fields,
)

REASON_LICENSE_MISSING = "license missing"
REASON_LICENSE_EXCLUDED = "license excluded"
REASON_LICENSE_NOT_INCLUDED = "license not included"
REASON_LICENSE_FAMILY = "license family excluded"
REASON_LICENSE_MALFORMED = "license malformed"


def parse(node: YamlNode) -> Mapping[str, object]:
    keys = node.mapping(("include", "exclude", "exclude_families", "allow_missing"))
    values: dict[str, object] = {}
    if "include" in keys:
        values["include_licenses"] = parse_globs(keys["include"], lower=True)
    if "exclude" in keys:
        values["exclude_licenses"] = parse_globs(keys["exclude"], lower=True)
    if "exclude_families" in keys:
        values["exclude_license_families"] = parse_globs(keys["exclude_families"], lower=True)
    if "allow_missing" in keys:
        values["allow_missing_license"] = keys["allow_missing"].boolean()
    return values


def check_level(spec: FilterSpec) -> Iterator[str]:
    if "*" in spec.exclude_licenses and not spec.allow_missing_license and not may_take_back(spec):
        yield "licenses.exclude '*' together with allow_missing: false excludes everything"


def predicate(spec: FilterSpec, context: FilterContext) -> Check | None:
    exclude = glob_matcher(spec.exclude_licenses, lower=True)
    include = glob_matcher(spec.include_licenses, lower=True)
    family = glob_matcher(spec.exclude_license_families, lower=True)
    allow_missing = spec.allow_missing_license
    if exclude is None and include is None and family is None and allow_missing:
        return None
    judge_license = exclude is not None or include is not None or not allow_missing
    # Imported when a run builds the filter: reading channels.yaml (status, mirror --due) does
    # without license-expression, a share of every sitegen process's start.
    from sitegen.filters.license_terms import read

    # A channel has few distinct licence strings, so decide each (license, family) pair once.
    decided: dict[tuple[Any, Any], str | None] = {}

    def decide(license_value: Any, family_value: Any) -> str | None:
        if judge_license:
            texts = _entries(license_value)
            if texts is None:
                return REASON_LICENSE_MALFORMED
            if not texts:
                if not allow_missing:
                    return REASON_LICENSE_MISSING
            # A glob matching the text whole is conda-mirror's reading, so ``*gpl*`` works as
            # it did there; the licences the text names are what a user means: ``AGPL*`` leaves
            # out ``Apache-2.0 AND AGPL-3.0-only``, and ``[MIT, Apache-2.0]`` takes
            # ``MIT OR Apache-2.0``.
            elif exclude is not None and (exclude(texts[0]) or read(texts[0]).names_any(exclude)):
                return REASON_LICENSE_EXCLUDED
            elif include is not None and not (include(texts[0]) or read(texts[0]).allowed(include)):
                return REASON_LICENSE_NOT_INCLUDED
        if family is not None:
            families = _entries(family_value)
            if families is None:
                return REASON_LICENSE_MALFORMED
            if any(map(family, families)):
                return REASON_LICENSE_FAMILY
        return None

    def check_license(record: Record, name: str) -> str | None:
        raw = record.raw
        key = (raw.get("license"), raw.get("license_family"))
        try:
            return decided[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value (see _entries): decide without caching
            return decide(*key)
        reason = decided[key] = decide(*key)
        return reason

    return check_license


def _entries(value: Any) -> tuple[str, ...] | None:
    """The licence (or family) a record's field names, stripped and lower-cased: none when it
    is absent, null or blank. Any other value than text is malformed: None. check_record
    refuses such a record (rattler cannot read it), but one kept past its upstream listing
    (keep_removed) was checked by an earlier sitegen that let it through; reading its value as
    missing would let it past every exclude."""
    if value is None:
        return ()
    if type(value) is not str:
        return None
    text = value.strip().lower()
    return (text,) if text else ()


KIND = FilterKind(
    "licenses",
    parse,
    show=show_fields(
        include="include_licenses",
        exclude="exclude_licenses",
        exclude_families="exclude_license_families",
        allow_missing="allow_missing_license",
    ),
    reasons=(
        REASON_LICENSE_MISSING,
        REASON_LICENSE_EXCLUDED,
        REASON_LICENSE_NOT_INCLUDED,
        REASON_LICENSE_FAMILY,
        REASON_LICENSE_MALFORMED,
    ),
    check_level=check_level,
    predicate=predicate,
)
