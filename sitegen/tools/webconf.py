"""Web server configuration for a site: nginx and Apache, rendered from jinja2 templates.

``sitegen webconf nginx|apache -c channels.yaml`` prints a config that serves the site
directory at a URL prefix with what conda clients need:

* MIME types: ``.conda`` application/octet-stream, ``.tar.bz2`` and ``.json.bz2``
  application/x-bzip2, ``.json`` application/json, ``.json.zst`` application/zstd, pages
  text/html, the history feed application/atom+xml, by a name's last extension alone, and
  application/octet-stream for every other file (an installer's ``.sh``, ``.exe``, ``.pkg``);
  no ``Content-Encoding`` is ever added (clients hash the bytes as stored);
* ``Cache-Control``: short (``public, max-age=60``) for repodata, ``current_repodata``,
  CEP-12 ``run_exports.json``, ``channeldata``, pages and every other file; long and ``immutable`` for the package files
  of the configured channels' subdirs (``<channel>/<subdir>/<file>.conda``), whose name always
  denotes the same bytes, and for their shards (``<subdir>/shards/<sha256>.msgpack.zst``);
  so never for a file of an installer folder, which upstream replaces under its name
  (``Miniconda3-latest-*``), whatever it is named, configured still or not; only on
  successful answers (a 404 or 502 is not cached), and short on a directory's redirect to its
  slash (the same on both servers);
  ``private`` instead of ``public`` for private channels (for the client's cache only);
* no directory listings (``index.html`` pages rendered by sitegen replace them);
* ``.sitegen/`` (private state) and any other dot-name (temporary downloads) denied;
* symlinks followed, for the deploy ``ln -s /srv/mirror/site /var/www/anaconda`` (a link inside
  a stock server's default document root would be served by its default site as well, with none
  of these rules: :func:`default_root_warning` says so);
* for channels fed by a passive mirror, package files that are not stored yet are handed to the
  verifying pull-through fetcher (``sitegen fetcher``, see :mod:`sitegen.passive.fetcher`),
  whose answers go on as they come, with its own ``Cache-Control`` (``no-cache`` for a file it
  streams while downloading, which may yet be cut off);
* for private channels (``access: private``), every file answers only to a token: conda's path
  token ``/t/<token>/`` (wherever a client puts it, see :func:`token_places`),
  ``Authorization: Bearer`` or HTTP
  Basic, checked against the hashes in the access directory (see :mod:`sitegen.access`); the
  access log masks path tokens;
* for a private site (``access: {site: private}``), every path answers only to a token of the
  store, in the same forms (a private channel's still only to its readers'), and every answer
  is ``private`` for caches;
* the run ledger, the records each run filtered out and ``stats.json``, which name every
  channel's files, are not served while a channel is private, nor while a run record names a
  channel the public pages leave out of it (private when it ran, or of unknown access and no
  longer configured; see :mod:`sitegen.web.private`);
* an access log format for ``sitegen stats``, ``sitegen_stats`` (see
  :mod:`sitegen.stats.logline`): no user name or referer, ``/t/<token>/`` masked, the
  fetcher's outcome;
* ``Referrer-Policy: no-referrer`` on every answer, errors and redirects too: a page browsed
  under ``/t/<token>/`` never sends its address as a Referer.

The default output is a snippet to include (an nginx ``server`` block; an Apache ``Alias`` +
``<Directory>`` block, wrapped in a ``<VirtualHost>`` when ``--listen`` is given).
``--standalone`` produces a complete configuration (pid, logs and temp paths under
``--state-dir``) that the real binaries run as is; the tests do exactly that.

Every value interpolated into a template is validated against a strict pattern first
(:mod:`sitegen.tools.webconf_values`), so no path, prefix or address can smuggle a quote, a
``;``, a brace or a newline into the config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import jinja2

from sitegen.access.server_files import AccessPaths, nginx_scope, private_channels
from sitegen.conda.shards import SHARD_SUFFIX
from sitegen.config import CHANNEL_SEGMENT_RE, SiteConfig
from sitegen.config.subdirs import SUBDIR_RE
from sitegen.layout import SHARDS_DIR, SITE_TOKEN_SCOPE
from sitegen.resources import templates_dir
from sitegen.stats.logline import APACHE_FORMAT, NGINX_FORMAT
from sitegen.tools.webconf_values import (
    WebconfError,
    check_address,
    check_path,
    check_server_name,
    check_user,
    normalize_prefix,
)
from sitegen.web.private import ledger_hides

SERVERS = ("nginx", "apache")
DEFAULT_FETCHER = "127.0.0.1:8901"
DEFAULT_APACHE_MODULES = "/usr/lib/apache2/modules"  # Debian, Ubuntu
TEMPLATE_DIR = templates_dir() / "webconf"

SHORT_CACHE = "public, max-age=60"
LONG_CACHE = "public, max-age=31536000, immutable"
# A private channel's answers may be kept by the client that asked only: a shared cache may
# store a "public" answer to a request with Authorization and hand it to anyone (RFC 9111, 3.5).
PRIVATE_SHORT_CACHE = "private, max-age=60"
PRIVATE_LONG_CACHE = "private, max-age=31536000, immutable"
# What a stock server serves as it is, from its default site (nginx: Debian's sites-enabled/default;
# nginx.org's and Fedora's conf.d/default.conf) or default virtual host (Apache: Debian's
# 000-default, Fedora's httpd.conf), with none of the rules of a generated config.
DEFAULT_DOCUMENT_ROOTS = {
    "nginx": ("/var/www/html", "/usr/share/nginx/html"),
    "apache": ("/var/www/html",),
}

# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class WebconfOptions:
    """What the command line asks for; everything optional has a sensible default."""

    prefix: str = ""
    root: str | Path | None = None  # the directory the server reads; default: config.output
    listen: str | None = None
    server_name: str | None = None
    fetcher: str = DEFAULT_FETCHER
    standalone: bool = False
    state_dir: str | Path | None = None
    user: str | None = None  # standalone only
    apache_modules: str | Path = DEFAULT_APACHE_MODULES  # standalone only


@dataclass(frozen=True)
class TokenPlace:
    """Where a path token may stand: ``<before>/t/<token><after>/<rest>`` is the site's
    ``<inside>/<rest>`` (URL paths; ``inside``: "" or leading segments of a channel path)."""

    before: str
    after: str
    inside: str


@dataclass(frozen=True)
class Webconf:
    """Validated values for the templates (every string is safe to interpolate)."""

    server: str
    root: str
    prefix: str
    listen: str | None
    server_name: str
    # base_url is https: the site is reached over TLS (often a proxy's in front of the server),
    # the scheme mod_dir's redirect of a folder to its slash must name (ServerName https://),
    # on an Apache before 2.4.58 (a later one redirects by the path alone).
    https: bool
    fetcher: str | None  # None when no channel has a passive mirror
    # The configured channels' subdirs, "<channel>/<subdir>": only their package files and
    # shards are immutable, not those of any other folder of a channel's directory (an
    # installer folder left there from before it was a channel).
    package_dirs: tuple[str, ...]
    passive_channels: tuple[str, ...]
    access: AccessConf | None  # None when the site and every channel are public
    token_places: tuple[TokenPlace, ...]  # with private channels only
    hide_records: bool  # the ledger, filtered-out records and stats.json are not served
    standalone: bool
    state_dir: str | None
    user: str | None
    group: str | None
    apache_modules: str
    source: str  # the config file, for the header comment

    @property
    def apache_enable(self) -> tuple[str, ...]:
        """The Apache modules the config uses, for its ``a2enmod`` hint: each once, in order
        (the fetcher and private channels both need mod_rewrite)."""
        modules = ["alias", "dir", "mime", "headers"]
        if self.fetcher:
            modules += ["rewrite", "proxy", "proxy_http"]
        if self.access:
            modules += ["rewrite", "setenvif"]
        return tuple(dict.fromkeys(modules))

    def package_dirs_rx(self, channel: str | None = None) -> str:
        """A regex group of the subdirs' directories: every channel's ``<channel>/<subdir>``,
        or with ``channel``, its subdirs' names alone (a path relative to it)."""
        dirs = self.package_dirs
        if channel is not None:
            # A subdir's name holds no slash: what stands before the last one is the channel.
            split = (d.rpartition("/") for d in dirs)
            dirs = tuple(name for head, _, name in split if head == channel)
        return "(?:" + "|".join(_regex(d) for d in dirs) + ")"


@dataclass(frozen=True)
class AccessConf:
    """What the templates need for a private site and private channels (see
    :mod:`sitegen.access`)."""

    channels: tuple[str, ...]  # private channel paths, longest first (regex alternatives)
    nginx_map: str  # the generated map file nginx includes
    apache_dir: str  # the per-token files Apache's expressions read
    # The token files' scope of every other path when the whole site is private, else None.
    site: str | None = None
    realm: str = "conda mirror"


def access_conf(config: SiteConfig) -> AccessConf | None:
    """The private site or channels and the token files that guard them; None when all is
    public."""
    channels = [c.path for c in private_channels(config)]
    site = SITE_TOKEN_SCOPE if config.access.site_private else None
    if not channels and site is None:
        return None
    for path in channels:
        if not all(CHANNEL_SEGMENT_RE.fullmatch(s) for s in path.split("/")):
            raise WebconfError(f"channel path {path!r} is not safe for a web config")
    paths = AccessPaths.of(config)
    return AccessConf(
        channels=tuple(sorted(channels, key=len, reverse=True)),
        nginx_map=check_path(paths.nginx_map, "access token map"),
        apache_dir=check_path(paths.apache_dir, "access token directory"),
        site=site,
    )


def token_places(prefix: str, channels: Iterable[str]) -> tuple[TokenPlace, ...]:
    """Every place a client puts conda's path token ``/t/<token>/`` for a channel of the site
    served at ``prefix``: pixi and mamba after the host; conda between the channel's location
    and its name, the location being the host (or the host and ``/conda`` when a URL given
    whole starts so) or the URL a ``channel_alias`` or ``custom_channels`` entry names, which
    may end anywhere in the prefix or the channel path before its last segment."""
    segments = prefix.split("/")[1:] if prefix else []
    places = [
        TokenPlace(
            "".join(f"/{s}" for s in segments[:i]), "".join(f"/{s}" for s in segments[i:]), ""
        )
        for i in range(len(segments) + 1)
    ]
    heads = sorted(
        {"/".join(path.split("/")[:i]) for path in channels for i in range(1, path.count("/") + 1)}
    )
    for head in heads:
        if not all(CHANNEL_SEGMENT_RE.fullmatch(s) for s in head.split("/")):
            raise WebconfError(f"channel path {head!r} is not safe for a web config")
        places.append(TokenPlace(f"{prefix}/{head}", "", head))
    return tuple(places)


def package_dirs(config: SiteConfig) -> tuple[str, ...]:
    """Every configured channel's subdirs, ``<channel>/<subdir>``, each safe to write into a
    config."""
    for channel in config.channels:
        if not all(CHANNEL_SEGMENT_RE.fullmatch(s) for s in channel.path.split("/")):
            raise WebconfError(f"channel path {channel.path!r} is not safe for a web config")
        for subdir in channel.subdirs:
            if not SUBDIR_RE.fullmatch(subdir):
                raise WebconfError(f"subdir {subdir!r} is not safe for a web config")
    return tuple(f"{c.path}/{subdir}" for c in config.channels for subdir in c.subdirs)


def build_webconf(server: str, config: SiteConfig, options: WebconfOptions) -> Webconf:
    if server not in SERVERS:
        raise WebconfError(f"server must be one of {', '.join(SERVERS)}, not {server!r}")
    root = check_path(options.root if options.root is not None else config.output, "root")
    listen = check_address(options.listen, "--listen") if options.listen else None
    if options.standalone and listen is None:
        listen = "127.0.0.1:8080"
    if server == "nginx" and listen is None:
        listen = "80"
    if options.server_name:
        server_name = check_server_name(options.server_name)
    elif config.base_url and urlsplit(config.base_url).hostname:
        server_name = check_server_name(urlsplit(config.base_url).hostname or "")
    else:
        server_name = "_" if server == "nginx" else "localhost"
    dirs = package_dirs(config)
    # Fed by at least one passive mirror: their missing packages are fetched.
    passive = tuple(c.path for c in config.channels if any(m.mode == "passive" for m in c.mirrors))
    access = access_conf(config)
    fetcher = check_address(options.fetcher, "--fetcher") if passive else None
    prefix = normalize_prefix(options.prefix)
    places = token_places(prefix, (c.path for c in config.channels)) if access else ()
    state_dir = None
    user = group = None
    if options.standalone:
        if options.state_dir is None:
            raise WebconfError("--standalone needs --state-dir (pid file, logs, temp files)")
        state_dir = check_path(Path(options.state_dir).absolute(), "--state-dir")
        if options.user:
            user, group = check_user(options.user)
    elif options.state_dir is not None or options.user:
        raise WebconfError("--state-dir and --user only apply with --standalone")
    source = config.source.name if config.source else "channels.yaml"
    if not re.fullmatch(r"[A-Za-z0-9._-]+", source):
        source = "channels.yaml"
    return Webconf(
        server=server,
        root=root,
        prefix=prefix,
        listen=listen,
        server_name=server_name,
        https=urlsplit(config.base_url or "").scheme == "https",
        fetcher=fetcher,
        package_dirs=dirs,
        passive_channels=passive,
        access=access,
        token_places=places,
        # A reader of a private site is not necessarily one of every private channel.
        hide_records=bool(private_channels(config)) or ledger_hides(config),
        standalone=options.standalone,
        state_dir=state_dir,
        user=user,
        group=group,
        apache_modules=check_path(options.apache_modules, "--apache-modules"),
        source=source,
    )


def default_root_warning(conf: Webconf) -> str | None:
    """Why the site would be served without this configuration as well, when ``conf.root``
    lies inside a directory a stock server serves as it is; None when it does not.

    The default site or virtual host answers every request no other one claims (another host
    name, the bare IP address) and serves ``<docroot>/<path>`` at ``/<path>`` with none of the
    generated rules. Only Apache's snippet without ``--listen`` holds there, at the prefix that
    URL is: its sections apply to every virtual host, and its ``<Directory>`` blocks guard the
    files whatever URL reached them.
    """
    root = PurePosixPath(conf.root)
    for docroot in DEFAULT_DOCUMENT_ROOTS[conf.server]:
        if not root.is_relative_to(docroot):
            continue
        url = str(PurePosixPath("/") / root.relative_to(docroot))
        if conf.server == "apache" and conf.listen is None and (conf.prefix or "/") == url:
            return None
        server, default = (
            ("nginx", "site") if conf.server == "nginx" else ("Apache", "virtual host")
        )
        return (
            f"{conf.root} is inside {docroot}, which a stock {server} serves as it is from its"
            f" default {default}, with none of this configuration's rules: there the site is open"
            " to any request that reaches it (another host name, the bare IP address), private"
            " channels without a token, .sitegen/ and the run records too. Link the site from a"
            f" directory no other site serves (e.g. /var/www/anaconda), or disable that default"
            f" {default}."
        )
    return None


# --------------------------------------------------------------------------- rendering


_SHARD_NAME_RE = "[0-9a-f]{64}" + re.escape(SHARD_SUFFIX)


def _regex(value: str) -> str:
    """Escape a validated path for a PCRE inside double quotes (nginx, Apache)."""
    return re.sub(r"([.+\-])", r"\\\1", value)


def _quote(value: str) -> str:
    if any(ch in value for ch in '"\\\n\r\t'):  # cannot happen after validation; be sure
        raise WebconfError(f"refusing to quote {value!r}")
    return f'"{value}"'


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=False,  # config text, not HTML: every value is validated instead
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["rx"] = _regex
    env.filters["q"] = _quote
    env.filters["nginx_scope"] = nginx_scope  # as the token map names a scope
    return env


def render(conf: Webconf) -> str:
    template = _environment().get_template(f"{conf.server}.conf.j2")
    # A private site's answers are for the client's cache only, as a private channel's.
    site = conf.access is not None and conf.access.site is not None
    text = template.render(
        c=conf,
        short_cache=PRIVATE_SHORT_CACHE if site else SHORT_CACHE,
        long_cache=PRIVATE_LONG_CACHE if site else LONG_CACHE,
        private_short_cache=PRIVATE_SHORT_CACHE,
        private_long_cache=PRIVATE_LONG_CACHE,
        package_re=r"\.(?:conda|tar\.bz2)",
        # CEP-16 shards in a subdir's shards/ (after the subdir's path).
        shard_re=f"/{SHARDS_DIR}/{_SHARD_NAME_RE}",
        log_format=NGINX_FORMAT if conf.server == "nginx" else APACHE_FORMAT,
    )
    return re.sub(r"\n{3,}", "\n\n", text)


def render_webconf(server: str, config: SiteConfig, options: WebconfOptions) -> str:
    """The configuration text for ``server`` ('nginx' or 'apache')."""
    return render(build_webconf(server, config, options))
