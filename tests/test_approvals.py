"""Approvals: the file and its errors, the line-preserving editor, expiry, what is approved
(with the dependency closure), what waits, and the page models."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sitegen.approvals.commands import grant, waiting, withdraw
from sitegen.approvals.edit import add_entry, remove_entries
from sitegen.approvals.pages import approved_page, pending_page
from sitegen.conda.records import Repodata
from sitegen.conda.version import RecordMatcher
from sitegen.config import ConfigError, load_config, parse_config
from sitegen.config.approval_model import Approval, parse_expiry
from sitegen.config.approvals import parse_approvals
from sitegen.sync.approvals import approve, pending
from sitegen.sync.fetch import ParseResult
from sitegen.sync.gates import resolve_gates
from sitegen.sync.selection import close, select_all
from testkit.records import JAN_2024, rec

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 5, tzinfo=dt.UTC).timestamp()
GATED = "internal/approved"

CANDIDATES = {
    "linux-64": {
        r.fn: r
        for r in [
            rec(
                "numpy",
                "2.1.0",
                "py312_0",
                depends=["python >=3.12,<3.13", "libopenblas"],
                timestamp=JAN_2024 + 3,
            ),
            rec("numpy", "2.0.1", "py312_0", depends=["python >=3.12,<3.13"], timestamp=JAN_2024),
            rec("python", "3.12.4", timestamp=JAN_2024 + 1),
            rec("python", "3.11.9", timestamp=JAN_2024),
            rec("libopenblas", "0.3.27", depends=["zlib"], timestamp=JAN_2024 + 2),
            rec("zlib", "1.3.1", timestamp=JAN_2024),
            rec("readline", "8.2", timestamp=JAN_2024 + 5),
        ]
    },
    "noarch": {r.fn: r for r in [rec("pip", "24.0", subdir="noarch", depends=["python >=3.8"])]},
}


def entry(spec: str, **fields) -> Approval:
    values = {"by": "alice", "when": "2026-12-01T10:00:00Z", "why": "needed"} | fields
    return Approval(GATED, spec, **values)


def files(approved) -> set[str]:
    return {fn for _subdir, fn in approved.records}


# --------------------------------------------------------------------------- selection


def test_entries_approve_matches_and_with_dependencies_their_closure():
    matcher = RecordMatcher()
    plain = approve(CANDIDATES, [entry("numpy 2.1.0")], NOW, matcher)
    assert files(plain) == {"numpy-2.1.0-py312_0.conda"}
    assert plain.dependencies == {}
    deep = approve(CANDIDATES, [entry("numpy 2.1.0", with_dependencies=True)], NOW, matcher)
    assert files(deep) == {
        "numpy-2.1.0-py312_0.conda",
        "python-3.12.4-0.conda",
        "libopenblas-0.3.27-0.conda",
        "zlib-1.3.1-0.conda",
    }
    assert set(deep.dependencies) == {
        ("linux-64", "python-3.12.4-0.conda"),
        ("linux-64", "libopenblas-0.3.27-0.conda"),
        ("linux-64", "zlib-1.3.1-0.conda"),
    }
    # noarch ↔ platform: pip needs python from linux-64.
    both = approve(CANDIDATES, [entry("pip", with_dependencies=True)], NOW, matcher)
    assert ("linux-64", "python-3.12.4-0.conda") in both.records


def test_an_entry_by_checksum_approves_that_file():
    pinned = rec("zlib", "1.3.1", "h1_0", sha256="2" * 64)
    candidates = {"linux-64": {**CANDIDATES["linux-64"], pinned.fn: pinned}}
    approved = approve(candidates, [entry(f"zlib[sha256={'2' * 64}]")], NOW, RecordMatcher())
    assert files(approved) == {pinned.fn}


def test_a_spec_that_would_match_every_build_is_refused_by_approve(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text(CONFIG)
    with pytest.raises(ConfigError, match=r"\[fn=\.\.\.\]"):
        grant(lambda: load_config(path), GATED, "zlib[fn=zlib-1.3.1-0.conda]", by="a", why="b")
    assert not (tmp_path / "approvals.yaml").exists()


def test_expired_entries_approve_nothing():
    lapsed = entry("numpy", expires="2026-12-04")
    today = entry("readline", expires="2026-12-05")  # valid through that day
    approved = approve(CANDIDATES, [lapsed, today], NOW, RecordMatcher())
    assert files(approved) == {"readline-8.2-0.conda"}
    assert parse_expiry("2026-12-05") == NOW + 86400
    assert parse_expiry("2026-12-05T12:00:00Z") == NOW + 43200


def test_pending_lists_newest_first_with_what_approving_adds():
    matcher = RecordMatcher()
    approved = approve(CANDIDATES, [entry("python 3.12.4")], NOW, matcher)
    items = pending(CANDIDATES, approved, matcher, limit=2)
    assert [i.record.fn for i in items[:3]] == [
        "readline-8.2-0.conda",
        "numpy-2.1.0-py312_0.conda",
        "libopenblas-0.3.27-0.conda",
    ]
    assert items[0].would_add == ()
    # python 3.12.4 is approved already: only what is not yet approved is listed.
    assert items[1].would_add == (
        ("linux-64", "libopenblas-0.3.27-0.conda"),
        ("linux-64", "zlib-1.3.1-0.conda"),
    )
    assert items[2].would_add == ()  # past the limit: not worked out
    assert "python-3.12.4-0.conda" not in {i.record.fn for i in items}


def test_page_models():
    matcher = RecordMatcher()
    entries = [entry("numpy 2.1.0", with_dependencies=True), entry("zlib", expires="2026-01-01")]
    approved = approve(CANDIDATES, entries, NOW, matcher)
    page = approved_page(GATED, entries, approved, NOW)
    assert [(r.spec, r.expired, r.files) for r in page.rows] == [
        ("numpy 2.1.0", False, (("linux-64/numpy-2.1.0-py312_0.conda", ""),)),
        ("zlib", True, ()),
    ]
    assert page.rows[0].by == "alice" and page.rows[0].why == "needed"
    assert [f for f, _why in page.dependencies] == [
        "linux-64/libopenblas-0.3.27-0.conda",
        "linux-64/python-3.12.4-0.conda",
        "linux-64/zlib-1.3.1-0.conda",
    ]
    assert all(why.startswith("needed by") for _f, why in page.dependencies)
    waiting_page = pending_page(GATED, "cloud/forge", pending(CANDIDATES, approved, matcher))
    first = waiting_page.rows[0]
    assert (first.name, first.version, first.license, first.size) == (
        "readline",
        "8.2",
        "MIT",
        1000,
    )
    assert first.timestamp_ms == JAN_2024 + 5


# --------------------------------------------------------------------------- the file


FILE = """\
# Reviewed in pull requests.
- channel: internal/approved
  spec: numpy >=2
  by: alice
  when: "2026-11-01T09:00:00Z"
  why: forecasting
# zlib: needed by everything
- channel: internal/approved
  spec: zlib
  by: bob
  when: "2026-11-02T09:00:00Z"
  why: base
  with_dependencies: true
"""


def test_add_keeps_comments_and_sorts():
    new = add_entry(FILE, entry("python 3.12.*"), "approvals.yaml")
    assert new.startswith(
        "# Reviewed in pull requests.\n- channel: internal/approved\n  spec: numpy"
    )
    assert [e.spec for e in parse_approvals(new, "a")] == ["numpy >=2", "python 3.12.*", "zlib"]
    # The comment above zlib stays above zlib; nothing else changed.
    assert (
        '  why: "needed"\n# zlib: needed by everything\n- channel: internal/approved\n  spec: zlib'
        in new
    )
    assert new.replace("".join(_rendered("python 3.12.*")), "") == FILE
    again = add_entry(new, entry("numpy  >=2", by="carol"), "approvals.yaml")
    assert [(e.spec, e.by) for e in parse_approvals(again, "a")] == [
        ("numpy  >=2", "carol"),
        ("python 3.12.*", "alice"),
        ("zlib", "bob"),
    ]
    assert add_entry("", entry("zlib"), "a").startswith("# Approvals of approval-gated channels")


def _rendered(spec: str) -> list[str]:
    from sitegen.approvals.edit import render_entry

    return render_entry(entry(spec))


def test_remove_keeps_the_rest_as_it_was():
    new, removed = remove_entries(FILE, GATED, "numpy   >=2", "approvals.yaml")
    assert [e.spec for e in removed] == ["numpy >=2"]
    assert new == "# Reviewed in pull requests.\n" + FILE.split("why: forecasting\n", 1)[1]
    same, none = remove_entries(FILE, "other/channel", "zlib", "approvals.yaml")
    assert (same, none) == (FILE, [])


def test_a_spec_spelled_another_way_is_the_same_approval():
    """conda reads all of these as numpy >=2: approved in one spelling and revoked in another,
    a second entry would outlive the revocation and go on approving numpy."""
    again = add_entry(FILE, entry("NumPy>=2", by="carol"), "approvals.yaml")
    assert [(e.spec, e.by) for e in parse_approvals(again, "a")] == [
        ("NumPy>=2", "carol"),
        ("zlib", "bob"),
    ]
    for spelling in ("numpy>=2", "numpy[version='>=2']", "NumPy >= 2"):
        _new, removed = remove_entries(FILE, GATED, spelling, "approvals.yaml")
        assert [e.spec for e in removed] == ["numpy >=2"]
    # Another version range is another approval.
    _same, none = remove_entries(FILE, GATED, "numpy >=2.0.1", "approvals.yaml")
    assert none == []


def test_the_last_entry_of_a_file_opened_by_a_document_marker_can_be_revoked():
    """A file that begins with '---' (as many YAML files do) holds an empty document once its
    last entry is revoked: that reads as no approvals, and a new one can be added to it."""
    text = "---\n" + "".join(_rendered("zlib"))
    empty, removed = remove_entries(text, GATED, "zlib", "approvals.yaml")
    assert [e.spec for e in removed] == ["zlib"]
    assert empty == "---\n"
    assert parse_approvals(empty, "approvals.yaml") == ()
    again = add_entry(empty, entry("zlib"), "approvals.yaml")
    assert [e.spec for e in parse_approvals(again, "approvals.yaml")] == ["zlib"]


MULTILINE = """\
# header
- channel: internal/approved
  spec: numpy >=2
  by: alice
  when: "2026-11-01T09:00:00Z"
  why: |
    forecasting, see
    # the ticket, not a comment: text of the value
  # a note on numpy, after its last key
# zlib: needed by everything
- channel: internal/approved  # the base
  spec: zlib
  # bob asked in the standup
  by: bob
  when: "2026-11-02T09:00:00Z"
  why: "base
    # also text of the value"
  expires: "2027-01-01"  # until the rebuild

# approvals below are waiting for review:
# - channel: internal/approved
#   spec: openssl
"""


def _whys(text: str) -> dict[str, str]:
    return {e.spec: e.why for e in parse_approvals(text, "a")}


def test_an_edit_keeps_every_comment_where_it_was():
    footer = MULTILINE[MULTILINE.index("\n# approvals below") :]
    whys = _whys(MULTILINE)
    assert whys["numpy >=2"].endswith("# the ticket, not a comment: text of the value\n")
    # The last entry granted again: the comments after it stay at the end of the file, and its
    # own stay by their keys (one whose key the new entry lacks goes with the next key).
    again = add_entry(MULTILINE, entry("zlib", by="carol"), "approvals.yaml")
    assert again.endswith(footer)
    assert again.count("# approvals below are waiting for review:") == 1
    assert '- channel: "internal/approved"  # the base\n' in again
    assert '  # bob asked in the standup\n  by: "carol"\n' in again
    assert "  # until the rebuild\n" in again  # expires is gone, its comment is not
    assert _whys(again)["numpy >=2"] == whys["numpy >=2"]
    # Revoked: its own comments go with it, the file's footer stays.
    gone, removed = remove_entries(MULTILINE, GATED, "zlib", "approvals.yaml")
    assert [e.spec for e in removed] == ["zlib"]
    assert gone == MULTILINE[: MULTILINE.index("# zlib: needed")] + footer
    assert gone.endswith("#   spec: openssl\n")
    # The '#' line inside numpy's value is numpy's: revoking numpy takes it along, and
    # granting numpy again keeps it in the value (not above zlib, nor lost).
    gone, _ = remove_entries(MULTILINE, GATED, "numpy >=2", "approvals.yaml")
    assert "not a comment" not in gone and "a note on numpy" not in gone
    assert gone.startswith("# header\n# zlib: needed by everything\n- channel: internal")
    assert _whys(gone) == {"zlib": whys["zlib"]}
    kept = entry("numpy >=2", why=whys["numpy >=2"])
    again = add_entry(MULTILINE, kept, "approvals.yaml")
    assert _whys(again) == whys
    assert "  # a note on numpy, after its last key\n# zlib: needed by everything\n" in again
    assert again.endswith(footer) and again.startswith("# header\n- channel:")
    # A new entry sorted last goes in before the footer, which stays the file's end.
    last = add_entry(MULTILINE, entry("zstd"), "approvals.yaml")
    assert last.endswith(footer) and '"zstd"' in last[: last.index(footer)]


def test_an_edit_keeps_the_files_crlf_line_endings():
    """A file written on Windows stays CRLF: the lines an edit adds end as the file's own do,
    and the edit is otherwise the one an LF file gets."""
    for text in (FILE, MULTILINE):
        crlf = text.replace("\n", "\r\n")
        added = add_entry(crlf, entry("zlib", by="carol"), "approvals.yaml")
        assert added == add_entry(text, entry("zlib", by="carol"), "a").replace("\n", "\r\n")
        assert "\n" not in added.replace("\r\n", "")
        gone, removed = remove_entries(crlf, GATED, "zlib", "approvals.yaml")
        assert [e.spec for e in removed] == ["zlib"]
        assert gone == remove_entries(text, GATED, "zlib", "a")[0].replace("\n", "\r\n")
    # Unterminated last line, a file that was blank: the break added is the file's.
    last = "".join(_rendered("zlib")).replace("\n", "\r\n").removesuffix("\r\n")
    assert add_entry(last, entry("numpy"), "a").endswith("\r\n")
    assert "\n" not in add_entry("\r\n", entry("zlib"), "a").replace("\r\n", "")


def test_approve_and_revoke_write_a_crlf_file_back_as_crlf(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text(CONFIG)
    approvals = tmp_path / "approvals.yaml"
    approvals.write_bytes(FILE.replace("\n", "\r\n").encode())
    load = lambda: load_config(path)  # noqa: E731
    grant(load, GATED, "python 3.12.*", by="a", why="b", now=NOW)
    data = approvals.read_bytes()
    assert b"python 3.12.*" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert [e.spec for e in withdraw(load, GATED, "python 3.12.*")] == ["python 3.12.*"]
    assert approvals.read_bytes() == FILE.replace("\n", "\r\n").encode()


def test_approve_and_revoke_edit_a_file_that_opens_with_a_bom(tmp_path):
    """A byte order mark (which Windows editors write) is no YAML the file holds: runs read
    the file with it, and approve and revoke edit it as any other, keeping it first."""
    path = tmp_path / "channels.yaml"
    path.write_text(CONFIG)
    approvals = tmp_path / "approvals.yaml"
    entries = FILE.split("\n", 1)[1]  # the first line an entry's, right after the mark
    approvals.write_bytes(b"\xef\xbb\xbf" + entries.encode())
    load = lambda: load_config(path)  # noqa: E731
    grant(load, GATED, "aaa", by="a", why="b", now=NOW)  # sorted first, above that line
    data = approvals.read_bytes()
    assert data.startswith(b'\xef\xbb\xbf- channel: "internal/approved"\n  spec: "aaa"')
    assert data.count(b"\xef\xbb\xbf") == 1
    assert [e.spec for e in withdraw(load, GATED, "aaa")] == ["aaa"]
    assert approvals.read_bytes() == b"\xef\xbb\xbf" + entries.encode()


def test_a_file_in_another_layout_is_not_edited():
    flow = '[{channel: internal/approved, spec: zlib, by: a, when: "2026-01-01", why: b}]\n'
    with pytest.raises(ConfigError, match="edit it by hand"):
        add_entry(flow, entry("numpy"), "approvals.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- [", "approvals.yaml:1: not valid YAML"),
        # Unclosed at the end of the file: PyYAML's mark is past the last line.
        ("- channel: [a\n", "approvals.yaml:1: not valid YAML"),
        (FILE + "- {channel: a\n", "approvals.yaml:14: not valid YAML"),
        (
            FILE + "- {channel: a,\n   spec: b\n",
            "approvals.yaml:15: not valid YAML: expected ',' or '}', but got '<stream end>'"
            " (while parsing a flow mapping started on line 14)",
        ),
        (FILE + "- channel: 'a\n\n", "approvals.yaml:15: not valid YAML"),
        ("channel: x\n", "approvals.yaml:1: (top level): expected a list"),
        ("- channel: a\n", "approvals.yaml:1: [0]: missing required key 'spec'"),
        (
            FILE.replace("spec: zlib", "spec: zlib >>1"),
            "approvals.yaml:9: [1].spec: invalid MatchSpec 'zlib >>1'",
        ),
        (FILE.replace("spec: zlib", "spec: conda-forge::zlib"), "[1].spec: MatchSpec"),
        (FILE.replace("spec: zlib", "spec: zlib[fn=zlib-1.3.1-0.conda]"), "[1].spec: MatchSpec"),
        (FILE.replace('"2026-11-02T09:00:00Z"', "yesterday"), "[1].when: expected an ISO 8601"),
        (FILE + "  expires: soon\n", "approvals.yaml:14: [1].expires: expected a date"),
        (FILE + "  expires: '9999-12-31'\n", "approvals.yaml:14: [1].expires: expected a date"),
        ("[" * 5000 + "]" * 5000, "approvals.yaml: not valid YAML: nested too deeply"),
        (FILE.replace("with_dependencies: true", "with_dependencies: 3"), "expected true or false"),
        (FILE + "  who: me\n", "[1].who: unknown key 'who'"),
        (FILE.replace("by: bob", "by: '  '"), "approvals.yaml:10: [1].by: 'by' is blank"),
        (FILE.replace("why: base", 'why: " \\t"'), "approvals.yaml:12: [1].why: 'why' is blank"),
        (
            "- channel: a\n  spec: [x]\n  by: a\n  when: b\n  why: c\n",
            "[0].spec: expected a single",
        ),
    ],
)
def test_bad_approvals_files_name_line_and_key(text, message):
    with pytest.raises(ConfigError) as caught:
        parse_approvals(text, "approvals.yaml")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ('"2026-11-02T09:00:00Z"', "'L'", "approvals.yaml:11: [1].when: "),
        ("with_dependencies: true", "expires: 'L'", "approvals.yaml:13: [1].expires: "),
        ("spec: zlib", "spec: 'zlib >>L'", "approvals.yaml:9: [1].spec: "),
        ("spec: zlib", "spec: 'cL::zlib'", "approvals.yaml:9: [1].spec: "),
    ],
)
def test_a_long_value_of_an_approval_is_quoted_clipped(old: str, new: str, where: str) -> None:
    """100,000 characters pasted by mistake are quoted by their start and their length."""
    with pytest.raises(ConfigError) as caught:
        parse_approvals(FILE.replace(old, new.replace("L", "9" * 100_000)), "approvals.yaml")
    message = str(caught.value)
    assert message.startswith(where), message[:300]
    assert len(message) < 400, message[:400]
    assert "... (100,0" in message


# --------------------------------------------------------------------------- channels.yaml


CONFIG = """\
output: site
channels:
  cloud/forge:
    url: https://conda.example.org/forge
    subdirs: [linux-64, osx-64]
  internal/approved:
    approval: {from: cloud/forge}
"""


def test_gated_channel_takes_its_source_subdirs_and_its_entries(tmp_path):
    (tmp_path / "approvals.yaml").write_text(FILE)
    config = parse_config(CONFIG, base_dir=tmp_path)
    gated = config.channels[1]
    assert gated.approval is not None and gated.approval.source == "cloud/forge"
    assert [e.spec for e in gated.approval.entries] == ["numpy >=2", "zlib"]
    assert gated.mirrors[0].subdirs == ("linux-64", "osx-64", "noarch")
    assert gated.mirrors[0].name == "internal-approved"


@pytest.mark.parametrize(
    ("config", "approvals", "message"),
    [
        (CONFIG.replace("from: cloud/forge", "from: cloud/nowhere"), "", "is not another channel"),
        (CONFIG.replace("{from: cloud/forge}", "{}"), "", "missing required key 'from'"),
        (CONFIG + "    url: https://x.org/c\n", "", "unknown key 'url'"),
        (
            CONFIG,
            FILE.replace(
                "- channel: internal/approved\n  spec: zlib",
                "- channel: internal/aproved\n  spec: zlib",
            ),
            "approvals.yaml:8: channel: 'internal/aproved' is not an approval-gated channel",
        ),
        (CONFIG, "- [", "channels.yaml:7: channels.internal/approved.approval: bad approvals file"),
        (
            CONFIG + "    filters: {include_dependencies: true}\n",
            "",
            "channels.yaml:8: channels.internal/approved.filters: include_dependencies does not"
            " apply to an approval-gated channel",
        ),
    ],
)
def test_gate_errors(tmp_path, config, approvals, message):
    if approvals:
        (tmp_path / "approvals.yaml").write_text(approvals)
    with pytest.raises(ConfigError) as caught:
        parse_config(config, filename="channels.yaml", base_dir=tmp_path)
    assert message in str(caught.value)


def test_no_dependency_closure_puts_unapproved_files_into_a_gated_channel(tmp_path):
    # A site-wide include_dependencies, and another channel's closure finding a name in the
    # gated mirror first, both used to add files no entry approves.
    source = tmp_path / "site" / "cloud" / "forge" / "linux-64"
    source.mkdir(parents=True)
    offered = [rec("numpy", "2.1.0", depends=["libopenblas"]), rec("libopenblas"), rec("readline")]
    section = {r.fn: r.raw for r in offered}
    (source / "repodata.json").write_text(json.dumps({"packages.conda": section}))
    (tmp_path / "approvals.yaml").write_text(
        '- channel: internal/approved\n  spec: numpy\n  by: a\n  when: "2026-01-01"\n  why: b\n'
    )
    text = f"""\
output: {tmp_path / "site"}
filters: {{include_dependencies: true}}
channels:
  internal/approved:
    approval: {{from: cloud/forge}}
  cloud/forge:
    url: https://conda.example.org/forge
    subdirs: [linux-64]
    filters: {{names: {{include: [numpy]}}}}
  internal/builds:
    url: https://conda.example.org/builds
    subdirs: [linux-64]
"""
    config = resolve_gates(parse_config(text, base_dir=tmp_path), NOW)
    mirrors = [(c, m) for c in config.channels for m in c.mirrors]
    offers = {"internal-approved": offered, "cloud-forge": offered}
    offers["internal-builds"] = [rec("app", depends=["readline"])]
    parsed = {
        (m.name, subdir): ParseResult(
            Repodata(subdir, records={r.fn: r for r in offers[m.name] if r.subdir == subdir})
        )
        for _c, m in mirrors
        for subdir in m.subdirs
    }
    matcher = RecordMatcher()
    chosen = close(select_all(config, mirrors, set(offers), parsed, matcher), matcher)
    assert set(chosen.kept("internal-approved", "linux-64")) == {"numpy-2.1.0-0.conda"}
    # What the others need is pulled into the source channel instead.
    assert set(chosen.kept("cloud-forge", "linux-64")) == {r.fn for r in offered}


def test_grant_and_withdraw_check_before_writing(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text(CONFIG)
    load = lambda: load_config(path)  # noqa: E731
    with pytest.raises(ConfigError, match="not an approval-gated channel"):
        grant(load, "cloud/forge", "numpy", by="a", why="b")
    with pytest.raises(ConfigError, match="invalid MatchSpec"):
        grant(load, GATED, "numpy >>2", by="a", why="b")
    with pytest.raises(ConfigError, match="already past"):
        grant(load, GATED, "numpy", by="a", why="b", expires="2001-01-01")
    assert not (tmp_path / "approvals.yaml").exists()
    grant(load, GATED, "numpy", by="a", why="b", now=NOW)
    text = (tmp_path / "approvals.yaml").read_text()
    assert '  when: "2026-12-05T00:00:00Z"\n' in text
    assert [e.spec for e in load().channels[1].approval.entries] == ["numpy"]
    with pytest.raises(ConfigError, match=r"no approval of 'zlib'.*approved specs: 'numpy'"):
        withdraw(load, GATED, "zlib")
    assert [e.spec for e in withdraw(load, GATED, "numpy")] == ["numpy"]
    assert load().channels[1].approval.entries == ()
    assert waiting(load(), GATED) == ([], 0)  # nothing published in the source yet


def test_approving_a_spec_two_hand_written_entries_approve_is_refused_naming_them(tmp_path):
    """Each entry reads as an approval of its own: a grant replacing both would erase a
    reviewed entry, one replacing either would leave the other approving on its own terms."""
    path = tmp_path / "channels.yaml"
    path.write_text(CONFIG)
    twice = FILE + FILE.split("# zlib", 1)[0].removeprefix("# Reviewed in pull requests.\n")
    (tmp_path / "approvals.yaml").write_text(twice)
    load = lambda: load_config(path)  # noqa: E731
    assert [e.line for e in load().channels[1].approval.entries] == [2, 8, 14]
    with pytest.raises(ConfigError) as raised:
        grant(load, GATED, "numpy  >=2", by="carol", why="again", now=NOW)
    assert str(raised.value) == (
        f"{tmp_path / 'approvals.yaml'}:2: {GATED} approves 'numpy  >=2' in 2 entries"
        " (lines 2, 14): keep one of them by hand, or revoke them all, before approving it again"
    )
    assert (tmp_path / "approvals.yaml").read_text() == twice  # nothing written
    grant(load, GATED, "zlib", by="carol", why="again", now=NOW)  # one entry: replaced
    assert [(e.spec, e.by) for e in load().channels[1].approval.entries] == [
        ("numpy >=2", "alice"),
        ("zlib", "carol"),
        ("numpy >=2", "alice"),
    ]
    assert [e.spec for e in withdraw(load, GATED, "numpy >=2")] == ["numpy >=2"] * 2


def test_an_approvals_file_that_cannot_be_written_is_a_configuration_error(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text(CONFIG.replace("{from: cloud/forge}", "{from: cloud/forge, file: no/a.yaml}"))
    with pytest.raises(ConfigError, match=r"no/a\.yaml: cannot write the approvals file"):
        grant(lambda: load_config(path), GATED, "numpy", by="a", why="b", now=NOW)
    assert not (tmp_path / "no").exists()


def test_huge_or_binary_approvals_files_are_refused(tmp_path, monkeypatch):
    from sitegen.config import approvals

    monkeypatch.setattr(approvals, "MAX_FILE_BYTES", 64)
    (tmp_path / "approvals.yaml").write_text(FILE)
    with pytest.raises(ConfigError, match=r"approval: bad approvals file: .*larger than"):
        parse_config(CONFIG, base_dir=tmp_path)
    monkeypatch.undo()
    (tmp_path / "approvals.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"approval: bad approvals file: .*not UTF-8"):
        parse_config(CONFIG, base_dir=tmp_path)


def test_a_gated_channel_can_be_frozen_and_filtered(tmp_path):
    text = CONFIG + "    frozen: true\n    filters: {names: {exclude: [readline]}}\n"
    gated = parse_config(text, base_dir=tmp_path).channels[1]
    assert gated.frozen and gated.filters.exclude_names == ("readline",)
    assert gated.approval is not None and gated.approval.entries == ()


def test_approvals_granted_at_once_are_all_kept(tmp_path, monkeypatch):
    # A second `sitegen approve` runs while the first is between reading the file and writing
    # it back: the file must end with both entries, not only the last one written.
    import threading

    from sitegen.approvals import commands

    path = tmp_path / "channels.yaml"
    path.write_text(CONFIG)
    load = lambda: load_config(path)  # noqa: E731
    real_add = commands.add_entry
    others: list[threading.Thread] = []

    def add_entry_meanwhile(text, new, name):
        if not others:
            other = threading.Thread(
                target=grant, args=(load, GATED, "zlib"), kwargs={"by": "b", "why": "c", "now": NOW}
            )
            others.append(other)
            other.start()
            other.join(timeout=2)  # done at once without a lock; blocked until we finish with one
        return real_add(text, new, name)

    monkeypatch.setattr(commands, "add_entry", add_entry_meanwhile)
    grant(load, GATED, "numpy", by="a", why="b", now=NOW)
    others[0].join()
    assert [e.spec for e in load().channels[1].approval.entries] == ["numpy", "zlib"]


def test_withdraw_without_an_approvals_file_leaves_none(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text(CONFIG)
    with pytest.raises(ConfigError, match="no approval of 'zlib'"):
        withdraw(lambda: load_config(path), GATED, "zlib")
    assert not (tmp_path / "approvals.yaml").exists()


def _site_publishing_numpy(tmp_path):
    """channels.yaml of a site whose source channel publishes (the record of) numpy."""
    numpy = CANDIDATES["linux-64"]["numpy-2.1.0-py312_0.conda"]
    source = tmp_path / "site" / "cloud" / "forge" / "linux-64"
    source.mkdir(parents=True)
    repodata = {"info": {"subdir": "linux-64"}, "packages": {}, "packages.conda": {}}
    repodata["packages.conda"][numpy.fn] = numpy.raw
    (source / "repodata.json").write_text(json.dumps(repodata))
    config = tmp_path / "channels.yaml"
    config.write_text(CONFIG.replace("output: site", f"output: {tmp_path / 'site'}"))
    return config


def test_approving_a_spec_that_matches_nothing_says_so(tmp_path, caplog):
    from sitegen.cli import main

    config = _site_publishing_numpy(tmp_path)
    args = ["-c", str(config), "--by", "alice", "--reason", "r"]
    main(["approve", GATED, "nunpy", *args])
    assert "'nunpy' matches no package cloud/forge publishes now" in caplog.text
    caplog.clear()
    main(["approve", GATED, "numpy", *args])
    assert "matches no package" not in caplog.text
    assert (tmp_path / "approvals.yaml").read_text().count("- channel:") == 2


def test_approving_what_the_channels_own_filters_leave_out_says_it_publishes_nothing(
    tmp_path, caplog
):
    # The source publishes numpy, but the gated channel's own filters drop it: the approval is
    # kept (the filters may change), and the operator hears it publishes nothing now.
    from sitegen.cli import main

    config = _site_publishing_numpy(tmp_path)
    config.write_text(config.read_text() + "    filters: {names: {exclude: [numpy]}}\n")
    args = ["-c", str(config), "--by", "alice", "--reason", "r"]
    assert main(["approve", GATED, "numpy", *args]) == 0
    assert (
        "'numpy' matches 1 package of cloud/forge, but the channel's filters leave every one"
        " out: it publishes nothing"
    ) in caplog.text
    assert "matches no package" not in caplog.text
    assert (tmp_path / "approvals.yaml").read_text().count("- channel:") == 1
    caplog.clear()
    config.write_text(config.read_text().replace("[numpy]", "[zlib]"))
    main(["approve", GATED, "numpy >=2", *args])
    assert "publishes nothing" not in caplog.text


def test_a_revocation_is_recorded_as_the_revokers_not_the_approvers(tmp_path):
    import getpass

    from sitegen.cli import main
    from sitegen.store.site import Site
    from sitegen.sync.history import History

    config = _site_publishing_numpy(tmp_path)
    main(["approve", GATED, "numpy", "-c", str(config), "--by", "alice", "--reason", "needed"])
    main(["revoke", GATED, "numpy", "-c", str(config)])
    (revoked,) = History(Site(tmp_path / "site")).runs()[0].approvals
    assert revoked.action == "revoke"
    # Without --by and --reason: whoever ran it, no reason; never alice's approval reason.
    assert (revoked.by, revoked.why) == (getpass.getuser(), "")


def test_a_revokers_login_name_that_is_not_utf8_is_recorded_with_its_bytes_replaced(
    tmp_path, monkeypatch, capsys
):
    # Without --by: the login name, whose byte 0xf6 (a Latin-1 "Jörg") reaches Python as a
    # lone surrogate. Recorded with that byte replaced, not refused as if --by were given.
    import getpass

    from sitegen.cli import main
    from sitegen.store.site import Site
    from sitegen.sync.history import History

    config = _site_publishing_numpy(tmp_path)
    main(["approve", GATED, "numpy", "-c", str(config), "--by", "alice", "--reason", "needed"])
    monkeypatch.setattr(getpass, "getuser", lambda: "J\udcf6rg")
    assert main(["revoke", GATED, "numpy", "-c", str(config)]) == 0
    assert "--by" not in capsys.readouterr().err
    (revoked,) = History(Site(tmp_path / "site")).runs()[0].approvals
    assert revoked.by == "J\ufffdrg"


def test_text_that_is_not_utf8_is_refused_before_the_file_or_the_history_takes_it(tmp_path, capsys):
    # "Jörg" typed in a Latin-1 terminal: the byte 0xf6 reaches Python as a lone surrogate.
    from sitegen.cli import main

    config = _site_publishing_numpy(tmp_path)
    args = ["-c", str(config)]
    main(["approve", GATED, "numpy", *args, "--by", "alice", "--reason", "r"])
    before = (tmp_path / "approvals.yaml").read_text()
    assert 'spec: "numpy"' in before
    capsys.readouterr()
    assert main(["approve", GATED, "zlib", *args, "--by", "J\udcf6rg", "--reason", "r"]) == 2
    assert "--by b'J\\xf6rg': not UTF-8 text" in capsys.readouterr().err
    assert main(["revoke", GATED, "numpy", *args, "--by", "alice", "--reason", "\udcff"]) == 2
    assert "--reason b'\\xff': not UTF-8 text" in capsys.readouterr().err
    assert (tmp_path / "approvals.yaml").read_text() == before
    # Nothing of it reached the history: the pages still render.
    assert main(["render", *args]) == 0


@pytest.mark.parametrize(
    "why",
    [
        "pasted\x85from a mainframe",  # NEL: a line break inside a quoted YAML string
        "DEL\x7f and C1\x9b controls",  # refused by a YAML reader
        "Jörg’s 😀 \ufeff",  # as it is
    ],
)
def test_an_approval_reads_back_with_the_reason_it_was_given(tmp_path, why):
    from sitegen.cli import main

    config = _site_publishing_numpy(tmp_path)
    main(["approve", GATED, "numpy", "-c", str(config), "--by", "alice", "--reason", why])
    main(["approve", GATED, "zlib", "-c", str(config), "--by", "bob", "--reason", "b"])
    (numpy, zlib) = load_config(config).channels[1].approval.entries
    assert (numpy.spec, numpy.why, zlib.spec) == ("numpy", why, "zlib")


def test_an_approvals_file_that_is_a_link_is_edited_where_it_points(tmp_path):
    # Kept in a repository the team reviews, and linked beside channels.yaml.
    from sitegen.cli import main

    config = _site_publishing_numpy(tmp_path)
    (tmp_path / "repo").mkdir()
    kept = tmp_path / "repo" / "approvals.yaml"
    kept.write_text(FILE)
    (tmp_path / "approvals.yaml").symlink_to(kept)
    args = ["-c", str(config), "--by", "alice", "--reason", "r"]
    main(["approve", GATED, "python", *args])
    main(["revoke", GATED, "zlib", *args])
    assert (tmp_path / "approvals.yaml").is_symlink()
    approved = parse_approvals(kept.read_text(), "approvals.yaml")
    assert [e.spec for e in approved] == ["numpy >=2", "python"]
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["approvals.yaml"]
