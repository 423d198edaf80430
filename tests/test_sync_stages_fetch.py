"""A fetched repodata body, kept without the secrets of its mirror's URL."""

from __future__ import annotations

import json
import urllib.parse

import pytest
import zstandard

from sitegen.net.upstream_secrets import UpstreamSecrets
from sitegen.net.zstd_body import decode_body
from sitegen.sync.upstream_copy import hide_secrets

pytestmark = pytest.mark.unit


def test_a_fetched_body_is_kept_without_the_secrets_of_its_mirrors_url() -> None:
    """Upstream echoes the token (in a path) and the password (percent-encoded, in a URL's
    user:password part): the body kept holds their ${ENV} references instead, and reads back
    as it was; a body holding neither is kept as fetched, the same bytes."""
    token, password = "0123456789abcdef", "p@ss/w:rd"
    secrets = UpstreamSecrets({"TOKEN": token, "PASSWORD": password, "SHORT": "abc"})
    encoded = urllib.parse.quote(password, safe="")
    url = f"https://u:{encoded}@host/t/{token}/chan/linux-64/"
    document = json.dumps({"info": {"base_url": url}, "packages": {"abc-1-0.tar.bz2": {}}})
    for variant, body in [
        ("repodata.json", document.encode()),
        ("repodata.json.zst", zstandard.ZstdCompressor().compress(document.encode())),
    ]:
        kept = hide_secrets(secrets, variant, body)
        data = decode_body(variant, kept)
        assert token.encode() not in data and encoded.encode() not in data
        assert b"/t/${TOKEN}/" in data and b"u:%24%7BPASSWORD%7D@" in data
        assert secrets.reveal(data) == document.encode()
        plain = json.dumps({"info": {}, "packages": {}}).encode()
        assert hide_secrets(secrets, variant, plain) is plain
    hidden_url = secrets.hide_text(url)
    assert hidden_url == "https://u:%24%7BPASSWORD%7D@host/t/${TOKEN}/chan/linux-64/"
    assert secrets.reveal_text(hidden_url) == url
