"""``sitegen add CHANNEL FILE...``: checked, copied atomically into the local source, published."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sitegen.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, main
from sitegen.tools.example_channel import PackageSpec
from testkit.local import drop, index_of, info_members, write_conda
from testkit.site import assert_channel_consistent, published, sha256_of

pytestmark = pytest.mark.unit

CHANNEL = "internal/own"


def _config(tmp_path: Path, folder: Path) -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text(
        textwrap.dedent(f"""
        output: {tmp_path / "site"}
        channels:
          {CHANNEL}:
            path: {folder}
            subdirs: [linux-64]
          cloud/upstream-only:
            url: file://{tmp_path / "nowhere"}
            subdirs: [linux-64]
        """)
    )
    return path


def test_add_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    config = _config(tmp_path, folder)
    built = tmp_path / "build"
    a = drop(built, PackageSpec("alpha", "1.0", "h0"), "conda")
    b = drop(built, PackageSpec("beta", "2.0", "0", subdir="noarch", noarch="generic"), "tar.bz2")
    assert main(["add", CHANNEL, str(a), str(b), "-c", str(config)]) == EXIT_OK
    site = tmp_path / "site"
    assert published(site, CHANNEL, "linux-64") == {a.name}
    assert published(site, CHANNEL, "noarch") == {b.name}
    assert_channel_consistent(site, CHANNEL)
    # Copied into the source's subdir folders; the originals stay where they were.
    assert sha256_of(folder / "linux-64" / a.name) == sha256_of(a)
    assert sha256_of(folder / "noarch" / b.name) == sha256_of(b)
    assert a.is_file() and b.is_file()
    assert not [p for p in folder.rglob(".*")]  # no temporary left behind
    assert (site / CHANNEL / "index.html").is_file()  # pages rendered, as after a mirror run

    # Adding a new build of the same file name replaces it where it is.
    again = drop(tmp_path / "rebuild", PackageSpec("alpha", "1.0", "h0", seed=5), "conda")
    assert main(["add", CHANNEL, str(again), "-c", str(config)]) == EXIT_OK
    assert sha256_of(site / CHANNEL / "linux-64" / a.name) == sha256_of(again)
    assert sorted(p.name for p in (folder / "linux-64").iterdir()) == [a.name]


def test_add_refuses_bad_files_and_adds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "incoming"
    config = _config(tmp_path, folder)
    good = drop(tmp_path / "build", PackageSpec("alpha", "1.0", "h0"), "conda")
    renamed = tmp_path / "build" / "alpha-9.9-h0.conda"
    renamed.write_bytes(good.read_bytes())
    broken = write_conda(tmp_path / "build" / "broken-1.0-0.conda", info_members(b"{"))
    wrong_subdir = write_conda(
        tmp_path / "build" / "win-1.0-0.conda",
        info_members(index_of("win", subdir="win-64")),
    )
    # What the package says of itself is quoted on one line, not written to the terminal as
    # it is (a newline forging an output line, escapes clearing the screen).
    escapes = write_conda(
        tmp_path / "build" / "esc-1.0-0.conda",
        info_members(index_of("esc\nOK: added\x1b[2J")),
    )
    escaped_subdir = write_conda(
        tmp_path / "build" / "sub-1.0-0.conda",
        info_members(index_of("sub", subdir="linux-64\x1b[2J")),
    )
    files = [str(good), str(renamed), str(broken), str(wrong_subdir), str(escapes)]
    files.append(str(escaped_subdir))
    code = main(["add", CHANNEL, *files, "-c", str(config)])
    assert code == EXIT_FAILED
    err = capsys.readouterr().err
    assert "alpha-9.9-h0.conda: filename disagrees with name-version-build" in err
    assert "broken-1.0-0.conda: info/index.json is not a JSON object" in err
    assert "win-1.0-0.conda: subdir win-64 is not published" in err
    assert "nothing was added" in err
    assert "\x1b" not in err and "\nOK: added" not in err
    assert "esc-1.0-0.conda: filename disagrees with name-version-build" in err
    assert "sub-1.0-0.conda: subdir 'linux-64\\x1b[2J' is not published" in err
    assert not folder.exists()
    assert not (tmp_path / "site").exists()


def test_add_to_an_unknown_channel_or_one_without_a_local_source_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, tmp_path / "incoming")
    package = drop(tmp_path / "build", PackageSpec("alpha", "1.0", "h0"), "conda")
    assert main(["add", "no/such", str(package), "-c", str(config)]) == EXIT_CONFIG
    assert "no channel 'no/such'" in capsys.readouterr().err
    assert main(["add", "cloud/upstream-only", str(package), "-c", str(config)]) == EXIT_CONFIG
    assert "has no local source" in capsys.readouterr().err


def test_a_package_whose_file_name_is_near_the_limit_is_added_and_moved(tmp_path: Path) -> None:
    """A file name of 252 bytes (records may have up to 255): the temporaries beside it while
    it is copied in and moved to the store must fit the file system too."""
    folder = tmp_path / "incoming"
    config = _config(tmp_path, folder)
    config.write_text(
        config.read_text().replace(
            "subdirs: [linux-64]\n", "subdirs: [linux-64]\n    move: true\n", 1
        )
    )
    name = "long-" + "n" * 235
    package = tmp_path / "build" / f"{name}-1.0-0.conda"
    write_conda(package, info_members(index_of(name, subdir="linux-64")))
    assert len(package.name.encode()) == 252
    assert main(["add", CHANNEL, str(package), "-c", str(config)]) == EXIT_OK
    site = tmp_path / "site"
    assert published(site, CHANNEL, "linux-64") == {package.name}
    assert not (folder / "linux-64" / package.name).exists()  # moved to the store
    assert sha256_of(site / CHANNEL / "linux-64" / package.name) == sha256_of(package)


def test_a_file_named_by_a_link_is_added_under_its_own_name(tmp_path: Path) -> None:
    """A CI job names its build by a link (``dist/latest.conda``) as often as by itself. A link
    named on the command line is followed, as cp and rsync do: the file it leads to is checked
    and copied, under the name the package is built under (the link's is an alias, which
    would disagree with its index.json), as a file, never a link."""
    folder = tmp_path / "incoming"
    config = _config(tmp_path, folder)
    built = drop(tmp_path / "build", PackageSpec("alpha", "1.0", "h0"), "conda")
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "alpha.conda").symlink_to(Path("..") / "build" / built.name)
    (dist / "latest.conda").symlink_to("alpha.conda")  # a link to a link
    assert main(["add", CHANNEL, str(dist / "latest.conda"), "-c", str(config)]) == EXIT_OK
    assert published(tmp_path / "site", CHANNEL, "linux-64") == {built.name}
    added = folder / "linux-64" / built.name
    assert not added.is_symlink() and sha256_of(added) == sha256_of(built)
    assert sorted(p.name for p in (folder / "linux-64").iterdir()) == [built.name]
