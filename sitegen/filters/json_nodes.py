"""JSON files an operator names (advisories, identity mappings), read with the path of every
value, so that a bad file is an error naming the file and the JSON path (or the line, for a
syntax error) of the problem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sitegen.config.operator_files import OperatorFileError, read_capped
from sitegen.config.yaml_nodes import shown_key, shown_value


class JsonFileError(ValueError):
    """A file that is not what it should be: ``where`` is a JSON path or ``line N``."""

    def __init__(self, file: Path, where: str, message: str) -> None:
        super().__init__(f"{file}: {where}: {message}" if where else f"{file}: {message}")
        self.file = file
        self.where = where
        self.message = message


def read_json_bytes(file: Path, limit: int) -> bytes:
    """The bytes of an operator's JSON file (:func:`read_capped`), a read error (a missing file
    too) as a :class:`JsonFileError` naming it."""
    try:
        return read_capped(file, limit)
    except FileNotFoundError as exc:
        raise JsonFileError(file, "", f"cannot read: {exc.strerror}") from None
    except OperatorFileError as exc:
        raise JsonFileError(file, "", str(exc)) from None


def load_json(data: bytes, file: Path) -> Any:
    """The JSON document of a file's bytes, strictly: UTF-8 text all the way through, no NaN."""
    try:
        document = json.loads(
            data.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_object
        )
    except UnicodeDecodeError:
        raise JsonFileError(file, "", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise JsonFileError(file, f"line {exc.lineno}", f"not valid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise JsonFileError(file, "", f"not valid JSON: {exc}") from None
    except RecursionError:
        # A few hundred kilobytes of brackets exhaust the decoder's stack: a bad file, which
        # must stop the configuration with its name, not crash the run with a traceback.
        raise JsonFileError(file, "", "not valid JSON: nested too deeply") from None
    try:
        # A lone surrogate escape ("\\ud800") reads as a str that cannot be written as UTF-8:
        # in an id or summary it would end the run (the run record, the pages) mid-way.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise JsonFileError(file, "", "not UTF-8 text (a lone surrogate escape)") from None
    return document


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


class _Duplicated(dict[str, Any]):
    """An object that named a key twice: JSON keeps the last value, so what the first said
    (an advisory's affected versions, a package's mapping) would be dropped unseen. Told as
    an error, with its path, when the object is read (:meth:`JsonNode.object`)."""

    def __init__(self, pairs: list[tuple[str, Any]], duplicate: str) -> None:
        super().__init__(pairs)
        self.duplicate = duplicate


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields = dict(pairs)
    if len(fields) == len(pairs):
        return fields
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _Duplicated(pairs, key)
        seen.add(key)
    raise AssertionError("fewer fields than pairs, yet no key twice")


class JsonNode:
    """A JSON value with its path, for errors that say where the problem is."""

    def __init__(self, value: Any, path: str, file: Path) -> None:
        self.value = value
        self.path = path
        self.file = file

    def error(self, message: str) -> JsonFileError:
        return JsonFileError(self.file, self.path or "(top level)", message)

    def child(self, value: Any, key: str) -> JsonNode:
        key = shown_key(key)  # the path names it in every error under it
        return JsonNode(value, f"{self.path}.{key}" if self.path else key, self.file)

    def get(self, key: str) -> JsonNode | None:
        fields = self.object()
        if key not in fields or fields[key] is None:
            return None
        return self.child(fields[key], key)

    def require(self, key: str) -> JsonNode:
        node = self.get(key)
        if node is None:
            raise self.error(f"missing required key {key!r}")
        return node

    def object(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self.error("expected an object")
        if isinstance(self.value, _Duplicated):
            raise self.error(f"duplicate key {shown_value(self.value.duplicate)}")
        return self.value

    def entries(self) -> Iterator[tuple[str, JsonNode]]:
        """The keys and values of an object."""
        for key, value in self.object().items():
            yield key, self.child(value, key)

    def items(self) -> Iterator[JsonNode]:
        if not isinstance(self.value, list):
            raise self.error("expected a list")
        for i, item in enumerate(self.value):
            yield JsonNode(item, f"{self.path}[{i}]", self.file)

    def string(self) -> str:
        if not isinstance(self.value, str) or not self.value:
            raise self.error("expected a non-empty string")
        return self.value

    def strings(self) -> tuple[str, ...]:
        return tuple(item.string() for item in self.items())
