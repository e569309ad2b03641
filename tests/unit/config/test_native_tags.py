"""Native `tags:` (job and `defaults:`): a list of non-empty strings, FILE:LINE:COL errors."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.config.native import parse_native
from conveyor.errors import ConfigError
from conveyor.model import Pipeline


def parse(text: str) -> Pipeline:
    return parse_native(textwrap.dedent(text), "p.yml")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return [str(problem) for problem in caught.value.problems]


def test_native_tags_are_kept_in_order_without_duplicates() -> None:
    pipeline = parse("jobs:\n  a: {run: x, tags: [linux, docker, linux]}\n")
    assert pipeline.job("a").tags == ("linux", "docker")


def test_native_default_tags_apply_unless_the_job_sets_its_own() -> None:
    pipeline = parse(
        """
        defaults: {tags: [linux]}
        jobs:
          a: {run: x}
          b: {run: x, tags: [gpu]}
          c: {run: x, tags: []}
        """
    )
    assert [pipeline.job(name).tags for name in "abc"] == [("linux",), ("gpu",), ()]


def test_native_tags_reach_every_matrix_job() -> None:
    pipeline = parse(
        "jobs:\n  t:\n    run: x\n    tags: [linux]\n    matrix: {PY: ['3.11', '3.12']}\n"
    )
    assert {job.tags for job in pipeline.jobs} == {("linux",)}


def test_native_job_without_tags_has_none() -> None:
    assert parse("jobs:\n  a: {run: x}\n").job("a").tags == ()


def test_native_tags_must_be_a_list() -> None:
    assert problems("jobs:\n  a: {run: x, tags: linux}\n") == [
        "p.yml:2:21: jobs.a.tags: expected a list of strings, got string"
    ]


def test_native_tags_items_must_be_non_empty_strings() -> None:
    assert problems("jobs:\n  a: {run: x, tags: [linux, '', {b: c}]}\n") == [
        "p.yml:2:29: jobs.a.tags[1]: empty tag (name a tag or remove the item)",
        "p.yml:2:33: jobs.a.tags[2]: expected a string, got mapping",
    ]


def test_native_tags_over_the_limit_are_refused() -> None:
    tags = ", ".join(f"t{n}" for n in range(50))
    assert problems(f"jobs:\n  a: {{run: x, tags: [{tags}]}}\n") == [
        "p.yml:2:21: jobs.a.tags: has 50 tags, more than 49 (GitLab's limit)"
    ]


def test_native_unknown_key_near_tags_suggests_it() -> None:
    assert problems("jobs:\n  a: {run: x, tag: [linux]}\n") == [
        'p.yml:2:15: jobs.a: unknown key "tag" (did you mean "tags"?)'
    ]
