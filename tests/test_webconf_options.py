"""``sitegen webconf``: the values it refuses or normalizes, and what the generated nginx
and Apache configs hold (no server runs)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.config import parse_config
from sitegen.tools.webconf import (
    WebconfError,
    WebconfOptions,
    check_address,
    normalize_prefix,
    render_webconf,
)
from testkit.webconf import CHANNEL
from testkit.webconf import webconf_config as _config


@pytest.mark.unit
@pytest.mark.parametrize(
    "prefix", ["/co nda", "/conda;", "/../etc", "/.hidden", '/a"b', "/a\nb", "/$uri", "/a{b}"]
)
def test_unsafe_prefix_is_rejected(prefix: str, tmp_path: Path) -> None:
    with pytest.raises(WebconfError, match="prefix"):
        render_webconf("nginx", _config(tmp_path / "site"), WebconfOptions(prefix=prefix))


@pytest.mark.unit
@pytest.mark.parametrize(
    "root", ["relative/site", "/srv/my site", "/srv/a;b", "/srv/../etc", '/srv/"x', "/srv/$x"]
)
def test_unsafe_root_is_rejected(root: str, tmp_path: Path) -> None:
    for server in ("nginx", "apache"):
        with pytest.raises(WebconfError, match="root"):
            render_webconf(server, _config(tmp_path / "site"), WebconfOptions(root=root))


@pytest.mark.unit
@pytest.mark.parametrize(
    "options",
    [
        ["--root", "/srv/site\n"],
        ["--server-name", "conda.example.org\n"],
        ["--standalone", "--state-dir", "/srv/state\n"],
        ["--standalone", "--state-dir", "/srv/state", "--user", "www-data\n"],
    ],
)
def test_a_value_ending_in_a_line_end_never_reaches_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    """nginx reads `alias /srv/site<newline>/;` as two arguments and refuses the config."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        "output: site\nchannels:\n  pkgs/main:\n    url: http://127.0.0.1:9/main\n"
        "    subdirs: [linux-64]\n"
    )
    for server in ("nginx", "apache"):
        assert main(["webconf", server, "-c", str(config), *options]) == 2
        out, err = capsys.readouterr()
        assert out == "" and "must be" in err


@pytest.mark.unit
def test_addresses_and_prefixes_are_normalized() -> None:
    assert normalize_prefix("") == normalize_prefix("/") == ""
    assert normalize_prefix("conda/") == "/conda"
    assert normalize_prefix("/mirrors/conda") == "/mirrors/conda"
    assert check_address("8080", "--listen") == "127.0.0.1:8080"
    assert check_address("0.0.0.0:80", "--listen") == "0.0.0.0:80"
    assert check_address("[::1]:8080", "--listen") == "[::1]:8080"
    assert check_address("conda.example.org:443", "--listen") == "conda.example.org:443"
    for bad in ("127.0.0.1:0", "127.0.0.1:70000", "host:80; evil", "a b:80", "[zz]:80", ":80"):
        with pytest.raises(WebconfError):
            check_address(bad, "--listen")


@pytest.mark.unit
def test_passive_channels_get_fetcher_rules(tmp_path: Path) -> None:
    active = _config(tmp_path / "site")
    passive = _config(tmp_path / "site", mode="passive")
    options = WebconfOptions(prefix="/conda", fetcher="127.0.0.1:9999")
    nginx_active = render_webconf("nginx", active, options)
    assert "@sitegen_fetch" not in nginx_active and "proxy_pass" not in nginx_active
    nginx = render_webconf("nginx", passive, options)
    assert "try_files $uri @sitegen_fetch;" in nginx
    assert "proxy_pass http://127.0.0.1:9999;" in nginx
    assert r'location ~ "^/conda/cloud/conda\-forge/[^/]+/[^/]+\.(?:conda|tar\.bz2)$"' in nginx
    apache = render_webconf("apache", passive, options)
    assert "RewriteCond %{REQUEST_FILENAME} !-f" in apache
    assert '"http://127.0.0.1:9999/$1" [P,L]' in apache
    assert "RewriteEngine" not in render_webconf("apache", active, options)
    for text in (nginx, apache):
        assert "ln -s /srv/mirror/site /var/www/anaconda" in text  # the documented deploy
    assert "<VirtualHost 127.0.0.1:8080>" in render_webconf(
        "apache", passive, WebconfOptions(listen="127.0.0.1:8080")
    )


@pytest.mark.unit
def test_the_apache_module_hint_names_each_module_once(tmp_path: Path) -> None:
    """Passive and private channels both need mod_rewrite: one ``rewrite`` in the hint."""
    text = f"""\
        output: {tmp_path / "site"}
        channels:
          {CHANNEL}: {{url: http://127.0.0.1:9/forge, subdirs: [linux-64], mode: passive}}
          internal/licensed: {{url: http://127.0.0.1:9/lic, subdirs: [linux-64], access: private}}
        """
    both = parse_config(textwrap.dedent(text), base_dir=tmp_path)
    apache = render_webconf("apache", both, WebconfOptions())
    (hint,) = [line for line in apache.splitlines() if line.startswith("#     a2enmod ")]
    assert hint == "#     a2enmod alias dir mime headers rewrite proxy proxy_http setenvif"
    (needs,) = [line for line in apache.splitlines() if line.startswith("# Needs mod_")]
    assert needs.count("mod_rewrite") == 1
    plain = render_webconf("apache", _config(tmp_path / "site"), WebconfOptions())
    assert "#     a2enmod alias dir mime headers\n" in plain


@pytest.mark.unit
def test_cli_prints_config_and_rejects_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "channels.yaml"
    config.write_text(
        "output: site\nchannels:\n  pkgs/main:\n    url: http://127.0.0.1:9/main\n"
        "    subdirs: [linux-64]\n    mode: passive\n"
    )
    assert main(["webconf", "nginx", "-c", str(config), "--prefix", "/conda"]) == 0
    out = capsys.readouterr().out
    assert f"alias {tmp_path.resolve()}/site/;" in out
    assert "proxy_pass http://127.0.0.1:8901;" in out  # the fetcher's default address
    assert main(["webconf", "apache", "-c", str(config), "--prefix", "/co;nda"]) == 2
    assert "prefix" in capsys.readouterr().err
    assert main(["webconf", "nginx", "-c", str(config), "--state-dir", "/tmp"]) == 2
    capsys.readouterr()
    # A t segment stands for conda's path token: the logs mask the segment after it and the
    # statistics drop both, so a channel's path after it would be misread.
    for prefix in ("/mirror/t", "/t/conda", "t", "/a/t/b/"):
        assert main(["webconf", "nginx", "-c", str(config), "--prefix", prefix]) == 2, prefix
        assert "segment 't'" in capsys.readouterr().err
    assert main(["webconf", "apache", "-c", str(config), "--prefix", "/mirror/tt"]) == 0


@pytest.mark.unit
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize(
    "prefix", ["/__sitegen_stored", "/__sitegen_quiet/conda", "/a/__sitegen_x"]
)
def test_a_prefix_named_like_the_configs_own_locations_is_refused(
    server: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """nginx's config has internal locations of its own under /__sitegen_*: served there, a
    private site with a passive mirror would be read as the fetcher's stored files, unchecked."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        "output: site\naccess: {site: private}\nchannels:\n  pkgs/main:\n"
        "    url: http://127.0.0.1:9/main\n    subdirs: [linux-64]\n    mode: passive\n"
    )
    assert main(["webconf", server, "-c", str(config), "--prefix", prefix]) == 2
    assert f"prefix {prefix!r}" in capsys.readouterr().err


@pytest.mark.unit
def test_a_root_a_stock_server_serves_as_it_is_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Debian's default nginx site and Apache virtual host serve /var/www/html as it is, with
    none of the generated rules: a site linked in there is open to every request they answer
    (another host name, the bare IP address), private channels without a token, .sitegen/ and
    the run records too. Only Apache's snippet without --listen is safe there, at the prefix
    the default virtual host gives the link: its sections apply to every virtual host."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\nchannels:\n"
        "  internal/licensed: {url: http://127.0.0.1:9/lic, subdirs: [linux-64],"
        " access: private}\n"
    )
    cases = [
        ("nginx", "/var/www/html/anaconda", "/anaconda", [], "/var/www/html"),
        ("nginx", "/var/www/html", "", [], "/var/www/html"),
        ("nginx", "/usr/share/nginx/html/conda", "/conda", [], "/usr/share/nginx/html"),
        ("nginx", "/var/www/anaconda", "/anaconda", [], None),
        ("nginx", "/var/www/html-mirror", "/anaconda", [], None),
        ("apache", "/var/www/html/anaconda", "/anaconda", [], None),
        ("apache", "/var/www/html/anaconda", "/conda", [], "/var/www/html"),
        ("apache", "/var/www/html/anaconda", "/anaconda", ["--listen", "8080"], "/var/www/html"),
        ("apache", "/usr/share/nginx/html/conda", "/conda", ["--listen", "8080"], None),
    ]
    for server, root, prefix, extra, docroot in cases:
        command = ["webconf", server, "-c", str(config), "--root", root, "--prefix", prefix]
        assert main([*command, *extra]) == 0
        captured = capsys.readouterr()
        assert f" {root}" in captured.out, (server, root)  # the config is printed all the same
        if docroot is None:
            assert captured.err == "", (server, root, prefix, extra)
        else:
            assert captured.err.startswith("sitegen: webconf: warning:"), (server, root, extra)
            assert f"inside {docroot}," in captured.err and "without a token" in captured.err


@pytest.mark.unit
def test_standalone_needs_a_state_dir(tmp_path: Path) -> None:
    with pytest.raises(WebconfError, match="state-dir"):
        render_webconf("nginx", _config(tmp_path / "site"), WebconfOptions(standalone=True))
