"""CEP-12 ``run_exports.json``: the format itself, and what a local source publishes of its
packages' own ``info/run_exports.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sitegen.conda.run_exports import (
    REASON_NOT_SPECS,
    REASON_UNKNOWN_KIND,
    REASON_WRONG_SECTION,
    RunExportsError,
    encode_run_exports,
    entry_of,
    parse_run_exports,
)
from testkit.invariant import make_sandbox
from testkit.local import index_of, info_members, local_config, write_conda, write_tar_bz2
from testkit.run_exports import mirror_once, published_exports


def _package(folder: Path, fn: str, exports: Any = None) -> None:
    """A package built by hand, with ``exports`` as its info/run_exports.json (bytes as they
    are, else as JSON; None: it has none)."""
    name, version, build = fn.removesuffix(".conda").removesuffix(".tar.bz2").rsplit("-", 2)
    info = info_members(index_of(name, version, build))
    if exports is not None:
        data = exports if isinstance(exports, bytes) else json.dumps(exports).encode()
        info.append(("info/run_exports.json", data))
    if fn.endswith(".conda"):
        write_conda(folder / fn, info)
    else:
        write_tar_bz2(folder / fn, [*info, ("share/x.txt", b"x")])


LOCAL_EXPORTS = {
    "info": {"subdir": "linux-64", "version": 1},
    "packages": {"rex-1.0-0.tar.bz2": {"run_exports": {"weak": ["rex"]}}},
    "packages.conda": {
        "plain-1.0-0.conda": {"run_exports": {}},
        "rex-1.0-0.conda": {"run_exports": {"strong_constrains": ["b"], "weak": ["rex >=1.0"]}},
    },
}


@pytest.mark.integration
async def test_a_local_source_publishes_its_packages_own(tmp_path: Path) -> None:
    """Each package's info/run_exports.json; ``{}`` for one without; no entry for one whose
    file is not sound (a build tool reads that package itself). Kept with the index cache:
    an entry an earlier version cached without them (nor an INDEX_VERSION) is read again."""
    folder = tmp_path / "incoming"
    _package(folder, "rex-1.0-0.conda", {"weak": ["rex >=1.0"], "strong_constrains": ["b"]})
    _package(folder, "rex-1.0-0.tar.bz2", ["rex"])  # conda-build's old bare list: weak
    _package(folder, "plain-1.0-0.conda")
    _package(folder, "bad-1.0-0.conda", {"weak": "not a list"})
    _package(folder, "broken-1.0-0.tar.bz2", b"{not json")
    config = local_config(make_sandbox(tmp_path), folder)
    await mirror_once(config)
    published = published_exports(config)
    assert published == LOCAL_EXPORTS
    repodata = json.loads((config.output / "internal/own/linux-64/repodata.json").read_bytes())
    assert {"bad-1.0-0.conda", "broken-1.0-0.tar.bz2"} <= set(
        repodata["packages"] | repodata["packages.conda"]
    )

    (cache,) = (config.output / ".sitegen" / "local-index").glob("*.json")
    old = {
        fn: {k: v for k, v in e.items() if k not in ("run_exports", "version")}
        for fn, e in json.loads(cache.read_bytes()).items()
    }
    cache.write_text(json.dumps(old))
    (config.output / "internal/own/linux-64/run_exports.json").unlink()
    (config.output / "internal/own/linux-64/run_exports.json.zst").unlink()
    await mirror_once(config)
    assert published_exports(config) == LOCAL_EXPORTS


# ------------------------------------------------------------------ the format (pure)


@pytest.mark.unit
def test_parse_counts_what_it_leaves_out() -> None:
    document = {
        "packages": {
            "a-1-0.tar.bz2": {"run_exports": {"weak": ["a"], "strong_constrains": ["b"]}},
            "b-1-0.conda": {"run_exports": {}},  # a .conda in the .tar.bz2 section
            "c-1-0.tar.bz2": {"run_exports": {"weird": ["c"]}},
            "d-1-0.tar.bz2": {"run_exports": {"weak": [1]}},
            "e-1-0.tar.bz2": [],
        },
        "packages.conda": {"f-1-0.conda": {"run_exports": {}}},
    }
    parsed = parse_run_exports(json.dumps(document).encode())
    assert set(parsed.entries) == {"a-1-0.tar.bz2", "f-1-0.conda"}
    assert parsed.dropped == {
        REASON_WRONG_SECTION: 1,
        REASON_UNKNOWN_KIND: 1,
        REASON_NOT_SPECS: 1,
        "not an object with a run_exports object": 1,
    }
    body = encode_run_exports("linux-64", parsed.entries, ["f-1-0.conda", "a-1-0.tar.bz2"])
    assert json.loads(body) == {
        "info": {"subdir": "linux-64", "version": 1},
        "packages": {"a-1-0.tar.bz2": {"run_exports": {"strong_constrains": ["b"], "weak": ["a"]}}},
        "packages.conda": {"f-1-0.conda": {"run_exports": {}}},
    }


@pytest.mark.unit
def test_parse_refuses_what_is_not_a_document() -> None:
    for data in (b"", b"null", b'{"packages.conda": 3}'):
        with pytest.raises(RunExportsError):
            parse_run_exports(data)


@pytest.mark.unit
def test_a_package_s_own_file() -> None:
    assert entry_of({"weak": ["x >=1"]}) == b'{"weak":["x >=1"]}'
    assert entry_of(["x >=1"]) == b'{"weak":["x >=1"]}'  # conda-build's old bare list
    assert entry_of({}) == b"{}"
    assert entry_of({"weak": "x"}) is None
    assert entry_of("x") is None
