"""Secrets in channels.yaml or quoted in errors (cut, percent-encoded, escaped) are hidden."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pytest

from sitegen.cli import main
from sitegen.conda.record_secrets import SecretSearch
from sitegen.config import ConfigError, parse_config
from sitegen.config.urls import redact_url, scrub_names
from sitegen.config.yaml_nodes import shown_reason, shown_value
from testkit.config import SHORT, dedent, write_config

pytestmark = pytest.mark.unit


def test_literal_token_is_not_echoed() -> None:
    text = dedent(SHORT).replace("conda-forge\n", "t/abc123/conda-forge\n", 1)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert "literal token" in str(info.value)
    assert "abc123" not in str(info.value)


@pytest.mark.parametrize("password", ["Zx9Secret/kq7", "Zx9Secret\u2100kq7"])
def test_a_url_urllib_refuses_is_refused_without_quoting_its_password(
    tmp_path: Path, password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A password written out with a '/' (or a character that Unicode normalization turns into
    one) ends the host part early: urllib's reason quotes what it then reads as the port, or
    the whole host part, and so the password's start or all of it."""
    url = f"https://mirror:{password}@conda.example.org/forge"
    config_path = write_config(
        tmp_path, dedent(SHORT).replace("https://conda.anaconda.org/conda-forge", url)
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "channels.cloud/conda-forge.url: not a valid URL: " in err, err
    assert "Zx9" not in err, err


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://files.example.org/conda/main?token=s3cr3t-42&region=eu",
            "https://files.example.org/conda/main?token=***&region=***",
        ),
        (
            "error: https://u:pw@h.example/c/x.conda?X-Amz-Signature=abcdef returned 403",
            "error: https://***@h.example/c/x.conda?X-Amz-Signature=*** returned 403",
        ),
        ("https://h.example/c?flag", "https://h.example/c?flag"),
        # A value in quotes (as written in a config, or %22 decoded from a request line).
        ('https://h.example/c?token="s3cr3t-42"', 'https://h.example/c?token="***"'),
        ("https://h.example/c?a=1&token='s3cr3t-42'", "https://h.example/c?a=***&token='***'"),
        # A quote inside a value does not end it; one closing a URL quoted in a message stays.
        ('https://h.example/c?key=s3cr"3t-42', "https://h.example/c?key=***"),
        ("https://h.example/c?key=s3cr'3t-42&a=1", "https://h.example/c?key=***&a=***"),
        ('GET "https://h.example/c?key=s3cr"3t-42": 404', 'GET "https://h.example/c?key=***": 404'),
        ("('https://h.example/c?a=\"1\"&b=2',)", "('https://h.example/c?a=\"***\"&b=***',)"),
        # Whatever the parameter is named: a '/' in its name, or no name at all.
        ("https://h.example/c?a/b=s3cr3t-42", "https://h.example/c?a/b=***"),
        ("https://h.example/c?=s3cr3t-42&b=1", "https://h.example/c?=***&b=***"),
        ("https://h.example/c?a=1&=s3cr3t-42", "https://h.example/c?a=***&=***"),
    ],
)
def test_redact_url_hides_query_values(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_a_secret_cut_short_in_an_error_message_is_hidden(monkeypatch) -> None:
    """Error messages quote only the start of a long value (shown_value, shown_reason), before
    anything hides the secrets it holds: a secret the cut went through is no whole value, yet
    its start must not show."""
    secret = "tk-5f1e9a7c3b2d4e6f8a0b"
    monkeypatch.setenv("FEED_TOKEN", secret)
    for kept in (4, 10, 20):  # characters of the secret before the cut
        value = "x" * (40 - kept) + secret + "-advisory.json"
        for message in (
            f"member {shown_value(value)}: not valid JSON",
            f"cannot read: {shown_reason('y' * (200 - kept) + secret)}",
        ):
            for hide in (scrub_names(["FEED_TOKEN"]), SecretSearch([secret]).hide):
                shown = hide(message)
                assert secret[:3] not in shown, (kept, shown)
                assert "***" in shown and "characters)" in shown
    # A start of the secret that does not end at a cut is ordinary text.
    assert scrub_names(["FEED_TOKEN"])("tk-5 and tk-5f1e...") == "tk-5 and tk-5f1e..."


def test_a_secret_percent_encoded_otherwise_in_an_error_message_is_hidden(monkeypatch) -> None:
    """A URL spells a value in any percent-encoding (``%74`` for ``t``), not only as sitegen
    encodes it: an error message quoting what an upstream served (a feed archive's member
    name) may hold a secret so, whole or cut short."""
    secret = "tk-5f1e9a7c3b2d4e6f8a0b"
    monkeypatch.setenv("FEED_TOKEN", secret)
    spelt = "%74%6B%2d" + secret[3:]
    for value in (spelt + ".json", "x" * 20 + spelt + "-advisory.json"):
        message = f"member {shown_value(value)}: not valid JSON"
        for hide in (scrub_names(["FEED_TOKEN"]), SecretSearch([secret]).hide):
            shown = hide(message)
            assert secret[3:8] not in shown, shown
            assert "***" in shown
    # Text whose percent-escapes spell no secret is shown as it is.
    assert scrub_names(["FEED_TOKEN"])("a%20b tk-5f") == "a%20b tk-5f"


def test_a_percent_encoded_secret_cut_inside_an_escape_is_hidden(monkeypatch) -> None:
    """A message cutting a percent-encoded value may cut it inside an escape (``%6``, ``%``)
    or between the UTF-8 bytes of one character: what stands before the cut is still the
    secret's start."""
    secret = "tk-5f1e9a7c3b2d4e6f8a0b-\u00e4\u00f6"
    monkeypatch.setenv("FEED_TOKEN", secret)
    spelt = "".join(f"%{byte:02X}" for byte in secret.encode())
    value = "x" * 20 + spelt + "-advisory.json"
    for cut in range(9, len(spelt)):  # from 3 characters of the secret on
        message = f"member {shown_value(value, 20 + cut)}: not valid JSON"
        for hide in (scrub_names(["FEED_TOKEN"]), SecretSearch([secret]).hide):
            shown = hide(message)
            assert secret[:3] not in unquote(shown), (cut, shown)
            assert "***" in shown and "characters)" in shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # A password holding an unencoded '/' or '@': hidden up to the last '@' before the path.
        ("https://user:pa/ss@h.example/x", "https://***@h.example/x"),
        ("get 'https://me:a/b/c@h.example/c' failed", "get 'https://***@h.example/c' failed"),
        ("https://user:pa/t/ss@h.example/x", "https://***@h.example/x"),
        ("https://u:pa@ss@h.example/x", "https://***@h.example/x"),
        # An '@' in the path after a host (and port) is no user:password part.
        ("https://h.example/a@b/chan", "https://h.example/a@b/chan"),
        ("https://h.example:8443/a@b/chan", "https://h.example:8443/a@b/chan"),
        ("https://[::1]:8443/a@b", "https://[::1]:8443/a@b"),
        ("https://u:pw@h.example/a@b/chan", "https://***@h.example/a@b/chan"),
    ],
)
def test_redact_url_hides_the_whole_user_password_part(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize("secret", ["tk\\5f1e9a'7c3b\"2d", "p\u00e4ssw\u00f6rd-5f1e9a7c3b2d"])
def test_a_secret_escaped_in_an_error_message_is_hidden(monkeypatch, secret: str) -> None:
    """A message quoting a value with repr() or as JSON spells a backslash, a quote or a
    character outside ASCII escaped: a search for the value as it is finds no such spelling."""
    monkeypatch.setenv("FEED_TOKEN", secret)
    value = "x" * 20 + secret + "-advisory.json"
    messages = [
        f"member {value!r}: not valid JSON",
        f"member {[value]!r}: not valid JSON",
        f"member {shown_value(value)}: not valid JSON",
        f"member {shown_value(value, 30)}: not valid JSON",  # cut in the secret
        f"body {json.dumps({'name': value})} refused",
        f"body {json.dumps({'name': value}, ensure_ascii=False)} refused",
    ]
    for message in messages:
        for hide in (scrub_names(["FEED_TOKEN"]), SecretSearch([secret]).hide):
            shown = hide(message)
            assert "5f1e" not in shown and "tk" not in shown and "ssw" not in shown, shown
            assert "***" in shown
