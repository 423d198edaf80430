"""Approvals: ``sitegen approve`` and ``revoke`` on a site, what they say and what they record."""

from __future__ import annotations

import json

import pytest

from sitegen.config import load_config
from sitegen.config.approvals import parse_approvals
from testkit.approvals import CANDIDATES, CONFIG, FILE, GATED

pytestmark = pytest.mark.unit


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
