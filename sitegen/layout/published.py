"""The published tree: what the web server serves of a site. Its paths are relative POSIX
strings (they double as URLs between pages), except where a folder on disk is given."""

from __future__ import annotations

from pathlib import Path

from sitegen.conda.notices import NOTICES_FILE
from sitegen.conda.run_exports import RUN_EXPORTS_FILE
from sitegen.conda.schema import PACKAGE_SUFFIXES
from sitegen.conda.shards import SHARD_INDEX, SHARDS_DIR, shard_filename
from sitegen.layout.state import STATE_DIR

# A subdir's metadata, in publish order of importance; listed first on its page, as
# conda-index's index.html does. repodata.json is written last: it is the truth.
REPODATA = "repodata.json"
METADATA_FILES = (
    REPODATA,
    "repodata.json.zst",
    "current_repodata.json",
    SHARD_INDEX,  # CEP-16; published just before repodata.json, after the shards it names
)
# Published only with `repodata: {bz2: true}`: no current client reads it (CEP-16 calls it
# deprecated), but some mirror scripts still fetch it.
REPODATA_BZ2 = "repodata.json.bz2"


def metadata_files(bz2: bool) -> tuple[str, ...]:
    """A subdir's metadata files with or without ``repodata.json.bz2`` (after the .zst);
    ``metadata_files(True)`` is what may be on disk, whatever the setting."""
    if not bz2:
        return METADATA_FILES
    return (*METADATA_FILES[:2], REPODATA_BZ2, *METADATA_FILES[2:])


# CEP-12, published while upstream serves one (a local source's always), before repodata.json;
# listed after the files every subdir has.
RUN_EXPORTS = RUN_EXPORTS_FILE
RUN_EXPORTS_FILES = (RUN_EXPORTS, f"{RUN_EXPORTS}.zst")


def present_metadata_files() -> tuple[str, ...]:
    """Every metadata file a subdir may publish, whatever the settings and upstream."""
    return (*metadata_files(True), *RUN_EXPORTS_FILES)


CHANNELDATA = "channeldata.json"
ASSETS_DIR = "assets"
HISTORY_DIR = "history"
LANDING_PAGE = "index.html"
FEED = "history/feed.atom"
HISTORY_JSON = "history/history.json"  # every run, for machines
# conda's path token: /t/<token>/ wherever clients put it, never a segment of a channel.
TOKEN_SEGMENT = "t"
# Download statistics for machines (`sitegen stats`); the page for people is rendered from it.
STATS_JSON = "stats.json"
STATS_PAGE = "stats.html"  # rendered while stats.json exists
# Names at the top of the site that belong to sitegen itself, never to a channel.
RESERVED_TOP = frozenset(
    {
        HISTORY_DIR,
        ASSETS_DIR,
        STATE_DIR,
        LANDING_PAGE,
        TOKEN_SEGMENT,
        STATS_JSON,
        STATS_PAGE,
    }
)


def is_package_file(name: str) -> bool:
    return name.endswith(PACKAGE_SUFFIXES)


PACKAGES_DIR = "packages"  # a channel's package pages
APPROVALS_DIR = "approvals"  # an approval-gated channel's pages
SEARCH_INDEX = "search.json"  # a channel's search index
# Names at the top of every channel that belong to sitegen: a channel nested in another may not
# be one of them (``a/packages`` beside ``a`` would share the package pages of ``a``).
RESERVED_IN_CHANNEL = frozenset(
    {PACKAGES_DIR, APPROVALS_DIR, SEARCH_INDEX, CHANNELDATA, NOTICES_FILE, "index.html"}
)


def channel_index_path(channel: str) -> str:
    return f"{channel}/index.html"


def channeldata_path(channel: str) -> str:
    return f"{channel}/{CHANNELDATA}"


def notices_path(channel: str) -> str:
    """CEP-6 channel notices, at the channel's root where conda looks for them."""
    return f"{channel}/{NOTICES_FILE}"


def search_index_path(channel: str) -> str:
    return f"{channel}/{SEARCH_INDEX}"


def package_pages_dir(channel: str) -> str:
    return f"{channel}/{PACKAGES_DIR}"


def package_page_path(channel: str, name: str) -> str:
    return f"{package_pages_dir(channel)}/{name}.html"


def approved_page_path(channel: str) -> str:
    """An approval-gated channel's list of approvals (under the channel: behind its access)."""
    return f"{channel}/{APPROVALS_DIR}/index.html"


def pending_page_path(channel: str) -> str:
    """An approval-gated channel's candidates waiting for approval."""
    return f"{channel}/{APPROVALS_DIR}/pending.html"


def subdir_page_path(channel: str, subdir: str, number: int = 1) -> str:
    """A page of a subdir's listing: the first is its index, the others ``page-N.html``."""
    name = "index.html" if number == 1 else f"page-{number}.html"
    return f"{channel}/{subdir}/{name}"


def subdir_path(channel: str, subdir: str) -> str:
    """A subdir's folder: its metadata files, package files and listing."""
    return f"{channel}/{subdir}"


def package_file_path(channel: str, subdir: str, fn: str) -> str:
    return f"{subdir_path(channel, subdir)}/{fn}"


def shards_dir(subdir_dir: Path) -> Path:
    """A subdir's shards (CEP-16), given the subdir's folder on disk."""
    return subdir_dir / SHARDS_DIR


def shard_path(digest: bytes) -> str:
    """A shard's file relative to its subdir's folder, named by the sha256 of its bytes."""
    return f"{SHARDS_DIR}/{shard_filename(digest)}"


def installer_file_path(folder: str, name: str) -> str:
    """A file of an installer folder (``installers:``), at the top of the folder."""
    return f"{folder}/{name}"


# An installer folder's page, which lists its files: no upstream file may take its name.
INSTALLER_PAGE = "index.html"


def installer_page_path(folder: str) -> str:
    return f"{folder}/{INSTALLER_PAGE}"


def run_page_path(run_id: str) -> str:
    return f"{HISTORY_DIR}/{run_id}.html"


def run_record_path(run_id: str) -> str:
    return f"{HISTORY_DIR}/runs/{run_id}.json"


def filtered_records_path(run_id: str) -> str:
    """The records a run's filters left out (name, version, build, reason), beside its record:
    published, so that the run page can search it and people can download it."""
    return f"{HISTORY_DIR}/filtered/{run_id}.json"


def runs_dir(root: Path) -> Path:
    """The run ledger: one JSON record per run, published beside the history pages."""
    return root / HISTORY_DIR / "runs"


def history_page_path(number: int) -> str:
    return f"{HISTORY_DIR}/index.html" if number == 1 else f"{HISTORY_DIR}/page-{number}.html"
