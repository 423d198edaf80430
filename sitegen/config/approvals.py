"""Approval-gated channels: their settings and the approvals file beside channels.yaml.

```yaml
# channels.yaml
channels:
  internal/approved:
    approval:
      from: cloud/conda-forge   # the candidates: what that channel of this site publishes
      file: approvals.yaml      # optional; this is the default, beside channels.yaml
```

```yaml
# approvals.yaml: one entry per approval, sorted by channel and spec
- channel: internal/approved
  spec: numpy >=2.1
  by: alice
  when: "2026-12-05T18:00:00Z"
  why: needed by the forecasting team
  expires: "2027-06-30"        # optional: valid through that day (UTC)
  with_dependencies: true      # optional: also what numpy needs, as include_dependencies finds it
```

The file is plain YAML so that approvals can be reviewed in pull requests; ``sitegen approve``
and ``revoke`` edit it line by line, keeping every other line (and comment) as it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import yaml

from sitegen.conda.version import InvalidSpecError, parse_matchspec, untested_keys
from sitegen.config.approval_model import Approval, ApprovalGate, parse_expiry
from sitegen.config.model import ChannelConfig
from sitegen.config.operator_files import MAX_FILE_BYTES, OperatorFileError, read_text_capped
from sitegen.config.yaml_nodes import (
    ConfigError,
    ParseState,
    Reported,
    YamlNode,
    shown_reason,
    shown_value,
)
from sitegen.config.yaml_syntax import compose_yaml

APPROVALS_FILE = "approvals.yaml"
NULL_TAG = "tag:yaml.org,2002:null"  # what YAML reads an empty document as
ENTRY_KEYS = ("channel", "spec", "by", "when", "why", "expires", "with_dependencies")


def read_approvals(path: Path) -> tuple[Approval, ...]:
    """Every entry of an approvals file; an absent file holds none."""
    try:
        text = read_text_capped(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        return ()
    except OperatorFileError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_approvals(text, str(path))


def parse_approvals(text: str, filename: str) -> tuple[Approval, ...]:
    root = compose_yaml(text, filename)
    # An empty document ('---' alone, as revoking the last entry of a file that opens with
    # one leaves it) holds no entries, as an empty file does.
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == NULL_TAG):
        return ()
    state = ParseState(filename)
    top = YamlNode(root, "", state)
    entries: list[Approval] = []
    try:
        for item in top.items():
            entry = state.attempt(lambda item=item: _entry(item))
            if entry is not None:
                entries.append(entry)
    except Reported:
        pass
    except ConfigError as exc:
        state.add(exc)
    if state.errors:
        raise state.failure()
    return tuple(entries)


def spec_problem(spec: str) -> str | None:
    """Why ``spec`` cannot approve anything (in the approvals file or on ``sitegen approve``),
    or None."""
    try:
        parsed = parse_matchspec(spec)
    except InvalidSpecError as exc:
        return f"invalid MatchSpec {shown_value(spec)}: {shown_reason(str(exc))}"
    if parsed.channel is not None or parsed.subdir is not None:
        return f"MatchSpec {shown_value(spec)}: channel:: and [subdir=...] are not used"
    if (untested := untested_keys(parsed)) is not None:
        return f"MatchSpec {shown_value(spec)}: {untested}"
    return None


def _entry(node: YamlNode) -> Approval:
    state = node.state
    start = len(state.errors)
    keys = node.mapping(ENTRY_KEYS)
    for required in ("channel", "spec", "by", "when", "why"):
        if required not in keys:
            state.add(node.error(f"missing required key {required!r}"))
    state.settle(start)
    for audit in ("by", "why"):
        # Who approved and why are the approval's record (the approvals page, the history):
        # `sitegen approve` refuses them blank, and so does the file.
        if not keys[audit].string().strip():
            raise keys[audit].error(f"{audit!r} is blank: an approval says who approved it and why")
    spec = keys["spec"].string()
    if (why := spec_problem(spec)) is not None:
        raise keys["spec"].error(why)
    when = keys["when"].string()
    try:
        dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        raise keys["when"].error(f"expected an ISO 8601 time, got {shown_value(when)}") from None
    expires = keys["expires"].string() if "expires" in keys else None
    if expires is not None:
        try:
            parse_expiry(expires)
        except ValueError:
            raise keys["expires"].error(
                f"expected a date (2027-06-30) or an ISO 8601 time, got {shown_value(expires)}"
            ) from None
    with_dependencies = (
        keys["with_dependencies"].boolean() if "with_dependencies" in keys else False
    )
    return Approval(
        channel=keys["channel"].string().strip("/"),
        spec=spec,
        by=keys["by"].string(),
        when=when,
        why=keys["why"].string(),
        expires=expires,
        with_dependencies=with_dependencies,
        line=node.line,
    )


# --------------------------------------------------------------------------- in channels.yaml


def parse_gate(node: YamlNode, channel: str) -> ApprovalGate:
    keys = node.mapping(("from", "file"))
    if "from" not in keys:
        raise node.error("missing required key 'from' (the channel whose packages need approval)")
    source = keys["from"].string().strip("/")
    file_node = keys.get("file")
    path = file_node.file_path() if file_node else Path(APPROVALS_FILE)
    if file_node is None and node.state.base_dir is not None:
        path = node.state.base_dir / APPROVALS_FILE
    try:
        entries = read_approvals(path)
    except ConfigError as exc:
        raise (file_node or node).error(f"bad approvals file: {exc}") from None
    mine = tuple(e for e in entries if e.channel == channel)
    return ApprovalGate(source=source, file=str(path), entries=mine)


def check_gates(
    channels: list[tuple[ChannelConfig, YamlNode]],
) -> list[tuple[ChannelConfig, YamlNode]]:
    """Each gated channel's source must be another, ungated channel; the gated channel gets its
    source's subdirs."""
    by_path = {channel.path: channel for channel, _ in channels}
    out = []
    for channel, node in channels:
        gate = channel.approval
        if gate is not None:
            source = by_path.get(gate.source)
            if source is None or source.approval is not None or source.path == channel.path:
                node.state.add(
                    node.error(
                        f"approval.from: {gate.source!r} is not another channel of this site"
                        " (nor approval-gated itself)"
                    )
                )
                continue
            mirror = channel.mirrors[0]
            channel = replace(channel, mirrors=(replace(mirror, subdirs=source.subdirs),))
        out.append((channel, node))
    if channels:
        check_approved_channels([channel for channel, _ in channels], channels[0][1].state)
    return out


def check_approved_channels(channels: list[ChannelConfig], state: ParseState) -> None:
    """An entry of an approvals file must name a gated channel that reads that file: anything
    else is a typo that would approve nothing, silently."""
    files = {c.approval.file for c in channels if c.approval is not None}
    for file in sorted(files):
        readers = {c.path for c in channels if c.approval is not None and c.approval.file == file}
        try:
            entries = read_approvals(Path(file))
        except ConfigError:
            continue  # reported with the channel that reads it
        for entry in entries:
            if entry.channel not in readers:
                state.add(
                    ConfigError(
                        f"{file}:{entry.line}: channel: {entry.channel!r} is not an"
                        f" approval-gated channel reading this file ({', '.join(sorted(readers))})",
                        line=entry.line,
                    )
                )
