"""include:rules — decided for the event being planned (pure: in-memory files, no git)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import pytest

from conveyor.config.gitlab import parse_gitlab
from conveyor.config.gitlab.include_rules import ChangesSince, include_conditions
from conveyor.config.gitlab.includes import match_include
from conveyor.errors import ConfigError
from conveyor.model import Event, EventKind

FILES = {"a.yml": "a:\n  script: echo a\n", "b.yml": "b:\n  script: echo b\n"}
MAIN_PUSH = Event(EventKind.PUSH, ref="main", sha="1" * 40)


def jobs_of(
    text: str,
    event: Event | None,
    *,
    listed: Sequence[str] = (),
    changes_since: ChangesSince | None = None,
) -> list[str]:
    def read(pattern: str) -> list[tuple[str, str]]:
        return [(path, FILES[path]) for path in match_include(pattern, FILES)]

    conditions = None
    if event is not None:
        conditions = include_conditions(
            event, list_files=lambda: list(listed), changes_since=changes_since
        )
    text = textwrap.dedent(text) + "main:\n  script: echo main\n"
    pipeline = parse_gitlab(text, ".gitlab-ci.yml", read, conditions=conditions)
    return sorted(job.name for job in pipeline.jobs)


def problems_of(text: str, *, changes_since: ChangesSince | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        jobs_of(text, MAIN_PUSH, changes_since=changes_since)
    return [str(problem) for problem in caught.value.problems]


IF_RULE = """
    include:
      - local: a.yml
        rules:
          - if: $CI_COMMIT_BRANCH == "main"
    """


def test_include_rules_if_true_includes_the_file() -> None:
    assert jobs_of(IF_RULE, MAIN_PUSH) == ["a", "main"]


def test_include_rules_if_false_leaves_the_file_out() -> None:
    assert jobs_of(IF_RULE, Event(EventKind.PUSH, ref="feature", sha="1" * 40)) == ["main"]


def test_include_rules_see_pipeline_source_and_tag() -> None:
    text = """
    include:
      - local: a.yml
        rules: [{if: '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_TAG'}]
      - local: b.yml
        rules: [{if: '$CI_PIPELINE_SOURCE == "schedule"'}]
    """
    assert jobs_of(text, Event(EventKind.TAG, ref="v1", sha="1" * 40)) == ["a", "main"]
    assert jobs_of(text, Event(EventKind.SCHEDULE, ref="main", sha="1" * 40)) == ["b", "main"]


def test_include_rules_see_event_variables() -> None:
    text = """
    include:
      - local: a.yml
        rules: [{if: $DEPLOY == "1"}]
    """
    with_var = Event(EventKind.MANUAL, ref="main", sha="1" * 40, variables={"DEPLOY": "1"})
    assert jobs_of(text, with_var) == ["a", "main"]


def test_include_rules_do_not_see_the_files_own_variables() -> None:
    text = """
    variables:
      DEPLOY: "1"
    include:
      - local: a.yml
        rules: [{if: $DEPLOY == "1"}]
    """
    assert jobs_of(text, MAIN_PUSH) == ["main"]


def test_include_rules_first_match_when_never_excludes() -> None:
    text = """
    include:
      - local: a.yml
        rules:
          - if: $CI_COMMIT_BRANCH == "main"
            when: never
          - when: always
    """
    assert jobs_of(text, MAIN_PUSH) == ["main"]
    assert jobs_of(text, Event(EventKind.PUSH, ref="dev", sha="1" * 40)) == ["a", "main"]


def test_include_rules_exists_uses_the_event_file_list() -> None:
    text = """
    include:
      - local: a.yml
        rules: [{exists: [Dockerfile]}]
    """
    listed = Event(EventKind.PUSH, ref="main", sha="1" * 40, files=("Dockerfile",))
    assert jobs_of(text, listed) == ["a", "main"]
    assert jobs_of(text, MAIN_PUSH, listed=["README.md"]) == ["main"]
    assert jobs_of(text, MAIN_PUSH, listed=["Dockerfile"]) == ["a", "main"]


def test_include_rules_changes_on_push_and_tag() -> None:
    text = """
    include:
      - local: a.yml
        rules: [{changes: [src/**/*]}]
    """
    docs_only = Event(EventKind.PUSH, ref="main", sha="1" * 40, changed_files=("README.md",))
    src = Event(EventKind.PUSH, ref="main", sha="1" * 40, changed_files=("src/x/y.py",))
    tag = Event(EventKind.TAG, ref="v1", sha="1" * 40, changed_files=("README.md",))
    assert jobs_of(text, docs_only) == ["main"]
    assert jobs_of(text, src) == ["a", "main"]
    assert jobs_of(text, tag) == ["a", "main"]


def test_include_rules_compare_to_asks_the_edge() -> None:
    text = """
    include:
      - local: a.yml
        rules: [{changes: {paths: [src/*], compare_to: develop}}]
    """
    asked: list[Sequence[str]] = []

    def changes_since(refs: Sequence[str]) -> Mapping[str, tuple[str, ...]]:
        asked.append(refs)
        return {"develop": ("src/a.py",)}

    assert jobs_of(text, MAIN_PUSH, changes_since=changes_since) == ["a", "main"]
    assert asked == [["develop"]]


def test_include_rules_compare_to_unknown_ref_is_an_error() -> None:
    text = """
    include:
      - local: a.yml
        rules: [{changes: {paths: [src/*], compare_to: mian}}]
    """
    problems = problems_of(text, changes_since=lambda refs: {})
    assert len(problems) == 1
    assert "compare_to is not a valid ref" in problems[0]
    assert problems[0].startswith(".gitlab-ci.yml:4:13: include:rules: ")


def test_include_rules_without_an_event_load_every_file_with_a_warning() -> None:
    def read(pattern: str) -> list[tuple[str, str]]:
        return [(path, FILES[path]) for path in match_include(pattern, FILES)]

    text = textwrap.dedent(IF_RULE) + "main:\n  script: echo main\n"
    pipeline = parse_gitlab(text, ".gitlab-ci.yml", read)
    assert sorted(job.name for job in pipeline.jobs) == ["a", "main"]
    assert pipeline.warnings == (
        ".gitlab-ci.yml:3:12: warning: include:rules are not evaluated without an event: "
        "every conditional include is loaded (conveyor plan and run decide them for their "
        "event)",
    )


def test_include_rules_when_must_be_never_or_always() -> None:
    text = """
    include:
      - local: a.yml
        rules: [{if: $X, when: manual}]
    """
    assert problems_of(text) == [
        ".gitlab-ci.yml:4:28: include:rules: when must be never or always, got 'manual'"
    ]


def test_include_rules_unknown_keyword_has_a_suggestion() -> None:
    text = """
    include:
      - local: a.yml
        rules: [{iff: $X}]
    """
    assert problems_of(text) == [
        '.gitlab-ci.yml:4:14: include:rules: unknown rule keyword iff (did you mean "if"?)'
    ]


def test_include_unknown_keyword_in_an_entry_is_an_error() -> None:
    text = """
    include:
      - local: a.yml
        rulez: []
    """
    problems = problems_of(text)
    assert problems == [
        '.gitlab-ci.yml:4:5: include:local: unknown keyword rulez (did you mean "rules"?)'
    ]
