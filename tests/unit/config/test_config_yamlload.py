"""The marked YAML loader: marks, YAML 1.1 keys, anchors, merge keys, !reference, errors."""

from __future__ import annotations

import datetime

import pytest

from conveyor.config.yamlload import (
    MarkedDict,
    MarkedList,
    Reference,
    find_duplicate_keys,
    load_yaml,
    mark_of,
    type_name,
)
from conveyor.errors import ConfigError
from conveyor.model import Mark


def test_load_yaml_marks_keys_and_values() -> None:
    data = load_yaml("a: 1\nb:\n  - x\n  - y\n", "f.yml")
    assert isinstance(data, MarkedDict)
    assert Mark("f.yml", 1, 1) == data.key_marks["a"]
    assert Mark("f.yml", 1, 4) == data.value_marks["a"]
    assert isinstance(data["b"], MarkedList)
    assert [Mark("f.yml", 3, 5), Mark("f.yml", 4, 5)] == data["b"].item_marks


def test_load_yaml_keeps_yaml11_bool_keys_as_written() -> None:
    data = load_yaml("on: [push]\nyes: 1\nOff: 2\n", "f")
    assert list(data) == ["on", "yes", "Off"]


def test_load_yaml_keeps_yaml11_types_of_values() -> None:
    data = load_yaml("a: yes\nb: off\nc: 3\nd: 2024-01-02\ne: ~\n", "f")
    assert {"a": True, "b": False, "c": 3, "d": datetime.date(2024, 1, 2), "e": None} == data


def test_load_yaml_merge_keys_and_aliases() -> None:
    data = load_yaml("base: &b {x: 1, y: 2}\njob:\n  <<: *b\n  y: 3\nother: *b\n", "f")
    assert data["job"] == {"x": 1, "y": 3}
    assert data["other"] is data["base"]


def test_load_yaml_reference_tag() -> None:
    data = load_yaml("job:\n  script: !reference [.setup, script]\n", "f")
    assert Reference((".setup", "script"), Mark("f", 2, 11)) == data["job"]["script"]


def test_load_yaml_reference_needs_a_list() -> None:
    with pytest.raises(ConfigError, match="!reference expects a list"):
        load_yaml("a: !reference x\n", "f")


def test_load_yaml_syntax_error_has_position() -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml("a: 1\nb: c: d\n", "f.yml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("f.yml", 2)
    assert "YAML syntax error" in problem.message


def test_load_yaml_unknown_tag_is_config_error() -> None:
    with pytest.raises(ConfigError, match=r"f:1:4: .*'!nope'"):
        load_yaml("a: !nope 1\n", "f")


def test_load_yaml_complex_key_is_config_error() -> None:
    with pytest.raises(ConfigError, match="mapping key must be a plain string"):
        load_yaml("? [a, b]\n: 1\n", "f")


def test_load_yaml_empty_document_is_none() -> None:
    assert load_yaml("", "f") is None


def test_load_yaml_several_documents_rejected() -> None:
    with pytest.raises(ConfigError, match="single document"):
        load_yaml("a: 1\n---\nb: 2\n", "f")


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (1, "integer"),
        (1.5, "number"),
        ("s", "string"),
        ({}, "mapping"),
        ([], "list"),
        (Reference(("a",), Mark("f", 1, 1)), "!reference"),
        (datetime.date(2024, 1, 1), "date"),
    ],
)
def test_type_name_names_yaml_types(value: object, name: str) -> None:
    assert name == type_name(value)


def test_load_yaml_keeps_scalar_text_as_written() -> None:
    data = load_yaml("py: 3.10\nlist: [3.10, x, {a: 1}]\n", "f")
    assert data["py"] == 3.1
    assert data.value_texts["py"] == "3.10"
    assert data["list"].item_texts == {0: "3.10", 1: "x"}


def test_load_yaml_control_character_has_position() -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml("a: 1\nb: x\x07\n", "f")
    assert str(caught.value) == (
        "f:2:5: YAML syntax error: unacceptable character #x0007: "
        "control characters are not allowed (remove it)"
    )


def test_load_yaml_reference_items_must_be_names() -> None:
    with pytest.raises(ConfigError, match="!reference items must be plain names"):
        load_yaml("a: !reference [.x, [y]]\n", "f")


def test_marks_fall_back_to_the_container() -> None:
    data = load_yaml("a: {b: [1]}\n", "f")
    inner = data["a"]
    assert inner.key_mark("missing") == inner.mark
    assert inner.value_mark("missing") == inner.mark
    assert inner["b"].item_mark(5) == inner["b"].mark


def test_mark_of_values() -> None:
    data = load_yaml("a: {b: 1}\nr: !reference [x]\n", "f")
    default = Mark("f", 9, 9)
    assert mark_of(data["a"], default) == Mark("f", 1, 4)
    assert mark_of(data["r"], default) == Mark("f", 2, 4)
    assert mark_of(1, default) == default


def test_find_duplicate_keys_ignores_merge_overrides() -> None:
    data = load_yaml(
        "base: &b {x: 1}\njobs:\n  a: {<<: *b, x: 2}\n  a: {y: 1}\nenv: {K: 1, K: 2}\n", "f"
    )
    assert find_duplicate_keys(data) == [("a", Mark("f", 4, 3)), ("K", Mark("f", 5, 13))]
