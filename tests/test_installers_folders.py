"""Installer folders mirrored with the channels: one failing alone, dry runs and --only,
folders taken out, and folders that are links or hold a repodata.json left alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import trio

from sitegen.cli import main
from sitegen.config import parse_config
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
)
from testkit.installer_site import (
    FILES,
    LATEST,
    MAC,
    OLD,
    config_file,
    config_text,
    downloads,
    example_channel,
    folder_report,
    make_config,
    mirror,
    on_disk,
    serve_installer_folder,
)
from testkit.installers import write_folder
from testkit.upstream import ExampleUpstream, UpstreamServer, respond

pytestmark = pytest.mark.integration

upstream = pytest.fixture(name="upstream")(serve_installer_folder)


def test_an_installer_upstream_down_fails_only_its_part(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    config_path = config_file(tmp_path, site, server.url, example_channel(example_upstream.url))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    published = on_disk(site)
    assert len(published) == 3

    server.add_fault("/miniconda/", respond(503))
    example_upstream.server.reset()
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 1
    (record,) = [
        json.loads(p.read_bytes())
        for p in (site / "history" / "runs").iterdir()
        if json.loads(p.read_bytes())["installers"][0]["status"] == FAILED
    ]
    assert record["status"] == FAILED
    assert "HTTP 503" in record["installers"][0]["errors"][0]
    assert record["installers"][0]["files"] == 3  # what it still holds
    assert not any(m["errors"] for m in record["mirrors"])  # the channel ran as ever
    assert example_upstream.server.count("repodata.json.zst") >= 1
    assert on_disk(site) == published  # what was published stays


def test_dry_run_and_only(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    config_path = config_file(tmp_path, site, server.url, example_channel(example_upstream.url))
    args = ["mirror", "-c", str(config_path), "--no-progress"]
    assert main([*args, "--dry-run", "--only", "miniconda"]) == 0
    out = capsys.readouterr().out
    assert "miniconda/: would download 3 files (at least" in out and "publish 3 files" in out
    assert not site.exists()
    assert downloads(server) == []
    assert example_upstream.server.requests == []  # --only: the channel was not read

    assert main([*args, "--only", "miniconda"]) == 0
    assert len(on_disk(site)) == 3
    assert example_upstream.server.requests == []
    assert not (site / "cloud" / "example" / "linux-64" / "repodata.json").exists()
    assert main([*args, "--only", "nothing-such"]) == 2
    assert "installer folders are: miniconda" in capsys.readouterr().err


def test_a_folder_taken_out_of_the_configuration_is_named_in_the_log(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    channels = example_channel(example_upstream.url)
    config_path = config_file(tmp_path, site, server.url, channels)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert "installer folder miniconda is still published" not in caplog.text
    config_path.write_text(config_text(site, server.url, channels=channels).split("installers:")[0])
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert "installer folder miniconda is still published" in caplog.text
    assert len(on_disk(site)) == 3  # left as it was: deleting it is the operator's call


@pytest.mark.parametrize(
    "target", ["cloud/example/linux-64", "cloud", ".", ".sitegen", "../other-disk"]
)
def test_a_folder_that_links_to_a_channel_or_the_site_or_out_of_it_is_left_alone(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    target: str,
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    channels = example_channel(example_upstream.url)
    config = make_config(site, server.url, channels=channels)
    (site / ".sitegen").mkdir(parents=True)
    (tmp_path / "other-disk").mkdir()
    (site / "miniconda").symlink_to(site / target)
    report = mirror(config)
    ir = folder_report(report)
    assert ir.status == FAILED and "miniconda is a link" in ir.errors[0]
    assert not any(m.errors for m in report.mirrors)
    assert (site / "cloud" / "example" / "linux-64" / "repodata.json").is_file()
    assert not any(site.rglob(LATEST)) and not any((tmp_path / "other-disk").iterdir())


@pytest.mark.parametrize(
    ("target", "page"),
    [("cloud/example/linux-64", "cloud/example/linux-64/index.html"), (".", "index.html")],
)
def test_the_page_of_a_folder_left_alone_is_not_written_through_its_link(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    target: str,
    page: str,
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    config_path = config_file(tmp_path, site, server.url, example_channel(example_upstream.url))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    title = (site / page).read_text().split("<title>")[1].split("</title>")[0]
    for path in (site / "miniconda").iterdir():
        path.unlink()
    (site / "miniconda").rmdir()
    (site / "miniconda").symlink_to(site / target)
    # The folder fails; its page, neither written nor removed, leaves the page there alone.
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 1
    assert main(["render", "-c", str(config_path)]) == 0
    assert (site / page).read_text().split("<title>")[1].split("</title>")[0] == title
    assert 'href="miniconda/index.html"' not in (site / "index.html").read_text()


def test_a_folder_that_links_to_another_installer_folder_is_left_alone(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    """Two folders that are one directory (the second made a link to the first) would each
    take the other's files for ones upstream no longer lists: the link is left alone, and so
    is everything of the first, in runs and in a verify --repair."""
    from sitegen.tools.verify import verify_site

    server, _folder = upstream
    site = tmp_path / "site"
    config = parse_config(
        config_text(site, server.url)
        + f"  other:\n    url: {server.url}/miniconda/\n    include: ['*.exe']\n"
    )
    assert not mirror(config).failed
    shutil.rmtree(site / "other")
    (site / "other").symlink_to(site / "miniconda")
    for options in ({}, {"force_delete": True}):
        report = mirror(config, **options)
        mine, other = report.installers
        assert mine.status == COMPLETED and not mine.removed, mine.errors
        assert other.status == FAILED, other
        assert "is a link to installer folder miniconda's directory" in other.errors[0]
        assert on_disk(site) == {n: FILES[n] for n in (OLD, MAC, LATEST)}
    verified = trio.run(verify_site, config, True)
    assert on_disk(site) == {n: FILES[n] for n in (OLD, MAC, LATEST)}
    assert [(p.path, p.kind, p.repaired) for p in verified.problems] == [
        ("other", "metadata", False)
    ]


def test_a_link_under_a_listed_name_is_replaced_never_followed(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    """A link left in the folder under an installer's name, leading out of the site: the
    verified file takes its name, what it leads to is never written, and the run goes on."""
    server, _folder = upstream
    site = tmp_path / "site"
    config = make_config(site, server.url)
    assert not mirror(config).failed
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not the site's")
    (site / "miniconda" / LATEST).unlink()
    (site / "miniconda" / LATEST).symlink_to(outside)
    report = mirror(config)
    ir = folder_report(report)
    assert not report.failed and ir.status == COMPLETED, (report.errors, ir.errors)
    assert ir.added == [LATEST] and not (site / "miniconda" / LATEST).is_symlink()
    assert on_disk(site) == {n: FILES[n] for n in (OLD, MAC, LATEST)}
    assert outside.read_bytes() == b"not the site's"


def test_a_folder_that_is_a_loop_of_links_fails_alone(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
) -> None:
    """A folder replaced by a link that loops leads nowhere: the folder fails saying so, while
    the channels publish, the pages render (the folder without one) and verify reports it."""
    from sitegen.tools.verify import verify_site

    server, _folder = upstream
    site = tmp_path / "site"
    channels = example_channel(example_upstream.url)
    config_path = config_file(tmp_path, site, server.url, channels)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    shutil.rmtree(site / "miniconda")
    (site / "miniconda").symlink_to(site / "miniconda")
    config = make_config(site, server.url, channels=channels)
    report = mirror(config)
    ir = folder_report(report)
    assert ir.status == FAILED and "a loop of symbolic links" in ir.errors[0], ir.errors
    assert not report.errors and not any(m.errors for m in report.mirrors)
    assert main(["render", "-c", str(config_path)]) == 0
    assert 'href="miniconda/index.html"' not in (site / "index.html").read_text()
    verified = trio.run(verify_site, config, False)
    assert [(p.path, p.kind) for p in verified.problems] == [("miniconda", "metadata")]
    assert "a loop of symbolic links" in verified.problems[0].detail


def test_a_folder_taken_out_loses_its_page_also_without_the_last_manifest(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
) -> None:
    """Without the last render's manifest, the page of a folder channels.yaml no longer names
    is found by the folder's state and goes as it does with the manifest (its files stay); one
    whose folder is now a link to a channel's subdir is not removed through the link."""
    server, _folder = upstream
    site = tmp_path / "site"
    channels = example_channel(example_upstream.url)
    config_path = config_file(tmp_path, site, server.url, channels)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert (site / "miniconda" / "index.html").is_file()
    manifest = site / ".sitegen" / "render" / "manifest.json"
    config_path.write_text(config_text(site, server.url, channels=channels).split("installers:")[0])
    manifest.unlink()
    assert main(["render", "-c", str(config_path)]) == 0
    assert not (site / "miniconda" / "index.html").exists()
    assert len(on_disk(site)) == 3

    shutil.rmtree(site / "miniconda")
    (site / "miniconda").symlink_to(site / "cloud" / "example" / "linux-64")
    manifest.unlink()
    assert main(["render", "-c", str(config_path)]) == 0
    assert (site / "cloud" / "example" / "linux-64" / "index.html").is_file()


@pytest.mark.parametrize("target", ["cloud/example/linux-64", "tools"])
def test_a_folder_taken_out_and_made_a_link_loses_no_page_through_the_link(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    target: str,
) -> None:
    """With the last render's manifest naming the page of a folder channels.yaml no longer
    names, a folder made a link since (to a channel's subdir, or any directory of the site)
    keeps what the link leads to: the page the manifest names is not removed through it."""
    server, _folder = upstream
    site = tmp_path / "site"
    channels = example_channel(example_upstream.url)
    config_path = config_file(tmp_path, site, server.url, channels)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    config_path.write_text(config_text(site, server.url, channels=channels).split("installers:")[0])
    (site / "tools").mkdir()
    (site / "tools" / "index.html").write_text("<p>the operator's own page</p>")
    kept = {page: (site / page).read_bytes() for page in (f"{target}/index.html",)}
    shutil.rmtree(site / "miniconda")
    (site / "miniconda").symlink_to(site / target)
    for command in (["mirror", "--no-progress"], ["render"]):
        assert main([*command, "-c", str(config_path)]) == 0
        assert {page: (site / page).read_bytes() for page in kept} == kept, command
    assert (site / "miniconda").is_symlink()


def test_a_folder_holding_a_repodata_json_is_no_channel_to_a_render(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    """An installer folder whose upstream lists a file named repodata.json is still no
    channel's subdir: a render without its last manifest, looking for the pages of subdirs
    channels.yaml no longer names, takes none of the folder's files for a listing page."""
    server, folder = upstream
    files = {**FILES, "repodata.json": b"{}", "page-2.html": b"<p>notes</p>"}
    write_folder(folder, files)
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\nchannels: {{}}\n"
        f"installers:\n  tools/miniconda:\n    url: {server.url}/miniconda/\n"
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    held = sorted(p.name for p in (site / "tools" / "miniconda").iterdir())
    assert held == sorted([*files, "index.html"])
    (site / ".sitegen" / "render" / "manifest.json").unlink()
    assert main(["render", "-c", str(config_path)]) == 0
    assert sorted(p.name for p in (site / "tools" / "miniconda").iterdir()) == held


def test_a_folder_holding_a_repodata_json_is_no_subdir_left_published(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An installer folder whose upstream lists a file named repodata.json is no subdir that
    channels.yaml stopped naming: the run log and status do not tell to remove it as one, and
    `sitegen remove` of the folder above it finds no channel there to delete its files as."""
    server, folder = upstream
    write_folder(folder, {**FILES, "repodata.json": b"{}"})
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        f"channels:\n  cloud/example:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
        f"installers:\n  tools/miniconda:\n    url: {server.url}/miniconda/\n"
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    held = sorted(p.name for p in (site / "tools" / "miniconda").iterdir())
    assert "no channel in the configuration names it" not in caplog.text
    capsys.readouterr()
    assert main(["status", "-c", str(config_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unconfigured"] == []
    assert main(["remove", "tools", "-c", str(config_path)]) != 0
    assert sorted(p.name for p in (site / "tools" / "miniconda").iterdir()) == held
