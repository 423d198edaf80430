"""A site for ``sitegen remove``: built by real runs of the example upstream, channels.yaml
edited in between, and what a removal must leave of a channel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sitegen.cli import EXIT_OK, main
from testkit.site import snapshot
from testkit.upstream import ExampleUpstream

# A sitegen command that kills itself (SIGKILL) as it renames into place a file whose path holds
# argv[1]: a crash at that point, wherever the command reaches it first.
KILLED_AT = """
import os, signal, sys
from sitegen.cli import main

def crash(event, args):
    if event == "os.rename" and sys.argv[1] in os.fsdecode(args[0]):
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(crash)
sys.exit(main(sys.argv[2:]))
"""


class Mirror:
    """A site built by real runs of the example upstream, channels.yaml edited in between."""

    def __init__(self, tmp_path: Path, upstream: ExampleUpstream) -> None:
        self.site = tmp_path / "site"
        self.config = tmp_path / "channels.yaml"
        self.url = upstream.url

    def configure(self, *channels: tuple[str, str]) -> None:
        text = f"output: {self.site}\nchannels:\n"
        for path, subdirs in channels:
            text += f"  {path}:\n    url: {self.url}\n    subdirs: [{subdirs}]\n"
        self.config.write_text(text)

    def run(self, *args: str) -> int:
        return main([*args, "-c", str(self.config)])

    def killed(self, at: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        """The command in a process of its own, killed as it renames a file whose path holds
        ``at`` into place (see :data:`KILLED_AT`)."""
        command = [sys.executable, "-c", KILLED_AT, at, *args, "-c", str(self.config)]
        return subprocess.run(command, capture_output=True, timeout=120, check=False)

    def mirror(self) -> None:
        assert self.run("mirror", "--no-progress") == EXIT_OK

    def state(self) -> list[str]:
        """Every file and folder under .sitegen/, site-relative."""
        root = self.site / ".sitegen"
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))

    def everything(self) -> dict[str, tuple[int, str]]:
        # The lock file takes the pid of each holder: not a change to the site.
        return snapshot(self.site, exclude=[".sitegen/lock"])


def build_with_old_taken_out(tmp_path: Path, example_upstream: ExampleUpstream) -> Mirror:
    """c/x and c/old mirrored (c/old frozen by command), then c/old taken out of the file. A
    module takes it as its ``built`` fixture,
    ``pytest.fixture(name="built")(build_with_old_taken_out)``."""
    m = Mirror(tmp_path, example_upstream)
    m.configure(("c/x", "linux-64"), ("c/old", "linux-64"))
    m.mirror()
    assert m.run("freeze", "c/old", "--reason", "kept for an audit") == EXIT_OK
    m.configure(("c/x", "linux-64"))
    m.mirror()
    assert (m.site / "c/old/linux-64/repodata.json").is_file()
    return m


def mentions(paths: list[str], channel: str, mirror: str) -> list[str]:
    """The paths of ``paths`` in the folder of ``channel`` or naming ``mirror``."""
    return [p for p in paths if f"/{channel}/" in f"/{p}/" or mirror in p.split("/")]


def assert_gone(m: Mirror, channel: str, mirror: str) -> None:
    """Nothing of ``channel`` (its mirror ``mirror``) is left: folder, state, freeze, page."""
    assert not (m.site / channel).exists()
    assert mentions(m.state(), channel, mirror) == []
    assert channel not in (m.site / ".sitegen/frozen.json").read_text()
    assert f'href="{channel}/' not in (m.site / "index.html").read_text()
