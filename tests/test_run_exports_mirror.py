"""CEP-12 ``run_exports.json``: what a mirror publishes of the one upstream serves beside its
repodata, over real mirror runs against an HTTP upstream: the entries of the records it
publishes, as upstream changes or serves a broken one; verify, a credential in the mirror's
URL, an approval-gated and a frozen channel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard

from sitegen.cli import main
from sitegen.conda.run_exports import REASON_NOT_SPECS
from sitegen.tools.example_channel import write_channel
from sitegen.tools.verify import verify_site
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.run_exports import (
    ALPHA_CONDA,
    ALPHA_TAR,
    BETA,
    GAMMA,
    KEPT,
    exports_config,
    mirror_once,
    published_exports,
    serve_exports,
    upstream_document,
    withdraw_exports,
)
from testkit.small_channel import CHANNEL, small_packages
from testkit.upstream import UpstreamServer


@pytest.mark.integration
@pytest.mark.parametrize("variants", ["zst", "plain", "both"])
async def test_the_entries_of_the_published_records_are_published(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path, variants: str
) -> None:
    """Only the records the subdir publishes: not the one the filters leave out, nor one
    upstream does not list; an entry that is not sound is left out, with a warning."""
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=variants != "plain", plain=variants != "zst")
    config = exports_config(tmp_path, server.url)
    report = await mirror_once(config)
    assert published_exports(config) == KEPT
    assert published_exports(config, "noarch") is None  # upstream serves none there
    (warning,) = report.mirrors[0].warnings
    assert "linux-64: run_exports.json: left out 1 entry that is not sound" in warning
    assert REASON_NOT_SPECS in warning
    repodata = json.loads((config.output / CHANNEL / "linux-64" / "repodata.json").read_bytes())
    assert GAMMA not in repodata["packages"]


@pytest.mark.integration
async def test_changed_or_withdrawn_upstream_while_the_repodata_stays(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """Nothing else changes upstream: the run still publishes the new run_exports.json, and
    removes the published one once upstream serves none."""
    root, server = small_upstream
    config = exports_config(tmp_path, server.url)
    await mirror_once(config)
    assert published_exports(config) is None
    serve_exports(root, upstream_document(), zst=True)
    await mirror_once(config)
    assert published_exports(config) == KEPT
    changed = upstream_document()
    changed["packages.conda"][BETA] = {"run_exports": {"weak_constrains": ["beta <3"]}}
    serve_exports(root, changed, zst=True)
    await mirror_once(config)
    assert published_exports(config)["packages.conda"][BETA] == changed["packages.conda"][BETA]
    withdraw_exports(root)
    await mirror_once(config)
    assert published_exports(config) is None


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"packages": []}', "is not a JSON object"),
    ],
)
async def test_a_broken_one_is_skipped_with_a_warning(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path, body: bytes, why: str
) -> None:
    """The subdir is published all the same, without one (one published before goes)."""
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=False)
    config = exports_config(tmp_path, server.url)
    await mirror_once(config)
    assert published_exports(config) == KEPT
    serve_exports(root, body, zst=False)
    report = await mirror_once(config)
    assert published_exports(config) is None
    (warning,) = report.mirrors[0].warnings
    assert warning.startswith("linux-64: run_exports.json: ") and why in warning
    assert "published without it" in warning
    assert report.channels and all(c.status != "failed" for c in report.channels)


@pytest.mark.integration
async def test_a_broken_zst_is_skipped_with_a_warning(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    root, server = small_upstream
    (root / "linux-64" / "run_exports.json.zst").write_bytes(b"\x28\xb5\x2f\xfd garbage")
    config = exports_config(tmp_path, server.url)
    report = await mirror_once(config)
    assert published_exports(config) is None
    assert "run_exports.json.zst" in report.mirrors[0].warnings[0]


@pytest.mark.integration
async def test_a_passive_mirror_publishes_it_too(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=True)
    config = exports_config(tmp_path, server.url, "mode: passive\n")
    await mirror_once(config, passive=True)
    assert published_exports(config) == KEPT


@pytest.mark.integration
async def test_verify_checks_and_repairs_it(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=True)
    config = exports_config(tmp_path, server.url)
    await mirror_once(config)
    assert (await verify_site(config)).problems == []
    directory = config.output / CHANNEL / "linux-64"
    document, packed = directory / "run_exports.json", directory / "run_exports.json.zst"
    where = f"{CHANNEL}/linux-64"

    packed.write_bytes(zstandard.compress(b"{}"))
    found = [(p.path, p.detail) for p in (await verify_site(config)).problems]
    assert found == [(f"{where}/run_exports.json.zst", "does not hold run_exports.json")]
    assert (await verify_site(config, repair=True)).ok
    assert published_exports(config) == KEPT

    stray = json.loads(document.read_bytes())
    stray["packages"][GAMMA] = {"run_exports": {}}  # a file repodata.json does not list
    serve_exports(config.output / CHANNEL, stray, zst=True)  # (both files, as a run would)
    found = [(p.path, p.detail) for p in (await verify_site(config)).problems]
    why = f"lists 1 files not in repodata.json, e.g. {GAMMA}"
    assert found == [(f"{where}/run_exports.json", why)]
    assert (await verify_site(config, repair=True)).ok
    assert published_exports(config) == KEPT

    document.unlink()
    found = [(p.path, p.detail) for p in (await verify_site(config)).problems]
    assert found == [(f"{where}/run_exports.json.zst", "without run_exports.json")]
    assert (await verify_site(config, repair=True)).ok
    assert not packed.exists()
    assert (await verify_site(config)).problems == []


@pytest.mark.integration
async def test_an_entry_holding_the_mirror_s_credential_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nor is the credential kept anywhere under the site (the copy kept for conditional
    requests holds it as its ${ENV} reference)."""
    token = "tk-0123456789abcdef0123456789"
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    chan = tmp_path / "upstream" / "t" / token / "chan"
    write_channel(chan, small_packages(), zst=True)
    document = upstream_document()
    document["packages.conda"][BETA] = {"run_exports": {"weak": [f"beta ?token={token}"]}}
    document["packages"][ALPHA_TAR]["run_exports"]["weak"].append(f"see /t/{token}/")
    serve_exports(chan, document, zst=True)
    with UpstreamServer(tmp_path / "upstream") as server:
        url = f"{server.url}/t/${{SITEGEN_TEST_TOKEN}}/chan"
        config = exports_config(tmp_path, url)
        report = await mirror_once(config)
        published = published_exports(config)
        assert published is not None
        assert set(published["packages.conda"]) == {ALPHA_CONDA}
        assert published["packages"] == {}
        assert "2 holds a credential of the mirror's URL" in report.mirrors[0].warnings[0]
        await mirror_once(config)  # read back from the copy kept
        assert published_exports(config) == published
    for path in config.output.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


@pytest.mark.integration
def test_an_approval_gated_channel_publishes_the_entries_of_what_it_approves(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """The gated channel reads its source's published run_exports.json as its upstream: it
    publishes the entries of exactly the files approved."""
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=True)
    site = make_sandbox(tmp_path)
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        "download: {concurrency: 2, per_host: 2, retries: 1, timeout: 10}\n"
        "channels:\n"
        f"  {CHANNEL}:\n    url: {server.url}\n    subdirs: [linux-64]\n"
        "  internal/approved:\n"
        f"    approval: {{from: {CHANNEL}}}\n"
    )
    args = ["-c", str(config_path)]
    assert main(["mirror", *args, "--no-progress"]) == 0
    approve = ["approve", "internal/approved", "alpha", *args, "--by", "a", "--reason", "r"]
    assert main(approve) == 0
    assert_site_invariant(site)
    gated = site / "internal/approved/linux-64"
    repodata = json.loads((gated / "repodata.json").read_bytes())
    assert {*repodata["packages"], *repodata["packages.conda"]} == {ALPHA_TAR, ALPHA_CONDA}
    body = (gated / "run_exports.json").read_bytes()
    assert zstandard.decompress((gated / "run_exports.json.zst").read_bytes()) == body
    assert json.loads(body) == {
        "info": {"subdir": "linux-64", "version": 1},
        "packages": KEPT["packages"],
        "packages.conda": {ALPHA_CONDA: KEPT["packages.conda"][ALPHA_CONDA]},
    }


@pytest.mark.integration
def test_a_frozen_channel_keeps_the_one_it_published(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """While frozen, neither a changed nor a withdrawn upstream run_exports.json reaches the
    site; once unfrozen, the next run publishes what upstream serves then."""
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=True)
    site = make_sandbox(tmp_path)
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        "channels:\n"
        f"  {CHANNEL}:\n    url: {server.url}\n    subdirs: [linux-64]\n"
        "    filters: {names: {exclude: [gamma]}}\n"
    )
    args = ["-c", str(config_path)]
    directory = site / CHANNEL / "linux-64"
    assert main(["mirror", *args, "--no-progress"]) == 0
    published = {
        n: (directory / n).read_bytes() for n in ("run_exports.json", "run_exports.json.zst")
    }
    assert main(["freeze", CHANNEL, *args, "--by", "a", "--reason", "r"]) == 0
    changed = upstream_document()
    changed["packages.conda"][BETA] = {"run_exports": {"weak": ["beta"]}}
    serve_exports(root, changed, zst=True)
    assert main(["mirror", *args, "--no-progress"]) == 0
    withdraw_exports(root)
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert {n: (directory / n).read_bytes() for n in published} == published
    serve_exports(root, changed, zst=True)
    assert main(["unfreeze", CHANNEL, *args]) == 0
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert_site_invariant(site)
    document = json.loads((directory / "run_exports.json").read_bytes())
    assert document["packages.conda"][BETA] == {"run_exports": {"weak": ["beta"]}}
