"""The approval round trip through the command line, a real nginx and py-rattler: what is not
approved does not resolve, approving with dependencies makes the environment install, revoking
takes it away again; and what approve and revoke say and record on the way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.layout import approved_page_path, run_page_path
from sitegen.store.site import Site
from sitegen.sync.history import History
from testkit.approvals import GATED, SOURCE, write_config
from testkit.client import solve_and_install, solve_only
from testkit.site import published
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


def test_a_revocation_the_deletion_guard_holds_names_the_command_and_force_delete_passes(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Held by the guard, a revocation has already left the approvals file: the guard's own
    advice ("run again") would find nothing to revoke, so the command to publish it is named;
    ``revoke --force-delete`` publishes at once."""
    config = write_config(tmp_path, example_upstream.url, max_fraction=0.5)
    args = ["-c", str(config)]
    site = tmp_path / "site"
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert main(["mirror", *args, "--no-progress"]) == 0
    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "r"]
    assert main([*approve, "--with-dependencies"]) == 0
    approved = published(site, GATED, "linux-64")
    assert approved

    caplog.clear()
    assert main(["revoke", GATED, "numpy 2.1.0", *args]) == 1
    assert published(site, GATED, "linux-64") == approved
    assert "numpy" not in (tmp_path / "approvals.yaml").read_text()
    assert "to publish it: sitegen mirror --only internal-approved --force-delete" in caplog.text

    assert main([*approve, "--with-dependencies"]) == 0
    assert main(["revoke", GATED, "numpy 2.1.0", *args, "--force-delete"]) == 0
    assert published(site, GATED, "linux-64") == set()


def test_approve_with_dependencies_installs_and_revoke_removes(
    example_upstream: ExampleUpstream, nginx_server_factory, tmp_path: Path, capsys
) -> None:
    config = write_config(tmp_path, example_upstream.url)
    args = ["-c", str(config)]
    site = tmp_path / "site"
    assert main(["mirror", *args, "--no-progress"]) == 0
    # The gated channel reads its source as published when a run starts: the second run sees it.
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert published(site, SOURCE, "linux-64")
    assert published(site, GATED, "linux-64") == set()
    nginx = nginx_server_factory(site)
    url = f"{nginx.url}/{GATED}"
    with pytest.raises(Exception, match=r"(?i)numpy"):
        solve_only([url], ["numpy"], cache_dir=tmp_path / "cache-0")

    capsys.readouterr()
    assert main(["pending", GATED, *args]) == 0
    listing = capsys.readouterr().out
    assert "linux-64/numpy-2.1.0-py312hf9d485c_0.conda" in listing
    assert "would add: linux-64/libopenblas-0.3.27-pthreads_hefa10cb_0.conda" in listing

    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "forecasting"]
    assert main([*approve, "--with-dependencies", "--expires", "2099-12-31"]) == 0
    entries = (tmp_path / "approvals.yaml").read_text()
    assert '- channel: "internal/approved"\n  spec: "numpy 2.1.0"\n  by: "alice"\n' in entries
    assert '  expires: "2099-12-31"\n  with_dependencies: true\n' in entries
    names = {fn.rsplit("-", 2)[0] for fn in published(site, GATED, "linux-64")}
    assert names == {"numpy", "python", "libopenblas", "zlib"}
    installed = solve_and_install([url], ["numpy"], tmp_path / "env", cache_dir=tmp_path / "c1")
    assert {p.name for p in installed} == {"numpy", "python", "libopenblas", "zlib"}
    assert all(p.url.startswith(f"{url}/linux-64/") for p in installed)
    latest = History(Site(site)).runs()[0]
    assert latest.to_json()["approvals"] == [
        {
            "action": "approve",
            "channel": GATED,
            "spec": "numpy 2.1.0",
            "by": "alice",
            "why": "forecasting",
            "expires": "2099-12-31",
            "with_dependencies": "true",
        }
    ]
    assert [m.name for m in latest.mirrors] == ["internal-approved"]
    # A lost file of the gated channel is repaired from its source channel.
    lost = site / GATED / "linux-64" / next(p.file_name for p in installed if p.name == "zlib")
    lost.unlink()
    assert main(["verify", *args, "--repair"]) == 0
    assert lost.is_file()

    assert main(["revoke", GATED, "numpy  2.1.0", *args, "--by", "bob", "--reason", "CVE"]) == 0
    assert published(site, GATED, "linux-64") == set()
    assert "numpy" not in (tmp_path / "approvals.yaml").read_text()
    with pytest.raises(Exception, match=r"(?i)numpy"):
        solve_only([url], ["numpy"], cache_dir=tmp_path / "cache-2")
    revoked = History(Site(site)).runs()[0].approvals
    assert [(r.action, r.by, r.why) for r in revoked] == [("revoke", "bob", "CVE")]
    record = json.loads((site / GATED / "linux-64" / "repodata.json").read_text())
    assert record["packages"] == {} and record["packages.conda"] == {}


def test_a_public_gated_channel_of_a_private_source_names_no_file_it_does_not_publish(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """Its approved page is public, its candidates the private source's packages: what the
    gated channel's filters leave out of them (zlib, by its licence) is published nowhere
    public, so the page names none of them, as it has no pending page."""
    config = write_config(tmp_path, example_upstream.url)
    text = config.read_text().replace("[linux-64]\n", "[linux-64]\n    access: private\n", 1)
    config.write_text(text + "    filters: {licenses: {exclude: [Zlib]}}\n")
    args, site = ["-c", str(config)], tmp_path / "site"
    for _ in range(2):  # the gated channel reads its source as published when a run starts
        assert main(["mirror", *args, "--no-progress"]) == 0
    approve = [*args, "--by", "alice", "--reason", "forecasting"]
    assert main(["approve", GATED, "numpy 2.1.0", *approve, "--with-dependencies"]) == 0
    assert main(["approve", GATED, "zlib 1.3.1", *approve]) == 0
    assert not any(fn.startswith("zlib-") for fn in published(site, GATED, "linux-64"))
    page = (site / approved_page_path(GATED)).read_text()
    assert "linux-64/libopenblas-0.3.27" in page  # published: public anyway
    assert "zlib-" not in page and "license excluded" not in page


def test_approve_and_revoke_on_a_frozen_gated_channel_say_nothing_is_published_yet(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The file changes, the channel does not: a revocation (a CVE, say) must not read as if
    the packages had left the channel while they are still served."""
    config = write_config(tmp_path, example_upstream.url)
    args, site = ["-c", str(config)], tmp_path / "site"
    for _ in range(2):
        assert main(["mirror", *args, "--no-progress"]) == 0
    who = ["--by", "alice", "--reason", "r"]
    assert main(["approve", GATED, "numpy 2.1.0", *args, *who]) == 0
    approved = published(site, GATED, "linux-64")
    assert main(["freeze", GATED, *args]) == 0

    caplog.clear()
    assert main(["revoke", GATED, "numpy 2.1.0", *args, *who]) == 0
    assert published(site, GATED, "linux-64") == approved
    frozen = f"{GATED} is frozen: the change is published when it is unfrozen"
    assert frozen in caplog.text
    caplog.clear()
    assert main(["approve", GATED, "python", *args, *who]) == 0
    assert frozen in caplog.text

    assert main(["unfreeze", GATED, *args]) == 0
    caplog.clear()
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert {fn.rsplit("-", 2)[0] for fn in published(site, GATED, "linux-64")} == {"python"}


def test_approving_a_package_without_what_it_needs_says_it_will_not_install(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Approved alone, numpy is published without python: a client of the gated channel finds
    nothing to solve it with, so the command says so rather than exiting in silence."""
    config = write_config(tmp_path, example_upstream.url)
    args = ["-c", str(config)]
    for _ in range(2):
        assert main(["mirror", *args, "--no-progress"]) == 0
    who = ["--by", "alice", "--reason", "r"]
    caplog.clear()
    assert main(["approve", GATED, "numpy 2.1.0", *args, *who]) == 0
    assert f"'numpy 2.1.0' needs what {GATED} does not publish: " in caplog.text
    assert "python >=3.12,<3.13.0a0" in caplog.text and "--with-dependencies" in caplog.text
    caplog.clear()
    assert main(["approve", GATED, "numpy 2.1.0", *args, *who, "--with-dependencies"]) == 0
    assert "does not publish" not in caplog.text


def test_a_secret_written_in_an_approvals_reason_is_hidden_on_the_pages_and_in_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reason is the operator's free text, shown on the approved page and the run's page
    and kept in the run's record (served as JSON): the value of a ${ENV} the configuration
    holds as a secret is hidden there, as it is in a freeze's reason."""
    from sitegen.tools.example_channel import example_packages, write_channel
    from testkit.upstream import UpstreamServer

    token, env = "tk-8c1f55d02e7a4b39", "SITEGEN_APPROVALS_TOKEN"
    monkeypatch.setenv(env, token)
    root = tmp_path / "upstream"
    write_channel(root / "t" / token / "chan", example_packages(seed=0), zst=True)
    with UpstreamServer(root) as server:
        config = write_config(tmp_path, f"{server.url}/t/${{{env}}}/chan")
        args, site = ["-c", str(config)], tmp_path / "site"
        for _ in range(2):
            assert main(["mirror", *args, "--no-progress"]) == 0
        why = f"built with {token} for the release"
        assert main(["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", why]) == 0
    assert published(site, GATED, "linux-64")
    page = (site / approved_page_path(GATED)).read_text()
    assert "built with *** for the release" in page
    run = History(Site(site)).runs()[0]
    assert [a.why for a in run.approvals] == ["built with *** for the release"]
    for path in (approved_page_path(GATED), run_page_path(run.id), f"history/runs/{run.id}.json"):
        assert token not in (site / path).read_text(), path
