"""``--profile``: run the measured sitegen processes under py-spy and summarise where time goes.

py-spy (PyPI, installed into build/bench-venv on first use) samples the process from outside,
so sitegen runs unmodified. For each profiled run it writes, under bench-results/profiles/:
``<tag>.txt`` (collapsed stacks, the input of flamegraph tools and speedscope) and
``<tag>.summary.txt`` (the frames with the most samples: own time and inclusive time).
Profiled runs are slower; their numbers in the table are marked as such.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from bench.common import RESULTS, log
from bench.peer import py_spy_binary

PROFILES = RESULTS / "profiles"


class Profiler:
    def __init__(self, enabled: bool, rate: int = 200) -> None:
        self.enabled = enabled
        self.rate = rate
        self.binary: Path | None = None
        self.outputs: list[Path] = []
        if enabled:
            self.binary = py_spy_binary()
            if self.binary is None:
                log("py-spy could not be installed; profiling is off")
                self.enabled = False

    def wrap(self, argv: list[str], tag: str) -> list[str]:
        if not self.enabled or self.binary is None:
            return argv
        PROFILES.mkdir(parents=True, exist_ok=True)
        out = PROFILES / f"{tag.replace('/', '-')}.txt"
        self.outputs.append(out)
        return [
            str(self.binary),
            "record",
            "--format",
            "raw",
            "--rate",
            str(self.rate),
            "--threads",
            "--nonblocking",
            # The package pages of a first render are written by forked worker processes.
            "--subprocesses",
            "-o",
            str(out),
            "--",
            *argv,
        ]

    def summarise(self) -> list[Path]:
        written = []
        for path in self.outputs:
            if path.exists():
                summary = path.with_suffix(".summary.txt")
                summary.write_text(summarise_collapsed(path.read_text()))
                written.append(summary)
        return written


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    path = path.split("/work/main/", 1)[-1]
    return f"{match.group('func')} ({path})"


def summarise_collapsed(text: str, top: int = 40) -> str:
    """Own and inclusive sample counts per frame from py-spy's collapsed (raw) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        if frames and frames[0].startswith(("thread", "process")):
            threads[frames[0]] += count
            frames = frames[1:]
        if not frames:
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples\n"

    def block(title: str, counter: Counter[str]) -> list[str]:
        lines = [title]
        for frame, count in counter.most_common(top):
            lines.append(f"{100 * count / total:6.1f}%  {count:7d}  {frame}")
        return lines

    out = [f"{total} samples"]
    if threads:
        out += [*block("by thread:", threads), ""]
    out += [*block("own time:", own), "", *block("inclusive time:", inclusive)]
    return "\n".join(out) + "\n"
