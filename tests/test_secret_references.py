"""What upstream writes that looks like the ``${NAME}`` references sitegen keeps its secrets as.

The repodata kept for conditional requests holds each value of the mirror URL's ``${ENV}``
references written back as that reference, filled in again to parse it. Upstream may write the
same text itself, in a record or its CEP-15 ``base_url``: it stays that text, on the run that
fetches it, on the runs that read it back from the cache (304), and after a cache kept by an
earlier sitegen, which did not tell the two apart; it never becomes the value.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from sitegen.cli import main
from sitegen.layout import upstream_cache_dir, upstream_validators_path
from sitegen.net.upstream_secrets import UpstreamSecrets
from sitegen.tools.example_channel import write_channel
from testkit.invariant import make_sandbox
from testkit.site import files_holding
from testkit.small_channel import CHANNEL, set_repodata, small_packages
from testkit.upstream import UpstreamServer

LINUX = "linux-64"
# A user name (no credential), a password too short to refuse records by (see MIN_CREDENTIAL)
# and an anaconda.org-style token: the values of the URL's three references.
USER, PASSWORD = "reader-7", "pw/1x"
TOKEN = "tk-" + random.Random(20240603).randbytes(16).hex()
ENV = {"SITEGEN_TEST_USER": USER, "SITEGEN_TEST_PASS": PASSWORD, "SITEGEN_TEST_TOKEN": TOKEN}
# Where noarch's CEP-15 base_url sends its packages, as upstream writes it.
ELSEWHERE = "/elsewhere/${SITEGEN_TEST_TOKEN}/"


@pytest.mark.unit
def test_a_hidden_body_reads_back_exactly() -> None:
    """Values common in repodata (``conda``, ``main``), one named in lower case (``${user}``,
    whose value is part of another's reference), a password holding ``$``, ``{`` and ``%``,
    one starting with ``{`` right after a ``$``, and upstream's own text that reads as a
    reference or an escape: each body reads back as it was, whether one of them occurs or
    several, and holds no value."""
    values = {
        "user": "conda",
        "conda_token": "tk-0123456789abcdef",
        "CHANNEL": "main",
        "PASS": "x${y}%24%7Bz",
        "KEY": "{key}",
    }
    secrets = UpstreamSecrets(values)
    bodies = [
        b'"a.conda b.conda"',  # one of them: replaced as bytes.replace does
        b'"${user} $${user}"',
        b'"main/conda-forge/x.conda"',
        b'"https://h/t/tk-0123456789abcdef/conda-forge/"',
        b'{"license": "${user}", "summary": "%24%7BPASS%7D ${} %24%7B%7D $${CHANNEL} $"}',
        b'"x${y}%24%7Bz x%24%7By%7D%2524%257Bz ${key} $%7Bkey%7D"',
        b'"${} ${}{ %24%7B%7D %24%7B%7D24%7B %%24%7B"',
    ]
    forms = {form for v in values.values() for form in (v, quote(v, safe=""))}
    for body in bodies:
        hidden = secrets.hide(body)
        left = hidden  # but the references, whose names may hold a value (``conda``)
        for name in values:
            left = left.replace(f"${{{name}}}".encode(), b"")
            left = left.replace(quote(f"${{{name}}}", safe="").encode(), b"")
        assert [form for form in forms if form.encode() in left] == [], hidden
        assert secrets.reveal(hidden) == body, hidden
        assert secrets.reveal_text(secrets.hide_text(body.decode())) == body.decode()


@pytest.mark.unit
def test_a_value_spelt_with_json_escapes_is_hidden_and_decodes_the_same() -> None:
    """A document spelling a value with JSON's escapes (all or some of its characters, hex in
    either case, ``\\/`` alone or beside others, a surrogate pair, after an escaped
    backslash) holds its reference instead, and decodes, filled in again, as it did. Escapes that spell no value (after a
    backslash that is text, of a value JSON must escape) are left as they are."""
    token, password, quoted = "tk-0123456789abcdef", "pa/ss\u00e9\U0001f600word", 'q"uoted-secret'
    secrets = UpstreamSecrets({"TOKEN": token, "PASS": password, "QUOTED": quoted})

    def spelt(text: str, every: int = 1) -> str:
        return "".join(
            json.dumps(c)[1:-1] if i % every else f"\\u{ord(c):04X}" if c < "\x7f" else c
            for i, c in enumerate(text)
        ).replace("/", "\\/")

    bodies = [
        {"a": spelt(token), "b": spelt(token, 3), "c": "x" + spelt(token, 5) + "y"},
        {"p": spelt(password, 2), "e": json.dumps(password)[1:-1].replace("/", "\\/")},
        {"l": "https:\\/\\/h\\/" + password.replace("/", "\\/")},  # each '/' as '\\/' alone
        {"s": "\\\\" + spelt(token)},  # an escaped backslash, then the token
    ]
    for document in bodies:
        body = ("{" + ", ".join(f'"{k}": "{v}"' for k, v in document.items()) + "}").encode()
        hidden = secrets.hide_document(body)
        held = json.dumps(json.loads(hidden), ensure_ascii=False)
        assert token not in held and password not in held, hidden
        assert json.loads(secrets.reveal(hidden)) == json.loads(body)
    unchanged = [
        b'{"t": "\\\\u0074k-0123456789abcdef"}',  # text: a backslash, "u0074k-01..."
        json.dumps({"q": quoted}).encode(),  # the '"' must stay escaped: spelt as it is
        b'{"n": "\\u0074\\u006b and no token"}',
    ]
    for body in unchanged:
        assert secrets.hide_document(body) is body


@pytest.mark.integration
def test_references_upstream_writes_are_published_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    root = tmp_path / "upstream"
    chan = root / "t" / TOKEN / "chan"
    documents = write_channel(chan, small_packages(), zst=True)
    conda = documents[LINUX]["packages.conda"]
    written = {
        "alpha-1.0-h0_0.conda": "${SITEGEN_TEST_USER}",
        "beta-2.0-h1_0.conda": "%24%7BSITEGEN_TEST_PASS%7D",
        "epsilon-3.1-h3_0.conda": "by ${SITEGEN_TEST_TOKEN}",
    }
    for fn, text in written.items():
        conda[fn]["license"] = text
    set_repodata(chan, LINUX, json.dumps(documents[LINUX]).encode())
    # noarch's packages live "elsewhere", under a path upstream names with a reference.
    noarch = documents["noarch"]
    noarch["info"]["base_url"] = ELSEWHERE
    set_repodata(chan, "noarch", json.dumps(noarch).encode())
    elsewhere = root / "elsewhere" / "${SITEGEN_TEST_TOKEN}"
    elsewhere.mkdir(parents=True)
    for fn in noarch["packages.conda"]:
        shutil.copy(chan / "noarch" / fn, elsewhere / fn)
    site = make_sandbox(tmp_path)
    config = tmp_path / "channels.yaml"
    with UpstreamServer(root) as server:
        config.write_text(
            f"output: {site}\n"
            "channels:\n"
            f"  {CHANNEL}:\n"
            "    url: http://${SITEGEN_TEST_USER}:${SITEGEN_TEST_PASS}@127.0.0.1:"
            f"{server.port}/t/${{SITEGEN_TEST_TOKEN}}/chan\n"
            "    subdirs: [linux-64]\n"
        )
        repodata = f"/t/{TOKEN}/chan/{LINUX}/repodata.json.zst"
        for run in ("fetched", "read back from the cache", "kept by an earlier sitegen"):
            assert main(["mirror", "-c", str(config), "--no-progress"]) == 0, run
            published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
            licenses = {fn: published["packages.conda"][fn]["license"] for fn in written}
            assert licenses == written, run
            assert (site / CHANNEL / "noarch" / "delta-1.0-pyh0_0.conda").is_file(), run
            for secret in (USER, PASSWORD, quote(PASSWORD, safe=""), TOKEN):
                assert files_holding(site, secret) == [], (run, secret)
            if run == "read back from the cache":
                assert server.count(repodata, status=304) == 1
                # As an earlier sitegen kept it: upstream's bytes (no value to hide in them),
                # their references unescaped, said to be hidden. Fetched whole again.
                cache = upstream_cache_dir(site, "cloud-example", LINUX)
                validators = json.loads(upstream_validators_path(cache).read_bytes())
                upstream_validators_path(cache).write_text(
                    json.dumps({**validators, "secrets_hidden": True})
                )
                (cache / validators["variant"]).write_bytes(
                    (chan / LINUX / "repodata.json.zst").read_bytes()
                )
        assert server.count(repodata, status=304) == 1
        assert server.count(repodata, status=200) == 2
        # The token went only where the URL sends it.
        assert [
            r.path for r in server.requests if TOKEN in r.path.replace(f"/t/{TOKEN}/", "")
        ] == []
