"""``sitegen verify`` over the files of a subdir made from its ``repodata.json``:
``repodata.json.zst`` (and ``repodata.json.bz2`` with ``repodata: {bz2: true}``) must decompress
to exactly ``repodata.json``, with the setting off no ``.bz2`` may be left published, and
``current_repodata.json`` must be there and hold what ``repodata.json`` makes of it: its newest
records, each exactly as ``repodata.json`` lists it. A CEP-12 ``run_exports.json``, where one is
published, must be sound, list only records of ``repodata.json``, and have its ``.zst`` beside
it holding exactly it.

With ``--repair`` each one found wrong is rebuilt from ``repodata.json`` (the file published
last, so the truth), and a ``.bz2`` published while the setting is off is removed; a
``run_exports.json`` loses the entries of files ``repodata.json`` does not list (one that is
not sound is removed, with its ``.zst``: the next run publishes it again).
"""

from __future__ import annotations

import bz2
import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import zstandard

from sitegen.conda.records import Repodata
from sitegen.conda.run_exports import (
    RunExportsError,
    encode_run_exports,
    listed_files,
    parse_run_exports,
)
from sitegen.conda.schema import RECORD_SECTIONS
from sitegen.layout import REPODATA, REPODATA_BZ2, RUN_EXPORTS_FILES, metadata_files
from sitegen.store.compare import NotAFileError, read_regular
from sitegen.store.interface import SiteStorage
from sitegen.sync.metadata_compress import bz2_compress, zstd_compress
from sitegen.sync.subdir_metadata import SubdirMetadata

# (site-relative path, kind of problem, what is wrong), as
# :class:`sitegen.tools.verify.Problem` takes them.
Found = tuple[str, str, str]
RUN_EXPORTS, RUN_EXPORTS_ZST = RUN_EXPORTS_FILES


def metadata_problems(
    directory: Path, relative: str, repodata: Repodata, repodata_bz2: bool
) -> list[Found]:
    """What is wrong with the files made from the ``repodata.json`` of ``directory`` (the
    subdir at ``relative`` in the site), parsed as ``repodata``."""
    problems = []
    body = (directory / REPODATA).read_bytes()
    expected = metadata_files(repodata_bz2)
    decoders = {
        "repodata.json.zst": lambda data: zstandard.ZstdDecompressor().stream_reader(data).read(),
        REPODATA_BZ2: bz2.decompress,
    }
    for name, decode in decoders.items():
        path = directory / name
        if name not in expected:
            # Of some earlier repodata.json: nothing rewrites it while the setting is off.
            if path.exists():
                why = "published though the configuration leaves it out (repodata: {bz2: false})"
                problems.append((f"{relative}/{name}", "metadata", why))
            continue
        try:
            same = decode(read_regular(path)) == body
        except (FileNotFoundError, NotAFileError) as exc:
            problems.append((f"{relative}/{name}", "metadata", _absent(exc)))
            continue
        except (OSError, ValueError, zstandard.ZstdError):
            same = False
        if not same:
            problems.append((f"{relative}/{name}", "metadata", "does not hold repodata.json"))
    try:
        why = _current_problem(read_regular(directory / "current_repodata.json"), repodata)
    except OSError as exc:
        why = _absent(exc)
    if why:
        problems.append((f"{relative}/current_repodata.json", "metadata", why))
    return problems + _run_exports_problems(directory, relative, repodata.records)


def _absent(exc: OSError) -> str:
    """What is wrong with a file that could not be read as one: missing, something else in its
    place (repaired over, but for a directory, which may hold files not the site's), or a
    name that cannot be opened (a loop of links)."""
    if isinstance(exc, FileNotFoundError):
        return "missing"
    return str(exc) if isinstance(exc, NotAFileError) else f"unreadable: {exc.strerror or exc}"


def _run_exports_problems(directory: Path, relative: str, records: Collection[str]) -> list[Found]:
    document, packed = directory / RUN_EXPORTS, directory / RUN_EXPORTS_ZST
    if not document.is_file():
        if packed.exists():
            return [(f"{relative}/{RUN_EXPORTS_ZST}", "metadata", f"without {RUN_EXPORTS}")]
        return []
    problems = []
    body = document.read_bytes()
    try:
        stray = sorted(listed_files(body) - set(records))
    except RunExportsError as exc:
        problems.append((f"{relative}/{RUN_EXPORTS}", "metadata", f"not sound: {exc}"))
    else:
        if stray:
            why = f"lists {len(stray)} files not in repodata.json, e.g. {stray[0]}"
            problems.append((f"{relative}/{RUN_EXPORTS}", "metadata", why))
    try:
        same = zstandard.ZstdDecompressor().stream_reader(read_regular(packed)).read() == body
    except (OSError, zstandard.ZstdError):
        same = False
    if not same:
        problems.append(
            (f"{relative}/{RUN_EXPORTS_ZST}", "metadata", f"does not hold {RUN_EXPORTS}")
        )
    return problems


def _repair_run_exports(
    site: SiteStorage, directory: Path, subdir: str, records: Collection[str]
) -> None:
    """Keep what is sound of run_exports.json, for the files repodata.json lists, with its
    .zst; or remove both."""
    try:
        parsed = parse_run_exports((directory / RUN_EXPORTS).read_bytes())
    except (OSError, RunExportsError):
        parsed = None
    if parsed is None:
        site.remove(directory / RUN_EXPORTS_ZST)
        site.remove(directory / RUN_EXPORTS)
        return
    body = encode_run_exports(subdir, parsed.entries, records)
    site.write_many(
        [(directory / RUN_EXPORTS_ZST, zstd_compress(body)), (directory / RUN_EXPORTS, body)]
    )


def _current_problem(data: bytes, repodata: Repodata) -> str:
    """What is wrong with ``current_repodata.json`` (``data``): it must hold what
    ``repodata.json`` makes of it, the newest records with exactly their fields (conda reads
    it first, so a record of other dependencies there is what clients install); "" if so."""
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        groups = [doc.get(group, {}) for group in RECORD_SECTIONS]
        if not all(isinstance(group, dict) for group in groups):
            raise ValueError("packages are not JSON objects")
    except ValueError:
        return "unreadable"
    listed = {fn: record for group in groups for fn, record in group.items()}
    stray = sorted(listed.keys() - repodata.records.keys())
    if stray:
        return f"lists {len(stray)} files not in repodata.json, e.g. {stray[0]}"
    expected = json.loads(_metadata(repodata).encode_current())
    made = {
        fn: record for group in RECORD_SECTIONS for fn, record in expected.get(group, {}).items()
    }
    left_out = sorted(made.keys() - listed.keys())
    if left_out:
        why = "leaves out {} current files of repodata.json, e.g. {}"
        return why.format(len(left_out), left_out[0])
    differ = sorted(fn for fn, record in listed.items() if record != made.get(fn))
    if differ:
        return f"lists {len(differ)} files other than repodata.json does, e.g. {differ[0]}"
    if doc != expected:
        return "does not hold what repodata.json makes of it"
    return ""


def _metadata(repodata: Repodata) -> SubdirMetadata:
    return SubdirMetadata(
        subdir=repodata.subdir,
        records=repodata.records,
        info=repodata.info,
        removed=repodata.removed,
        extra=repodata.extra,
    )


def repair_metadata(
    site: SiteStorage,
    directory: Path,
    repodata: Repodata,
    names: Collection[str],
    repodata_bz2: bool,
) -> dict[str, str]:
    """Rebuild the damaged siblings of ``repodata.json`` that ``names`` name (found by
    :func:`metadata_problems`) from it, and remove a .bz2 while ``repodata_bz2`` is off;
    returns for each name it took on why its repair failed, "" when it did not. A directory
    in a file's place is left, and its repair fails: what it holds is not the site's."""
    body = (directory / REPODATA).read_bytes()
    meta = _metadata(repodata)
    expected = metadata_files(repodata_bz2)
    rebuild = {
        "repodata.json.zst": lambda: zstd_compress(body),
        REPODATA_BZ2: lambda: bz2_compress(body),
        "current_repodata.json": meta.encode_current,
    }
    outcome: dict[str, str] = {}
    if RUN_EXPORTS in names or RUN_EXPORTS_ZST in names:
        why = _failure(_repair_run_exports, site, directory, repodata.subdir, repodata.records)
        outcome.update(dict.fromkeys({RUN_EXPORTS, RUN_EXPORTS_ZST} & set(names), why))
    for name in names:
        if name in rebuild and name not in expected:
            outcome[name] = _failure(site.remove, directory / name)
        elif name in rebuild:
            outcome[name] = _failure(site.write_bytes, directory / name, rebuild[name]())
    return outcome


def _failure(repair: Callable[..., object], *args: Any) -> str:
    """Why ``repair(*args)`` failed on disk (a directory in the file's place), "" when it did
    not."""
    try:
        repair(*args)
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""
