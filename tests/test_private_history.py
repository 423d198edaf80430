"""A private channel stays private on the public history pages after it leaves channels.yaml
or turns public: each run record notes which channels and mirrors were private, and the pages
hide what was private then, what is private now, and (a record from before runs noted it) what
is configured no more. Real runs through the CLI, each channel fed by its own HTTP upstream."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from sitegen.config import load_config
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.tools.webconf import WebconfOptions, build_webconf
from testkit.apache import require_server, webconf_server, world_readable_dir
from testkit.private_site import request
from testkit.upstream import ExampleUpstream, UpstreamServer

pytestmark = pytest.mark.integration

PUBLIC, SECRET = "cloud/example", "internal/licensed"
SECRET_MIRROR = "licensed-source"
# What the public pages must never show of the private channel: its packages, path and mirror.
SECRET_WORDS = ("acme-secret-solver", "acme-licensed-kernel", SECRET, SECRET_MIRROR)
SECRET_PACKAGES = [
    PackageSpec(name=SECRET_WORDS[0], version="3.1", build="h0_0", license="Proprietary"),
    PackageSpec(name=SECRET_WORDS[1], version="7.2", build="h1_0", license="Proprietary"),
]


class Site2:
    """A site of a public channel and the secret one, channels.yaml rewritten between runs."""

    def __init__(self, tmp_path: Path, public_url: str, secret: UpstreamServer) -> None:
        self.site = tmp_path / "site"
        self.config = tmp_path / "channels.yaml"
        self.public_url, self.secret_url = public_url, secret.url
        self.secret_root = secret.root

    def configure(self, secret: str | None) -> None:
        """``secret``: the secret channel's access, or None to leave it out of the file."""
        text = f"""output: {self.site}
base_url: https://mirror.example.org/conda
channels:
  {PUBLIC}:
    url: {self.public_url}
    subdirs: [linux-64]
"""
        if secret is not None:
            text += f"""  {SECRET}:
    access: {secret}
    mirrors:
      - name: {SECRET_MIRROR}
        url: {self.secret_url}
        subdirs: [linux-64]
"""
        self.config.write_text(text)

    def run(self, *args: str) -> None:
        assert main([*args, "-c", str(self.config)]) == EXIT_OK

    def records(self) -> list[Path]:
        return sorted((self.site / "history" / "runs").glob("*.json"))

    def public_texts(self) -> dict[str, str]:
        """Every public page built from the history: the landing page, the history pages, the
        run pages, history.json and the feed."""
        history = self.site / "history"
        paths = [self.site / "index.html", history / "history.json", history / "feed.atom"]
        paths += sorted(history.glob("*.html"))
        assert len(paths) >= 5
        return {p.relative_to(self.site).as_posix(): p.read_text() for p in paths}

    def shown(self, word: str) -> list[str]:
        return [name for name, text in self.public_texts().items() if word in text]

    def records_hidden(self) -> bool:
        """Whether the web server configuration `sitegen webconf` writes now keeps the run
        records from everyone."""
        return build_webconf("nginx", load_config(self.config), WebconfOptions()).hide_records


@pytest.fixture
def secret_upstream(
    tmp_path: Path, upstream_server_factory: Callable[..., UpstreamServer]
) -> UpstreamServer:
    root = tmp_path / "secret-upstream"
    write_channel(root, SECRET_PACKAGES)
    return upstream_server_factory(root)


@pytest.fixture
def site2(
    tmp_path: Path, example_upstream: ExampleUpstream, secret_upstream: UpstreamServer
) -> Site2:
    return Site2(tmp_path, example_upstream.url, secret_upstream)


def assert_hidden(s: Site2) -> None:
    for word in SECRET_WORDS:
        # The landing page lists the channels configured: a private one by its path (with a
        # lock), a public one with its mirrors.
        allowed = ["index.html"] if word in (SECRET, SECRET_MIRROR) else []
        assert [name for name in s.shown(word) if name not in allowed] == [], word
    # The public channel's run is there: the check above is not vacuous.
    assert "history/feed.atom" in s.shown("numpy")


def test_a_private_channel_taken_out_of_channels_yaml_stays_off_the_public_history(
    site2: Site2,
) -> None:
    s = site2
    s.configure(secret="private")
    s.run("mirror", "--no-progress")
    [record] = s.records()
    noted = json.loads(record.read_bytes())["access"]
    assert noted["channels"] == {PUBLIC: "public", SECRET: "private"}
    assert noted["mirrors"][SECRET_MIRROR] == "private"
    assert_hidden(s)

    s.configure(secret=None)
    s.run("render")
    assert_hidden(s)
    assert s.shown(SECRET) == s.shown(SECRET_MIRROR) == []  # nor does the landing page
    # Its published files are removed on purpose: the removal's record stays off the pages too.
    s.run("remove", SECRET)
    assert len(s.records()) == 2
    assert_hidden(s)
    # The public channel runs on, and each later run is shown as before.
    s.run("mirror", "--no-progress")
    assert_hidden(s)
    history = json.loads((s.site / "history" / "history.json").read_bytes())
    assert len(history["runs"]) == 3


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_the_records_of_a_private_channel_taken_out_are_not_served(
    server: str, example_upstream: ExampleUpstream, secret_upstream: UpstreamServer
) -> None:
    """The run records name every file of the channels they ran: while one names a channel that
    was private, the configuration `sitegen webconf` writes keeps them from everyone, as it
    does while a channel is private, even with no private channel left in channels.yaml."""
    require_server(server)
    with world_readable_dir() as root:  # the web server's user reads the site
        s = Site2(root, example_upstream.url, secret_upstream)
        s.configure(secret="private")
        s.run("mirror", "--no-progress")
        [record] = s.records()
        s.configure(secret=None)
        s.run("render")
        assert s.records_hidden()
        config = load_config(s.config)
        with webconf_server(server, config, root / "state", prefix="/conda") as running:
            status = request(running.url, f"/conda/history/runs/{record.name}")[0]
            assert status in (403, 404)
            for page in ("history/index.html", f"history/{record.stem}.html", "history/feed.atom"):
                assert request(running.url, f"/conda/{page}")[0] == 200, page


def test_a_channel_private_when_it_ran_stays_hidden_once_public(site2: Site2) -> None:
    s = site2
    s.configure(secret="private")
    s.run("mirror", "--no-progress")
    s.configure(secret="public")
    s.run("render")
    assert_hidden(s)
    # What it publishes from now on is public; what it published while private stays hidden.
    added = PackageSpec(name="acme-open-tool", version="1.0", build="h0_0")
    write_channel(s.secret_root, [*SECRET_PACKAGES, added])
    s.run("mirror", "--no-progress")
    assert "history/feed.atom" in s.shown("acme-open-tool")
    assert s.shown(SECRET_WORDS[0]) == s.shown(SECRET_WORDS[1]) == []


def test_an_old_record_of_a_channel_no_longer_configured_is_hidden(site2: Site2) -> None:
    s = site2
    s.configure(secret="private")
    s.run("mirror", "--no-progress")
    # The record as sitegen wrote it before runs noted the access of channels.
    [record] = s.records()
    data = json.loads(record.read_bytes())
    del data["access"]
    record.write_text(json.dumps(data))
    [old] = History(Site(s.site)).runs()  # still read
    assert old.access is None and {c.channel for c in old.channels} == {PUBLIC, SECRET}

    s.configure(secret=None)
    s.run("render")
    assert_hidden(s)
    # While it is configured, public, such a record shows it (nothing said otherwise).
    s.configure(secret="public")
    s.run("render")
    assert "history/feed.atom" in s.shown(SECRET_WORDS[0])


def test_a_public_channel_taken_out_stays_shown(site2: Site2) -> None:
    s = site2
    s.configure(secret="public")
    s.run("mirror", "--no-progress")
    [record] = s.records()
    assert json.loads(record.read_bytes())["access"]["channels"][SECRET] == "public"

    s.configure(secret=None)
    s.run("render")
    # Its packages in the feed and on the run's page, its path and mirror in history.json.
    for word in SECRET_WORDS[:3]:
        assert "history/feed.atom" in s.shown(word), word
        assert f"history/{record.stem}.html" in s.shown(word), word
    for word in SECRET_WORDS[2:]:
        assert "history/history.json" in s.shown(word), word
    assert not s.records_hidden()  # nothing in them is private: served as before


def test_a_ledger_that_cannot_be_read_keeps_the_records_unserved(tmp_path: Path) -> None:
    """Fail closed: when the run records cannot be listed, webconf cannot tell whether one
    names a private channel, so it withholds them."""
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {tmp_path / 'site'}\n"
        "channels:\n  cloud/example:\n    url: https://conda.example.org/x\n    subdirs: [linux-64]\n"
    )
    config = load_config(config_path)
    options = WebconfOptions()
    assert not build_webconf("nginx", config, options).hide_records  # no run yet
    ledger = History(Site(config.output)).directory
    ledger.parent.mkdir(parents=True)
    ledger.write_text("not a directory")  # listing it fails
    assert build_webconf("nginx", config, options).hide_records
