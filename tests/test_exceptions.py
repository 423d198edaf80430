"""``except``: records taken back from the excludes of their own level (conda-mirror's
whitelist), and everything an exception does not override: the other levels, what a level
selects, advisories, sizes and approvals."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent, indent

import pytest

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import ConfigError, FilterSpec, SiteConfig, parse_config
from sitegen.filters import apply as f
from sitegen.filters.apply import FilterResult, apply_filters
from sitegen.filters.lockfile_read import Pin
from sitegen.filters.lockfiles import KEY as LOCKFILES
from sitegen.filters.lockfiles import LockfilePolicy
from testkit.records import rec

pytestmark = pytest.mark.unit


def config(filters: str, *, site: str = "", mirror: str = "", base_dir: Path | None = None):
    """A site of one channel, with these filters at the channel level (YAML mappings)."""
    text = "output: site\n"
    if site:
        text += "filters:\n" + indent(dedent(site), "  ")
    text += dedent(
        """\
        channels:
          pkgs/main:
            mirrors:
              - url: https://repo.example.org/main
                subdirs: [linux-64]
        """
    )
    if mirror:
        text += "        filters:\n" + indent(dedent(mirror), " " * 10)
    text += "    filters:\n" + indent(dedent(filters), "      ")
    return parse_config(text, base_dir=base_dir)


def levels_of(site: SiteConfig) -> tuple[FilterSpec, ...]:
    channel = site.channels[0]
    return site.filter_levels(channel, channel.mirrors[0])


def run(levels: tuple[FilterSpec, ...], records: list[Record]) -> FilterResult:
    return apply_filters({r.fn: r for r in records}, "linux-64", levels, RecordMatcher())


READLINE = rec("readline", "8.2", "h1", license="GPL-3.0-only")
SIX_PY27 = rec("six", "1.16.0", "py27_0")
SIX_PY36 = rec("six", "1.16.0", "py36_0")
FUTURES = rec("futures", "3.3.0", "py27_0")
GHOSTSCRIPT = rec("ghostscript", "10.0", "h2", license="AGPL-3.0")
PYTHON_27 = rec("python", "2.7.18", "py27_0")
PYTHON_27_OLD = rec("python", "2.7.17", "py27_0")
RECORDS = [READLINE, SIX_PY27, SIX_PY36, FUTURES, GHOSTSCRIPT, PYTHON_27, PYTHON_27_OLD]

# conda-mirror: blacklist: [{build: 'py2*'}, {license: '*gpl*'}]
BLACKLIST = """\
builds: {exclude: ['py2*']}
licenses: {exclude: ['*gpl*']}
"""


# --------------------------------------------------------------------------- the same level


def test_an_exception_takes_back_what_the_excludes_of_its_level_leave_out():
    site = config(BLACKLIST + "except: [readline, {name: SIX, build: 'PY27*'}, python 2.7.18]\n")
    result = run(levels_of(site), RECORDS)
    assert set(result.kept) == {READLINE.fn, SIX_PY27.fn, SIX_PY36.fn, PYTHON_27.fn}
    assert result.excluded == {
        FUTURES.fn: f.REASON_BUILD_EXCLUDED,
        GHOSTSCRIPT.fn: f.REASON_LICENSE_EXCLUDED,
        PYTHON_27_OLD.fn: f.REASON_BUILD_EXCLUDED,  # the MatchSpec names 2.7.18 only
    }
    # What each was taken back from; six py36 passed the excludes by itself.
    assert result.excepted == {
        READLINE.fn: f.REASON_LICENSE_EXCLUDED,
        SIX_PY27.fn: f.REASON_BUILD_EXCLUDED,
        PYTHON_27.fn: f.REASON_BUILD_EXCLUDED,
    }
    assert result.candidates == {}


def test_without_the_exception_the_same_excludes_leave_them_out():
    result = run(levels_of(config(BLACKLIST)), RECORDS)
    assert set(result.kept) == {SIX_PY36.fn}
    assert result.excepted == {}


def test_every_exclude_setting_of_the_level_is_overridden():
    records = [
        rec("numpy", "1.0", "0"),
        rec("scipy", "1.0", "0"),
        rec("bare", "1.0", "0", license=None),
        rec("gsl", "2.7", "0", license="GPL", license_family="GPL"),
    ]
    filters = """\
        names: {exclude: [numpy]}
        specs: {exclude: ['scipy 1.*']}
        licenses: {allow_missing: false, exclude_families: [gpl]}
        except: [numpy, scipy, bare, gsl]
        """
    result = run(levels_of(config(filters)), records)
    assert set(result.kept) == {r.fn for r in records}
    assert sorted(result.excepted.values()) == sorted(
        [f.REASON_NAME, f.REASON_SPEC, f.REASON_LICENSE_MISSING, f.REASON_LICENSE_FAMILY]
    )


def test_conda_mirror_entries_match_as_conda_mirror_matches_them():
    records = [
        rec("numpy", "1.20.1", "py27_0"),  # '1.2*' is text: 1.20 matches, as in conda-mirror
        rec("numpy", "1.3", "py27_0"),
        rec("tool", "1.0", "py27_3", build_number=3),
        rec("tool", "1.0", "py27_4", build_number=4),
        rec("bare", "1.0", "py27_0", license=None),  # a field it lacks matches only '*'
        rec("other", "1.0", "py27_0", license=None),
        rec("lic-mit", "1.0", "py27_0", license="MIT"),
        rec("lic-gpl", "1.0", "py27_0", license="GPL-3.0"),
    ]
    filters = """\
        builds: {exclude: ['py2*']}
        except:
          - {name: NumPy, version: '1.2*'}
          - {name: tool, build_number: 3}
          - {name: bare, license: '*'}
          - {name: other, license: '?*'}
          - {name: 'lic-*', license: '[mb]*'}
        """
    result = run(levels_of(config(filters)), records)
    assert set(result.excepted) == {
        "numpy-1.20.1-py27_0.conda",
        "tool-1.0-py27_3.conda",
        "bare-1.0-py27_0.conda",
        "lic-mit-1.0-py27_0.conda",
    }
    assert set(result.excluded) == {r.fn for r in records} - set(result.excepted)


def test_a_licence_that_is_not_text_matches_no_exception_as_the_licenses_filter_reads_it():
    """A record kept by keep_removed from before upstream's licence lists (or numbers) were
    refused may carry one: the licenses filter drops it as malformed, and no exception
    reading its licence, glob or spec, takes it back (not entry by entry, nor as written)."""
    listed = rec("lic-list", "1.0", "py27_0", license=["MIT", "BSD-3-Clause"])
    number = rec("lic-number", "1.0", "py27_0", license=3)
    plain = rec("lic-mit", "1.0", "py27_0", license="MIT")
    filters = """\
        builds: {exclude: ['py2*']}
        licenses: {exclude: ['*gpl*']}
        except:
          - {name: 'lic-*', license: '*'}
          - 'lic-list[license="*"]'
        """
    result = run(levels_of(config(filters)), [listed, number, plain])
    assert set(result.excepted) == {plain.fn}
    assert set(result.excluded) == {listed.fn, number.fn}


def test_exclude_all_names_with_exceptions_is_the_conda_mirror_allowlist_idiom():
    # blacklist: [{name: '*'}], whitelist: [{name: numpy}]: an error without the exception.
    with pytest.raises(ConfigError, match=r"names.exclude '\*' excludes every package"):
        config("names: {exclude: ['*']}\n")
    site = config("names: {exclude: ['*']}\nexcept: [{name: numpy}]\n")
    records = [rec("numpy"), rec("scipy")]
    result = run(levels_of(site), records)
    assert set(result.kept) == {"numpy-1.0-0.conda"}
    assert result.excluded == {"scipy-1.0-0.conda": f.REASON_NAME}
    # So for builds.exclude '*' and a licence exclude that leaves out everything.
    config("builds: {exclude: ['*']}\nexcept: [numpy]\n")
    config("licenses: {exclude: ['*'], allow_missing: false}\nexcept: [numpy]\n")


def test_an_include_excluded_by_its_own_level_is_an_error_unless_an_exception_names_it():
    with pytest.raises(ConfigError, match=r"names.include 'numpy' is also excluded"):
        config("names: {include: [numpy], exclude: ['num*']}\nexcept: [scipy]\n")
    site = config("names: {include: [numpy], exclude: ['num*']}\nexcept: ['numpy >=2']\n")
    records = [rec("numpy", "2.1"), rec("numpy", "1.26")]
    assert set(run(levels_of(site), records).kept) == {"numpy-2.1-0.conda"}
    # Across levels: the site excludes numpy, its exception takes it back for the allowlist.
    with pytest.raises(ConfigError, match="every name in an allowlist is excluded"):
        config("names: {include: [numpy]}\n", site="names: {exclude: [numpy]}\n")
    config(
        "names: {include: [numpy]}\n",
        site="names: {exclude: [numpy]}\nexcept: [{name: 'num*'}]\n",
    )


def test_entries_naming_packages_look_only_at_the_records_of_those_packages():
    # conda-mirror's allowlist idiom at conda-forge size (hundreds of entries, a million
    # records): an entry is tried only on the records of the names its name glob matches.
    read: set[str] = set()

    class Fields(dict):
        """A record's fields, noting the package whose fields are looked up (``get``)."""

        def get(self, key, default=None):  # type: ignore[override]
            read.add(self["name"])
            return super().get(key, default)

    names = ["numpy", "scipy", "pandas", "zlib"]
    records = [Record(r.fn, r.subdir, Fields(r.raw)) for r in map(rec, names)]
    filters = """\
        names: {exclude: ['*']}
        except: [{version: '1.*', name: numpy}, {build: '0', name: 'sci*'}, {name: 'zl?b'}]
        """
    result = run(levels_of(config(filters)), records)
    assert set(result.kept) == {"numpy-1.0-0.conda", "scipy-1.0-0.conda", "zlib-1.0-0.conda"}
    assert read == {"numpy", "scipy"}  # zlib's entry has no other key to read


# --------------------------------------------------------------------------- what it does not override


def test_an_exception_does_not_take_back_from_another_levels_excludes():
    # The mirror leaves out py2* builds; the channel's exception answers its own licence
    # exclude only. The site's exclude of futures is the site's too.
    site = config(
        "licenses: {exclude: ['*gpl*']}\nexcept: [readline, six, futures]\n",
        site="names: {exclude: [futures]}\n",
        mirror="builds: {exclude: ['py2*']}\n",
    )
    result = run(levels_of(site), [READLINE, SIX_PY27, SIX_PY36, FUTURES])
    assert set(result.kept) == {READLINE.fn, SIX_PY36.fn}
    assert result.excluded == {
        SIX_PY27.fn: f.REASON_BUILD_EXCLUDED,
        FUTURES.fn: f.REASON_NAME,
    }
    assert result.excepted == {READLINE.fn: f.REASON_LICENSE_EXCLUDED}


def test_an_exception_does_not_override_an_advisory(tmp_path: Path):
    osv = tmp_path / "GHSA-test.json"
    affected = {
        "package": {"purl": "pkg:conda/readline"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9"}]}],
    }
    osv.write_text(json.dumps({"id": "GHSA-test", "affected": [affected]}))
    filters = BLACKLIST + "advisories: {files: [GHSA-test.json]}\nexcept: [readline, six]\n"
    result = run(levels_of(config(filters, base_dir=tmp_path)), [READLINE, SIX_PY27])
    # readline is excepted from the licence exclude, and still blocked by the advisory.
    assert result.excluded == {READLINE.fn: "advisory GHSA-test"}
    assert result.excepted == {SIX_PY27.fn: f.REASON_BUILD_EXCLUDED}
    # An advisory is accepted by its own allow list, not by an exception.
    allowed = filters.replace("GHSA-test.json]}", "GHSA-test.json], allow: [GHSA-test]}")
    result = run(levels_of(config(allowed, base_dir=tmp_path)), [READLINE, SIX_PY27])
    assert set(result.excepted) == {READLINE.fn, SIX_PY27.fn}


def test_an_exception_does_not_override_sizes_or_what_the_level_selects():
    big = rec("six", "1.16.0", "py27_1", size=10**9)
    filters = """\
        builds: {include: ['py*'], exclude: ['py2*']}
        max_size: 1MB
        except: [six, futures, python]
        """
    unbuilt = rec("python", "2.7.18", "h_0")
    result = run(levels_of(config(filters)), [SIX_PY27, big, FUTURES, unbuilt])
    assert set(result.kept) == {SIX_PY27.fn, FUTURES.fn}
    assert result.excluded == {big.fn: f.REASON_TOO_LARGE, unbuilt.fn: f.REASON_BUILD_NOT_INCLUDED}
    # An allowlist of the level still decides; what it leaves out stays a dependency candidate.
    result = run(
        levels_of(config(BLACKLIST + "names: {include: [six]}\nexcept: [futures]\n")), RECORDS
    )
    assert set(result.kept) == {SIX_PY36.fn}
    assert result.excluded[FUTURES.fn] == f.REASON_NOT_ALLOWED
    assert FUTURES.fn in result.candidates and result.excepted == {}
    # newest_versions drops an excepted older version: it is no longer kept by exception.
    result = run(levels_of(config(BLACKLIST + "newest_versions: 1\nexcept: [python]\n")), RECORDS)
    assert result.excluded[PYTHON_27_OLD.fn] == f.REASON_OLDER_VERSION
    assert result.excepted == {PYTHON_27.fn: f.REASON_BUILD_EXCLUDED}


def test_an_exception_does_not_override_the_approvals_of_a_gated_channel():
    # A gated channel's mirror level is the allowlist of the approved files (sitegen.sync.gates).
    pin = Pin(subdir="linux-64", fn=SIX_PY27.fn, url="", sha256=SIX_PY27.sha256, md5=None)
    approved = FilterSpec.from_values({LOCKFILES: LockfilePolicy((("approvals.yaml", (pin,)),))})
    site, channel, _mirror = levels_of(config(BLACKLIST + "except: [readline, six]\n"))
    result = run((site, channel, approved), [READLINE, SIX_PY27, SIX_PY36])
    assert set(result.kept) == {SIX_PY27.fn}
    assert result.excluded == {READLINE.fn: f.REASON_NOT_ALLOWED, SIX_PY36.fn: f.REASON_NOT_ALLOWED}
