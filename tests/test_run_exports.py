"""CEP-12 ``run_exports.json``: what a mirror publishes of the one upstream serves beside its
repodata, over real mirror runs against an HTTP upstream; and the format itself."""

from __future__ import annotations

import errno
import hashlib
import json
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from sitegen.cli import main
from sitegen.conda.run_exports import (
    MAX_RUN_EXPORTS_BYTES,
    REASON_NOT_SPECS,
    REASON_UNKNOWN_KIND,
    REASON_WRONG_SECTION,
    RunExportsError,
    encode_run_exports,
    entry_of,
    parse_run_exports,
)
from sitegen.config import SiteConfig
from sitegen.layout import upstream_run_exports_dir, upstream_validators_path
from sitegen.net.upstream_cache import UpstreamCache
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import write_channel
from sitegen.tools.verify import verify_site
from testkit.faults import CHANNEL, small_packages
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.local import index_of, info_members, local_config, write_conda, write_tar_bz2
from testkit.site import channel_config
from testkit.upstream import UpstreamServer, respond

ALPHA_CONDA = "alpha-1.0-h0_0.conda"
ALPHA_TAR = "alpha-1.0-h0_0.tar.bz2"
BETA = "beta-2.0-h1_0.conda"
GAMMA = "gamma-0.1-h2_0.tar.bz2"  # left out by the filters below
EPSILON = "epsilon-3.1-h3_0.conda"


def _upstream_document() -> dict[str, Any]:
    return {
        "info": {"subdir": "linux-64", "version": 1},
        "packages": {
            ALPHA_TAR: {"run_exports": {"weak": ["alpha >=1.0,<2.0a0"]}},
            GAMMA: {"run_exports": {"strong": ["gamma"]}},
        },
        "packages.conda": {
            ALPHA_CONDA: {"run_exports": {"weak": ["alpha >=1.0,<2.0a0"]}},
            BETA: {"run_exports": {}},
            EPSILON: {"run_exports": {"weak": "not a list"}},  # not sound: left out
            "zeta-1.0-0.conda": {"run_exports": {"noarch": ["zeta"]}},  # no such record
        },
    }


def _serve(root: Path, document: Any, *, zst: bool, plain: bool = True) -> None:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    directory = root / "linux-64"
    if plain:
        (directory / "run_exports.json").write_bytes(data)
    if zst:
        (directory / "run_exports.json.zst").write_bytes(zstandard.compress(data))


def _withdraw(root: Path) -> None:
    for name in ("run_exports.json", "run_exports.json.zst"):
        (root / "linux-64" / name).unlink(missing_ok=True)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[Path, UpstreamServer]]:
    root = tmp_path / "upstream"
    write_channel(root, small_packages(), zst=True)
    with UpstreamServer(root) as server:
        yield root, server


def _config(tmp_path: Path, url: str, extra: str = "") -> SiteConfig:
    filters = "filters: {names: {exclude: [gamma]}}\n"
    return channel_config(
        make_sandbox(tmp_path), url, subdirs="[linux-64, noarch]", extra=filters + extra
    )


async def _run(config: SiteConfig, *, passive: bool = False) -> RunReport:
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed, report.errors
    if not passive:  # (a passive mirror's files are fetched on request)
        assert_site_invariant(config.output)
    return report


def _published(config: SiteConfig, subdir: str = "linux-64") -> dict[str, Any] | None:
    directory = config.output / config.channels[0].path / subdir
    path = directory / "run_exports.json"
    if not path.exists():
        assert not (directory / "run_exports.json.zst").exists()
        return None
    body = path.read_bytes()
    assert zstandard.decompress((directory / "run_exports.json.zst").read_bytes()) == body
    return json.loads(body)


KEPT = {
    "info": {"subdir": "linux-64", "version": 1},
    "packages": {ALPHA_TAR: {"run_exports": {"weak": ["alpha >=1.0,<2.0a0"]}}},
    "packages.conda": {
        ALPHA_CONDA: {"run_exports": {"weak": ["alpha >=1.0,<2.0a0"]}},
        BETA: {"run_exports": {}},
    },
}


@pytest.mark.integration
@pytest.mark.parametrize("variants", ["zst", "plain", "both"])
async def test_the_entries_of_the_published_records_are_published(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path, variants: str
) -> None:
    """Only the records the subdir publishes: not the one the filters leave out, nor one
    upstream does not list; an entry that is not sound is left out, with a warning."""
    root, server = upstream
    _serve(root, _upstream_document(), zst=variants != "plain", plain=variants != "zst")
    config = _config(tmp_path, server.url)
    report = await _run(config)
    assert _published(config) == KEPT
    assert _published(config, "noarch") is None  # upstream serves none there
    (warning,) = report.mirrors[0].warnings
    assert "linux-64: run_exports.json: left out 1 entry that is not sound" in warning
    assert REASON_NOT_SPECS in warning
    repodata = json.loads((config.output / CHANNEL / "linux-64" / "repodata.json").read_bytes())
    assert GAMMA not in repodata["packages"]


@pytest.mark.integration
async def test_a_second_run_asks_conditionally_and_keeps_it(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    root, server = upstream
    _serve(root, _upstream_document(), zst=True)
    config = _config(tmp_path, server.url)
    await _run(config)
    # Kept where layout says, beside the validators to ask again with.
    (mirror,) = config.channels[0].mirrors
    cache = upstream_run_exports_dir(config.output, mirror.name, "linux-64")
    kept = json.loads(upstream_validators_path(cache).read_bytes())["variant"]
    assert kept == "run_exports.json.zst" and (cache / kept).is_file()
    server.reset()
    await _run(config)
    asked = [r for r in server.requests if r.path == "/linux-64/run_exports.json.zst"]
    assert [r.status for r in asked] == [304]
    assert _published(config) == KEPT


@pytest.mark.integration
async def test_changed_or_withdrawn_upstream_while_the_repodata_stays(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """Nothing else changes upstream: the run still publishes the new run_exports.json, and
    removes the published one once upstream serves none."""
    root, server = upstream
    config = _config(tmp_path, server.url)
    await _run(config)
    assert _published(config) is None
    _serve(root, _upstream_document(), zst=True)
    await _run(config)
    assert _published(config) == KEPT
    changed = _upstream_document()
    changed["packages.conda"][BETA] = {"run_exports": {"weak_constrains": ["beta <3"]}}
    _serve(root, changed, zst=True)
    await _run(config)
    assert _published(config)["packages.conda"][BETA] == changed["packages.conda"][BETA]
    _withdraw(root)
    await _run(config)
    assert _published(config) is None


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"packages": []}', "is not a JSON object"),
    ],
)
async def test_a_broken_one_is_skipped_with_a_warning(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path, body: bytes, why: str
) -> None:
    """The subdir is published all the same, without one (one published before goes)."""
    root, server = upstream
    _serve(root, _upstream_document(), zst=False)
    config = _config(tmp_path, server.url)
    await _run(config)
    assert _published(config) == KEPT
    _serve(root, body, zst=False)
    report = await _run(config)
    assert _published(config) is None
    (warning,) = report.mirrors[0].warnings
    assert warning.startswith("linux-64: run_exports.json: ") and why in warning
    assert "published without it" in warning
    assert report.channels and all(c.status != "failed" for c in report.channels)


@pytest.mark.integration
async def test_a_broken_zst_is_skipped_with_a_warning(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    root, server = upstream
    (root / "linux-64" / "run_exports.json.zst").write_bytes(b"\x28\xb5\x2f\xfd garbage")
    config = _config(tmp_path, server.url)
    report = await _run(config)
    assert _published(config) is None
    assert "run_exports.json.zst" in report.mirrors[0].warnings[0]


@pytest.mark.integration
async def test_a_passive_mirror_publishes_it_too(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    root, server = upstream
    _serve(root, _upstream_document(), zst=True)
    config = _config(tmp_path, server.url, "mode: passive\n")
    await _run(config, passive=True)
    assert _published(config) == KEPT


@pytest.mark.integration
async def test_verify_checks_and_repairs_it(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    root, server = upstream
    _serve(root, _upstream_document(), zst=True)
    config = _config(tmp_path, server.url)
    await _run(config)
    assert (await verify_site(config)).problems == []
    directory = config.output / CHANNEL / "linux-64"
    document, packed = directory / "run_exports.json", directory / "run_exports.json.zst"
    where = f"{CHANNEL}/linux-64"

    packed.write_bytes(zstandard.compress(b"{}"))
    found = [(p.path, p.detail) for p in (await verify_site(config)).problems]
    assert found == [(f"{where}/run_exports.json.zst", "does not hold run_exports.json")]
    assert (await verify_site(config, repair=True)).ok
    assert _published(config) == KEPT

    stray = json.loads(document.read_bytes())
    stray["packages"][GAMMA] = {"run_exports": {}}  # a file repodata.json does not list
    _serve(config.output / CHANNEL, stray, zst=True)  # (both files, as a run would)
    found = [(p.path, p.detail) for p in (await verify_site(config)).problems]
    why = f"lists 1 files not in repodata.json, e.g. {GAMMA}"
    assert found == [(f"{where}/run_exports.json", why)]
    assert (await verify_site(config, repair=True)).ok
    assert _published(config) == KEPT

    document.unlink()
    found = [(p.path, p.detail) for p in (await verify_site(config)).problems]
    assert found == [(f"{where}/run_exports.json.zst", "without run_exports.json")]
    assert (await verify_site(config, repair=True)).ok
    assert not packed.exists()
    assert (await verify_site(config)).problems == []


@pytest.mark.integration
async def test_an_entry_holding_the_mirror_s_credential_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nor is the credential kept anywhere under the site (the copy kept for conditional
    requests holds it as its ${ENV} reference)."""
    token = "tk-0123456789abcdef0123456789"
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    chan = tmp_path / "upstream" / "t" / token / "chan"
    write_channel(chan, small_packages(), zst=True)
    document = _upstream_document()
    document["packages.conda"][BETA] = {"run_exports": {"weak": [f"beta ?token={token}"]}}
    document["packages"][ALPHA_TAR]["run_exports"]["weak"].append(f"see /t/{token}/")
    _serve(chan, document, zst=True)
    with UpstreamServer(tmp_path / "upstream") as server:
        url = f"{server.url}/t/${{SITEGEN_TEST_TOKEN}}/chan"
        config = _config(tmp_path, url)
        report = await _run(config)
        published = _published(config)
        assert published is not None
        assert set(published["packages.conda"]) == {ALPHA_CONDA}
        assert published["packages"] == {}
        assert "2 holds a credential of the mirror's URL" in report.mirrors[0].warnings[0]
        await _run(config)  # read back from the copy kept
        assert _published(config) == published
    for path in config.output.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


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
    await _run(config)
    published = _published(config)
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
    await _run(config)
    assert _published(config) == LOCAL_EXPORTS


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


def _zeros(compress: Callable[[], Any], size: int) -> bytes:
    """``size`` zero bytes, compressed a MiB at a time (never held whole)."""
    stream = compress()
    piece = bytes(1 << 20)
    return b"".join(stream.compress(piece) for _ in range(size >> 20)) + stream.flush()


def _gzipped_zeros(size: int) -> bytes:
    """``size`` zero bytes as one gzip member, deflated a MiB once and that block repeated:
    a full flush ends each block with an empty history, so every MiB deflates to the same
    bytes (deflating the whole GiB takes seconds; this, a fraction of one)."""
    piece = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate: no header
    block = packer.compress(piece) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size >> 20):
        crc = zlib.crc32(piece, crc)
    header = bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF])  # deflate, no flags, no mtime
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + block * (size >> 20) + packer.flush() + trailer


@pytest.mark.integration
@pytest.mark.parametrize("how", ["zst", "gzip"])
async def test_a_huge_one_is_refused_before_it_is_held(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path, how: str
) -> None:
    """1 GiB of zeros, a few hundred KiB compressed (as a .zst, or sent gzip-encoded): the run
    stops reading it at the cap, warns and publishes the subdir without one; it never holds
    the whole inflated body."""
    root, server = upstream
    if how == "zst":
        body = _zeros(lambda: zstandard.ZstdCompressor().compressobj(), 1 << 30)
        (root / "linux-64" / "run_exports.json.zst").write_bytes(body)
    else:
        body = _gzipped_zeros(1 << 30)
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        server.add_fault("/linux-64/run_exports.json", respond(200, body, headers))
    await _refused_at_the_cap(_config(tmp_path, server.url))


async def _refused_at_the_cap(config: SiteConfig) -> None:
    """A run of ``config`` stops reading the huge run_exports.json its upstream serves at the
    cap (the memory it ever holds says so), warns and publishes the subdir without one."""
    tracemalloc.start()
    try:
        report = await _run(config)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_RUN_EXPORTS_BYTES + (256 << 20), peak
    assert _published(config) is None
    (warning,) = report.mirrors[0].warnings
    assert f"more than {MAX_RUN_EXPORTS_BYTES} bytes" in warning


@pytest.mark.integration
async def test_a_huge_one_of_a_mirror_with_a_token_is_refused_before_it_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, where the mirror's URL holds a secret: the body, searched for it before it
    is kept, is not inflated beyond the cap either."""
    token = "tk-0123456789abcdef0123456789"
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    chan = tmp_path / "upstream" / "t" / token / "chan"
    write_channel(chan, small_packages(), zst=True)
    body = _zeros(lambda: zstandard.ZstdCompressor().compressobj(), 1 << 30)
    (chan / "linux-64" / "run_exports.json.zst").write_bytes(body)
    with UpstreamServer(tmp_path / "upstream") as server:
        await _refused_at_the_cap(_config(tmp_path, f"{server.url}/t/${{SITEGEN_TEST_TOKEN}}/chan"))


@pytest.mark.integration
def test_an_approval_gated_channel_publishes_the_entries_of_what_it_approves(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """The gated channel reads its source's published run_exports.json as its upstream: it
    publishes the entries of exactly the files approved."""
    root, server = upstream
    _serve(root, _upstream_document(), zst=True)
    site = make_sandbox(tmp_path)
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        "download: {concurrency: 2, per_host: 2, retries: 1, timeout: 10}\n"
        "channels:\n"
        f"  {CHANNEL}:\n    url: {server.url}\n    subdirs: [linux-64]\n"
        "  internal/approved:\n"
        f"    approval: {{from: {CHANNEL}}}\n"
    )
    args = ["-c", str(config_path)]
    assert main(["mirror", *args, "--no-progress"]) == 0
    approve = ["approve", "internal/approved", "alpha", *args, "--by", "a", "--reason", "r"]
    assert main(approve) == 0
    assert_site_invariant(site)
    gated = site / "internal/approved/linux-64"
    repodata = json.loads((gated / "repodata.json").read_bytes())
    assert {*repodata["packages"], *repodata["packages.conda"]} == {ALPHA_TAR, ALPHA_CONDA}
    body = (gated / "run_exports.json").read_bytes()
    assert zstandard.decompress((gated / "run_exports.json.zst").read_bytes()) == body
    assert json.loads(body) == {
        "info": {"subdir": "linux-64", "version": 1},
        "packages": KEPT["packages"],
        "packages.conda": {ALPHA_CONDA: KEPT["packages.conda"][ALPHA_CONDA]},
    }


@pytest.mark.integration
def test_a_frozen_channel_keeps_the_one_it_published(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """While frozen, neither a changed nor a withdrawn upstream run_exports.json reaches the
    site; once unfrozen, the next run publishes what upstream serves then."""
    root, server = upstream
    _serve(root, _upstream_document(), zst=True)
    site = make_sandbox(tmp_path)
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        "channels:\n"
        f"  {CHANNEL}:\n    url: {server.url}\n    subdirs: [linux-64]\n"
        "    filters: {names: {exclude: [gamma]}}\n"
    )
    args = ["-c", str(config_path)]
    directory = site / CHANNEL / "linux-64"
    assert main(["mirror", *args, "--no-progress"]) == 0
    published = {
        n: (directory / n).read_bytes() for n in ("run_exports.json", "run_exports.json.zst")
    }
    assert main(["freeze", CHANNEL, *args, "--by", "a", "--reason", "r"]) == 0
    changed = _upstream_document()
    changed["packages.conda"][BETA] = {"run_exports": {"weak": ["beta"]}}
    _serve(root, changed, zst=True)
    assert main(["mirror", *args, "--no-progress"]) == 0
    _withdraw(root)
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert {n: (directory / n).read_bytes() for n in published} == published
    _serve(root, changed, zst=True)
    assert main(["unfreeze", CHANNEL, *args]) == 0
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert_site_invariant(site)
    document = json.loads((directory / "run_exports.json").read_bytes())
    assert document["packages.conda"][BETA] == {"run_exports": {"weak": ["beta"]}}


@pytest.mark.integration
async def test_a_copy_that_cannot_be_forgotten_costs_a_warning_not_the_run(
    upstream: tuple[Path, UpstreamServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Upstream stops serving it and the copy kept cannot be forgotten (an I/O error): the
    subdir is published without it, with a warning; the run goes on."""
    root, server = upstream
    _serve(root, _upstream_document(), zst=True)
    config = _config(tmp_path, server.url)
    await _run(config)
    _withdraw(root)

    def failing(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(UpstreamCache, "forget", failing)
    await _run(config)
    assert _published(config) is None
    assert "could not forget upstream run_exports.json" in caplog.text


def _as_earlier_sitegen_kept_it(config: SiteConfig, variant: str) -> tuple[Path, bytes]:
    """The copy kept cut short, its validators without the sha256 of the body they describe
    (an earlier sitegen recorded none): only its parse, after a 304, tells it is damaged.
    The folder of the copy and the body it held, sound."""
    (mirror,) = config.channels[0].mirrors
    cache = upstream_run_exports_dir(config.output, mirror.name, "linux-64")
    validators = upstream_validators_path(cache)
    document = json.loads(validators.read_bytes())
    assert document.pop("sha256") and document["variant"] == variant
    validators.write_text(json.dumps(document))
    good = (cache / variant).read_bytes()
    (cache / variant).write_bytes(good[: len(good) // 2])
    return cache, good


def _asked(server: UpstreamServer, variant: str) -> list[tuple[int, str | None]]:
    path = f"/linux-64/{variant}"
    return [(r.status, r.header("if-none-match")) for r in server.requests if r.path == path]


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["run_exports.json.zst", "run_exports.json"])
async def test_a_damaged_copy_kept_without_its_sha256_is_fetched_whole_again(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path, variant: str
) -> None:
    """Upstream answers 304 and the copy does not parse: it is forgotten and the document
    fetched whole once more in the same run, published and kept sound; the next run asks
    conditionally again."""
    root, server = upstream
    _serve(root, _upstream_document(), zst=variant.endswith(".zst"), plain=True)
    config = _config(tmp_path, server.url)
    first = await _run(config)
    cache, good = _as_earlier_sitegen_kept_it(config, variant)
    etag = f'"{hashlib.sha256((root / "linux-64" / variant).read_bytes()).hexdigest()}"'
    server.reset()

    report = await _run(config)
    assert _asked(server, variant) == [(304, etag), (200, None)]
    assert _published(config) == KEPT
    assert report.mirrors[0].warnings == first.mirrors[0].warnings  # the unsound entry's
    assert (cache / variant).read_bytes() == good
    recorded = json.loads(upstream_validators_path(cache).read_bytes())["sha256"]
    assert recorded == hashlib.sha256(good).hexdigest()

    server.reset()
    await _run(config)
    assert _asked(server, variant) == [(304, etag)]
    assert _published(config) == KEPT


@pytest.mark.integration
async def test_a_copy_kept_without_its_sha256_gets_it_once_it_parses(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """A sound copy an earlier sitegen kept without its sha256, found current by upstream,
    parses: its sha256 is recorded then, so damage to it is told when it is read back."""
    root, server = upstream
    variant = "run_exports.json.zst"
    _serve(root, _upstream_document(), zst=True)
    config = _config(tmp_path, server.url)
    await _run(config)
    (mirror,) = config.channels[0].mirrors
    cache = upstream_run_exports_dir(config.output, mirror.name, "linux-64")
    validators = upstream_validators_path(cache)
    document = json.loads(validators.read_bytes())
    recorded = document.pop("sha256")
    validators.write_text(json.dumps(document))
    server.reset()

    await _run(config)
    etag = f'"{hashlib.sha256((root / "linux-64" / variant).read_bytes()).hexdigest()}"'
    assert _asked(server, variant) == [(304, etag)]
    assert json.loads(validators.read_bytes()) == {**document, "sha256": recorded}
    assert _published(config) == KEPT


@pytest.mark.integration
async def test_a_bad_body_fetched_in_place_of_a_damaged_copy_is_asked_for_once(
    upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """Upstream's own body, fetched whole, does not parse either: the subdir is published
    without it, with one warning, after that one request (never a loop)."""
    root, server = upstream
    variant = "run_exports.json"
    _serve(root, _upstream_document(), zst=False)
    config = _config(tmp_path, server.url)
    await _run(config)
    _as_earlier_sitegen_kept_it(config, variant)

    def bad_unless_conditional(handler: Any) -> bool | None:
        if handler.headers.get("If-None-Match"):
            return False  # served as the file is: 304
        handler.respond(200, b"<html>502</html>", {})
        return None

    server.add_fault(f"/linux-64/{variant}", bad_unless_conditional)
    server.reset()
    report = await _run(config)
    assert [status for status, _tag in _asked(server, variant)] == [304, 200]
    assert _published(config) is None
    (warning,) = report.mirrors[0].warnings
    assert warning.startswith(f"linux-64: {variant}: ") and "published without it" in warning
