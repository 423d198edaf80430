"""``sitegen verify --sample FRACTION``: only a share of the package files is hashed, chosen
by day; metadata, presence and sizes are checked in full."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import trio

from sitegen.cli import main
from sitegen.config import load_config
from sitegen.tools.verify import verify_site
from sitegen.tools.verify_sample import Sample, parse_fraction
from testkit.small_channel import CHANNEL, mirrored_small

LINUX = "linux-64"


@pytest.fixture
def mirrored(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(config path, site) of a freshly and cleanly mirrored site."""
    with mirrored_small(tmp_path) as (config, site, _server):
        yield config, site


def package_files(site: Path) -> list[str]:
    """The published package files, as ``channel/subdir/file``."""
    return sorted(
        p.relative_to(site).as_posix()
        for p in (site / CHANNEL).glob("*/*")
        if p.name.endswith((".conda", ".tar.bz2"))
    )


def flip(path: Path) -> None:
    """Other bytes of the same size: only hashing finds it."""
    path.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))


@pytest.mark.unit
def test_the_sample_is_the_fraction_asked_and_another_each_day() -> None:
    names = [f"c/x/linux-64/p{i}-1.0-0.conda" for i in range(400)]
    day = date(2026, 1, 2)
    assert not any(Sample(0.0, day).includes(n) for n in names)
    assert all(Sample(1.0, day).includes(n) for n in names)
    today = {n for n in names if Sample(0.25, day).includes(n)}
    assert 50 < len(today) < 150
    assert today == {n for n in names if Sample(0.25, day).includes(n)}  # same all day
    tomorrow = {n for n in names if Sample(0.25, day + timedelta(days=1)).includes(n)}
    assert tomorrow != today
    # A larger share of the same day holds the smaller one.
    assert today <= {n for n in names if Sample(0.5, day).includes(n)}
    assert parse_fraction("5%") == 0.05 and parse_fraction("0.05") == 0.05
    for bad in ("1.5", "-0.1", "101%", "nan", "x"):
        with pytest.raises(ValueError):
            parse_fraction(bad)


@pytest.mark.integration
def test_a_sample_finds_a_corrupt_file_it_includes(mirrored: tuple[Path, Path]) -> None:
    config_path, site = mirrored
    config = load_config(config_path)
    files = package_files(site)
    # A day whose half-sample holds some files and leaves out others.
    day = date(2026, 1, 1)
    while len({Sample(0.5, day).includes(f) for f in files}) < 2:
        day += timedelta(days=1)
    sample = Sample(0.5, day)
    inside = next(f for f in files if sample.includes(f))
    outside = next(f for f in files if not sample.includes(f))
    flip(site / inside)
    flip(site / outside)

    def corrupt_found(sample: Sample | None) -> tuple[set[str], int]:
        report = trio.run(verify_site, config, False, sample)
        assert report.files == len(files)
        return {p.path for p in report.problems if p.kind == "corrupt"}, report.hashed

    assert corrupt_found(sample) == ({inside}, sum(sample.includes(f) for f in files))
    assert corrupt_found(Sample(1.0, day)) == ({inside, outside}, len(files))
    assert corrupt_found(None) == ({inside, outside}, len(files))
    assert corrupt_found(Sample(0.0, day)) == (set(), 0)
    # Outside the sample a file of another size is still found, and a missing one.
    (site / outside).write_bytes(b"short")
    (site / inside).unlink()
    report = trio.run(verify_site, config, False, Sample(0.0, day))
    assert {(p.path, p.kind) for p in report.problems} == {
        (outside, "corrupt"),
        (inside, "missing"),
    }


@pytest.mark.integration
def test_verify_sample_command_says_it_was_a_sample(
    mirrored: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, site = mirrored
    capsys.readouterr()
    assert main(["verify", "-c", str(config), "--sample", "100%"]) == 0
    out = capsys.readouterr().out
    count = len(package_files(site))
    assert re.search(
        rf"checked {count} files, [0-9.]+ KB \(a sample: 100% for \d{{4}}-\d\d-\d\d,"
        rf" hashed {count} files, [0-9.]+ KB; sizes only for the rest\); 0 problems",
        out,
    ), out
    with pytest.raises(SystemExit) as exited:
        main(["verify", "-c", str(config), "--sample", "2"])
    assert exited.value.code == 2
    assert "is not between 0 and 1" in capsys.readouterr().err
