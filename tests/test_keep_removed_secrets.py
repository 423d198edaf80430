"""``keep_removed`` keeps no record that holds a credential of the mirror's URL.

An earlier sitegen published upstream's records as they were, the token of the mirror's URL in
some, before it refused such records; its ``keep_removed`` channels kept some of them past
their upstream listing, under the site's state. After the upgrade, a run refuses them from
upstream's repodata: neither the record it refuses nor one kept before it stays kept, and no
file under the site (published repodata, shards, pages, history, the state) holds the token.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import msgspec
import pytest

from sitegen.cli import main
from sitegen.layout import kept_records_path
from sitegen.tools.example_channel import write_channel
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.site import files_holding
from testkit.small_channel import CHANNEL, set_repodata, small_packages
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

TOKEN = "tk-" + random.Random(20240604).randbytes(16).hex()
ENV = "SITEGEN_TEST_TOKEN"
LINUX = "linux-64"
ALPHA, GAMMA = "alpha-1.0-h0_0.conda", "gamma-0.1-h2_0.tar.bz2"


def test_records_holding_the_token_are_not_kept_after_the_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, TOKEN)
    chan = tmp_path / "upstream" / "t" / TOKEN / "chan"
    document = write_channel(chan, small_packages(), zst=True)[LINUX]
    site = make_sandbox(tmp_path)
    config = tmp_path / "channels.yaml"
    with UpstreamServer(tmp_path / "upstream") as server:
        config.write_text(
            f"output: {site}\n"
            "channels:\n"
            f"  {CHANNEL}:\n"
            f"    url: {server.url}/t/${{{ENV}}}/chan\n"
            "    subdirs: [linux-64]\n"
            "    keep_removed: true\n"
        )
        mirror = ["mirror", "-c", str(config), "--no-progress"]
        assert main(mirror) == 0
        # As an earlier sitegen left the site: alpha's record published with upstream's URL
        # of its file (the token in it), gamma's kept (upstream dropped it) with its summary
        # naming the token.
        url = f"{server.url}/t/{TOKEN}/chan/{LINUX}/{ALPHA}"
        folder = site / CHANNEL / LINUX
        published = json.loads((folder / "repodata.json").read_bytes())
        published["packages.conda"][ALPHA]["url"] = url
        gamma = published["packages"].pop(GAMMA)
        (folder / "repodata.json").write_text(json.dumps(published))
        kept = kept_records_path(site, CHANNEL, LINUX)
        kept.parent.mkdir(parents=True, exist_ok=True)
        summary = {**gamma, "summary": f"from /t/{TOKEN}/chan"}
        kept.write_bytes(msgspec.msgpack.encode([[GAMMA, "cloud-example", summary]]))
        # Upstream still writes the token in alpha's record, and no longer lists gamma.
        document["packages.conda"][ALPHA]["url"] = url
        del document["packages"][GAMMA]
        set_repodata(chan, LINUX, json.dumps(document).encode())

        assert main(mirror) == 0
    assert not (folder / ALPHA).exists() and not (folder / GAMMA).exists()
    assert not kept.exists()
    assert files_holding(site, TOKEN) == []
    assert_site_invariant(site)
