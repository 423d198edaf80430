"""Frozen channels: neither a run nor a changed upstream touches what they publish."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sitegen.cli import main
from sitegen.config import ConfigError, parse_config
from sitegen.store.frozen import FrozenChannels, with_freezes
from sitegen.store.site import Site
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, example_packages, write_channel
from testkit.site import channel_config, files_holding, published, snapshot
from testkit.upstream import ExampleUpstream

CHANNEL = "cloud/example"
PACKAGES = example_packages(seed=0)


async def mirror(config, **options: Any) -> RunReport:
    return await run_mirror(config, MirrorOptions(progress=False, **options))


def change_upstream(root: Path) -> set[str]:
    """A new zlib upstream and readline gone; returns the new files."""
    new_zlib = PackageSpec(
        name="zlib", version="1.3.2", build="h1234567_0", license="Zlib", timestamp_ms=1
    )
    readline = [p for p in PACKAGES if p.name == "readline"]
    write_channel(root, [p for p in PACKAGES if p not in readline] + [new_zlib], zst=True)
    for package in readline:
        for fn in package.filenames:
            (root / package.subdir / fn).unlink()
    return set(new_zlib.filenames)


def package_gets(upstream: ExampleUpstream) -> list[str]:
    return [r.path for r in upstream.server.requests if r.path.endswith((".conda", ".tar.bz2"))]


@pytest.mark.integration
async def test_frozen_channel_is_untouched_by_a_run_whose_upstream_changed(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    await mirror(channel_config(site, example_upstream.url))
    before = snapshot(site / CHANNEL)
    new_files = change_upstream(example_upstream.root)
    example_upstream.server.reset()

    frozen = channel_config(site, example_upstream.url, extra="frozen: true")
    report = await mirror(frozen)

    assert not report.failed
    assert snapshot(site / CHANNEL) == before  # same bytes, same mtimes: nothing was written
    assert package_gets(example_upstream) == []
    statuses = {c.subdir: (c.status, c.added, c.removed) for c in report.channels}
    assert statuses == {"linux-64": ("frozen", [], []), "noarch": ("frozen", [], [])}
    assert [c.packages for c in report.channels if c.subdir == "linux-64"] == [
        len(published(site, CHANNEL, "linux-64"))
    ]

    # Unfrozen, the next run catches up with upstream.
    report = await mirror(channel_config(site, example_upstream.url))
    assert not report.failed
    assert new_files <= published(site, CHANNEL, "linux-64")
    assert [c.status for c in report.channels if c.subdir == "linux-64"] == ["published"]


@pytest.mark.integration
def test_freeze_command_holds_a_scheduled_run_until_unfreeze(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            output: {site}
            download: {{concurrency: 4, per_host: 4, retries: 1, timeout: 10}}
            channels:
              {CHANNEL}:
                url: {example_upstream.url}
                subdirs: [linux-64]
            """
        )
    )
    args = ["-c", str(config)]
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert main(["freeze", CHANNEL, *args, "--by", "alice", "--reason", "release"]) == 0
    entry = FrozenChannels(Site(site)).load()[CHANNEL]
    assert (entry.by, entry.reason) == ("alice", "release")
    before = snapshot(site / CHANNEL)
    new_files = change_upstream(example_upstream.root)

    assert main(["mirror", *args, "--no-progress"]) == 0
    assert snapshot(site / CHANNEL) == before

    assert main(["unfreeze", CHANNEL, *args]) == 0
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert new_files <= published(site, CHANNEL, "linux-64")
    assert main(["freeze", "cloud/nowhere", *args]) == 2


@pytest.mark.integration
def test_a_damaged_freeze_file_keeps_every_channel_and_is_never_written_over(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    """Which channels an operator froze is unknown when the file cannot be read: the run keeps
    every channel as published and fails (exit 1) saying why, once, naming the file; freeze
    and unfreeze refuse to write over the file (it holds freezes)."""
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\ndownload: {{retries: 1, timeout: 10}}\n"
        f"channels:\n  {CHANNEL}:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    args = ["-c", str(config)]
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert main(["freeze", CHANNEL, *args]) == 0
    frozen_file = site / ".sitegen" / "frozen.json"
    damaged = frozen_file.read_bytes()[:-7]  # cut short, as by a full disk
    frozen_file.write_bytes(damaged)
    # The channel's page changes: it says why the channel is frozen (see test_gate_pages).
    before = snapshot(site / CHANNEL, exclude=["index.html"])
    change_upstream(example_upstream.root)
    capsys.readouterr()

    caplog.clear()
    assert main(["mirror", *args, "--no-progress"]) == 1
    assert snapshot(site / CHANNEL, exclude=["index.html"]) == before
    assert "which channels are frozen cannot be read" in (site / CHANNEL / "index.html").read_text()
    [said] = [r.getMessage() for r in caplog.records if "frozen.json" in r.getMessage()]
    assert said.startswith("which channels are frozen is unknown, so every channel is kept")
    assert f"{frozen_file}: damaged (" in said
    assert main(["unfreeze", CHANNEL, *args]) == 1
    assert main(["freeze", "cloud/example", *args]) == 1
    assert "frozen.json: damaged" in capsys.readouterr().err
    assert frozen_file.read_bytes() == damaged

    frozen_file.unlink()  # the operator's repair: the next run publishes again
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert snapshot(site / CHANNEL, exclude=["index.html"]) != before


@pytest.mark.unit
def test_unfreeze_refuses_a_freeze_written_in_the_configuration(tmp_path: Path, capsys) -> None:
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\nchannels:\n  {CHANNEL}:\n"
        "    url: https://conda.example.org/x\n    subdirs: [linux-64]\n    frozen: true\n"
    )
    assert main(["freeze", CHANNEL, "-c", str(config)]) == 0
    assert main(["unfreeze", CHANNEL, "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "channels.yaml:4: channels.cloud/example.frozen: the channel is frozen" in err
    assert "(the freeze by command was lifted)" in err
    assert FrozenChannels(Site(tmp_path / "site")).load() == {}


@pytest.mark.integration
def test_freeze_refuses_text_that_is_not_utf8_naming_the_option(tmp_path: Path) -> None:
    """A name typed in a Latin-1 terminal ("Jörg"): the byte 0xf6 reaches Python as a lone
    surrogate, which the freeze file cannot hold. Refused as a usage error naming the option,
    nothing written, rather than a traceback."""
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  {CHANNEL}:\n"
        "    url: https://conda.example.org/x\n    subdirs: [linux-64]\n"
    )

    def freeze(*options: bytes) -> subprocess.CompletedProcess[bytes]:
        command = [sys.executable, "-m", "sitegen", "freeze", CHANNEL, "-c", str(config)]
        return subprocess.run([*command, *options], capture_output=True, timeout=60, check=False)

    by = freeze(b"--by", b"J\xf6rg", b"--reason", b"release")
    assert by.returncode == 2, by.stderr
    assert by.stderr == b"sitegen: configuration error: --by b'J\\xf6rg': not UTF-8 text" + (
        b" (is the terminal's?)\n"
    )
    reason = freeze(b"--by", b"alice", b"--reason", b"caf\xe9")
    assert reason.returncode == 2, reason.stderr
    assert b"--reason b'caf\\xe9': not UTF-8 text" in reason.stderr
    assert FrozenChannels(Site(site)).load() == {}
    assert freeze(b"--by", "Jörg".encode(), b"--reason", b"release").returncode == 0
    assert FrozenChannels(Site(site)).load()[CHANNEL].by == "Jörg"


@pytest.mark.unit
def test_a_secret_of_a_mirror_url_typed_into_a_freeze_is_kept_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The freeze's text is the operator's, and may hold the token of a mirror's URL (pasted
    in to say which one leaked): it stays out of every file of the site, the freeze file
    under .sitegen/ too, and out of what status prints."""
    token = "tok-4f9a2c7e1b"
    monkeypatch.setenv("MIRROR_TOKEN", token)
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  {CHANNEL}:\n"
        "    url: https://conda.example.org/t/${MIRROR_TOKEN}/x\n    subdirs: [linux-64]\n"
    )
    freeze = ["freeze", CHANNEL, "--by", f"ops {token}", "--reason", f"{token} leaked"]
    assert main([*freeze, "-c", str(config)]) == 0
    assert files_holding(site, token) == []
    entry = FrozenChannels(Site(site)).load()[CHANNEL]
    assert entry.by.startswith("ops ") and entry.reason.endswith(" leaked")
    # A freeze file an earlier sitegen wrote holds the text as typed: status hides it all the same.
    FrozenChannels(Site(site)).freeze("other/channel", f"ops {token}", f"{token} leaked")
    config.write_text(
        config.read_text()
        + "  other/channel:\n    url: https://conda.example.org/y\n    subdirs: [linux-64]\n"
    )
    capsys.readouterr()
    for options in ([], ["--json"]):
        assert main(["status", *options, "-c", str(config)]) == 0
        said = capsys.readouterr().out
        assert "other/channel" in said and " leaked" in said and token not in said


@pytest.mark.unit
def test_freeze_records_a_login_name_that_is_not_utf8_with_its_bytes_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --by, the login name is recorded; one that is not UTF-8 (the byte 0xf6 of a
    Latin-1 "Jörg" reaches Python as a lone surrogate) is kept with that byte replaced, not a
    traceback, nor a refusal naming an option the user never gave."""
    import getpass

    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  {CHANNEL}:\n"
        "    url: https://conda.example.org/x\n    subdirs: [linux-64]\n"
    )
    monkeypatch.setattr(getpass, "getuser", lambda: "J\udcf6rg")
    assert main(["freeze", CHANNEL, "-c", str(config)]) == 0
    assert FrozenChannels(Site(site)).load()[CHANNEL].by == "J\ufffdrg"


@pytest.mark.unit
def test_freeze_without_a_login_name_records_the_user_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user id the password file does not list (a container's), with no USER in the
    environment, has no login name: getpass raises. The freeze is recorded by the id, not a
    traceback."""
    import getpass
    import os

    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  {CHANNEL}:\n"
        "    url: https://conda.example.org/x\n    subdirs: [linux-64]\n"
    )

    def no_login_name() -> str:
        raise KeyError(f"getpwuid(): uid not found: {os.getuid()}")

    monkeypatch.setattr(getpass, "getuser", no_login_name)
    assert main(["freeze", CHANNEL, "-c", str(config)]) == 0
    assert FrozenChannels(Site(site)).load()[CHANNEL].by == f"uid {os.getuid()}"
    assert main(["unfreeze", CHANNEL, "-c", str(config)]) == 0


@pytest.mark.unit
def test_frozen_key_in_both_forms_and_freezes_by_command() -> None:
    text = """\
output: site
channels:
  a/short:
    url: https://conda.example.org/a
    subdirs: [linux-64]
    frozen: true
  b/long:
    frozen: false
    mirrors:
      - url: https://conda.example.org/b
        subdirs: [linux-64]
"""
    config = parse_config(text)
    assert [(c.path, c.frozen) for c in config.channels] == [("a/short", True), ("b/long", False)]
    both = with_freezes(config, {"b/long"})
    assert [c.frozen for c in both.channels] == [True, True]
    assert both != config  # so a run's inputs differ after a freeze
    with pytest.raises(ConfigError, match=r"channels.b/long.frozen: expected true or false"):
        parse_config(text.replace("frozen: false", "frozen: later"))
    with pytest.raises(ConfigError, match=r"unknown key 'frozen'"):
        parse_config(
            text.replace(
                "        subdirs: [linux-64]", "        subdirs: [linux-64]\n        frozen: true"
            )
        )
