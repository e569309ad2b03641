"""Each wrong value is reported with its place and a way to fix it; warnings for keywords
that need a GitLab server or a runner."""

from __future__ import annotations

import pytest

from .helpers import errors_of, parse

CASES = {
    "extends-not-a-name": ("job:\n  extends: 3\n  script: x\n", "2:12", "extends must be a job"),
    "extends-scalar-target": (
        "t: 1\njob:\n  extends: t\n  script: x\n",
        "3:12",
        'extends "t", which is not a job or template',
    ),
    "extends-too-deep": (
        "".join(f".t{i}:\n  extends: .t{i + 1}\n" for i in range(12))
        + ".t12:\n  script: x\njob:\n  extends: .t0\n",
        "",
        "extends nests deeper than 11 levels",
    ),
    "reference-loop": (
        ".a:\n  script: !reference [.a, script]\njob:\n  script: !reference [.a, script]\n",
        "",
        "!reference nests deeper than 10 levels",
    ),
    "include-bad-entry": ("include: [3]\njob:\n  script: x\n", "1:11", "include: expected a file"),
    "include-two-kinds": (
        "include:\n  - {local: a.yml, remote: b}\njob:\n  script: x\n",
        "2:5",
        "exactly one of local",
    ),
    "include-local-not-text": (
        "include:\n  - local: [a]\njob:\n  script: x\n",
        "2:12",
        "include:local must be a file path",
    ),
    "include-not-mapping-file": (
        "include: a.yml\njob:\n  script: x\n",
        "",
        "must be a mapping of keywords and jobs, got list",
    ),
    "script-wrong-type": ("job:\n  script: {a: 1}\n", "2:11", "script must be a string or a list"),
    "bool-field": ("job:\n  script: x\n  interruptible: yes-please\n", "3:18", "must be true or"),
    "exit-codes-wrong": (
        "job:\n  script: x\n  allow_failure: {exit_codes: [a]}\n",
        "3:31",
        "exit_codes must be an integer",
    ),
    "allow-failure-wrong": ("job:\n  script: x\n  allow_failure: 1\n", "3:18", "allow_failure"),
    "retry-wrong-type": ("job:\n  script: x\n  retry: [1]\n", "3:10", "retry must be an integer"),
    "retry-unknown-key": (
        "job:\n  script: x\n  retry: {max: 1, whan: x}\n",
        "3:19",
        "did you mean",
    ),
    "retry-when-wrong": (
        "job:\n  script: x\n  retry: {max: 1, when: true}\n",
        "3:25",
        "retry:when",
    ),
    "retry-max-too-big": ("job:\n  script: x\n  retry: {max: 5}\n", "3:16", "retry:max must be"),
    "artifacts-not-mapping": ("job:\n  script: x\n  artifacts: [a]\n", "3:14", "must be a mapping"),
    "artifacts-unknown-key": (
        "job:\n  script: x\n  artifacts: {pahts: [a]}\n",
        "3:15",
        'did you mean "paths"',
    ),
    "artifacts-paths-wrong": (
        "job:\n  script: x\n  artifacts: {paths: a}\n",
        "3:22",
        "list of paths",
    ),
    "artifacts-when-wrong": (
        "job:\n  script: x\n  artifacts: {paths: [a], when: never}\n",
        "3:33",
        "artifacts:when must be",
    ),
    "needs-not-list": ("job:\n  script: x\n  needs: a\n", "3:10", "needs must be a list"),
    "needs-bad-item": ("job:\n  script: x\n  needs: [{optional: true}]\n", "3:11", "each need"),
    "needs-unknown-key": (
        "a:\n  script: x\njob:\n  script: x\n  needs: [{job: a, artefacts: false}]\n",
        "5:20",
        'did you mean "artifacts"',
    ),
    "dependencies-wrong": (
        "job:\n  script: x\n  dependencies: a\n",
        "3:17",
        "dependencies must be",
    ),
    "dependency-unknown": (
        "job:\n  script: x\n  dependencies: [nope]\n",
        "2:3",
        'dependency "nope"',
    ),
    "environment-wrong": ("job:\n  script: x\n  environment: [a]\n", "3:16", "environment must be"),
    "start-in-wrong": (
        "job:\n  script: x\n  when: delayed\n  start_in: soon\n",
        "4:13",
        "start_in must be a duration",
    ),
    "parallel-too-many": (
        "job:\n  script: x\n  parallel: 201\n",
        "3:13",
        "parallel must be 1 to 200",
    ),
    "parallel-wrong-type": (
        "job:\n  script: x\n  parallel: [1]\n",
        "3:13",
        "parallel must be a number",
    ),
    "matrix-not-list": ("job:\n  script: x\n  parallel: {matrix: a}\n", "3:22", "list of mappings"),
    "matrix-entry-wrong": ("job:\n  script: x\n  parallel: {matrix: [a]}\n", "3:23", "each matrix"),
    "matrix-value-wrong": (
        "job:\n  script: x\n  parallel: {matrix: [{A: {b: 1}}]}\n",
        "3:27",
        "matrix variable A",
    ),
    "inherit-wrong": ("job:\n  script: x\n  inherit: yes\n", "3:12", "inherit must be a mapping"),
    "default-unknown": ("default:\n  scrpt: x\njob:\n  script: x\n", "2:3", "default: unknown"),
    "default-not-mapping": ("default: 1\njob:\n  script: x\n", "1:10", "default must be a mapping"),
    "stages-wrong": ("stages: build\njob:\n  script: x\n", "1:9", "stages must be a list"),
    "job-not-mapping": ("deploy-prod: 3\n", "1:1", 'job "deploy-prod" must be a mapping'),
    "job-keyword-at-top": ("script: x\njob:\n  script: x\n", "1:1", "is a job keyword"),
    "variables-not-mapping": ("variables: [a]\njob:\n  script: x\n", "1:12", "must be a mapping"),
    "rules-not-list": ("job:\n  script: x\n  rules: {if: $A}\n", "3:10", "rules must be a list"),
    "rule-not-mapping": ("job:\n  script: x\n  rules: [a]\n", "3:11", "each rule must be"),
    "rule-if-not-text": ("job:\n  script: x\n  rules: [{if: 3}]\n", "3:16", "if must be a string"),
    "rule-allow-failure-wrong": (
        "job:\n  script: x\n  rules: [{allow_failure: 3}]\n",
        "3:27",
        "rules allow_failure must be",
    ),
    "rule-start-in-wrong": (
        "job:\n  script: x\n  rules: [{when: delayed, start_in: soon}]\n",
        "3:37",
        "start_in must be a duration",
    ),
    "rule-changes-without-paths": (
        "job:\n  script: x\n  rules: [{changes: {compare_to: main}}]\n",
        "3:21",
        'job "job": changes: a mapping needs paths',
    ),
    "rule-changes-wrong": (
        "job:\n  script: x\n  rules: [{exists: 3}]\n",
        "3:20",
        "list of strings",
    ),
    "workflow-not-mapping": ("workflow: [a]\njob:\n  script: x\n", "1:11", "workflow must be"),
    "workflow-unknown": ("workflow: {ruels: []}\njob:\n  script: x\n", "1:12", "did you mean"),
    "workflow-rules-not-list": (
        "workflow: {rules: 1}\njob:\n  script: x\n",
        "1:19",
        "must be a list",
    ),
    "workflow-rule-unknown": (
        "workflow:\n  rules: [{iff: $A}]\njob:\n  script: x\n",
        "2:12",
        'workflow:rules: unknown rule keyword iff (did you mean "if"?)',
    ),
    "only-unknown-key": ("job:\n  script: x\n  only: {refz: [main]}\n", "3:10", "unknown key refz"),
    "only-wrong-type": ("job:\n  script: x\n  only: 3\n", "3:9", "expected a list of strings"),
    "only-bad-variables": (
        "job:\n  script: x\n  only: {variables: [$A ==]}\n",
        "3:21",
        "invalid expression",
    ),
    "duplicate-after-parallel": (
        "job:\n  script: x\n  parallel: 2\njob 1/2:\n  script: x\n",
        "5:3",
        'job name "job 1/2" is used twice',
    ),
}


@pytest.mark.parametrize(("text", "where", "message"), CASES.values(), ids=CASES.keys())
def test_errors_name_place_and_problem(text: str, where: str, message: str) -> None:
    files = {"a.yml": "- a\n"}
    problems = errors_of(text, files)
    assert any(message in p and f".yml:{where}" in p for p in problems), problems


WARNINGS = {
    "include-rules": ("include:\n  - local: a.yml\n    rules: [{if: $A}]\n", "include:rules"),
    "include-url": ("include: https://example.invalid/ci.yml\n", "include:remote"),
    "auto-cancel": ("workflow: {auto_cancel: {on_job_failure: all}}\n", "workflow:auto_cancel"),
    "kubernetes": ("x:\n  script: x\n  only: {kubernetes: active}\n", "only:kubernetes"),
    "reports": ("x:\n  script: x\n  artifacts: {reports: {junit: r.xml}}\n", "artifacts:reports"),
    "cross-project-needs": ("x:\n  script: x\n  needs: [{project: g/p, job: b}]\n", "needs from"),
}


@pytest.mark.parametrize(("text", "message"), WARNINGS.values(), ids=WARNINGS.keys())
def test_warnings_for_what_a_local_run_ignores(text: str, message: str) -> None:
    files = {"a.yml": "a:\n  script: x\n"}
    pipeline = parse(text + "job:\n  script: x\n", files)
    assert any(message in w for w in pipeline.warnings), pipeline.warnings
