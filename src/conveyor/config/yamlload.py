"""YAML text -> plain Python data that remembers where every key and value was written.

Owns: the marked loader shared by the native and GitLab parsers. Mappings come back as
`MarkedDict` (a dict), sequences as `MarkedList` (a list); both carry the `Mark` of the node
and of each key / value / item, so a parser can report `FILE:LINE:COL` for anything.
Must not: read files, know any pipeline keyword, or convert types behind the user's back.

YAML 1.1 traps handled here:
  * mapping keys are always strings *as written*: `on:` is the key "on", not `True`;
    `yes:`/`no:`/`off:`/`1:` likewise stay "yes"/"no"/"off"/"1";
  * scalar values keep their YAML 1.1 types (`shell: yes` is `True`), so a parser can say
    "expected a string, got boolean" and name the key.
Anchors, aliases and `<<` merge keys work; `!reference [job, key]` becomes a `Reference`.
Syntax errors raise ConfigError with one Problem at the offending line:col.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from conveyor.errors import ConfigError, Problem
from conveyor.model import Mark

__all__ = [
    "MarkedDict",
    "MarkedList",
    "Reference",
    "find_duplicate_keys",
    "load_yaml",
    "mark_of",
    "type_name",
]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_ZERO = Mark("", 0, 0)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class MarkedDict(dict[str, Any]):
    """A mapping with `mark` (where it starts), `key_marks` and `value_marks` per key, and
    `value_texts`: the text as written of each scalar value (`3.10` stays "3.10")."""

    __slots__ = ("duplicates", "key_marks", "mark", "value_marks", "value_texts")

    def __init__(self, mark: Mark = _ZERO) -> None:
        super().__init__()
        self.mark = mark
        self.key_marks: dict[str, Mark] = {}
        self.value_marks: dict[str, Mark] = {}
        self.value_texts: dict[str, str] = {}
        # keys written twice in this mapping (YAML keeps the last); merge keys excluded
        self.duplicates: list[tuple[str, Mark]] = []

    def key_mark(self, key: str) -> Mark:
        return self.key_marks.get(key, self.mark)

    def value_mark(self, key: str) -> Mark:
        return self.value_marks.get(key, self.key_mark(key))


class MarkedList(list[Any]):
    """A sequence with `mark` (where it starts), `item_marks` (one per item) and
    `item_texts` (the text as written of each scalar item, by index)."""

    __slots__ = ("item_marks", "item_texts", "mark")

    def __init__(self, mark: Mark = _ZERO) -> None:
        super().__init__()
        self.mark = mark
        self.item_marks: list[Mark] = []
        self.item_texts: dict[int, str] = {}

    def item_mark(self, index: int) -> Mark:
        if 0 <= index < len(self.item_marks):
            return self.item_marks[index]
        return self.mark


@dataclass(frozen=True, slots=True)
class Reference:
    """A GitLab `!reference [job, key, ...]` tag, left for the GitLab parser to resolve."""

    path: tuple[str, ...]
    mark: Mark


def mark_of(value: object, default: Mark) -> Mark:
    """The mark a loaded value carries, or `default` for scalars."""
    if isinstance(value, MarkedDict | MarkedList | Reference):
        return value.mark
    return default


def find_duplicate_keys(data: object) -> list[tuple[str, Mark]]:
    """Every key written twice in one mapping, anywhere in `data` (each mapping once)."""
    found: list[tuple[str, Mark]] = []
    seen: set[int] = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if not isinstance(item, MarkedDict | MarkedList) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, MarkedDict):
            found.extend(item.duplicates)
            stack.extend(item.values())
        else:
            stack.extend(item)
    return sorted(found, key=lambda pair: pair[1])


def type_name(value: object) -> str:
    """A user-facing name of a loaded value's YAML type ("boolean", "mapping", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Reference):
        return "!reference"
    return type(value).__name__


class _MarkedLoader(_BaseLoader):  # type: ignore[valid-type,misc]  # CSafeLoader is untyped
    file_name: str = ""

    def mark(self, node: yaml.Node) -> Mark:
        start = node.start_mark
        return Mark(self.file_name, start.line + 1, start.column + 1)

    def construct_key(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.ScalarNode):
            # The text as written: YAML 1.1 would turn `on:` into True.
            return str(node.value)
        raise yaml.constructor.ConstructorError(
            None, None, "a mapping key must be a plain string", node.start_mark
        )


def _construct_map(loader: _MarkedLoader, node: yaml.MappingNode) -> Iterator[MarkedDict]:
    data = MarkedDict(loader.mark(node))
    yield data
    written: set[str] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
            if key_node.value in written:
                data.duplicates.append((str(key_node.value), loader.mark(key_node)))
            written.add(key_node.value)
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_key(key_node)
        data[key] = loader.construct_object(value_node, deep=False)
        data.key_marks[key] = loader.mark(key_node)
        data.value_marks[key] = loader.mark(value_node)
        if isinstance(value_node, yaml.ScalarNode):
            data.value_texts[key] = str(value_node.value)


def _construct_seq(loader: _MarkedLoader, node: yaml.SequenceNode) -> Iterator[MarkedList]:
    data = MarkedList(loader.mark(node))
    yield data
    for item_node in node.value:
        data.append(loader.construct_object(item_node, deep=False))
        data.item_marks.append(loader.mark(item_node))
        if isinstance(item_node, yaml.ScalarNode):
            data.item_texts[len(data) - 1] = str(item_node.value)


def _construct_reference(loader: _MarkedLoader, node: yaml.Node) -> Reference:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise yaml.constructor.ConstructorError(
            None, None, "!reference expects a list such as [.job, script]", node.start_mark
        )
    parts: list[str] = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "!reference items must be plain names", item.start_mark
            )
        parts.append(str(item.value))
    return Reference(tuple(parts), loader.mark(node))


_MarkedLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_MarkedLoader.add_constructor("tag:yaml.org,2002:omap", _construct_map)
_MarkedLoader.add_constructor("!reference", _construct_reference)


def _problem_from(exc: yaml.YAMLError, text: str, file: str) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line = before.count("\n") + 1
        col = exc.position - (before.rfind("\n") + 1) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        reason = f"unacceptable character #x{char:04x}: {exc.reason}"
        return Problem(file, line, col, f"YAML syntax error: {reason} (remove it)")
    where = exc.problem_mark or exc.context_mark if isinstance(exc, yaml.MarkedYAMLError) else None
    if isinstance(exc, yaml.MarkedYAMLError) and where is not None:
        what = ", ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        message = f"YAML syntax error: {what} (fix the YAML)"
        return Problem(file, where.line + 1, where.column + 1, message)
    return Problem(file, 0, 0, f"YAML error: {exc} (fix the YAML)")


# GitLab's default limits for one CI file (max_yaml_size_bytes 2 MB, max_yaml_depth 150),
# and the values a document may hold once its aliases are expanded: the later passes copy
# them, so a "billion laughs" file (aliases of aliases, 9**9 strings from 1 KiB) stops here.
MAX_YAML_CHARS = 2 * 1024 * 1024
MAX_YAML_DEPTH = 150
MAX_EXPANDED_VALUES = 200_000


def _expanded_size(data: object, sizes: dict[int, int], depth: int = 1) -> int:
    """How many values `data` holds with every alias expanded; each shared node is counted
    once in `sizes` (by id), so this costs the size of the document as written. Past
    MAX_YAML_DEPTH levels the answer is -1."""
    if not isinstance(data, dict | list):
        return 1
    if depth > MAX_YAML_DEPTH:
        return -1
    known = sizes.get(id(data))
    if known is None:
        known = 1
        for item in data.values() if isinstance(data, dict) else data:
            size = _expanded_size(item, sizes, depth + 1)
            if size < 0:
                return -1
            known += size
        sizes[id(data)] = known
    return known


def _refuse(file: str, what: str) -> ConfigError:
    return ConfigError([Problem(file, 1, 1, f"{what}; refused (split or simplify the file)")])


def load_yaml(text: str, file: str) -> Any:
    """Load one YAML document; marks name `file`. Raises ConfigError on any YAML error, and
    on a document past the limits above (checked before it is expanded or walked)."""
    if len(text) > MAX_YAML_CHARS:
        raise _refuse(file, f"the file is larger than {MAX_YAML_CHARS // (1024 * 1024)} MiB")
    loader = _MarkedLoader(text)
    loader.file_name = file
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError([_problem_from(exc, text, file)]) from None
    finally:
        loader.dispose()
    size = _expanded_size(data, {})
    if size < 0:
        raise _refuse(file, f"the document nests deeper than {MAX_YAML_DEPTH} levels")
    if size > MAX_EXPANDED_VALUES:
        raise _refuse(
            file,
            f"the document holds more than {MAX_EXPANDED_VALUES} values once its aliases "
            "are expanded (an alias bomb?)",
        )
    return data
