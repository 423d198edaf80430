"""The real-parts test infrastructure works: packages, channel, upstream server, nginx, rattler."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import json
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard
from rattler import RepoDataRecord

from sitegen.conda.build import build_package, file_digests
from sitegen.conda.records import parse_repodata
from sitegen.tools.example_channel import PackageSpec, example_packages, write_channel
from testkit.burst import burst
from testkit.client import solve_and_install, solve_only
from testkit.require import require_tool
from testkit.upstream import ExampleUpstream, UpstreamServer, drop_connection, respond, truncate


def _tar_members(data: bytes, mode: str = "r:") -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _check_info(members: dict[str, bytes], spec: PackageSpec) -> None:
    index = json.loads(members["info/index.json"])
    assert (index["name"], index["version"], index["build"]) == (
        spec.name,
        spec.version,
        spec.build,
    )
    assert index["depends"] == list(spec.depends)
    paths = json.loads(members["info/paths.json"])
    assert paths["paths_version"] == 1
    assert members["info/files"].decode().split() == [spec.payload_path]
    (entry,) = paths["paths"]
    assert entry["_path"] == spec.payload_path
    payload = members[spec.payload_path]
    assert entry["sha256"] == hashlib.sha256(payload).hexdigest()
    assert entry["size_in_bytes"] == len(payload) == spec.payload_size


def _spec(name: str, build: str) -> PackageSpec:
    return next(p for p in example_packages() if p.name == name and p.build.startswith(build))


# --- packages and channel -------------------------------------------------------------------
@pytest.mark.unit
def test_tar_bz2_package_is_valid(tmp_path: Path) -> None:
    spec = _spec("numpy", "py311")
    path = tmp_path / spec.filename("tar.bz2")
    digests = build_package(path, spec.index_json(), spec.payload(), "tar.bz2")
    assert digests == file_digests(path)
    _check_info(_tar_members(path.read_bytes(), "r:bz2"), spec)


@pytest.mark.unit
def test_conda_package_is_valid(tmp_path: Path) -> None:
    spec = _spec("numpy", "py312")
    path = tmp_path / spec.filename("conda")
    digests = build_package(path, spec.index_json(), spec.payload(), "conda")
    assert digests == file_digests(path)
    with zipfile.ZipFile(path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        assert set(infos) == {
            "metadata.json",
            f"info-{spec.stem}.tar.zst",
            f"pkg-{spec.stem}.tar.zst",
        }
        assert all(info.compress_type == zipfile.ZIP_STORED for info in infos.values())
        assert json.loads(archive.read("metadata.json")) == {"conda_pkg_format_version": 2}
        unzstd = zstandard.ZstdDecompressor()
        info = _tar_members(unzstd.decompress(archive.read(f"info-{spec.stem}.tar.zst")))
        pkg = _tar_members(unzstd.decompress(archive.read(f"pkg-{spec.stem}.tar.zst")))
    assert all(name.startswith("info/") for name in info)
    assert list(pkg) == [spec.payload_path]
    _check_info(info | pkg, spec)


@pytest.mark.unit
def test_rattler_reads_both_formats(tmp_path: Path) -> None:
    spec = _spec("libopenblas", "pthreads")
    for fmt in spec.formats:
        path = tmp_path / spec.filename(fmt)
        build_package(path, spec.index_json(), spec.payload(), fmt)
        record = asyncio.run(RepoDataRecord.from_package_archive(path))
        assert record.name.normalized == spec.name
        assert str(record.version) == spec.version
        assert record.sha256.hex() == file_digests(path)["sha256"]


@pytest.mark.unit
def test_channel_is_deterministic_per_seed(tmp_path: Path) -> None:
    first = write_channel(tmp_path / "a", example_packages(seed=1))
    again = write_channel(tmp_path / "b", example_packages(seed=1))
    other = write_channel(tmp_path / "c", example_packages(seed=2))
    assert first == again
    assert (tmp_path / "a/linux-64/repodata.json").read_bytes() == (
        tmp_path / "b/linux-64/repodata.json"
    ).read_bytes()
    assert first["linux-64"]["packages.conda"].keys() == other["linux-64"]["packages.conda"].keys()
    numpy = _spec("numpy", "py312").filename("conda")
    assert (
        first["linux-64"]["packages.conda"][numpy]["sha256"]
        != (other["linux-64"]["packages.conda"][numpy]["sha256"])
    )


@pytest.mark.unit
def test_repodata_matches_files(tmp_path: Path) -> None:
    repodata = write_channel(tmp_path, example_packages(), zst=True)
    assert set(repodata) == {"linux-64", "noarch"}
    for subdir, document in repodata.items():
        on_disk = (tmp_path / subdir / "repodata.json").read_bytes()
        assert json.loads(on_disk) == document
        unzstd = zstandard.ZstdDecompressor()
        assert unzstd.decompress((tmp_path / subdir / "repodata.json.zst").read_bytes()) == on_disk
        assert document["info"] == {"subdir": subdir}
        assert document["repodata_version"] == 1
        assert document["removed"] == []
        parsed = parse_repodata(on_disk, subdir)
        assert parsed.rejected == {}
        for key, suffix in (("packages", ".tar.bz2"), ("packages.conda", ".conda")):
            for fn, record in document[key].items():
                assert fn.endswith(suffix)
                assert record["subdir"] == subdir
                digests = file_digests(tmp_path / subdir / fn)
                assert {k: record[k] for k in ("md5", "sha256", "size")} == digests
                assert digests["size"] < 4096  # keep the example tiny


@pytest.mark.unit
def test_example_channel_has_the_interesting_cases() -> None:
    packages = example_packages()
    by_name: dict[str, list[PackageSpec]] = {}
    for spec in packages:
        by_name.setdefault(spec.name, []).append(spec)
    assert {p.version for p in by_name["python"]} >= {"3.10.14", "3.11.9", "3.12.4"}
    assert all(not p.depends for p in by_name["python"])
    assert all(p.subdir == "noarch" and p.noarch == "python" for p in by_name["pip"])
    assert {p.build[:5] for p in by_name["numpy"]} == {"py310", "py311", "py312"}
    assert any("python >=3.11,<3.12.0a0" in p.depends for p in by_name["numpy"])
    assert by_name["readline"][0].license == "GPL-3.0-only"
    assert by_name["ghostscript"][0].license_family == "AGPL"
    assert by_name["mystery-tool"][0].license is None
    assert any(p.build == "py27_0" and "python 2.7.*" in p.depends for p in packages)
    assert {(p.build, p.track_features) for p in by_name["blas"]} == {
        ("mkl", "mkl"),
        ("openblas", None),
    }
    assert any(p.formats == ("tar.bz2",) for p in packages)
    assert sum(1 for p in packages if set(p.formats) == {"conda", "tar.bz2"}) >= 5
    depended_on = {d.split()[0] for p in packages for d in p.depends}
    assert "zlib" in depended_on
    years = {p.timestamp_ms // 1000 // 31556952 + 1970 for p in packages}
    assert min(years) == 2021 and max(years) == 2025


@pytest.mark.unit
def test_noarch_repodata_always_written(tmp_path: Path) -> None:
    spec = PackageSpec(name="tiny", version="1", build="0", formats=("tar.bz2",))
    repodata = write_channel(tmp_path, [spec], {"removed": ["gone-1-0.tar.bz2"]})
    noarch = json.loads((tmp_path / "noarch/repodata.json").read_text())
    assert noarch["packages"] == noarch["packages.conda"] == {}
    assert noarch["info"] == {"subdir": "noarch"}
    assert repodata["linux-64"]["removed"] == ["gone-1-0.tar.bz2"]
    assert list(repodata["linux-64"]["packages"]) == ["tiny-1-0.tar.bz2"]
    record = repodata["linux-64"]["packages"]["tiny-1-0.tar.bz2"]
    assert "license" not in record and "timestamp" not in record
    assert repodata["noarch"]["removed"] is not repodata["linux-64"]["removed"]


# --- upstream server ------------------------------------------------------------------------
def _get(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


@pytest.mark.integration
def test_upstream_serves_validates_and_counts(example_upstream: ExampleUpstream) -> None:
    server = example_upstream.server
    assert server.url.startswith("http://127.0.0.1:")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    status, headers, body = _get(conn, "/linux-64/repodata.json")
    assert status == 200
    assert body == (example_upstream.root / "linux-64/repodata.json").read_bytes()
    assert int(headers["content-length"]) == len(body)
    assert headers["content-type"] == "application/json"
    assert headers["etag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    # Same connection (keep-alive): conditional requests are answered 304 without a body.
    status, _, body = _get(conn, "/linux-64/repodata.json", {"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")
    since = {"If-Modified-Since": headers["last-modified"]}
    status, _, _ = _get(conn, "/linux-64/repodata.json", since)
    assert status == 304
    status, _, _ = _get(conn, "/linux-64/repodata.json", {"If-None-Match": '"other"'})
    assert status == 200
    for missing in ("/linux-64/nope.conda", "/linux-64/", "/", "/../pyproject.toml"):
        assert _get(conn, missing)[0] == 404
    conn.close()

    assert server.count("/linux-64/repodata.json") == 4
    assert server.count("repodata.json", status=304) == 2
    assert server.count(status=404) == 4
    first = server.requests[0]
    assert (first.method, first.path, first.status) == ("GET", "/linux-64/repodata.json", 200)
    assert server.requests[1].header("If-None-Match") == headers["etag"]
    server.reset()
    assert server.requests == [] and server.count() == 0


@pytest.mark.integration
def test_upstream_faults(tmp_path: Path) -> None:
    (tmp_path / "noarch").mkdir()
    (tmp_path / "noarch/repodata.json").write_bytes(b'{"packages": {}}')
    with UpstreamServer(tmp_path) as server:
        server.add_fault("/noarch/repodata.json", respond(503, b"busy"), times=1)
        server.add_fault("/noarch/gone.json", drop_connection())
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        assert _get(conn, "/noarch/repodata.json")[::2] == (503, b"busy")
        assert _get(conn, "/noarch/repodata.json")[::2] == (200, b'{"packages": {}}')
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        with pytest.raises(http.client.RemoteDisconnected):
            _get(conn, "/noarch/gone.json")
        conn.close()
        server.add_fault("/noarch/repodata.json", truncate(5))
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        with pytest.raises(http.client.IncompleteRead):
            _get(conn, "/noarch/repodata.json")
        conn.close()
    assert [r.status for r in server.requests] == [503, 200, 0, 200]
    assert server.requests[-1].body_bytes == 5


@pytest.mark.integration
def test_upstream_takes_a_burst_of_connections_at_once(tmp_path: Path) -> None:
    """A mirror run opens up to 32 connections at once. Each completes its handshake in the
    kernel, whether or not the server's accept thread keeps up: a SYN dropped past the listen
    backlog is sent again only after a second, and again after 3, 7 and 15, which on a loaded
    machine outlasts the client's connect timeout."""
    (tmp_path / "noarch").mkdir()
    (tmp_path / "noarch/repodata.json").write_bytes(b'{"packages": {}}')
    with UpstreamServer(tmp_path) as server, burst(server.port, 64) as (sockets, waiting):
        assert waiting == 0
        request = b"GET /noarch/repodata.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        for sock in sockets:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            sock.setblocking(True)
            sock.settimeout(30)
            sock.sendall(request)
        for sock in sockets:
            assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 200")
    # Logged by each handler thread just after its response went out.
    server.wait_for_requests(64)
    assert server.count("/noarch/repodata.json", status=200) == 64


# --- a real client: py-rattler ---------------------------------------------------------------
@pytest.mark.integration
def test_rattler_installs_numpy_from_real_nginx(
    example_upstream: ExampleUpstream, nginx_server_factory, tmp_path: Path
) -> None:
    nginx = nginx_server_factory(example_upstream.root)
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
    status, headers, _ = _get(conn, "/linux-64/repodata.json")
    assert (status, headers["content-type"]) == (200, "application/json")
    assert _get(conn, "/linux-64/", {})[0] in (403, 404)  # no directory listings
    conn.close()

    installed = solve_and_install(
        [nginx.url + "/"],
        ["numpy", "pip"],
        tmp_path / "env",
        cache_dir=tmp_path / "cache",
    )
    names = {p.name: p for p in installed}
    assert set(names) == {"numpy", "python", "libopenblas", "zlib", "pip"}
    assert names["numpy"].version == "2.1.0"
    assert names["numpy"].build.startswith("py312")
    assert names["python"].version == "3.12.4"
    assert names["pip"].url == f"{nginx.url}/noarch/{names['pip'].file_name}"
    for package in installed:
        assert package.channel.rstrip("/") == nginx.url
        payload = tmp_path / "env" / "share" / package.name / f"{package.version}.txt"
        assert payload.is_file()
    assert nginx.access_log_lines_with(" /linux-64/repodata.json")


@pytest.mark.integration
def test_rattler_installs_through_upstream_server(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    server = example_upstream.server
    installed = solve_and_install(
        [server.url],
        ["numpy 1.26.*", "python 3.11.*", "mystery-tool"],
        tmp_path / "env",
        cache_dir=tmp_path / "cache",
    )
    names = {p.name: p for p in installed}
    assert set(names) == {"numpy", "python", "libopenblas", "zlib", "mystery-tool"}
    assert names["numpy"].build.startswith("py311")
    assert names["mystery-tool"].file_name.endswith(".tar.bz2")  # the only format it has
    for package in installed:
        assert server.count("/" + package.file_name, status=200) == 1
    assert server.count("/linux-64/repodata.json.zst", status=200, method="GET") == 1
    assert (tmp_path / "env/conda-meta" / f"{names['numpy'].dist}.json").is_file()


@pytest.mark.integration
def test_rattler_respects_pins_and_track_features(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    chosen = solve_only([example_upstream.url], ["blas"], cache_dir=tmp_path / "cache")
    assert [(p.name, p.build) for p in chosen if p.name == "blas"] == [("blas", "openblas")]
    with pytest.raises(Exception, match=r"python 2\.7"):
        solve_only([example_upstream.url], ["futures"], cache_dir=tmp_path / "cache")


@pytest.mark.integration
def test_rattler_revalidates_cached_repodata(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    server, cache = example_upstream.server, tmp_path / "cache"
    solve_only([server.url], ["numpy"], cache_dir=cache)
    assert server.wait_for_count(1, "/linux-64/repodata.json.zst", status=200, method="GET") == 1
    server.reset()
    solve_only([server.url], ["numpy"], cache_dir=cache)
    assert server.wait_for_count(1, "/linux-64/repodata.json.zst", status=304, method="GET") == 1
    (revalidation,) = [r for r in server.requests if r.method == "GET"][-1:]
    assert revalidation.header("If-None-Match", "").startswith('"')


@pytest.mark.unit
def test_missing_tool_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="nginx is not installed"):
        require_tool(False, "nginx")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_tool(False, "nginx")
    require_tool(True, "nginx")
