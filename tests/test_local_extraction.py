"""Local sources: what a package publishes is what installing it leaves in its info/ folder.

conda (conda-package-streaming) and rattler install a package by extracting it whole: every
member of a ``.tar.bz2`` in turn, so the last one written to a path stays, and both inner
archives of a ``.conda`` into one folder (rattler every ``.tar.zst`` entry, in the order the zip
holds them). A package whose later members write over its metadata would publish one record
and install another: refused, or, for metadata that is only descriptive, read as installed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sitegen.conda.index import (
    REASON_EXTRA_PART,
    REASON_INFO_IN_PKG,
    REASON_TWO_INDEXES,
    REASON_UNSAFE_PATH,
    index_package,
)
from sitegen.tools.example_channel import PackageSpec
from testkit.local import (
    Directory,
    Link,
    drop_all,
    index_of,
    info_members,
    run_and_refusals,
    write_conda,
    write_tar_bz2,
)

pytestmark = pytest.mark.unit

GOOD = [PackageSpec("good", "1.0", "0")]
PAYLOAD = ("lib/libx.so", b"\x7fELF" * 4096)
ABOUT = ("info/about.json", json.dumps({"summary": "as read first"}).encode())


def _extract_conda(path: Path, dest: Path) -> None:
    from conda_package_streaming.extract import extract

    extract(str(path), dest)


def _extract_rattler(path: Path, dest: Path) -> None:
    import rattler.package_streaming

    rattler.package_streaming.extract(path, dest)


INSTALLERS: dict[str, Callable[[Path, Path], None]] = {
    "conda": _extract_conda,
    "rattler": _extract_rattler,
}


def installed(path: Path, dest: Path, installer: str, member: str) -> object:
    """``info/<member>`` as installing ``path`` with ``installer`` leaves it."""
    INSTALLERS[installer](path, dest / installer / path.name)
    return json.loads((dest / installer / path.name / "info" / member).read_text())


def other_index(name: str, version: str = "1.0") -> tuple[str, bytes]:
    return ("info/index.json", json.dumps(index_of(name, version, depends=["other"])).encode())


def test_an_index_json_after_a_tar_bz2s_payload_is_refused(tmp_path: Path) -> None:
    """Once it had index.json and about.json, the read of a .tar.bz2 stopped at the first
    member outside info/, and a second index.json after the payload was never seen: the first
    was published, while extracting the file (conda, rattler) leaves the second."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, GOOD)
    late = [
        write_tar_bz2(
            folder / "late-1.0-0.tar.bz2",
            [*info_members(index_of("late")), ABOUT, PAYLOAD, other_index("late")],
        ),
        write_tar_bz2(
            folder / "late-2.0-0.tar.bz2",
            [
                *info_members(index_of("late", "2.0")),
                ABOUT,
                PAYLOAD,
                ("./" + other_index("late", "2.0")[0], other_index("late", "2.0")[1]),
            ],
        ),
    ]
    for installer in INSTALLERS:
        index = installed(late[0], tmp_path / "x", installer, "index.json")
        assert isinstance(index, dict) and index["depends"] == ["other"]
    found, refused = run_and_refusals(tmp_path, folder)
    assert found == set(good)
    assert refused == {path.name: REASON_TWO_INDEXES for path in late}


def test_metadata_a_tar_bz2_writes_again_is_read_as_installed(tmp_path: Path) -> None:
    """about.json and run_exports.json written again after the payload: what is published
    (summary, the CEP-12 entry) is the last one, which extracting the file leaves."""
    path = write_tar_bz2(
        tmp_path / "again-1.0-0.tar.bz2",
        [
            *info_members(index_of("again")),
            ABOUT,
            ("info/run_exports.json", b'{"weak": ["first"]}'),
            PAYLOAD,
            ("info/about.json", json.dumps({"summary": "as installed"}).encode()),
            ("./info/run_exports.json", b'{"weak": ["last"]}'),
        ],
    )
    for installer in INSTALLERS:
        assert installed(path, tmp_path / "x", installer, "run_exports.json") == {"weak": ["last"]}
    package = index_package(path)
    assert package.about["summary"] == "as installed"
    assert package.run_exports is not None
    assert json.loads(package.run_exports) == {"weak": ["last"]}


def test_a_conda_whose_pkg_part_writes_into_info_is_refused(tmp_path: Path) -> None:
    """Only the info- archive of a .conda was read. Installing extracts the pkg- one into the
    same folder, and rattler every .tar.zst entry in the zip's order: info/ files in the pkg-
    archive, or in a third one, replace what was read (rattler, when they come after it) or add
    to it (a run_exports.json published as none)."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, GOOD)
    overwrites = write_conda(
        folder / "over-1.0-0.conda",
        info_members(index_of("over")),
        pkg_members=[PAYLOAD, other_index("over")],
        info_first=True,
    )
    adds = write_conda(
        folder / "adds-1.0-0.conda",
        info_members(index_of("adds")),
        pkg_members=[PAYLOAD, ("info/run_exports.json", b'{"weak": ["hidden"]}')],
    )
    third = write_conda(
        folder / "third-1.0-0.conda",
        info_members(index_of("third")),
        more=[("third.tar.zst", [other_index("third")])],
    )
    index = installed(overwrites, tmp_path / "x", "rattler", "index.json")
    assert isinstance(index, dict) and index["depends"] == ["other"]
    for installer in INSTALLERS:
        exports = installed(adds, tmp_path / "x", installer, "run_exports.json")
        assert exports == {"weak": ["hidden"]}
    index = installed(third, tmp_path / "x", "rattler", "index.json")
    assert isinstance(index, dict) and index["depends"] == ["other"]

    found, refused = run_and_refusals(tmp_path, folder)
    assert found == set(good)
    assert refused == {
        overwrites.name: REASON_INFO_IN_PKG,
        adds.name: REASON_INFO_IN_PKG,
        third.name: REASON_EXTRA_PART,
    }


def test_members_landing_on_metadata_on_windows_or_macos_are_seen_there(tmp_path: Path) -> None:
    """Where a member lands was judged by its name as Linux reads it. Windows also splits a
    path at a backslash and drops a component's trailing dots and spaces, a drive letter makes
    it absolute, and Windows and macOS (by default) compare names without case: there
    ``INFO\\Index.json`` is written over info/index.json, ``..\\x`` outside the folder, and a
    .conda's ``Info/...`` into its info/ part. Refused as their Linux spellings are."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, GOOD)
    second = other_index("x")[1]
    cases = {
        "upper-1.0-0.tar.bz2": (("INFO/Index.JSON", second), REASON_TWO_INDEXES),
        "slash-1.0-0.tar.bz2": (("info\\index.json", second), REASON_TWO_INDEXES),
        "dots-1.0-0.tar.bz2": (("info/index.json. ", second), REASON_TWO_INDEXES),
        "up-1.0-0.tar.bz2": (("lib\\..\\..\\evil.dll", b"x"), REASON_UNSAFE_PATH),
        "drive-1.0-0.tar.bz2": (("C:\\evil.dll", b"x"), REASON_UNSAFE_PATH),
    }
    for fn, (member, _reason) in cases.items():
        name = fn.split("-")[0]
        write_tar_bz2(folder / fn, [*info_members(index_of(name)), PAYLOAD, member])
    into_info = write_conda(
        folder / "intoinfo-1.0-0.conda",
        info_members(index_of("intoinfo")),
        pkg_members=[PAYLOAD, ("Info/run_exports.json", b'{"weak": ["hidden"]}')],
    )
    # Case in a payload's own names is no reason to refuse.
    mixed = write_tar_bz2(
        folder / "mixed-1.0-0.tar.bz2", [*info_members(index_of("mixed")), ("Lib/README.TXT", b"x")]
    )

    found, refused = run_and_refusals(tmp_path, folder)
    assert found == {*good, mixed.name}
    assert refused == {
        **{fn: reason for fn, (_member, reason) in cases.items()},
        into_info.name: REASON_INFO_IN_PKG,
    }


def test_members_written_through_a_link_the_archive_made_are_refused(tmp_path: Path) -> None:
    """Each member was judged by its own name, never by what an earlier member had made of
    its path. Extracting a symlink ``x`` to info/ and then ``x/index.json`` writes a second
    index.json over the one read (conda and rattler), and so does a member written over an
    earlier hard link to it, or a symlink, of its name (conda opens the path and writes into
    the file it leads to)."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, GOOD)
    second = other_index("x")[1]
    cases = {
        "folder-1.0-0.tar.bz2": [("x", Link("info")), ("x/index.json", second)],
        "hard-1.0-0.tar.bz2": [("h", Link("info/index.json", hard=True)), ("h", second)],
        "sym-1.0-0.tar.bz2": [("s", Link("info/index.json")), ("s", second)],
    }
    paths = {
        fn: write_tar_bz2(folder / fn, [*info_members(index_of(fn.split("-")[0])), *members])
        for fn, members in cases.items()
    }
    pkg_link = write_conda(
        folder / "pkglink-1.0-0.conda",
        info_members(index_of("pkglink")),
        pkg_members=[PAYLOAD, ("y", Link("info")), ("y/index.json", second)],
        info_first=True,
    )
    for installer in INSTALLERS:
        index = installed(paths["folder-1.0-0.tar.bz2"], tmp_path / "x", installer, "index.json")
        assert isinstance(index, dict) and index["depends"] == ["other"]
    for fn in ("hard-1.0-0.tar.bz2", "sym-1.0-0.tar.bz2"):
        index = installed(paths[fn], tmp_path / "x", "conda", "index.json")
        assert isinstance(index, dict) and index["depends"] == ["other"]
    index = installed(pkg_link, tmp_path / "x", "rattler", "index.json")
    assert isinstance(index, dict) and index["depends"] == ["other"]
    # A link among a package's files, and files beside it, are no reason to refuse.
    linked = write_tar_bz2(
        folder / "linked-1.0-0.tar.bz2",
        [*info_members(index_of("linked")), PAYLOAD, ("lib/liby.so", Link("libx.so"))],
    )

    found, refused = run_and_refusals(tmp_path, folder)
    assert found == {*good, linked.name}
    assert refused == {fn: REASON_UNSAFE_PATH for fn in [*cases, pkg_link.name]}


def test_a_conda_whose_info_part_writes_outside_info_is_refused(tmp_path: Path) -> None:
    """conda extracts a .conda's pkg- archive first, then its info- one (rattler in the zip's
    order, here the same): a member of the info- archive outside info/ may then be written
    through a link the pkg- archive made, which reading the info- archive first cannot see.
    A build tool puts nothing but info/ in that archive."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, GOOD)
    second = other_index("x")[1]
    through = write_conda(
        folder / "through-1.0-0.conda",
        [*info_members(index_of("through")), ("x/index.json", second)],
        pkg_members=[PAYLOAD, ("x", Link("info"))],
    )
    beside = write_conda(
        folder / "beside-1.0-0.conda",
        [*info_members(index_of("beside")), ("lib/extra.so", b"x")],
    )
    for installer in INSTALLERS:
        index = installed(through, tmp_path / "x", installer, "index.json")
        assert isinstance(index, dict) and index["depends"] == ["other"]
    # A directory member for info/ itself, or for the archive's top, is no reason to refuse.
    dirs = write_conda(
        folder / "dirs-1.0-0.conda",
        [(".", Directory()), ("info", Directory()), *info_members(index_of("dirs"))],
    )

    found, refused = run_and_refusals(tmp_path, folder)
    assert found == {*good, dirs.name}
    assert refused == {through.name: REASON_UNSAFE_PATH, beside.name: REASON_UNSAFE_PATH}
