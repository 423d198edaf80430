"""``python -m bench.meta_phases CONFIG OUT.json [--stdlib FILE]``: sitegen's metadata stages, timed.

One process per call, so that peak RSS belongs to what it measured. Runs sitegen's own
functions in the order a mirror run does for one subdir: fetch (conditional-GET client of
sitegen.net.upstream, against the nginx of the benchmark), decode (.zst), ``parse_repodata``,
``apply_filters`` with the config's filter levels, ``encode_repodata`` of what is kept, zstd and
bz2 compression (sitegen.sync.metadata_compress), ``current_records`` and its encoding, and then the
three publish products again concurrently in threads, as ``publish_subdir`` does. After each
stage it records the seconds and the process's peak RSS so far.

With ``--stdlib FILE`` it measures the baseline instead: read the file, ``json.loads``,
``json.dumps`` (compact).
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timeline:
    def __init__(self) -> None:
        self.stages: list[dict[str, Any]] = []

    def stage(self, name: str, func, *args, **extra):
        t0 = time.perf_counter()
        value = func(*args)
        self.stages.append(
            {"stage": name, "s": time.perf_counter() - t0, "peak_rss_mb": _rss_mb(), **extra}
        )
        return value


def stdlib_baseline(path: str) -> dict[str, Any]:
    line = Timeline()
    data = line.stage("read", Path(path).read_bytes)
    document = line.stage("json.loads", json.loads, data)
    del data
    out = line.stage("json.dumps", lambda: json.dumps(document, separators=(",", ":")).encode())
    return {"stages": line.stages, "bytes": len(out)}


def sitegen_stages(config_path: str) -> dict[str, Any]:
    import trio

    from sitegen.conda.current_repodata import current_records
    from sitegen.conda.encode import encode_repodata
    from sitegen.conda.records import parse_repodata
    from sitegen.conda.version import RecordMatcher
    from sitegen.config import load_config
    from sitegen.filters.apply import apply_filters
    from sitegen.net import upstream
    from sitegen.net.zstd_body import decode_body
    from sitegen.sync import metadata_compress

    config = load_config(config_path)
    channel = config.channels[0]
    mirror = channel.mirrors[0]
    subdir = "linux-64"
    line = Timeline()
    info: dict[str, Any] = {}

    async def fetch() -> upstream.RepodataResponse:
        client = upstream.make_client(config.download)
        try:
            source = upstream.Upstream(
                mirror, client, config.download, trio.CapacityLimiter(config.download.per_host)
            )
            return await source.fetch_repodata(subdir, None)
        finally:
            await client.aclose()

    response = line.stage("fetch", trio.run, fetch)
    info["fetched_bytes"] = len(response.body)
    info["variant"] = response.validators.variant
    data = line.stage("decode", decode_body, response.validators.variant, response.body)
    del response
    info["json_bytes"] = len(data)
    repodata = line.stage("parse_repodata", parse_repodata, data, subdir, mirror.name)
    del data
    info["records"] = len(repodata.records)
    levels = config.filter_levels(channel, mirror)
    matcher = RecordMatcher()
    result = line.stage("apply_filters", apply_filters, repodata.records, subdir, levels, matcher)
    kept = result.kept
    info["kept"] = len(kept)

    def encode(records):
        return encode_repodata(subdir, repodata.info, records, repodata.removed, repodata.extra)

    body = line.stage("encode_repodata", encode, kept)
    info["published_bytes"] = len(body)
    zstd, bz = metadata_compress.zstd_compress, metadata_compress.bz2_compress

    zst = line.stage("zstd", zstd, body)
    info["zst_bytes"] = len(zst)
    del zst
    out_bz2 = line.stage("bz2", bz, body)
    info["bz2_bytes"] = len(out_bz2)
    del out_bz2
    current = line.stage("current_records", current_records, kept, RecordMatcher(remember=False))
    info["current"] = len(current)
    current_body = line.stage("encode current", encode, current)
    info["current_bytes"] = len(current_body)
    del current_body, current

    def together() -> None:
        threads = [
            threading.Thread(target=zstd, args=(body,)),
            threading.Thread(target=bz, args=(body,)),
            threading.Thread(
                target=lambda: encode(current_records(kept, RecordMatcher(remember=False)))
            ),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    line.stage("publish products in parallel (zstd | bz2 | current)", together, parallel=True)
    return {"stages": line.stages, "info": info}


def main() -> int:
    args = sys.argv[1:]
    if args[0] == "--stdlib":
        document = stdlib_baseline(args[1])
        out = args[2]
    else:
        document = sitegen_stages(args[0])
        out = args[1]
    document["peak_rss_mb"] = _rss_mb()
    with open(out, "w") as handle:
        json.dump(document, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
