"""A configuration text composed into YAML nodes, and what a text that is not YAML is told:
the file, the line, and (where the line's value alone is what YAML cannot read) its key path.

The key path is found by reading the text again with that one value blanked: when that reads,
the value was the problem, and the node at that line names its key. The commonest such value
starts with a character YAML reserves (a cron ``*/10 * * * *``, a glob ``*-nightly``,
``@daily``), which the message tells to quote.
"""

from __future__ import annotations

import re

import yaml

from sitegen.config.yaml_nodes import ConfigError, child_path

# Values a document may stand for once its aliases are read out: far above what any
# configuration spells (or shares through anchors), far below what a few kilobytes of aliases
# can multiply into ("billion laughs"), each of which the parse would otherwise walk.
MAX_EXPANDED_NODES = 1_000_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int], filename: str) -> int:
    """How many nodes ``node`` stands for once its aliases are read out (an alias composes to
    the very node of its anchor, so ``sizes`` counts each node once); a ConfigError naming the
    innermost node past MAX_EXPANDED_NODES. An alias inside its own anchor counts once: no
    key takes a value nested without bound, so the walk stops at it."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # while its children are counted: an alias back to it adds one
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes, filename) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, sizes, filename) + _expanded_size(value, sizes, filename)
    if size > MAX_EXPANDED_NODES:
        raise ConfigError(
            f"{filename}:{node.start_mark.line + 1}: not valid YAML: its aliases expand it to"
            f" more than {MAX_EXPANDED_NODES:,} values"
        )
    sizes[id(node)] = size
    return size


def compose_yaml(text: str, filename: str) -> yaml.Node | None:
    """The node tree of a YAML text (None when it holds nothing); a text that is not YAML is a
    ConfigError naming the file and the line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            _expanded_size(root, {}, filename)
        return root
    except RecursionError:
        raise ConfigError(f"{filename}: not valid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        raise _not_yaml(text, filename, exc) from None


def _not_yaml(text: str, filename: str, exc: yaml.YAMLError) -> ConfigError:
    """The ConfigError of a text YAML cannot read: its line, the key of a value to blame."""
    mark = getattr(exc, "problem_mark", None)
    position = getattr(exc, "position", None)  # a character YAML does not allow
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.reader.ReaderError):
        # Its text goes on to a second line of where it was read from ('<unicode string>'):
        # the file and the line are what this message names.
        problem = str(exc).split("\n", 1)[0]
    if mark is not None:
        line = _line_of_the_file(text, mark.line + 1)
    elif isinstance(position, int):
        line = _line_of_the_file(text, text.count(chr(10), 0, position) + 1)
    else:
        return ConfigError(f"{filename}:?: not valid YAML: {problem}")
    # Something left open (a bracket, a quote) is noticed only at the end of the file:
    # where it was opened is what to look at.
    context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and opened is not None and opened.line + 1 != line:
        problem += f" ({context} started on line {opened.line + 1})"
    where, hint = _blamed_value(text, line)
    return ConfigError(f"{filename}:{line}: {where}not valid YAML: {problem}{hint}", line=line)


def _line_of_the_file(text: str, line: int) -> int:
    """``line`` as a line the text has: PyYAML marks the end of a text that ends with a line
    end on the line after it, which no editor shows."""
    lines = text.count("\n") + (not text.endswith("\n"))
    return max(1, min(line, lines))


# YAML's line breaks, as its marks count lines (kept, so the text is put back as it was).
_BREAK = re.compile("(\r\n|[\r\n\x85\u2028\u2029])")
# A line holding a key and its value ("  schedule: @daily", "- name: x"): the key as block
# style writes it (plain, not starting with an indicator, or quoted), then ": " and the value.
_KEYED = re.compile(
    r"(?P<lead>[ \t]*(?:-[ \t]+)*(?:[^\s#'\"\[\]{},&*!|>%@`?:-][^#]*?|\"[^\"]*\"|'[^']*')"
    r"[ \t]*:)[ \t]+(?P<value>\S.*)$"
)
# A line holding a list item's value alone ("    - *-nightly").
_ITEM = re.compile(r"(?P<lead>[ \t]*(?:-[ \t]+)+)(?P<value>\S.*)$")
# A plain value (or one in a flow list or mapping) that starts with a character YAML reserves:
# '*' opens an alias, '@' and '`' are reserved for later versions of YAML.
_RESERVED_START = re.compile(r"(?:^|[\[{,]|:\s)\s*([*@`])")


def _blamed_value(text: str, line: int) -> tuple[str, str]:
    """(``"<key path>: "``, a hint) when the value written on ``line`` is what YAML cannot read:
    the text reads with that value blanked. ("", "") when that is not so, or not known."""
    parts = _BREAK.split(text)
    index = 2 * (line - 1)
    if index >= len(parts):
        return "", ""
    found = _KEYED.match(parts[index]) or _ITEM.match(parts[index])
    if found is None:
        return "", ""
    parts[index] = f"{found['lead']} ''" if found.re is _KEYED else f"{found['lead']}''"
    try:
        root = yaml.compose("".join(parts), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return "", ""
    path = _path_at(root, line - 1, "", set()) if root is not None else None
    if path is None:
        return "", ""
    reserved = _RESERVED_START.search(found["value"])
    hint = (
        f"; a value that starts with {reserved[1]!r} is read as YAML syntax: put it in quotes"
        if reserved
        else ""
    )
    return f"{path}: ", hint


def _path_at(node: yaml.Node, line: int, path: str, seen: set[int]) -> str | None:
    """The key path of the innermost key or list item below ``node`` written on ``line``
    (0-based). ``seen``: nodes walked already (an alias composes to its anchor's very node)."""
    if id(node) in seen:
        return None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        children = [
            (child_path(path, key.value), key, value)
            for key, value in node.value
            if isinstance(key, yaml.ScalarNode)
        ]
    elif isinstance(node, yaml.SequenceNode):
        children = [(child_path(path, i), item, item) for i, item in enumerate(node.value)]
    else:
        return None
    for child, start, value in children:
        if start.start_mark.line > line:
            break
        deeper = None
        if value.start_mark.line <= line <= value.end_mark.line:
            deeper = _path_at(value, line, child, seen)
        if deeper is not None:
            return deeper
        if start.start_mark.line == line:
            return child
    return None
