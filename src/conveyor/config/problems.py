"""Collecting every problem of a pipeline file, and reading typed fields from marked YAML.

Owns: the `Problems` collector (all findings, then one ConfigError sorted by position)
and `Section`, a reader that turns a wrong type into a problem
naming the key ("jobs.test.shell: expected a string, got boolean") instead of converting it.
Must not: know any pipeline keyword or read files.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from conveyor.config.yamlload import MarkedDict, MarkedList, type_name
from conveyor.errors import ConfigError, Problem
from conveyor.model import Mark
from conveyor.suggest import did_you_mean

__all__ = ["Problems", "Section", "render_warning"]


class Problems:
    """Every problem found in one file; `raise_if_any` raises them all as one ConfigError."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Problem] = []

    def add(self, where: Mark | None, message: str) -> None:
        if where is None or where.line <= 0:
            self.items.append(Problem(self.file, 0, 0, message))
        else:
            self.items.append(Problem(self.file, where.line, where.col, message))

    def __len__(self) -> int:
        return len(self.items)

    def error(self) -> ConfigError:
        return ConfigError(sorted(set(self.items)))

    def raise_if_any(self) -> None:
        if self.items:
            raise self.error()


class Section:
    """A mapping read with its dotted path (`label`), reporting problems as it goes.

    Every getter returns None (and records a problem) when the value has the wrong type,
    so parsing continues and all problems are reported together.
    """

    def __init__(self, data: MarkedDict, label: str, problems: Problems) -> None:
        self.data = data
        self.label = label
        self.problems = problems

    @property
    def mark(self) -> Mark:
        return self.data.mark

    def path(self, key: str) -> str:
        return f"{self.label}.{key}" if self.label else key

    def has(self, key: str) -> bool:
        return key in self.data

    def key_mark(self, key: str) -> Mark:
        return self.data.key_mark(key)

    def value_mark(self, key: str) -> Mark:
        return self.data.value_mark(key)

    def report(self, key: str, message: str) -> None:
        self.problems.add(self.value_mark(key), f"{self.path(key)}: {message}")

    def wrong_type(self, key: str, expected: str) -> None:
        value = self.data[key]
        hint = ""
        if isinstance(value, bool) and "string" in expected:
            hint = f" (YAML reads {self.data.value_texts.get(key, value)} as a boolean: quote it)"
        self.report(key, f"expected {expected}, got {type_name(value)}{hint}")

    def check_keys(self, allowed: Collection[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.problems.add(
                    self.key_mark(key),
                    f'{self.label or "top level"}: unknown key "{key}"{did_you_mean(key, allowed)}',
                )

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def text(self, key: str) -> str | None:
        """A string; numbers are accepted as written (`3.10` -> "3.10"), booleans are not."""
        if key not in self.data:
            return None
        value = self.data[key]
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self.data.value_texts.get(key, str(value))
        self.wrong_type(key, "a string")
        return None

    def boolean(self, key: str) -> bool | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if isinstance(value, bool):
            return value
        self.wrong_type(key, "true or false")
        return None

    def integer(self, key: str, *, minimum: int = 0, maximum: int | None = None) -> int | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, int) or isinstance(value, bool):
            self.wrong_type(key, "an integer")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            if maximum is None:
                self.report(key, f"must be {minimum} or more, got {value}")
            else:
                self.report(key, f"must be between {minimum} and {maximum}, got {value}")
            return None
        return value

    def section(self, key: str) -> Section | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if isinstance(value, MarkedDict):
            return Section(value, self.path(key), self.problems)
        self.wrong_type(key, "a mapping")
        return None

    def text_list(self, key: str, *, allow_single: bool = True) -> list[tuple[str, Mark]] | None:
        """A list of strings (or one string when `allow_single`), each with its mark."""
        if key not in self.data:
            return None
        value = self.data[key]
        if isinstance(value, str) and allow_single:
            return [(value, self.value_mark(key))]
        if not isinstance(value, MarkedList):
            self.wrong_type(key, "a list of strings" + (" or a string" if allow_single else ""))
            return None
        items: list[tuple[str, Mark]] = []
        for index, item in enumerate(value):
            mark = value.item_mark(index)
            if isinstance(item, str):
                items.append((item, mark))
            elif isinstance(item, int | float) and not isinstance(item, bool):
                items.append((value.item_texts.get(index, str(item)), mark))
            else:
                self.problems.add(
                    mark,
                    f"{self.path(key)}[{index}]: expected a string, got {type_name(item)}",
                )
        return items

    def text_mapping(self, key: str) -> dict[str, str] | None:
        """A mapping of names to strings (numbers accepted as written; booleans are not)."""
        inner = self.section(key)
        if inner is None:
            return None
        result: dict[str, str] = {}
        for name in inner.data:
            value = inner.text(name)
            if value is not None:
                result[name] = value
        return result


def render_warning(rendered: str) -> str:
    """A pipeline warning as shown to a user: `FILE:LINE:COL: message` ->
    `FILE:LINE:COL: warning: message` (`warning: message` when it has no place)."""
    import re

    match = re.match(r"^(.*?:\d+:\d+): (.*)$", rendered, re.DOTALL)
    where, message = match.groups() if match else rendered.partition(": ")[::2]
    if message.startswith("warning: "):
        message = message.removeprefix("warning: ")
    return f"{where}: warning: {message}" if where else f"warning: {rendered}"
