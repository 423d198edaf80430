"""Run records in the ledger: what they keep, how every version of them reads back, and what
reading skips."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sitegen.layout import runs_dir
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.report import (
    COMPLETED,
    MirrorReport,
    RunReport,
)


@pytest.mark.unit
def test_a_run_record_keeps_any_text_and_reads_back(tmp_path: Path) -> None:
    """Errors quote upstream text and local paths, which may be neither ASCII nor UTF-8: the
    record keeps them, and reads back with U+FFFD for what no page can hold (a lone
    surrogate), so that every page rendered from the ledger can show it."""
    report = RunReport(id="20240101T000000.000Z-1", started=1.0, ended=2.0, status=COMPLETED)
    report.errors = ["mirror café: 404", "cannot publish it from /srv/caf\udce9/x.conda"]
    report.mirrors.append(MirrorReport(name="m", channel="c", source="https://example.org/c"))
    history = History(Site(tmp_path))
    history.save(report)
    data = (runs_dir(tmp_path) / f"{report.id}.json").read_bytes()
    assert data.isascii()
    assert data == json.dumps(dataclasses.asdict(report), indent=1, sort_keys=True).encode()
    (again,) = history.runs()
    assert again.errors == ["mirror café: 404", "cannot publish it from /srv/caf\ufffd/x.conda"]
    again.errors = report.errors
    assert again.to_json() == report.to_json()


MIRROR = {"name": "cloud-x", "channel": "cloud/x", "source": "/srv/x"}


APPROVAL = {"action": "approve", "channel": "cloud/x", "spec": "zlib", "by": "ann", "why": "w"}


DAMAGED_RECORDS = [
    {"started": "yesterday"},
    {"started": None},
    {"started": 1.0, "ended": "later"},
    {"started": 1.0, "mirrors": [1]},
    {"started": 1.0, "mirrors": {"m": {}}},
    {"started": 1e300},
    {"started": 1.0, "channels": [{"channel": "c", "subdir": "noarch", "added": "a.conda"}]},
    {"id": 5, "started": 1.0},
    # Rows of the right type (objects of strings) that lack a field the pages read.
    {"started": 1.0, "approvals": [{"action": "approve", "channel": "cloud/x"}]},
    {"started": 1.0, "mirrors": [{**MIRROR, "unsatisfied": [{"subdir": "linux-64"}]}]},
    {"started": 1.0, "mirrors": [{**MIRROR, "advisories_blocked": [{"subdir": "linux-64"}]}]},
    {"started": 1.0, "mirrors": [{**MIRROR, "dependencies_added": [{"file": "a-1-0.conda"}]}]},
    {"started": 1.0, "mirrors": [{**MIRROR, "pins_missing": [{"why": "not upstream"}]}]},
    {"started": 1.0, "approvals": [{**APPROVAL, "with_dependencies": "yes"}]},
]


@pytest.mark.unit
@pytest.mark.parametrize(
    "text",
    [json.dumps({"id": "20240102T000000.000Z-2", **d}) for d in DAMAGED_RECORDS]
    + ["[" * 100_000 + "]" * 100_000],
)
def test_a_damaged_or_foreign_run_record_is_skipped_not_fatal(tmp_path: Path, text: str) -> None:
    """Every reader of the ledger (pages, status, --due, retention) sorts and formats the
    records' times: one file of the wrong shape must not stop them all."""
    good = RunReport(id="20240101T000000.000Z-1", started=1.0, ended=2.0, status=COMPLETED)
    history = History(Site(tmp_path))
    history.save(good)
    (runs_dir(tmp_path) / "20240102T000000.000Z-2.json").write_text(text)
    assert [r.id for r in history.runs()] == [good.id]
    # Whoever must not take "cannot tell" for "names nothing" is told (see web/private.py).
    with pytest.raises(OSError, match="unreadable run record"):
        history.runs(strict=True)


@pytest.mark.unit
def test_run_records_read_back_as_every_version_wrote_their_rows(tmp_path: Path) -> None:
    """The rows of a record's lists have been written with these fields since they exist (an
    approval's expiry and dependencies only when given); they read back and are written
    again the same."""
    mirror = {
        **MIRROR,
        "unsatisfied": [
            {"needed_by": "app-1-0.conda", "spec": "lib >=2", "subdir": "linux-64"},
            {"needed_by": "app-1-0.conda", "reason": "build excluded", "spec": "b", "subdir": "x"},
        ],
        "dependencies_added": [{"file": "lib-2-0.conda", "subdir": "noarch", "why": "lib >=2"}],
        "advisories_blocked": [{"advisory": "GHSA-1", "file": "zlib-1-0.conda", "subdir": "x"}],
        "pins_missing": [
            {"file": "b-1-0.conda", "lockfile": "/l/pixi.lock", "subdir": "x", "why": "gone"}
        ],
    }
    approvals = [
        APPROVAL,
        {**APPROVAL, "action": "revoke", "expires": "2027-01-31", "with_dependencies": "true"},
    ]
    record = {"id": "20240102T000000.000Z-2", "started": 1.0, "mirrors": [mirror]}
    record["approvals"] = approvals
    history = History(Site(tmp_path))
    path = runs_dir(tmp_path) / "20240102T000000.000Z-2.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    (report,) = history.runs(strict=True)
    assert [u.reason for u in report.mirrors[0].unsatisfied] == ["", "build excluded"]
    assert report.approvals[1].with_dependencies == "true" and report.approvals[0].expires is None
    data = report.to_json()
    assert data["approvals"] == approvals
    assert {key: data["mirrors"][0][key] for key in mirror} == mirror


@pytest.mark.unit
def test_a_ledger_that_cannot_be_read_reads_empty_or_raises_when_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most readers take an unlistable ledger for no runs; a strict reader (whether webconf
    may serve the records) is told it cannot list it, in the same read that lists them."""
    history = History(Site(tmp_path))
    assert history.runs() == [] and history.runs(strict=True) == []  # no run yet
    good = RunReport(id="20240101T000000.000Z-1", started=1.0, ended=2.0, status=COMPLETED)
    history.save(good)
    assert [r.id for r in history.runs(strict=True)] == [good.id]
    # A damaged record is passed over, but a strict reader cannot tell what it names.
    damaged = history.directory / "20240102T000000.000Z-1.json"
    damaged.write_text('{"id": "20240102T000000.000Z-1", "channels": [{"chann')
    assert [r.id for r in history.runs()] == [good.id]
    with pytest.raises(OSError, match="unreadable run record"):
        history.runs(strict=True)
    # A record deleted between the listing and its reading (retention) is simply gone.
    damaged.unlink()
    open_file = os.open

    def retained(path: str | os.PathLike[str], flags: int, *args: Any) -> int:
        if os.path.basename(path) == f"{good.id}.json":
            raise FileNotFoundError(path)
        return open_file(path, flags, *args)

    later = RunReport(id="20240103T000000.000Z-1", started=3.0, ended=4.0, status=COMPLETED)
    history.save(later)
    with monkeypatch.context() as patched:
        patched.setattr(os, "open", retained)
        assert [r.id for r in history.runs(strict=True)] == [later.id]
    for record in history.directory.iterdir():
        record.unlink()
    history.directory.rmdir()
    history.directory.write_text("not a directory")  # listing it fails
    assert history.runs() == [] and history.read() == ([], [])
    with pytest.raises(OSError):
        history.runs(strict=True)
