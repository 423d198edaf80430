"""The site invariant every fault, hostile-metadata and crash test checks.

:func:`assert_site_invariant` holds at every moment, for every published subdir of a site:

* every record of every metadata file present (``repodata.json``, ``repodata.json.zst``,
  ``repodata.json.bz2``, ``current_repodata.json``) names a plain file of that subdir that
  exists with the listed size and sha256 (md5 when no sha256 is listed);
* no temporary file (``.sitegen-tmp-*``) is reachable under a published name, nothing in the
  site is a symlink, and no path in it resolves outside it;
* the shard index (CEP-16), where present, names only shards that exist and hash to their
  names; once settled it exists and each shard holds exactly its name's records;
* nothing was written outside the site: the sandbox directory around it (see
  :func:`make_sandbox`) holds exactly the sentinel files it was created with.

``settled=True`` (the default; use it whenever the run finished, cleanly or not) adds what must
hold once a run is over: the metadata files exist (``repodata.json.bz2`` only with
``repodata: {bz2: true}``), ``.zst`` and a present ``.bz2`` hold exactly the bytes of
``repodata.json``, ``current_repodata.json`` lists only records of ``repodata.json``,
and no temporary file is left in a published subdir (:func:`temporaries` finds them anywhere
in the site, for tests that demand none at all). ``settled=False`` is for a
site whose run was killed outright: renames of several files cannot be one atomic step, so
siblings may come from two generations, and a killed process leaves its temporaries behind
(the next run removes them).
"""

from __future__ import annotations

import bz2
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import msgspec
import zstandard

from testkit.site import sha256_of

TEMP_PREFIX = ".sitegen-tmp-"
METADATA = ("repodata.json", "repodata.json.zst", "repodata.json.bz2", "current_repodata.json")
OPTIONAL = frozenset({"repodata.json.bz2"})  # published only with `repodata: {bz2: true}`
SHARD_INDEX = "repodata_shards.msgpack.zst"
PRIVATE_TOP = ("history", ".sitegen")
PACKAGE_SUFFIXES = (".conda", ".tar.bz2")
SENTINELS = {
    "sentinel.txt": b"outside the site: must never change\n",
    "nested/deeper/sentinel.bin": bytes(range(256)),
    "cloud/example/linux-64/decoy.conda": b"a decoy beside, not inside, the site\n",
}

_sandboxes: dict[Path, dict[str, tuple[str, int, str]]] = {}


def make_sandbox(tmp_path: Path, name: str = "sandbox") -> Path:
    """A directory with sentinel files around a (not yet existing) site; returns the site path.

    Files of the sandbox are snapshotted, and :func:`assert_site_invariant` checks that nothing
    beside the site changed. The site sits two levels deep, so a path escaping it by one or two
    ``..`` still lands inside the sandbox, where it is noticed.
    """
    sandbox = (tmp_path / name).absolute()
    for rel, data in SENTINELS.items():
        path = sandbox / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    site = sandbox / "outer" / "site"
    site.parent.mkdir(parents=True, exist_ok=True)
    _sandboxes[site] = _tree(sandbox, skip=site)
    return site


def _tree(root: Path, skip: Path | None = None) -> dict[str, tuple[str, int, str]]:
    """relative path -> (kind, size, sha256) for everything below root, except ``skip``."""
    out: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if skip is not None:
            dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in dirnames + filenames:
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("symlink", 0, os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", 0, "")
            else:
                out[rel] = ("file", path.stat().st_size, sha256_of(path))
    return out


def _decode(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().stream_reader(data).read()
    if path.name.endswith(".bz2"):
        return bz2.decompress(data)
    return data


def published_subdirs(site: Path) -> list[Path]:
    """Directories of the site (outside history/ and .sitegen/) holding any metadata file."""
    out = []
    for dirpath, dirnames, filenames in os.walk(site):
        here = Path(dirpath)
        if here == site:
            dirnames[:] = [d for d in dirnames if d not in PRIVATE_TOP]
        if any(name in METADATA for name in filenames):
            out.append(here)
    return sorted(out)


def _check_records(directory: Path, name: str, document: Any, hashes: dict[str, str]) -> set[str]:
    where = f"{directory}/{name}"
    assert isinstance(document, dict), f"{where}: not a JSON object"
    listed: set[str] = set()
    for key, suffix in (("packages", ".tar.bz2"), ("packages.conda", ".conda")):
        section = document.get(key, {})
        assert isinstance(section, dict), f"{where}: {key!r} is not an object"
        for fn, record in section.items():
            assert isinstance(fn, str), f"{where}: filename {fn!r}"
            assert fn.endswith(suffix), f"{where}: {fn!r} listed under {key!r}"
            assert fn == os.path.basename(fn) and fn not in (".", ".."), (
                f"{where}: {fn!r} is not a plain file name"
            )
            assert "\\" not in fn and "\x00" not in fn, f"{where}: {fn!r} is not a plain name"
            assert not fn.startswith(TEMP_PREFIX), f"{where}: lists a temporary file {fn!r}"
            path = directory / fn
            assert path.is_file() and not path.is_symlink(), f"{where}: {fn} is not on disk"
            size = path.stat().st_size
            assert size == record["size"], f"{where}: {fn} has {size} bytes, not {record['size']}"
            if fn not in hashes:
                hashes[fn] = sha256_of(path)
            if record.get("sha256"):
                assert hashes[fn] == record["sha256"].lower(), f"{where}: {fn}: sha256 differs"
            else:
                md5 = hashlib.md5(path.read_bytes()).hexdigest()
                assert md5 == record["md5"].lower(), f"{where}: {fn}: md5 differs"
            listed.add(fn)
    return listed


def _check_subdir(directory: Path, settled: bool) -> None:
    hashes: dict[str, str] = {}
    present = [name for name in METADATA if (directory / name).is_file()]
    if settled:
        missing = set(METADATA) - OPTIONAL - set(present)
        assert not missing, f"{directory}: missing {missing}"
    decoded: dict[str, bytes] = {}
    listed: dict[str, set[str]] = {}
    for name in present:
        try:
            decoded[name] = _decode(directory / name)
        except (OSError, ValueError, zstandard.ZstdError) as exc:
            raise AssertionError(f"{directory}/{name} does not decompress: {exc}") from None
        try:
            document = json.loads(decoded[name])
        except ValueError as exc:
            raise AssertionError(f"{directory}/{name} is not JSON: {exc}") from None
        assert document.get("info", {}).get("subdir") == directory.name, (
            f"{directory}/{name}: info.subdir is not {directory.name!r}"
        )
        listed[name] = _check_records(directory, name, document, hashes)
    if settled:
        body = decoded["repodata.json"]
        for name in ("repodata.json.zst", "repodata.json.bz2"):
            assert decoded.get(name, body) == body, (
                f"{directory}/{name} does not hold repodata.json"
            )
        stray = listed["current_repodata.json"] - listed["repodata.json"]
        assert not stray, f"{directory}/current_repodata.json lists {sorted(stray)}"
        _check_run_exports(directory, listed["repodata.json"])
    else:  # mid-run the two may be of two generations, and ahead of repodata.json
        _check_run_exports_alone(directory)
    _check_shards(directory, json.loads(decoded["repodata.json"]) if settled else None)


def _check_run_exports(directory: Path, records: set[str]) -> None:
    """CEP-12: run_exports.json (with its .zst, or neither) names only files repodata.json
    lists, each in the section of its format."""
    path, packed = directory / "run_exports.json", directory / "run_exports.json.zst"
    if not path.is_file():
        assert not packed.exists(), f"{packed} without run_exports.json"
        return
    body = path.read_bytes()
    assert zstandard.decompress(packed.read_bytes()) == body, f"{packed} does not hold it"
    document = json.loads(body)
    assert document["info"]["subdir"] == directory.name, f"{path}: info.subdir"
    for section, suffix in (("packages", ".tar.bz2"), ("packages.conda", ".conda")):
        for fn, entry in document[section].items():
            assert fn in records and fn.endswith(suffix), f"{path} lists {fn} in {section}"
            assert isinstance(entry["run_exports"], dict), f"{path}: {fn}: {entry}"


def _check_run_exports_alone(directory: Path) -> None:
    """CEP-12, at any moment: run_exports.json and its .zst, each where present, are whole
    documents of this subdir."""
    for name in ("run_exports.json", "run_exports.json.zst"):
        path = directory / name
        if not path.is_file():
            continue
        try:
            document = json.loads(_decode(path))
        except (ValueError, zstandard.ZstdError) as exc:
            raise AssertionError(f"{path} is not a whole document: {exc}") from None
        assert document["info"]["subdir"] == directory.name, f"{path}: info.subdir"
        assert all(isinstance(document[s], dict) for s in ("packages", "packages.conda")), path


def _unzstd(path: Path) -> Any:
    data = path.read_bytes()
    assert zstandard.frame_content_size(data) >= 0, f"{path}: zstd frame without content size"
    return msgspec.msgpack.decode(zstandard.ZstdDecompressor().decompress(data))


def _check_shards(directory: Path, repodata: dict[str, Any] | None) -> None:
    """CEP-16: the shard index names only shards that exist and hash to their names (always,
    even mid-run); once settled it exists and its shards hold exactly what ``repodata``
    lists, name by name, checksums as raw bytes."""
    index_path = directory / SHARD_INDEX
    if not index_path.is_file():
        assert repodata is None, f"{index_path} is missing"
        return
    index = _unzstd(index_path)
    assert index["info"]["shards_base_url"] == "./shards/", f"{index_path}: shards_base_url"
    shards = {}
    for name, digest in index["shards"].items():
        path = directory / "shards" / f"{digest.hex()}.msgpack.zst"
        assert path.is_file(), f"{index_path} names {name!r}, whose shard {path.name} is missing"
        assert sha256_of(path) == digest.hex(), f"{path} does not hash to its name"
        shards[name] = path
    if repodata is None:
        return
    expected: dict[str, dict[str, dict[str, Any]]] = {}
    for key in ("packages", "packages.conda"):
        for fn, record in repodata[key].items():
            section = expected.setdefault(record["name"], {"packages": {}, "packages.conda": {}})
            # A shard holds checksums as bytes: their hex case is not kept.
            section[key][fn] = {
                k: v.lower() if k in ("md5", "sha256") and isinstance(v, str) else v
                for k, v in record.items()
            }
    assert set(shards) == set(expected), f"{index_path} names other packages than repodata.json"
    for name, path in shards.items():
        shard = _unzstd(path)
        for key in ("packages", "packages.conda"):
            unpacked = {
                fn: {k: v.hex() if isinstance(v, bytes) else v for k, v in record.items()}
                for fn, record in shard.get(key, {}).items()
            }
            assert unpacked == expected[name][key], f"{path} ({name}) differs from repodata.json"


def assert_site_invariant(site_root: Path, *, settled: bool = True) -> list[Path]:
    """Check the whole site (see the module docstring); returns its published subdirs."""
    site = Path(site_root).absolute()
    sandbox_before = _sandboxes.get(site)
    if sandbox_before is not None:
        sandbox = site.parent.parent
        after = _tree(sandbox, skip=site)
        changed = {
            rel
            for rel in set(after) | set(sandbox_before)
            if after.get(rel) != sandbox_before.get(rel)
        }
        assert not changed, f"written outside the site {site}: {sorted(changed)}"
    if not site.exists():
        return []
    real_root = site.resolve()
    for dirpath, dirnames, filenames in os.walk(site):
        here = Path(dirpath)
        for name in dirnames + filenames:
            path = here / name
            assert not path.is_symlink(), f"symlink in the site: {path}"
            resolved = path.resolve()
            assert resolved == real_root or real_root in resolved.parents, f"{path} escapes"
    subdirs = published_subdirs(site)
    for directory in subdirs:
        if settled:
            temps = [n for n in os.listdir(directory) if n.startswith(TEMP_PREFIX)]
            assert not temps, f"temporary files left behind in {directory}: {temps}"
        _check_subdir(directory, settled)
    return subdirs


def site_digest(site_root: Path) -> dict[str, str]:
    """relative path -> sha256 of every package and metadata file of the site (not history/,
    .sitegen/ or rendered pages, which record when runs happened): what two runs that ended
    in the same state must agree on."""
    site = Path(site_root)
    out = {}
    for rel, (kind, _size, digest) in _tree(site).items():
        name = rel.rsplit("/", 1)[-1]
        if kind != "file" or rel.split("/", 1)[0] in PRIVATE_TOP:
            continue
        if name.endswith(PACKAGE_SUFFIXES) or name in (*METADATA, "channeldata.json"):
            out[rel] = digest
    return out


def temporaries(site_root: Path) -> list[Path]:
    """Every temporary file anywhere below the site, private state included."""
    return sorted(Path(site_root).rglob(TEMP_PREFIX + "*"))


def shard_files(directory: Path) -> set[str]:
    """The shard index of a published subdir and the shards it names, relative to the subdir
    (what a settled subdir holds besides its metadata and packages; see :func:`_check_shards`
    for what their content must be)."""
    index = _unzstd(directory / SHARD_INDEX)
    return {SHARD_INDEX} | {f"shards/{d.hex()}.msgpack.zst" for d in index["shards"].values()}
