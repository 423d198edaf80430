"""Rows rendered through forms (sitegen.web.forms) are exactly what jinja2 renders from their
templates, for every shape of row and for text that must be escaped or made visible."""

from __future__ import annotations

import itertools

import markupsafe
import pytest

from sitegen.web.environment import TEMPLATES_DIR, build_environment
from sitegen.web.forms import BuildRow, ListingRow, VersionRow

pytestmark = pytest.mark.unit

# Plain text, text to escape, and a bidi override (shown as U+FFFD by the finalize).
TEXTS = ("h1234_0", "<b>\"x\"&'y'", "a\u202eb", "ünï")


def direct(env, template: str, name: str, row) -> str:
    return env.get_template(template).render({name: row})


def file_values(fmt: str, text: str, sha: bool, md5: bool, on_request: bool) -> tuple[str, ...]:
    fn = f"p-1-{text}{fmt}"
    return (
        fn,
        f"../linux-64/{fn}",
        "1000",
        "1.0 KB",
        text if sha else "",
        "b" * 32 if md5 else "",
        "yes" if on_request else "",
    )


def build_rows() -> list[BuildRow]:
    """Builds of every shape: each file format present or not, each optional value empty or
    not, with every kind of text in turn."""
    rows = []
    for conda, bz2, noarch, *kinds in itertools.product(*[(False, True)] * 6):
        for text in TEXTS:
            absent = ("",) * 7
            rows.append(
                BuildRow(
                    text,
                    text if noarch else "",
                    "linux-64",
                    "2024-01-02",
                    f"2 dependencies {text}",
                    *(file_values(".conda", text, *kinds) if conda else absent),
                    *(file_values(".tar.bz2", text, *kinds) if bz2 else absent),
                    ((("dep >=1", "dep.html"), (f"x {text}", None)), (f"c <{text}",)),
                )
            )
    return rows


def test_builds_through_forms_are_what_the_template_renders() -> None:
    env = build_environment(TEMPLATES_DIR)
    requirements = env.filters["requirements"]
    rows = build_rows()
    expected = "".join(
        direct(env, "_build.html", "b", row._replace(requirements=requirements(row.requirements)))
        for row in rows
    )
    versions = [VersionRow("v1", "1.0", "2024-01-02", rows), VersionRow("v2", "", "", rows[:3])]
    got = env.filters["version_rows"](versions)
    assert type(got) is markupsafe.Markup
    builds = env.filters["version_rows"].markup
    assert builds(rows) == expected
    assert got == "".join(
        direct(env, "_version.html", "v", v._replace(builds=builds(v.builds))) for v in versions
    )
    assert "<b>" not in got and "\u202e" not in got and "\ufffd" in got
    assert got.count('<span class="tag" title=') == expected.count('<span class="tag" title=') > 0
    # Every shape met made a form once.
    assert len(builds.forms) == len({tuple(not v for v in row[:-1]) for row in rows})


def test_listing_rows_through_forms_are_what_the_template_renders() -> None:
    env = build_environment(TEMPLATES_DIR)
    rows = [
        ListingRow(f"{t}.conda", f"{t}.conda", "1.0 KB", date, sha)
        for t in TEXTS
        for date in ("", "2024-01-02")
        for sha in ("", "a" * 64, t)
    ]
    got = env.filters["listing_rows"](rows)
    assert got == "".join(direct(env, "_listing_row.html", "f", row) for row in rows)
    assert "&lt;b&gt;" in got and "<b>" not in got


def test_a_value_that_is_no_text_is_printed_as_the_template_prints_it() -> None:
    """A row's values are text as the models make them; one that is not (a build or an md5
    of a number, in a site's repodata edited by hand) is printed as jinja2 would print it."""
    env = build_environment(TEMPLATES_DIR)
    requirements = env.filters["requirements"]
    (row,) = [r for r in build_rows() if r.conda_md5 and r.build == TEXTS[0]][:1]
    odd = row._replace(build=12, conda_md5=3.5, noarch=True)
    builds = env.filters["version_rows"].markup
    expected = direct(
        env, "_build.html", "b", odd._replace(requirements=requirements(odd.requirements))
    )
    assert builds([odd]) == expected
    assert "<code>12</code>" in expected and ">3.5</code>" in expected
