"""Approvals: gated channels in channels.yaml and their errors, and grant and withdraw checking
before they write."""

from __future__ import annotations

import json

import pytest

from sitegen.approvals.commands import grant, waiting, withdraw
from sitegen.conda.records import Repodata
from sitegen.conda.version import RecordMatcher
from sitegen.config import ConfigError, load_config, parse_config
from sitegen.sync.fetch import ParseResult
from sitegen.sync.gates import resolve_gates
from sitegen.sync.selection import close, select_all
from testkit.approvals import CONFIG, FILE, GATED, NOW
from testkit.records import rec

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- channels.yaml


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


def test_an_approvals_file_made_read_only_is_not_replaced(tmp_path):
    """A file its operator made read-only (reviewed in a repository, changed there only) is
    refused as one that cannot be written: the rename that writes it needs no right to the
    file, and would replace it all the same."""
    path = tmp_path / "channels.yaml"
    path.write_text(CONFIG)
    approvals = tmp_path / "approvals.yaml"
    approvals.write_text(FILE)
    approvals.chmod(0o444)
    load = lambda: load_config(path)  # noqa: E731
    for edit in (
        lambda: grant(load, GATED, "python", by="a", why="b", now=NOW),
        lambda: withdraw(load, GATED, "zlib"),
    ):
        with pytest.raises(ConfigError, match=r"approvals\.yaml: cannot write the approvals file"):
            edit()
    assert approvals.read_text() == FILE
    assert approvals.stat().st_mode & 0o777 == 0o444


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
