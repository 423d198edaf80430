"""A filter kind registered from outside sitegen.filters: read from channels.yaml, applied,
shown by status, and refused when its key or a reason is taken."""

from __future__ import annotations

import pytest

from sitegen.conda.version import RecordMatcher
from sitegen.config import ConfigError, FilterSpec, YamlNode, parse_config
from sitegen.filters import apply as f
from sitegen.filters import registry
from sitegen.filters.apply import (
    apply_filters,
)
from sitegen.filters.kind import Check, FilterContext, FilterKind
from sitegen.tools.status_filters import level_filters
from testkit.filters import kept
from testkit.records import rec

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- a new filter kind

REASON_OLD_BUILD = "build number below minimum"


def _parse_build_numbers(node: YamlNode) -> dict[str, object]:
    keys = node.mapping(("min",))
    return {"min_build_number": keys["min"].integer(minimum=0)} if "min" in keys else {}


def _show_build_numbers(spec: FilterSpec) -> object:
    minimum = spec.setting("min_build_number")
    return None if minimum is None else {"min": minimum}


def _build_number_check(spec: FilterSpec, context: FilterContext) -> Check | None:
    minimum = spec.setting("min_build_number")
    if not isinstance(minimum, int):
        return None
    return lambda r, n: REASON_OLD_BUILD if r.raw["build_number"] < minimum else None


BUILD_NUMBERS = FilterKind(
    "build_numbers",
    _parse_build_numbers,
    show=_show_build_numbers,
    reasons=(REASON_OLD_BUILD,),
    predicate=_build_number_check,
)

YAML_WITH_BUILD_NUMBERS = """\
output: site
channels:
  cloud/x:
    url: https://conda.anaconda.org/x
    subdirs: [linux-64]
    filters:
      names: {exclude: [skipped]}
      build_numbers: {min: 2}
"""


@pytest.fixture
def build_numbers(monkeypatch: pytest.MonkeyPatch) -> FilterKind:
    """The kind registered for one test: the registry is restored afterwards."""
    monkeypatch.setattr(registry, "KINDS", registry.KINDS)
    return registry.register(BUILD_NUMBERS)


def test_a_registered_kind_is_parsed_from_yaml_and_applied(build_numbers: FilterKind) -> None:
    config = parse_config(YAML_WITH_BUILD_NUMBERS)
    channel = config.channels[0]
    mirror = channel.mirrors[0]
    assert mirror.filters.setting("min_build_number") == 2
    assert mirror.filters.exclude_names == ("skipped",)
    records = [
        rec("a", "1.0", "h_1", build_number=1),
        rec("a", "1.0", "h_2", build_number=2),
        rec("skipped", "1.0", "h_0", build_number=0),
        rec("b", "1.0", "h_3", build_number=3),
    ]
    levels = config.filter_levels(channel, mirror)
    result = apply_filters({r.fn: r for r in records}, "linux-64", levels, RecordMatcher())
    assert kept(result) == {"a-1.0-h_2.conda", "b-1.0-h_3.conda"}
    assert result.excluded == {
        "a-1.0-h_1.conda": REASON_OLD_BUILD,
        "skipped-1.0-h_0.conda": f.REASON_NAME,  # kinds check in registration order
    }
    # sitegen status shows it with the others, as channels.yaml writes it.
    assert level_filters(mirror.filters) == {
        "names": {"exclude": ["skipped"]},
        "build_numbers": {"min": 2},
    }


def test_a_registered_kind_reports_errors_with_line_and_key(build_numbers: FilterKind) -> None:
    text = YAML_WITH_BUILD_NUMBERS.replace("{min: 2}", "{min: two}")
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value) == (
        "channels.yaml:8: channels.cloud/x.filters.build_numbers.min:"
        " expected a whole number, got 'two'"
    )


def test_an_unregistered_kind_is_an_unknown_key() -> None:
    with pytest.raises(ConfigError, match="unknown key 'build_numbers'"):
        parse_config(YAML_WITH_BUILD_NUMBERS)


def test_a_kind_cannot_reuse_a_key_or_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "KINDS", registry.KINDS)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(FilterKind("names", _parse_build_numbers, _show_build_numbers))
    with pytest.raises(ValueError, match="reuses reasons"):
        registry.register(
            FilterKind("other", _parse_build_numbers, _show_build_numbers, reasons=(f.REASON_NAME,))
        )
