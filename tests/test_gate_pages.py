"""Approvals and advisories on the pages: an approval-gated channel's pending and approved
pages, the approvals and advisory changes of runs on run and history pages, and the advisories
affecting each version on package pages."""

from __future__ import annotations

import json
import os
import textwrap
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.config import SiteConfig, load_config
from sitegen.sync.report import (
    ApprovalChange,
    BlockedFile,
    MirrorReport,
    MirrorSubdirReport,
    RunReport,
)
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.web import gates, package_pages
from sitegen.web.environment import make_environment
from sitegen.web.forms import VersionRow
from sitegen.web.gates import approval_inputs, approval_pages, gate_changes, versions_of
from sitegen.web.render import render_site
from testkit.advisories import write_zlib_advisory
from testkit.upstream import ExampleUpstream

SOURCE, GATED = "cloud/example", "internal/approved"
OLD_ZLIB = "zlib-1.2.13-h446ffa6_0.conda"


def blocked(fn: str) -> BlockedFile:
    return BlockedFile("linux-64", fn, "TEST-1")


def judged(name: str, channel: str) -> MirrorReport:
    """A mirror's report whose run read and selected linux-64."""
    subdir = MirrorSubdirReport(upstream="fetched", records=3, kept=1, excluded={"x": 2})
    return MirrorReport(name, channel, "u", subdirs={"linux-64": subdir})


@pytest.mark.unit
def test_gate_changes_per_run_against_the_mirrors_previous_run() -> None:
    first = RunReport(id="1", started=1.0, mirrors=[judged("m", "c")])
    first.mirrors[0].advisories_blocked = [blocked("a-1-0.conda"), blocked("b-1-0.conda")]
    other = RunReport(id="2", started=2.0, mirrors=[MirrorReport("n", "d", "u")])
    second = RunReport(
        id="3",
        started=3.0,
        mirrors=[judged("m", "c")],
        approvals=[
            ApprovalChange("approve", "g", "numpy", "a", "w"),
            ApprovalChange("revoke", "g", "zlib", "b", "cve"),
        ],
    )
    second.mirrors[0].advisories_blocked = [blocked("b-1-0.conda"), blocked("c-1-0.conda")]
    out = gate_changes([second, other, first])  # newest first, as the history reads them
    (changes,) = out["3"]["advisory_changes"]
    assert [b.file for b in changes["blocked"]] == ["c-1-0.conda"]
    assert [b.file for b in changes["cleared"]] == ["a-1-0.conda"]
    assert out["3"]["gate_counts"] == {"granted": 1, "revoked": 1, "blocked": 1, "cleared": 1}
    assert [b.file for b in out["1"]["advisory_changes"][0]["blocked"]] == [
        "a-1-0.conda",
        "b-1-0.conda",
    ]
    assert out["2"]["advisory_changes"] == [] and out["2"]["approvals"] == []


@pytest.mark.unit
def test_run_pages_list_at_most_changes_max_files_and_count_them_all(monkeypatch) -> None:
    monkeypatch.setattr(gates, "CHANGES_MAX", 1)
    run = RunReport(id="1", started=1.0, mirrors=[judged("m", "c")])
    run.mirrors[0].advisories_blocked = [blocked("a-1-0.conda"), blocked("b-1-0.conda")]
    (changes,) = gate_changes([run])["1"]["advisory_changes"]
    assert [b.file for b in changes["blocked"]] == ["a-1-0.conda"]
    assert changes["counts"] == {"blocked": 2, "cleared": 0}


@pytest.mark.unit
def test_run_pages_show_an_approval_without_expiry_or_dependencies() -> None:
    # `sitegen approve` records neither key unless --expires or --with-dependencies was given.
    run = RunReport(
        id="1",
        started=1.0,
        approvals=[ApprovalChange("approve", "g", "zlib", "a", "w")],
    )
    model = gate_changes([run])["1"]
    macros = make_environment().get_template("_gates.html").make_module({"page": "run.html"})
    html = str(macros.run_gates(model))
    assert "granted" in html and "zlib" in html
    assert "with dependencies" not in html and "until" not in html


@pytest.mark.unit
def test_run_pages_hide_the_secrets_a_record_holds_in_who_approved_and_why() -> None:
    """A record written before changes were recorded through the configuration's scrub."""
    change = ApprovalChange("approve", "g", "zlib", "a SECRET", "for SECRET")
    run = RunReport(id="1", started=1.0, approvals=[change])
    (shown,) = gate_changes([run], lambda text: text.replace("SECRET", "***"))["1"]["approvals"]
    assert (shown.by, shown.why, shown.spec) == ("a ***", "for ***", "zlib")
    assert run.approvals == [change]  # the record itself is left as it is


@pytest.mark.unit
def test_package_pages_list_blocked_versions_after_the_shown_ones() -> None:
    model = {"versions": [VersionRow("v1", "1.3.1", "", []), VersionRow("v2", "1.2.13", "", [])]}
    assert versions_of(model, ["1.2.11", "1.2.13"]) == ["1.3.1", "1.2.13", "1.2.11"]


@pytest.mark.unit
def test_blocked_versions_follow_in_condas_order_newest_first() -> None:
    """Ordered as the shown ones are, not as strings: 1.2.10 between 1.2.11 and 1.2.9."""
    model = {"versions": [VersionRow("v1", "1.3.1", "", [])]}
    blocked = ["1.2.9", "1.2.10", "2.0", "1.2.11", "1.2.8"]
    assert versions_of(model, blocked) == ["1.3.1", "2.0", "1.2.11", "1.2.10", "1.2.9", "1.2.8"]


def gated_config(tmp_path: Path, upstream: str, source_access: str = "public") -> SiteConfig:
    write_zlib_advisory(tmp_path / "zlib.json")
    (tmp_path / "approvals.yaml").write_text(
        textwrap.dedent(
            f"""\
            - channel: "{GATED}"
              spec: "python"
              by: "alice"
              when: "2026-12-01T10:00:00Z"
              why: "the <b>interpreter</b>"
              expires: "2099-12-31"
            """
        )
    )
    config = tmp_path / "channels.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            output: {tmp_path / "site"}
            download: {{concurrency: 4, per_host: 4, retries: 1, timeout: 10}}
            channels:
              {SOURCE}:
                url: {upstream}
                subdirs: [linux-64, noarch]
                filters: {{advisories: {{files: [zlib.json], min_score: 7}}}}
                access: {source_access}
              {GATED}:
                approval: {{from: {SOURCE}}}
            """
        )
    )
    return load_config(config)


@pytest.fixture
async def gated_site(tmp_path: Path, example_upstream: ExampleUpstream) -> Path:
    config = gated_config(tmp_path, example_upstream.url)
    for _ in range(2):  # the gated channel reads its source as the run starts
        report = await run_mirror(config, MirrorOptions(progress=False))
        assert report.status == "completed", report.errors
    render_site(config)
    return tmp_path / "site"


@pytest.mark.integration
async def test_pending_and_approved_pages_of_a_gated_channel(gated_site: Path) -> None:
    pending = (gated_site / GATED / "approvals" / "pending.html").read_text()
    assert "numpy-2.1.0" not in pending  # rows, not file names
    row = pending.split("<b>numpy</b>", 1)[1].split("</tr>", 1)[0]
    assert "2.1.0" in row and "BSD-3-Clause" in row
    assert "linux-64/libopenblas-0.3.27-pthreads_hefa10cb_0.conda" in row  # would pull in
    assert "<b>python</b>" not in pending  # approved
    approved = (gated_site / GATED / "approvals" / "index.html").read_text()
    assert "alice" in approved and "2099-12-31" in approved
    assert "the &lt;b&gt;interpreter&lt;/b&gt;" in approved  # escaped
    channel = (gated_site / GATED / "index.html").read_text()
    assert 'href="approvals/pending.html"' in channel
    assert "approvals/" not in (gated_site / SOURCE / "index.html").read_text()


@pytest.mark.integration
async def test_package_pages_list_advisories_and_runs_what_they_blocked(gated_site: Path) -> None:
    page = (gated_site / SOURCE / "packages" / "zlib.html").read_text()
    advisories = page.split('id="advisories"', 1)[1].split("</section>", 1)[0]
    assert "TEST-ZLIB-1" in advisories and "CVE-2022-37434" in advisories
    assert "1.2.13" in advisories and "blocked" in advisories and "9.8" in advisories
    assert "1.3.1" not in advisories  # fixed there
    assert 'id="advisories"' not in (gated_site / SOURCE / "packages" / "numpy.html").read_text()
    history = json.loads((gated_site / "history" / "history.json").read_bytes())
    first = history["runs"][-1]["page"]
    run_page = (gated_site / first).read_text()
    changes = run_page.split("<h2>Advisories</h2>", 1)[1]
    assert f"linux-64/{OLD_ZLIB}" in changes.split("Newly cleared", 1)[0]
    assert "advisories: 2 newly blocked" in (gated_site / "history" / "index.html").read_text()


@pytest.mark.integration
async def test_worker_processes_list_the_advisories_a_run_judged_with(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sitegen mirror` renders with the configuration its run judged the records with (each
    advisory's versions parsed and indexed by then): the package pages' worker processes are
    sent its advisories all the same."""
    config = gated_config(tmp_path, example_upstream.url)
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    monkeypatch.setattr(package_pages, "PROCESSES_FROM", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    render_site(config)
    page = (tmp_path / "site" / SOURCE / "packages" / "zlib.html").read_text()
    advisories = page.split('id="advisories"', 1)[1].split("</section>", 1)[0]
    assert "TEST-ZLIB-1" in advisories and "blocked" in advisories


@pytest.mark.integration
async def test_approval_pages_are_rendered_again_only_when_their_inputs_change(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    config = gated_config(tmp_path, example_upstream.url)
    for _ in range(2):
        await run_mirror(config, MirrorOptions(progress=False))
    pages = {f"{GATED}/approvals/index.html", f"{GATED}/approvals/pending.html"}
    assert pages <= set(render_site(config).rendered)
    assert not pages & set(render_site(config).rendered)  # nothing changed
    # The entry expires: the same approvals file, another day.
    (gated,) = [c for c in config.channels if c.approval is not None]
    site = tmp_path / "site"
    now = time.time()
    later = now + 200 * 365 * 86400
    assert approval_inputs(site, gated, now) != approval_inputs(site, gated, later)
    assert [p.relpath for p in approval_pages(site, gated, later)] == sorted(pages)
    (approved, waiting) = approval_pages(site, gated, later)
    assert approved.model["rows"][0]["expired"] is True
    assert "python" in {row["name"] for row in waiting.model["rows"]}
    # A new approval: rendered again.
    with (tmp_path / "approvals.yaml").open("a") as handle:
        handle.write(
            f'- channel: "{GATED}"\n  spec: "zlib"\n  by: "bob"\n'
            '  when: "2026-12-02T10:00:00Z"\n  why: "compression"\n'
        )
    config = load_config(tmp_path / "channels.yaml")
    assert pages <= set(render_site(config).rendered)
    assert "compression" in (site / GATED / "approvals" / "index.html").read_text()


@pytest.mark.integration
async def test_a_gated_channel_whose_source_is_private_links_to_no_pending_page(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """The pending page of a public gated channel would list its private source's packages:
    there is none, and neither the channel's page nor its approved page links to it, also
    when the source turns private after the pages were rendered with the link."""
    site = tmp_path / "site"
    pending = site / GATED / "approvals" / "pending.html"
    pages = {
        "channel": site / GATED / "index.html",
        "approved": site / GATED / "approvals" / "index.html",
    }

    def linking() -> list[str]:
        return [name for name, path in pages.items() if 'pending.html"' in path.read_text()]

    private = gated_config(tmp_path, example_upstream.url, source_access="private")
    for _ in range(2):  # the gated channel reads its source as the run starts
        report = await run_mirror(private, MirrorOptions(progress=False))
        assert report.status == "completed", report.errors
    render_site(private)
    assert not pending.exists() and linking() == []
    public = gated_config(tmp_path, example_upstream.url)
    render_site(public)
    assert pending.exists() and linking() == ["channel", "approved"]
    render_site(private)
    assert not pending.exists() and linking() == []


class _FrozenNotes(HTMLParser):
    """The text of a page's freeze notes (``<p class="note frozen-note">``)."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []
        self._depth = 0  # of the elements open inside a note

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._depth:
            self._depth += 1
        elif tag == "p" and "frozen-note" in (dict(attrs).get("class") or "").split():
            self._depth = 1
            self.notes.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.notes[-1] += data


def frozen_notes(page: Path) -> list[str]:
    parser = _FrozenNotes()
    parser.feed(page.read_text(encoding="utf-8"))
    return [" ".join(note.split()) for note in parser.notes]


@pytest.mark.integration
async def test_the_pages_of_a_frozen_channel_say_since_when_and_by_whom_until_unfrozen(
    gated_site: Path, tmp_path: Path
) -> None:
    """`sitegen freeze` renders the channel's page and its approval pages again, saying so
    as `sitegen status` does; `sitegen unfreeze` takes it away. Other channels say nothing."""
    args = ["-c", str(tmp_path / "channels.yaml")]
    pages = [
        gated_site / GATED / "index.html",
        gated_site / GATED / "approvals" / "index.html",
        gated_site / GATED / "approvals" / "pending.html",
    ]
    assert [frozen_notes(page) for page in pages] == [[], [], []]

    reason = ["--reason", "release <b>2026.12</b>"]
    assert main(["freeze", GATED, *args, "--by", "alice", *reason]) == 0
    since = json.loads((gated_site / ".sitegen" / "frozen.json").read_bytes())
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(since["channels"][GATED]["when"]))
    said = f"Frozen since {when} by alice: release <b>2026.12</b>."
    (channel_note,) = frozen_notes(pages[0])
    assert channel_note.startswith(said) and "until it is unfrozen" in channel_note
    for page in pages[1:]:
        (note,) = frozen_notes(page)
        assert note.startswith(said) and "published then" in note
    assert "release &lt;b&gt;2026.12&lt;/b&gt;" in pages[0].read_text()  # escaped
    assert frozen_notes(gated_site / SOURCE / "index.html") == []

    assert main(["unfreeze", GATED, *args]) == 0
    assert [frozen_notes(page) for page in pages] == [[], [], []]
    assert "alice" not in pages[0].read_text()

    # Frozen by channels.yaml: no one is named (status names no one either).
    config = tmp_path / "channels.yaml"
    config.write_text(
        config.read_text().replace(
            "approval: {from: cloud/example}", "approval: {from: cloud/example}\n    frozen: true"
        )
    )
    assert main(["render", *args]) == 0
    assert [frozen_notes(page)[0].split(".")[0] for page in pages] == [
        "Frozen by frozen: true in the site's configuration"
    ] * 3
