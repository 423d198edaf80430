"""Records and validators holding a URL's secrets: refused, left out or kept as its reference."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from urllib.parse import quote

import pytest

from sitegen.conda.record_check import REASON_SECRET
from sitegen.config import load_config
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import write_channel
from sitegen.web.render import render_site
from testkit.advisories import write_feed, zlib_advisory
from testkit.invariant import make_sandbox
from testkit.secrets import ENV, LINUX, TOKEN
from testkit.site import files_holding
from testkit.small_channel import CHANNEL, filenames, set_repodata, small_packages
from testkit.upstream import UpstreamHandler, UpstreamServer

pytestmark = pytest.mark.integration


async def _mirror_linux(tmp_path: Path, site: Path, url: str) -> RunReport:
    """Mirror linux-64 of ``url`` (its secrets as ``${ENV}`` references) into ``site`` as
    CHANNEL, render the pages, and return the run's report (a run that did not fail)."""
    (tmp_path / "channels.yaml").write_text(
        f"output: {site}\nchannels:\n  {CHANNEL}:\n    url: {url}\n    subdirs: [linux-64]\n"
    )
    config = load_config(tmp_path / "channels.yaml")
    report = await run_mirror(config, MirrorOptions(progress=False))
    render_site(config)
    assert not report.failed, report.errors
    return report


async def test_records_holding_the_token_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream, served under /t/<token>/, writes the token into some records of its repodata:
    a ``url`` (its own address of the file), a dependency, a ``summary``, a package's name,
    and in noarch, the only place it is there, spelt in JSON escapes (``\\u0074...``). Each is
    refused under its reason (its name reported with the token hidden) and the rest of the
    subdir is published; no byte of the site (repodata and its .zst, current_repodata, shards,
    channeldata, pages, history, the repodata kept for conditional requests) holds the token,
    nor spells it so."""
    monkeypatch.setenv(ENV, TOKEN)
    root = tmp_path / "upstream"
    chan = root / "t" / TOKEN / "chan"
    documents = write_channel(chan, small_packages(), zst=True)
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        document = documents[LINUX]
        conda = document["packages.conda"]
        conda["alpha-1.0-h0_0.conda"]["url"] = (
            f"{server.url}/t/{TOKEN}/chan/{LINUX}/alpha-1.0-h0_0.conda"
        )
        conda["beta-2.0-h1_0.conda"]["depends"] = [f"tk-{TOKEN}-runtime"]
        document["packages"]["gamma-0.1-h2_0.tar.bz2"]["summary"] = f"from /t/{TOKEN}/chan"
        leaking = f"leak-{TOKEN}-1.0-h0_0.conda"
        conda[leaking] = {**conda["epsilon-3.1-h3_0.conda"], "name": f"leak-{TOKEN}"}
        conda[leaking]["version"], conda[leaking]["build"] = "1.0", "h0_0"
        set_repodata(chan, LINUX, json.dumps(document).encode())
        documents["noarch"]["packages.conda"]["delta-1.0-pyh0_0.conda"]["summary"] = "@@"
        spelt = "".join(f"\\u{ord(c):04x}" for c in TOKEN)
        noarch = json.dumps(documents["noarch"]).replace('"@@"', f'"{spelt}"')
        set_repodata(chan, "noarch", noarch.encode())
        report = await _mirror_linux(tmp_path, site, f"{server.url}/t/${{{ENV}}}/chan")
    linux = report.mirrors[0].subdirs[LINUX]
    refused = {
        "alpha-1.0-h0_0.conda",
        "beta-2.0-h1_0.conda",
        "gamma-0.1-h2_0.tar.bz2",
        "leak-***-1.0-h0_0.conda",
    }
    assert linux.rejected_examples == dict.fromkeys(refused, REASON_SECRET)
    assert linux.rejected == {REASON_SECRET: 4}
    noarch = report.mirrors[0].subdirs["noarch"]
    assert noarch.rejected_examples == {"delta-1.0-pyh0_0.conda": REASON_SECRET}
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    assert set(published["packages.conda"]) | set(published["packages"]) == {
        "alpha-1.0-h0_0.tar.bz2",
        "epsilon-3.1-h3_0.conda",
    }
    assert (site / CHANNEL / LINUX / "epsilon-3.1-h3_0.conda").is_file()
    assert any(site.rglob("*.msgpack.zst")) and any(site.rglob("*.html"))
    assert files_holding(site, TOKEN) == files_holding(site, spelt) == []


async def test_records_holding_the_token_percent_encoded_otherwise_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream writes the token percent-encoded as no URL of sitegen's would: every byte of
    it, in lower case, in a record's ``url`` (a client sends it and upstream reads the token),
    and only its ``-``, in another record's ``summary`` and in a package's name. Those records
    are refused (the name is not a valid one either), named with the token hidden, and
    nothing published holds it in any spelling."""
    monkeypatch.setenv(ENV, TOKEN)
    every = "".join(f"%{byte:02x}" for byte in TOKEN.encode())
    dash = TOKEN.replace("-", "%2D")
    root = tmp_path / "upstream"
    chan = root / "t" / TOKEN / "chan"
    documents = write_channel(chan, small_packages(), zst=True)
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        conda = documents[LINUX]["packages.conda"]
        conda["alpha-1.0-h0_0.conda"]["url"] = (
            f"{server.url}/t/{every}/chan/{LINUX}/alpha-1.0-h0_0.conda"
        )
        conda["beta-2.0-h1_0.conda"]["summary"] = f"token {dash}"
        leaking = f"leak-{dash}-1.0-h0_0.conda"
        conda[leaking] = {**conda["epsilon-3.1-h3_0.conda"], "name": f"leak-{dash}"}
        conda[leaking]["version"], conda[leaking]["build"] = "1.0", "h0_0"
        set_repodata(chan, LINUX, json.dumps(documents[LINUX]).encode())
        report = await _mirror_linux(tmp_path, site, f"{server.url}/t/${{{ENV}}}/chan")
    rejected = report.mirrors[0].subdirs[LINUX].rejected_examples
    assert set(rejected) == {
        "alpha-1.0-h0_0.conda",
        "beta-2.0-h1_0.conda",
        "leak-***-1.0-h0_0.conda",
    }
    assert rejected["alpha-1.0-h0_0.conda"] == rejected["beta-2.0-h1_0.conda"] == REASON_SECRET
    for spelling in (TOKEN, every, dash):
        assert files_holding(site / CHANNEL, spelling) == []


def _alpha_and_beta_refused(report: RunReport, site: Path) -> None:
    """alpha's .conda and beta's held the credential: both refused, everything else published."""
    assert report.mirrors[0].subdirs[LINUX].rejected_examples == {
        "alpha-1.0-h0_0.conda": REASON_SECRET,
        "beta-2.0-h1_0.conda": REASON_SECRET,
    }
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    assert set(published["packages.conda"]) | set(published["packages"]) == {
        "alpha-1.0-h0_0.tar.bz2",
        "gamma-0.1-h2_0.tar.bz2",
        "epsilon-3.1-h3_0.conda",
    }


async def test_records_holding_the_password_are_refused_not_the_user_or_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL is ``http://${USER}:${PASS}@${HOST}:<port>/chan``, the user ``conda`` and the
    host ``127.0.0.1``, which every record holds (in its ``url`` and ``summary``): no secrets,
    they refuse nothing. A record holding the password, as it is or percent-encoded as the
    URL sends it, is refused, and the site holds it in neither form."""
    password = "s3cret/p@ss!"
    encoded = quote(password, safe="")
    monkeypatch.setenv("SITEGEN_TEST_USER", "conda")
    monkeypatch.setenv("SITEGEN_TEST_PASS", password)
    monkeypatch.setenv("SITEGEN_TEST_HOST", "127.0.0.1")
    root = tmp_path / "upstream"
    documents = write_channel(root / "chan", small_packages(), zst=True)
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        for subdir, document in documents.items():
            for section in ("packages", "packages.conda"):
                for fn, record in document[section].items():
                    record["url"] = f"{server.url}/chan/{subdir}/{fn}"
                    record["summary"] = "built with conda"
            set_repodata(root / "chan", subdir, json.dumps(document).encode())
        conda = documents[LINUX]["packages.conda"]
        conda["alpha-1.0-h0_0.conda"]["url"] = (
            f"http://conda:{encoded}@127.0.0.1:{server.port}/chan/{LINUX}/alpha-1.0-h0_0.conda"
        )
        conda["beta-2.0-h1_0.conda"]["summary"] = f"password: {password}"
        set_repodata(root / "chan", LINUX, json.dumps(documents[LINUX]).encode())
        report = await _mirror_linux(
            tmp_path,
            site,
            (
                "http://${SITEGEN_TEST_USER}:${SITEGEN_TEST_PASS}@${SITEGEN_TEST_HOST}:"
                f"{server.port}/chan"
            ),
        )
    _alpha_and_beta_refused(report, site)
    assert not report.mirrors[0].subdirs["noarch"].rejected_examples
    assert files_holding(site, password) == files_holding(site, encoded) == []


async def test_records_holding_a_user_name_without_a_password_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL is ``http://${KEY}@127.0.0.1:<port>/chan``: an API key as the user name, with
    no password (as some repositories take one), is the credential. A record holding it, as
    it is or percent-encoded as the URL sends it, is refused, and the site holds it in
    neither form."""
    key = "ak+" + random.Random(20240602).randbytes(12).hex()
    encoded = quote(key, safe="")
    monkeypatch.setenv("SITEGEN_TEST_KEY", key)
    root = tmp_path / "upstream"
    documents = write_channel(root / "chan", small_packages(), zst=True)
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        conda = documents[LINUX]["packages.conda"]
        conda["alpha-1.0-h0_0.conda"]["url"] = (
            f"http://{encoded}@127.0.0.1:{server.port}/chan/{LINUX}/alpha-1.0-h0_0.conda"
        )
        conda["beta-2.0-h1_0.conda"]["summary"] = f"api key: {key}"
        set_repodata(root / "chan", LINUX, json.dumps(documents[LINUX]).encode())
        report = await _mirror_linux(
            tmp_path, site, f"http://${{SITEGEN_TEST_KEY}}@127.0.0.1:{server.port}/chan"
        )
    _alpha_and_beta_refused(report, site)
    assert files_holding(site, key) == files_holding(site, encoded) == []


async def test_the_token_outside_records_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream writes the token outside its records too: in an ``info`` entry, a ``removed``
    entry and a key sitegen does not know, all of which a subdir publishes as upstream wrote
    them. Those entries are left out, each named in the report; the rest of them, the CEP-15
    ``base_url`` under /t/<token>/ (its packages are fetched from there) and every record are
    published, and no byte of the site holds the token."""
    monkeypatch.setenv(ENV, TOKEN)
    root = tmp_path / "upstream"
    chan = root / "t" / TOKEN / "chan"
    documents = write_channel(chan, small_packages(), zst=True)
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        document = documents[LINUX]
        document["info"]["base_url"] = f"{server.url}/t/{TOKEN}/chan/{LINUX}/"
        document["info"]["note"] = "served as it is"
        document["info"][f"mirror-{TOKEN}"] = "seen"
        document["info"]["source"] = f"{server.url}/t/{TOKEN}/chan"
        document["removed"] = ["gone-1.0-0.conda", f"gone-{TOKEN}-1.0-0.conda"]
        document["x-mirrors"] = [f"{server.url}/t/{TOKEN}/chan"]
        document["x-other"] = {"kept": True}
        set_repodata(chan, LINUX, json.dumps(document).encode())
        report = await _mirror_linux(tmp_path, site, f"{server.url}/t/${{{ENV}}}/chan")
    assert report.mirrors[0].subdirs[LINUX].rejected_examples == {
        "[info.mirror-***]": REASON_SECRET,
        "[info.source]": REASON_SECRET,
        "[removed]": REASON_SECRET,
        "[x-mirrors]": REASON_SECRET,
    }
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    assert published["info"]["note"] == "served as it is"
    assert published["removed"] == ["gone-1.0-0.conda"]
    assert published["x-other"] == {"kept": True} and "x-mirrors" not in published
    assert set(published["packages.conda"]) | set(published["packages"]) == filenames(
        small_packages(), LINUX
    )
    assert files_holding(site, TOKEN) == []


def _echoing_validators(handler: UpstreamHandler) -> None:
    """Serve the file asked for with an ETag and a Last-Modified that echo the token of its
    URL; 304 only to a request sending both back exactly as they were served."""
    target = handler.resolve(handler.url_path)
    assert target is not None
    data = target.read_bytes()
    etag = f'"{TOKEN}-{hashlib.sha256(data).hexdigest()[:16]}"'
    validators = {"ETag": etag, "Last-Modified": f"Mon, 01 Jan 2024 00:00:00 GMT ({TOKEN})"}
    sent = {name: handler.headers.get(f"If-{name}") for name in ("None-Match", "Modified-Since")}
    if sent == {"None-Match": etag, "Modified-Since": validators["Last-Modified"]}:
        handler.respond(304, headers=validators)
    else:
        handler.respond(200, data, validators)


def _as_sent(state: Path) -> None:
    """The validators kept under ``state`` written back as an earlier sitegen kept them: as
    upstream sent them, saying nothing of secrets (those of a kept repodata body say how the
    body holds them: left as they are)."""
    for path in state.rglob("validators.json"):
        kept = json.loads(path.read_bytes())
        for key in ("etag", "last_modified"):
            kept[key] = kept[key].replace(f"${{{ENV}}}", TOKEN)
        kept.pop("validators_hidden", None)
        if kept.get("secrets_hidden") is True:  # an advisory feed's
            del kept["secrets_hidden"]
        path.write_text(json.dumps(kept))


async def test_validators_echoing_the_token_are_kept_as_its_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream, served under /t/<token>/, answers the repodata, the run_exports.json and an
    advisory feed (under /t/<token>/ too) with an ETag and a Last-Modified that echo the
    token. The validators kept for the next run's conditional requests hold its reference,
    not the token; the next run sends the token back where upstream wrote it, and every
    answer is a 304. Validators an earlier sitegen kept as upstream sent them are kept again
    without the token by the next run, answered 304 all the same."""
    monkeypatch.setenv(ENV, TOKEN)
    root = tmp_path / "upstream"
    chan = root / "t" / TOKEN / "chan"
    write_channel(chan, small_packages(), zst=True)
    exports = json.dumps({"info": {"subdir": LINUX}, "packages": {}, "packages.conda": {}})
    (chan / LINUX / "run_exports.json").write_text(exports)
    write_feed(root / "t" / TOKEN / "feeds" / "all.zip", [zlib_advisory()])
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        echoed = [f"/t/{TOKEN}/feeds/all.zip", f"/t/{TOKEN}/chan/{LINUX}/run_exports.json"]
        echoed += [f"/t/{TOKEN}/chan/{s}/repodata.json.zst" for s in (LINUX, "noarch")]
        for path in echoed:
            server.add_fault(path, _echoing_validators)
        (tmp_path / "channels.yaml").write_text(
            f"output: {site}\n"
            f"filters: {{advisories: {{feeds: ['{server.url}/t/${{{ENV}}}/feeds/all.zip']}}}}\n"
            f"channels:\n  {CHANNEL}:\n    url: {server.url}/t/${{{ENV}}}/chan\n"
            "    subdirs: [linux-64]\n"
        )
        config = load_config(tmp_path / "channels.yaml")
        for run in range(3):
            if run == 2:
                _as_sent(site / ".sitegen")
            server.reset()
            report = await run_mirror(config, MirrorOptions(progress=False))
            assert not report.failed, report.errors
            answers = {r.path: r.status for r in server.requests if r.path in echoed}
            assert answers == dict.fromkeys(echoed, 304 if run else 200), run
            assert files_holding(site, TOKEN) == []
