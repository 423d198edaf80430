"""Passive files fetched from where the mirror run found them: a CEP-15 package host, or one
of several mirrors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.config import SiteConfig, load_config
from sitegen.layout import origins_path
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import example_packages, write_channel
from testkit.fetcher import fetch_one
from testkit.site import sha256_of
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

CHANNEL = "cloud/conda-forge"


async def test_passive_file_comes_from_the_cep15_package_host(tmp_path: Path) -> None:
    """Upstream repodata whose ``info.base_url`` (CEP-15) puts the packages on another host: the
    fetcher fetches a passive file from that host, as the origins map of the mirror run says."""
    meta_root, package_root = tmp_path / "meta", tmp_path / "packages"
    records = write_channel(package_root, example_packages(seed=0), zst=False)
    write_channel(meta_root, example_packages(seed=0), zst=False)
    for subdir in ("linux-64", "noarch"):
        for entry in (meta_root / subdir).iterdir():
            if entry.name != "repodata.json":
                entry.unlink()  # the metadata host serves no package
    site = tmp_path / "site"
    fn, record = next(iter(records["linux-64"]["packages.conda"].items()))
    with UpstreamServer(package_root) as packages, UpstreamServer(meta_root) as meta:
        for subdir in ("linux-64", "noarch"):
            path = meta_root / subdir / "repodata.json"
            document = json.loads(path.read_bytes())
            document["info"]["base_url"] = f"{packages.url}/{subdir}/"
            path.write_text(json.dumps(document))
        config_path = tmp_path / "channels.yaml"
        config_path.write_text(
            f"output: {site}\n"
            "download: {retries: 0, timeout: 30}\n"
            "channels:\n"
            f"  {CHANNEL}:\n"
            f"    url: {meta.url}\n"
            "    subdirs: [linux-64]\n"
            "    mode: passive\n"
        )
        config = load_config(config_path)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        meta.reset()
        reply = await fetch_one(config, f"/{CHANNEL}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert [r.path for r in packages.requests] == [f"/linux-64/{fn}"]
        assert not meta.requests
    assert sha256_of(site / CHANNEL / "linux-64" / fn) == record["sha256"]


def _two_passive_mirrors(tmp_path: Path, site: Path, **urls: str) -> SiteConfig:
    """A channel fed by passive mirrors named and ordered as ``urls`` says."""
    mirrors = "".join(
        f"      - {{name: {name}, url: {url}, subdirs: [linux-64], mode: passive}}\n"
        for name, url in urls.items()
    )
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\ndownload: {{retries: 0, timeout: 30}}\n"
        f"channels:\n  {CHANNEL}:\n    mirrors:\n{mirrors}"
    )
    return load_config(config_path)


async def test_one_mirrors_odd_base_url_does_not_stop_fetches_from_the_others(
    tmp_path: Path,
) -> None:
    """A channel fed by two passive mirrors; the second one's upstream repodata sets
    ``info.base_url`` to a number. Files the first mirror supplied must still be fetchable:
    the origins map of the subdir must stay readable."""
    good_root, odd_root = tmp_path / "good", tmp_path / "odd"
    records = write_channel(good_root, example_packages(seed=0), zst=False)
    odd = write_channel(odd_root, example_packages(seed=1), zst=False)
    document = odd["linux-64"]
    document["info"]["base_url"] = 5
    (odd_root / "linux-64" / "repodata.json").write_text(json.dumps(document))
    site = tmp_path / "site"
    fn, record = next(iter(records["linux-64"]["packages.conda"].items()))
    with UpstreamServer(good_root) as good, UpstreamServer(odd_root) as bad:
        config = _two_passive_mirrors(tmp_path, site, good=good.url, odd=bad.url)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        reply = await fetch_one(config, f"/{CHANNEL}/linux-64/{fn}")
    # (An origins map the fetcher cannot read would answer 502 for every file of the subdir.)
    assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
    assert sha256_of(site / CHANNEL / "linux-64" / fn) == record["sha256"]


async def test_a_file_is_fetched_from_the_mirror_that_supplied_it_and_checked_by_sha256(
    tmp_path: Path,
) -> None:
    """Two passive mirrors; a file only the second one lists, with a sha256_of and no md5. The
    fetcher asks that mirror (the origins map says so), verifies by the published sha256_of and
    stores it; the first mirror is never asked for it."""
    one_root, two_root = tmp_path / "one", tmp_path / "two"
    packages = example_packages(seed=0)
    write_channel(one_root, packages, zst=False)
    records = write_channel(two_root, packages, zst=False)
    fn, record = sorted(records["linux-64"]["packages.conda"].items())[-1]  # not the first
    first = json.loads((one_root / "linux-64" / "repodata.json").read_bytes())
    del first["packages.conda"][fn]
    (one_root / "linux-64" / "repodata.json").write_text(json.dumps(first))
    (one_root / "linux-64" / fn).unlink()
    second = json.loads((two_root / "linux-64" / "repodata.json").read_bytes())
    del second["packages.conda"][fn]["md5"]
    (two_root / "linux-64" / "repodata.json").write_text(json.dumps(second))
    site = tmp_path / "site"
    with UpstreamServer(one_root) as one, UpstreamServer(two_root) as two:
        config = _two_passive_mirrors(tmp_path, site, one=one.url, two=two.url)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        listed = json.loads((site / CHANNEL / "linux-64" / "repodata.json").read_bytes())
        assert "md5" not in listed["packages.conda"][fn]
        one.reset()
        two.reset()
        reply = await fetch_one(config, f"/{CHANNEL}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert [r.path for r in two.requests] == [f"/linux-64/{fn}"]
        assert not one.requests
    assert sha256_of(site / CHANNEL / "linux-64" / fn) == record["sha256"]


async def test_an_origins_map_the_fetcher_cannot_read_is_not_described_to_the_client(
    tmp_path: Path,
) -> None:
    """The subdir's origins map cannot be read (a folder stands in its place here): the file
    is answered 502 as an internal error, whose text (the OS's, with the map's path in the
    site) is the fetcher's log's alone."""
    one_root, two_root = tmp_path / "one", tmp_path / "two"
    records = write_channel(one_root, example_packages(seed=0), zst=False)
    write_channel(two_root, example_packages(seed=1), zst=False)
    site = tmp_path / "site"
    fn = next(iter(records["linux-64"]["packages.conda"]))
    with UpstreamServer(one_root) as one, UpstreamServer(two_root) as two:
        config = _two_passive_mirrors(tmp_path, site, one=one.url, two=two.url)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        origins = origins_path(site, CHANNEL, "linux-64")
        origins.unlink()
        origins.mkdir()
        reply = await fetch_one(config, f"/{CHANNEL}/linux-64/{fn}")
    assert reply.status == 502, reply.body
    assert b"internal error" in reply.body
    assert str(tmp_path).encode() not in reply.body and b"Errno" not in reply.body, reply.body
