"""rules, only/except and workflow translated to model.Rule."""

from __future__ import annotations

from conveyor.config.gitlab.rules import DEFAULT_ONLY_EVENTS
from conveyor.model import EventKind, Rule, When

from .helpers import errors_of, parse


def rules_of(job_text: str, name: str = "job") -> tuple[Rule, ...]:
    rules = parse(job_text).job(name).rules
    assert rules is not None
    return rules


def test_rules_map_one_to_one() -> None:
    rules = rules_of(
        """
        job:
          script: echo
          rules:
            - if: $CI_COMMIT_TAG
              when: never
            - changes: [src/**/*]
              exists: {paths: [Makefile]}
              variables: {MODE: fast}
              allow_failure: true
            - when: delayed
              start_in: 30 minutes
        """
    )
    assert [(r.if_expr, r.when) for r in rules] == [
        ("$CI_COMMIT_TAG", When.NEVER),
        (None, When.ON_SUCCESS),
        (None, When.DELAYED),
    ]
    assert (rules[1].changes, rules[1].exists, dict(rules[1].variables)) == (
        ("src/**/*",),
        ("Makefile",),
        {"MODE": "fast"},
    )
    assert (rules[1].allow_failure, rules[2].start_in_s) == (True, 1800.0)


def test_rules_manual_without_allow_failure_blocks() -> None:
    rules = rules_of("job:\n  script: echo\n  rules:\n    - when: manual\n")
    assert (rules[0].when, rules[0].allow_failure) == (When.MANUAL, False)


def test_rules_without_when_take_the_job_when() -> None:
    rules = rules_of("job:\n  when: on_failure\n  script: echo\n  rules:\n    - if: $A\n")
    assert rules[0].when is When.ON_FAILURE


def test_rules_invalid_if_is_reported() -> None:
    problems = errors_of("job:\n  script: echo\n  rules:\n    - if: $A ==\n")
    assert problems[0].startswith('.gitlab-ci.yml:4:11: job "job": invalid expression "$A =="')


def test_rules_unknown_key_suggests() -> None:
    problems = errors_of("job:\n  script: echo\n  rules:\n    - iff: $A\n")
    assert problems == [
        '.gitlab-ci.yml:4:7: job "job": unknown rule keyword iff (did you mean "if"?)'
    ]


def test_rules_with_only_is_an_error() -> None:
    problems = errors_of("job:\n  script: echo\n  only: [main]\n  rules:\n    - when: always\n")
    assert problems == [
        '.gitlab-ci.yml:4:3: job "job": rules cannot be used with only/except (use rules alone)'
    ]


def test_no_rules_means_default_only_branches_and_tags() -> None:
    assert rules_of("job:\n  script: echo\n") == (
        Rule(
            events=DEFAULT_ONLY_EVENTS,
            when=When.ON_SUCCESS,
            mark=rules_of("job:\n  script: echo\n")[0].mark,
        ),
    )
    assert EventKind.MERGE_REQUEST not in DEFAULT_ONLY_EVENTS


def test_only_refs_names_regex_and_keywords() -> None:
    rules = rules_of("job:\n  script: echo\n  only: [main, /^release-/, tags, merge_requests]\n")
    assert [(r.refs, r.if_expr, r.events) for r in rules] == [
        (("main",), None, DEFAULT_ONLY_EVENTS),
        (None, "$CI_COMMIT_REF_NAME =~ /^release-/", DEFAULT_ONLY_EVENTS),
        (None, None, frozenset({EventKind.TAG})),
        (None, None, frozenset({EventKind.MERGE_REQUEST, EventKind.PULL_REQUEST})),
    ]


def test_except_becomes_never_rules_before_only() -> None:
    rules = rules_of("job:\n  script: echo\n  except: [tags]\n")
    assert [(r.events, r.when) for r in rules] == [
        (frozenset({EventKind.TAG}), When.NEVER),
        (DEFAULT_ONLY_EVENTS, When.ON_SUCCESS),
    ]


def test_only_variables_and_refs_must_both_hold() -> None:
    rules = rules_of(
        """
        job:
          script: echo
          only:
            refs: [branches]
            variables: [$RELEASE == "yes", $FORCE]
            changes: [docs/*]
        """
    )
    assert [(r.events, r.if_expr, r.changes) for r in rules] == [
        (
            frozenset({EventKind.PUSH, EventKind.MANUAL, EventKind.SCHEDULE}),
            '($RELEASE == "yes") || ($FORCE)',
            ("docs/*",),
        )
    ]


def test_only_glob_characters_in_names_are_literal() -> None:
    rules = rules_of("job:\n  script: echo\n  only: ['feat*']\n")
    assert rules[0].refs == ("feat[*]",)


def test_workflow_rules_translate() -> None:
    pipeline = parse(
        """
        workflow:
          rules:
            - if: $CI_PIPELINE_SOURCE == "schedule"
              when: never
            - variables: {DEPLOY: "yes"}
        job:
          script: echo
        """
    )
    assert pipeline.workflow is not None
    assert [(r.if_expr, r.when, dict(r.variables)) for r in pipeline.workflow] == [
        ('$CI_PIPELINE_SOURCE == "schedule"', When.NEVER, {}),
        (None, When.ALWAYS, {"DEPLOY": "yes"}),
    ]


def test_workflow_when_manual_is_an_error() -> None:
    problems = errors_of("workflow:\n  rules:\n    - when: manual\njob:\n  script: echo\n")
    assert problems == [".gitlab-ci.yml:3:13: workflow:rules: when must be always or never"]


def test_rules_nested_by_reference_are_flattened() -> None:
    rules = rules_of(
        """
        .rules:
          rules:
            - if: $A
            - if: $B
        job:
          script: echo
          rules:
            - !reference [.rules, rules]
            - when: never
        """
    )
    assert [r.if_expr for r in rules] == ["$A", "$B", None]
