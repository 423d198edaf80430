"""Rows of the large pages, rendered through forms.

A large channel's package pages hold hundreds of thousands of builds (800,000 at conda-forge
scale), each some twenty values. Printing them one by one through jinja2 costs a call, an
escape and a Markup object per value: most of a first render. Instead, a row's template is
rendered once per *shape* of row (which of its values are empty) with a placeholder for each
value that is not; the text it gives, split at the placeholders, is the shape's form. Each row
is then its form filled in with its values, each passed through the environment's
``finalize`` and escaped exactly as jinja2 prints a value.

A row is a named tuple of text ("" where there is none), but for its last value when the
row has ``markup``: the template prints that one as it is, HTML made by ``markup`` from it.
So a row template prints its values as they are (the model formats them: no filters) and
tests them only for being empty or not.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jinja2
import markupsafe

# Text that needs neither escaping nor a look for bidi controls (what sitegen.web.format's
# shown_text makes visible): what build strings, file names, hashes, dates and sizes are made
# of, for which the fill skips both.
_PLAIN = re.compile(r"[A-Za-z0-9 ._+!=,/:;%()-]*\Z").match
_SLOT = re.compile("\x00([0-9]+)\x00")


class BuildRow(NamedTuple):
    """A build of a package page (both formats of one name-version-build in a subdir), as
    templates/_build.html prints it. ``requirements``: what the environment's
    ``requirements`` filter renders, (dependencies with their links, constraints)."""

    build: str
    noarch: str
    subdir: str
    date: str
    detail_summary: str
    conda_fn: str
    conda_href: str
    conda_size: str  # bytes, in digits
    conda_size_text: str  # as people read it
    conda_sha256: str
    conda_md5: str
    conda_on_request: str  # not stored yet: fetched from upstream when first asked for
    bz2_fn: str
    bz2_href: str
    bz2_size: str
    bz2_size_text: str
    bz2_sha256: str
    bz2_md5: str
    bz2_on_request: str
    requirements: Any


class ListingRow(NamedTuple):
    """A package file of a subdir listing, as templates/_listing_row.html prints it."""

    href: str
    fn: str
    size: str  # as people read it
    date: str
    sha256: str


class VersionRow(NamedTuple):
    """A version of a package page with its builds, as templates/_version.html prints it."""

    anchor: str  # the id of its section
    version: str
    date: str
    builds: list[BuildRow]


class Forms:
    """Renders rows of ``template`` (named ``name`` in it) through forms, made as shapes
    come; ``markup``, if any, makes the HTML of a row's last value."""

    def __init__(
        self,
        env: jinja2.Environment,
        template: str,
        name: str,
        row_type: type[tuple],
        markup: Callable[[Any], Any] | None = None,
    ) -> None:
        self.env = env
        self.template = template
        self.name = name
        self.row_type = row_type
        self.markup = markup
        self.texts = len(row_type._fields) - (markup is not None)  # type: ignore[attr-defined]
        self.finalize = env.finalize or (lambda value: value)
        # Which values are empty -> the form: its literal texts, and what picks a row's
        # text out of its values followed by those texts.
        self.forms: dict[tuple[bool, ...], tuple[tuple[str, ...], Callable[..., Any]]] = {}

    def form(self, empty: tuple[bool, ...]) -> tuple[tuple[str, ...], Callable[..., Any]]:
        """The form of rows whose values are ``empty`` or not: the template rendered with a
        placeholder for each value that is not."""
        values: list[Any] = ["" if none else f"\x00{i}\x00" for i, none in enumerate(empty)]
        if self.markup is not None:
            values.append(markupsafe.Markup(f"\x00{self.texts}\x00"))
        text = self.env.get_template(self.template).render({self.name: self.row_type(*values)})
        parts = _SLOT.split(text)
        order = [int(part) if i % 2 else len(values) + i // 2 for i, part in enumerate(parts)]
        return tuple(parts[0::2]), operator.itemgetter(*order)

    def printed(self, values: tuple[Any, ...]) -> tuple[str, ...]:
        """``values`` as the template prints them: each finalized, then escaped."""
        finalize = self.finalize
        return tuple(str(markupsafe.escape(finalize(v))) for v in values)

    def __call__(self, rows: Iterable[tuple]) -> markupsafe.Markup:
        """The rows' HTML, one after the other."""
        forms = self.forms
        plain = _PLAIN
        markup = self.markup
        texts = self.texts
        out = []
        for row in rows:
            values = row[:texts]
            empty = tuple(map(operator.not_, values))
            form = forms.get(empty)
            if form is None:
                form = forms[empty] = self.form(empty)
            literals, pick = form
            # One look at all of the row's text: it is nearly always plain. A value that is no
            # text (from a repodata edited by hand) is printed as jinja2 prints it.
            try:
                if not plain("".join(values)):
                    values = self.printed(values)
            except TypeError:
                values = self.printed(values)
            if markup is None:
                out.append("".join(pick((*values, *literals))))
            else:
                out.append("".join(pick((*values, markup(row[texts]), *literals))))
        return markupsafe.Markup("".join(out))
