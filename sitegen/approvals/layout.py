"""The approvals file as lines: which belong to which entry, and which are the operator's
comments, told apart by the YAML parser's own positions rather than by how a line looks.

A line that looks like a comment (``# ...``) may be the text of a multi-line value (a ``|`` or
``>`` block, a quoted string over several lines); only the parser knows. Every line is either
the file's header (above the first entry), an entry's (the comments and blank lines just above
it, its keys and values, comments among them, and indented comments right after it) or the
file's footer (what follows the last entry's own lines): :func:`read_layout` sorts them,
:func:`rewritten` renders an entry anew keeping each comment by the key it sat at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from sitegen.config.approval_model import Approval
from sitegen.config.approvals import parse_approvals
from sitegen.config.yaml_nodes import ConfigError
from sitegen.config.yaml_syntax import compose_yaml

# What YAML reads as a line break (its marks count lines by these, str.splitlines by more).
LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
# A block scalar's header: its indicator, then perhaps a comment.
BLOCK_HEADER = re.compile(r"[|>][0-9+-]*\s+(#.*?)\s*$")
# A document end marker: what follows it is another document, never this one's entries.
DOCUMENT_END = re.compile(r"\.\.\.(\s|$)")
AFTER_LAST_KEY = ""  # the key of the comments that follow an entry's last key


@dataclass
class Block:
    entry: Approval
    leading: list[str]  # comment and blank lines just above the entry
    body: list[str]  # from its '- ' line on: keys, values and comments among them
    keys: list[str] = field(default_factory=list)  # in the order of the file
    # key -> the comment and blank lines just above it, inside the entry
    notes: dict[str, list[str]] = field(default_factory=dict)
    inline: dict[str, str] = field(default_factory=dict)  # key -> comment on its line

    @property
    def lines(self) -> list[str]:
        return [*self.leading, *self.body]


@dataclass
class Layout:
    header: list[str]
    blocks: list[Block]
    footer: list[str]
    newline: str = "\n"  # the file's own line break, which the lines an edit adds end with

    def text(self, blocks: list[list[str]]) -> str:
        return "".join([*self.header, *(line for block in blocks for line in block), *self.footer])


def line_break(text: str) -> str:
    """The line break ``text`` ends its first line with: a file written on Windows (CRLF)
    stays so when an edit adds lines to it. LF for a file without one."""
    match = LINE_BREAK.search(text)
    return match.group() if match and match.group() in ("\r\n", "\r") else "\n"


def split_lines(text: str, newline: str) -> list[str]:
    """The lines of ``text`` as YAML counts them, each with its break (``newline`` added at
    the end)."""
    lines, start = [], 0
    for match in LINE_BREAK.finditer(text):
        lines.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        lines.append(text[start:] + newline)
    return lines


def _last_line(node: yaml.Node) -> int:
    """The last line holding part of ``node`` (its end mark is past it, maybe on the next)."""
    end = node.end_mark
    return end.line if end.column > 0 else max(end.line - 1, node.start_mark.line)


def _is_note(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _inline_comment(lines: list[str], key: yaml.Node, value: yaml.Node) -> str:
    """The comment at the end of a key's line, or after its value; empty when none."""
    if value.start_mark.line > key.start_mark.line:  # "why:  # ..." then the value below
        rest = lines[key.start_mark.line][key.end_mark.column :].lstrip().removeprefix(":")
    elif isinstance(value, yaml.ScalarNode) and value.style in ("|", ">"):
        header = BLOCK_HEADER.match(lines[value.start_mark.line], value.start_mark.column)
        rest = header.group(1) if header else ""
    elif value.end_mark.column > 0:
        rest = lines[value.end_mark.line][value.end_mark.column :]
    else:
        rest = ""
    rest = rest.strip()
    return rest if rest.startswith("#") else ""


def _empty_layout(text: str, root: yaml.Node | None, newline: str) -> Layout:
    """A file of no entries, as a layout whose first entry goes where the document's value
    was and before its end marker: an entry after ``[]``, ``null`` or ``...`` is no YAML."""
    if root is not None and root.end_mark.index > root.start_mark.index:
        text = text[: root.start_mark.index] + text[root.end_mark.index :]
    lines = split_lines(text, newline)
    end = next((i for i, line in enumerate(lines) if DOCUMENT_END.match(line)), len(lines))
    return Layout(lines[:end], [], lines[end:], newline)


def read_layout(text: str, filename: str) -> Layout:
    """The file's lines sorted out; a ConfigError when it does not read as approvals, or is not
    laid out as one ``- channel: ...`` block per entry (the layout the commands write)."""
    entries = parse_approvals(text, filename)
    newline = line_break(text)
    lines = split_lines(text, newline)
    root = compose_yaml(text, filename)
    items = list(root.value) if isinstance(root, yaml.SequenceNode) else []

    def unfit(line: int) -> ConfigError:
        # The line of the entry laid out otherwise: in a long file edited by hand, which one
        # it is would otherwise be the operator's to find.
        return ConfigError(
            f"{filename}:{line + 1}: not laid out as one '- channel: ...' block per entry;"
            " edit it by hand",
            line=line + 1,
        )

    if entries and root is not None and (len(items) != len(entries) or root.flow_style):
        raise unfit(root.start_mark.line)
    blocks: list[Block] = []
    spans: list[tuple[int, int]] = []
    for entry, item in zip(entries, items, strict=True):
        start = item.start_mark.line
        if (
            not isinstance(item, yaml.MappingNode)
            or item.flow_style
            or not lines[start].startswith("- ")
            or (spans and start < spans[-1][1])
        ):
            raise unfit(start)
        block = Block(entry, [], [])
        cursor = start
        for key, value in item.value:
            name = str(key.value)
            block.keys.append(name)
            block.notes[name] = lines[cursor : key.start_mark.line]
            block.inline[name] = _inline_comment(lines, key, value)
            cursor = max(cursor, _last_line(value) + 1)
        end = cursor
        # Indented comments right after the last key are the entry's own.
        while end < len(lines) and lines[end][:1] in (" ", "\t") and _is_note(lines[end]):
            end += 1
        block.notes[AFTER_LAST_KEY] = lines[cursor:end]
        spans.append((start, end))
        blocks.append(block)
    if not blocks:
        return _empty_layout(text, root, newline)
    # Between two entries: the lines above the next one are its own (comments, blank lines).
    for index, block in enumerate(blocks):
        start, end = spans[index]
        block.body = lines[start:end]
        if index:
            gap = lines[spans[index - 1][1] : start]
            for offset, line in enumerate(gap):
                if not _is_note(line):
                    raise unfit(spans[index - 1][1] + offset)
            block.leading = gap
    return Layout(lines[: spans[0][0]], blocks, lines[spans[-1][1] :], newline)


def rewritten(block: Block, new: list[str], newline: str) -> list[str]:
    """``block`` with its keys as ``new`` (rendered lines, one per key, in order, each ending
    with ``newline``) has them, each comment kept by its key: above it or at the end of its
    line. A comment of a key the new entry lacks goes above the next key it has (or after its
    last)."""
    by_key = {line.lstrip("- ").split(":", 1)[0]: line for line in new}
    above: dict[str, list[str]] = {key: [] for key in by_key}
    orphans: list[str] = []
    for key in block.keys:
        notes = block.notes.get(key, [])
        if key in by_key:
            above[key] = [*orphans, *notes]
            orphans = []
        else:
            comment = block.inline.get(key)
            orphans += [*notes, *([f"  {comment}{newline}"] if comment else [])]
    out = list(block.leading)
    for key, line in by_key.items():
        out += above[key]
        comment = block.inline.get(key)
        out.append(f"{line.rstrip()}  {comment}{newline}" if comment else line)
    return [*out, *orphans, *block.notes.get(AFTER_LAST_KEY, [])]
