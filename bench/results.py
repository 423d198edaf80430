"""The results table of ``make bench``: one row per measurement, printed and written to
``bench-results/`` with the machine and the tree measured."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS


@dataclass
class Row:
    workload: str
    metric: str
    value: str  # formatted for the table
    target: str = ""
    verdict: str = ""  # "ok", "MISS", "" (informational) or "n/a"
    raw: Any = None  # the number(s) behind value, for the JSON file
    note: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def add(
        self,
        workload: str,
        metric: str,
        value: str,
        target: str = "",
        ok: bool | None = None,
        raw: Any = None,
        note: str = "",
    ) -> Row:
        verdict = "" if ok is None else ("ok" if ok else "MISS")
        row = Row(workload, metric, value, target, verdict, raw, note)
        self.rows.append(row)
        return row

    def skip(self, workload: str, metric: str, why: str) -> None:
        self.rows.append(Row(workload, metric, "skipped", "", "n/a", None, why))

    def table(self) -> str:
        headers = ("workload", "measurement", "value", "target", "", "note")
        body = [(r.workload, r.metric, r.value, r.target, r.verdict, r.note) for r in self.rows]
        widths = [
            max(len(h), *(len(b[i]) for b in body)) if body else len(h)
            for i, h in enumerate(headers)
        ]
        widths[-1] = len(headers[-1])  # notes are not padded

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        out = [line(headers), line(["-" * w for w in widths])]
        previous = None
        for cells in body:
            if previous is not None and cells[0] != previous:
                out.append("")
            previous = cells[0]
            out.append(line(cells))
        return "\n".join(out)

    def write(self, args: dict[str, Any]) -> Path:
        RESULTS.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.started))
        document = {
            "started": self.started,
            "args": args,
            "machine": machine_info(),
            "rows": [asdict(r) for r in self.rows],
            "details": self.details,
        }
        path = RESULTS / f"{stamp}.json"
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
        text = self.table() + "\n"
        (RESULTS / f"{stamp}.txt").write_text(text)
        (RESULTS / "latest.txt").write_text(text)
        (RESULTS / "latest.json").write_text(path.read_text())
        return path


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def tree_state() -> str:
    """``<commit>`` plus the uncommitted sitegen/templates files: what was measured."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "sitegen", "templates", "pyproject.toml"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return head + (f" + uncommitted {', '.join(changed)}" if changed else "")


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1min": load_average(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info
