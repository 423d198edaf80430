"""A running fetcher follows channels.yaml: a passive channel added there, or a mirror moved to
another URL, is answered for once a run has published it, without restarting the fetcher; a
channels.yaml that does not load leaves the settings read before."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

import pytest
import trio

from sitegen.config import SiteConfig, load_config
from sitegen.passive.listen import open_listeners, serve_fetcher
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import example_packages, write_channel
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

CHANNEL = "cloud/conda-forge"
ADDED = "cloud/added"


def _write(path: Path, site: Path, channels: dict[str, str]) -> SiteConfig:
    entries = "".join(
        f"  {name}:\n    url: {url}\n    subdirs: [linux-64]\n    mode: passive\n"
        for name, url in channels.items()
    )
    text = f"output: {site}\ndownload: {{retries: 0, timeout: 30}}\nchannels:\n{entries}"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def _package_paths(server: UpstreamServer) -> list[str]:
    return [r.path for r in server.requests if r.path.endswith((".conda", ".tar.bz2"))]


async def test_the_fetcher_follows_passive_channels_and_mirrors_in_channels_yaml(
    tmp_path: Path,
) -> None:
    root = tmp_path / "upstream"
    repodata = write_channel(root / "forge", example_packages(seed=0), zst=True)
    files = sorted(repodata["linux-64"]["packages.conda"])
    site = tmp_path / "site"
    path = tmp_path / "channels.yaml"
    with UpstreamServer(root) as first, UpstreamServer(root) as second:
        config = _write(path, site, {CHANNEL: f"{first.url}/forge"})
        await run_mirror(config, MirrorOptions(progress=False))
        listeners = await open_listeners("127.0.0.1", 0)
        async with trio.open_nursery() as nursery:
            fetcher = await nursery.start(serve_fetcher, config, listeners)
            assert (await fetcher.reply("GET", f"/{CHANNEL}/linux-64/{files[0]}")).status == 200
            # The channel's mirror moves to another URL and a passive channel is added; a run
            # publishes both, the fetcher running on.
            channels = {CHANNEL: f"{second.url}/forge", ADDED: f"{second.url}/forge"}
            config = _write(path, site, channels)
            await run_mirror(config, MirrorOptions(progress=False))
            before = list(_package_paths(first))
            for channel, fn in ((CHANNEL, files[1]), (ADDED, files[0])):
                reply = await fetcher.reply("GET", f"/{channel}/linux-64/{fn}")
                assert (reply.status, reply.outcome) == (200, "fetched"), (channel, reply.body)
            assert _package_paths(first) == before
            assert _package_paths(second) == [
                f"/forge/linux-64/{files[1]}",
                f"/forge/linux-64/{files[0]}",
            ]
            # A channels.yaml that does not load leaves the settings read before.
            path.write_text("channels: [" + secrets.token_hex(4))
            reply = await fetcher.reply("GET", f"/{ADDED}/linux-64/{files[1]}")
            assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
            nursery.cancel_scope.cancel()
