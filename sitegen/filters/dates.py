"""``dates``: mirror only records built in a date range (``after`` inclusive, ``before`` not)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime

from sitegen.conda.records import Record
from sitegen.conda.version import timestamp_ms
from sitegen.config.model import FilterSpec, MirrorConfig
from sitegen.config.yaml_nodes import YamlNode, shown_value
from sitegen.filters.kind import Check, FilterContext, FilterKind

REASON_TOO_OLD = "older than date range"
REASON_TOO_NEW = "newer than date range"


def parse_timestamp_ms(node: YamlNode) -> int:
    text = node.string()
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise node.error(f"expected a date like 2024-01-31, got {shown_value(text)}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        # The range is compared and shown in UTC: a time at the very ends of the calendar
        # whose offset takes it past them has no UTC equivalent.
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise node.error(
            f"{shown_value(text)} has no UTC time within the years 1 to 9999"
        ) from None
    return int(moment.timestamp() * 1000)


def parse(node: YamlNode) -> Mapping[str, object]:
    keys = node.mapping(("after", "before"))
    after = parse_timestamp_ms(keys["after"]) if "after" in keys else None
    before = parse_timestamp_ms(keys["before"]) if "before" in keys else None
    if after is not None and before is not None and after >= before:
        raise node.error("'after' must be earlier than 'before'")
    return {"after_ms": after, "before_ms": before}


def check_levels(levels: tuple[FilterSpec, ...], mirror: MirrorConfig) -> Iterator[str]:
    after = max((lv.after_ms for lv in levels if lv.after_ms is not None), default=None)
    before = min((lv.before_ms for lv in levels if lv.before_ms is not None), default=None)
    if after is not None and before is not None and after >= before:
        yield "the date ranges of its levels do not overlap"


def predicate(spec: FilterSpec, context: FilterContext) -> Check | None:
    after, before = spec.after_ms, spec.before_ms
    if after is None and before is None:
        return None

    def check_date(record: Record, name: str) -> str | None:
        stamp = timestamp_ms(record.raw)  # 0 when absent, so a missing one fails `after`
        if after is not None and stamp < after:
            return REASON_TOO_OLD
        if before is not None and stamp >= before:
            return REASON_TOO_NEW
        return None

    return check_date


def show(spec: FilterSpec) -> object:
    """The date range as channels.yaml writes it (ISO 8601, UTC)."""
    shown = {
        key: datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
        for key, ms in (("after", spec.after_ms), ("before", spec.before_ms))
        if ms is not None
    }
    return shown or None


KIND = FilterKind(
    "dates",
    parse,
    show=show,
    reasons=(REASON_TOO_OLD, REASON_TOO_NEW),
    check_levels=check_levels,
    predicate=predicate,
)
