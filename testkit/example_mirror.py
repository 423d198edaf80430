"""The example channel (``example_packages(seed=0)``) mirrored as ``cloud/example``: its
filenames per subdir, and what a run report and the upstream's request log say about such a
run."""

from __future__ import annotations

from sitegen.sync.report import ChannelSubdirReport, RunReport
from sitegen.tools.example_channel import PackageSpec, example_packages
from testkit.site import fns
from testkit.upstream import UpstreamServer

CHANNEL = "cloud/example"
PACKAGES = example_packages(seed=0)
LINUX = fns(PACKAGES, subdir="linux-64")
NOARCH = fns(PACKAGES, subdir="noarch")


def channel_report(report: RunReport, subdir: str, channel: str = CHANNEL) -> ChannelSubdirReport:
    """The one report of ``channel``'s ``subdir`` in the run's ``report``."""
    (found,) = [c for c in report.channels if c.channel == channel and c.subdir == subdir]
    return found


def package_gets(server: UpstreamServer) -> list[str]:
    """The paths of the package files ``server`` was asked for, in order."""
    return [
        r.path
        for r in server.requests
        if r.method == "GET" and r.path.endswith((".conda", ".tar.bz2"))
    ]


def spec(name: str, build_prefix: str = "", version: str | None = None) -> PackageSpec:
    """The one example package of this name (and build prefix and version)."""
    (found,) = [
        p
        for p in PACKAGES
        if p.name == name
        and p.build.startswith(build_prefix)
        and (version is None or p.version == version)
    ]
    return found
