"""Private channels in the page models: the public report of a run names none of their
channels, mirrors, files or errors, and the landing model lists them by path and label only."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.access.pages import TOKEN_PLACEHOLDER
from sitegen.sync.report import (
    FAILED,
    AddedDependency,
    ApprovalChange,
    ChannelSubdirReport,
    MirrorReport,
    RunAccess,
    RunReport,
)
from sitegen.web.private import (
    CONSTRAINED_BY_HIDDEN,
    NEEDED_BY_HIDDEN,
    PRIVATE_ERRORS_ONLY,
    landing_private,
    public_report,
    token_snippet,
)
from sitegen.web.run import run_detail, run_summary
from testkit.private_pages import BASE, PRIVATE, PUBLIC, private_config

# The configuration's access, as the pages are rendered: one private and one public channel.
NOW = RunAccess(
    channels={PRIVATE: "private", PUBLIC: "public"}, mirrors={"licensed": "private", "ex": "public"}
)


@pytest.mark.unit
def test_public_report_drops_private_channels_mirrors_approvals_and_errors() -> None:
    report = RunReport(
        id="20261205T000000Z",
        started=1.0,
        mirrors=[MirrorReport("licensed", PRIVATE, "/srv"), MirrorReport("ex", PUBLIC, "u")],
        channels=[
            ChannelSubdirReport(channel=PRIVATE, subdir="linux-64", added=["acme-1-0.conda"]),
            ChannelSubdirReport(channel=PUBLIC, subdir="linux-64", added=["zlib-1-0.conda"]),
        ],
        errors=["licensed: upstream broke", f"{PRIVATE}: disk full", "ex: slow"],
        approvals=[ApprovalChange("approve", PRIVATE, "acme", "a", "w")],
    )
    public = public_report(report, NOW)
    assert [m.name for m in public.mirrors] == ["ex"]
    assert [c.channel for c in public.channels] == [PUBLIC]
    assert public.errors == ["ex: slow"] and public.approvals == []
    assert len(report.mirrors) == 2 and len(report.errors) == 3  # the original is left as is


@pytest.mark.unit
def test_public_report_names_no_hidden_file_a_dependency_was_added_for() -> None:
    """Rows of a shown mirror's added dependencies keep their reason when a shown channel's
    file needed them; otherwise the reason names no file. A row from a record written before
    rows noted the channel (no needed_by_channel) is told apart from neither: it keeps its
    reason only when the page hides no channel."""

    def row(fn: str, why: str, channel: str | None) -> AddedDependency:
        return AddedDependency("linux-64", fn, why, channel)

    rows = [
        row("zlib-1-0.conda", "needed by acme-1-0.conda (zlib)", PRIVATE),
        row("xz-1-0.conda", "needed by numpy-2-0.conda (xz)", PUBLIC),
        row("bz2-1-0.conda", "needed by acme-1-0.conda (bz2)", None),
        row("zstd-1-0.conda", "for a constraint of acme-1-0.conda (zstd <2)", PRIVATE),
    ]
    data = RunReport(
        id="20261205T000000Z",
        started=1.0,
        mirrors=[
            MirrorReport("licensed", PRIVATE, "/srv"),
            MirrorReport("ex", PUBLIC, "u", dependencies_added=rows),
        ],
    ).to_json()
    assert "needed_by_channel" not in data["mirrors"][1]["dependencies_added"][2]
    report = RunReport.from_json(data)  # needed_by_channel is optional in a record
    (ex,) = public_report(report, NOW).mirrors
    assert [(r.file, r.why) for r in ex.dependencies_added] == [
        ("zlib-1-0.conda", NEEDED_BY_HIDDEN),
        ("xz-1-0.conda", "needed by numpy-2-0.conda (xz)"),
        ("bz2-1-0.conda", NEEDED_BY_HIDDEN),
        ("zstd-1-0.conda", CONSTRAINED_BY_HIDDEN),
    ]
    model = run_detail(public_report(report, NOW))
    assert "acme" not in str(model) and PRIVATE not in str(model)
    (shown_rows,) = [m["dependencies_added_rows"]["items"] for m in model["mirror_details"]]
    # A row with no channel noted has none in the page model either, not the text "None".
    assert [r["needed_by_channel"] for r in shown_rows] == [None, PUBLIC, None, None]
    assert report.mirrors[1].dependencies_added == rows  # the original is left as is
    # With nothing hidden, every reason stays.
    everyone = RunAccess(channels={PUBLIC: "public"}, mirrors={"ex": "public"})
    shown = RunReport(id="r", started=1.0, mirrors=[MirrorReport("ex", PUBLIC, "u")])
    shown.mirrors[0].dependencies_added = rows
    assert public_report(shown, everyone).mirrors[0].dependencies_added == rows


@pytest.mark.unit
def test_public_report_leaves_out_the_only_names_and_removals_of_hidden_channels() -> None:
    gone = "internal/gone"  # configured no more, and the record is too old to say its access
    report = RunReport(
        id="20261205T000000Z",
        started=1.0,
        options={"only": ["licensed", "ex", "gone-source"], "remove": f"{gone}/linux-64"},
        mirrors=[MirrorReport("gone-source", gone, "u"), MirrorReport("ex", PUBLIC, "u")],
        errors=["ex: slow", "gone-source: HTTP 500"],
        approvals=[ApprovalChange("approve", "", "zlib", "a", "w")],  # no channel: hides nothing
    )
    public = public_report(report, NOW)
    assert public.options == {"only": ["ex"], "remove": ""} and public.removal
    assert [m.name for m in public.mirrors] == ["ex"]
    assert public.errors == ["ex: slow"] and len(public.approvals) == 1
    # A removal in a channel shown keeps its path.
    report.options = {"remove": f"{PUBLIC}/osx-64"}
    assert public_report(report, NOW).options == {"remove": f"{PUBLIC}/osx-64"}


@pytest.mark.unit
def test_a_run_failed_only_in_private_channels_says_so_publicly_without_naming_them() -> None:
    licensed = MirrorReport("licensed", PRIVATE, "/srv", errors=["linux-64: HTTP 500"])
    report = RunReport(
        id="20261205T000000Z",
        started=1.0,
        status=FAILED,
        mirrors=[licensed, MirrorReport("ex", PUBLIC, "u")],
        channels=[ChannelSubdirReport(channel=PRIVATE, subdir="linux-64", errors=["disk full"])],
        errors=[f"{PRIVATE}/linux-64: no space left"],
    )
    public = public_report(report, NOW)
    assert public.errors == [PRIVATE_ERRORS_ONLY] and public.status == FAILED
    summary = run_summary(public)
    assert summary["all_errors"] == [PRIVATE_ERRORS_ONLY]
    assert not any(word in str(summary) for word in (PRIVATE, "licensed", "HTTP 500", "disk"))
    # A run that failed in a public channel too shows only its public errors, no note.
    report.errors.append("ex: slow")
    assert public_report(report, NOW).errors == ["ex: slow"]


@pytest.mark.unit
def test_landing_lists_private_channels_by_path_and_label_only(tmp_path: Path) -> None:
    config = private_config(tmp_path / "site", "https://example.org/up", tmp_path / "folder")
    model = {
        "channels": [
            {"path": PUBLIC, "page": f"{PUBLIC}/index.html", "summary": {"packages": 3}},
            {"path": PRIVATE, "page": f"{PRIVATE}/index.html", "summary": {"packages": 2}},
        ]
    }
    out = landing_private(model, config)
    assert out["channels"][1] == {
        "path": PRIVATE,
        "page": f"{PRIVATE}/index.html",
        "private": "private",
    }
    assert (
        out["channels"][0]["summary"] == {"packages": 3} and out["channels"][0]["private"] is None
    )
    (snippet,) = out["private_snippets"]
    assert snippet["channel"] == PRIVATE
    assert snippet["text"] == token_snippet(BASE, PRIVATE)
    assert f"{BASE.replace('/conda', '')}/conda/t/{TOKEN_PLACEHOLDER}/{PRIVATE}" in snippet["text"]
