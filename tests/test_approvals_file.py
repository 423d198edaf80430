"""Approvals: the file and its errors, and the editor that keeps its comments, layout and line
endings."""

from __future__ import annotations

import pytest

from sitegen.approvals.commands import grant, withdraw
from sitegen.approvals.edit import add_entry, remove_entries
from sitegen.config import ConfigError, load_config
from sitegen.config.approvals import parse_approvals
from testkit.approvals import CONFIG, FILE, GATED, NOW, entry

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- the file


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


@pytest.mark.parametrize(
    "empty",
    [
        "[]\n",
        "[]  # none yet\n",
        "--- []\n",
        "~\n",
        "null\n",
        "---\n...\n",
        "%YAML 1.1\n---\n# none yet\n...\n",
    ],
)
def test_an_approvals_file_written_empty_by_hand_takes_a_first_entry(empty):
    """An empty list, a null or a document end marker all read as no approvals: the first
    approval goes in their place, not after them where it would not be YAML."""
    assert parse_approvals(empty, "approvals.yaml") == ()
    added = add_entry(empty, entry("numpy"), "approvals.yaml")
    assert [e.spec for e in parse_approvals(added, "approvals.yaml")] == ["numpy"]
    assert "".join(_rendered("numpy")) in added
    for comment in ("# none yet", "%YAML 1.1"):
        assert added.count(comment) == empty.count(comment)


def test_a_file_ending_with_a_document_end_marker_is_emptied_and_filled_again():
    text = "---\n" + "".join(_rendered("zlib")) + "...\n"
    empty, _ = remove_entries(text, GATED, "zlib", "approvals.yaml")
    assert empty == "---\n...\n"
    again = add_entry(empty, entry("zlib"), "approvals.yaml")
    assert again == text


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


FLOW_ENTRY = '{channel: internal/approved, spec: xz, by: a, when: "2026-01-01", why: b}'


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"[{FLOW_ENTRY}]\n", 1),
        (f"{FILE}- {FLOW_ENTRY}\n", 14),  # one entry pasted in flow style
        (
            FILE.replace(
                "- channel: internal/approved\n  spec: zlib", "-\n  channel: x\n  spec: zlib"
            ),
            9,
        ),
        ("".join(f"  {line}" for line in FILE.splitlines(keepends=True)), 2),  # all indented
    ],
)
def test_a_file_in_another_layout_is_not_edited_and_the_line_to_fix_is_named(text, line):
    """Which entry is laid out otherwise is told by its line: in a long file edited by hand,
    "edit it by hand" alone leaves the operator looking for it."""
    for edit in (
        lambda: add_entry(text, entry("numpy"), "approvals.yaml"),
        lambda: remove_entries(text, GATED, "zlib", "approvals.yaml"),
    ):
        with pytest.raises(ConfigError, match="edit it by hand") as caught:
            edit()
        assert str(caught.value).startswith(f"approvals.yaml:{line}: "), str(caught.value)
        assert caught.value.line == line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- [", "approvals.yaml:1: [0]: not valid YAML"),
        # Unclosed at the end of the file: PyYAML's mark is past the last line.
        ("- channel: [a\n", "approvals.yaml:1: [0].channel: not valid YAML"),
        (FILE + "- {channel: a\n", "approvals.yaml:14: [2]: not valid YAML"),
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
