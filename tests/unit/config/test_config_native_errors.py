# ruff: noqa: E501  (a table of exact messages reads best one per line)
"""Validation of the native format: every problem at once, FILE:LINE:COL, did-you-mean."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.config.native import parse_native
from conveyor.errors import ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_native(textwrap.dedent(text), "p.yml")
    return [str(problem) for problem in caught.value.problems]


def test_problems_are_all_reported_sorted() -> None:
    found = problems(
        """
        jobs:
          b: {run: x, timout: 5}
          a: {run: x, needs: [bb]}
        """
    )
    assert found == [
        'p.yml:3:15: jobs.b: unknown key "timout" (did you mean "timeout"?)',
        'p.yml:4:23: jobs.a.needs: job "a" needs unknown job "bb" (did you mean "b"?)',
    ]


def test_yaml_syntax_error_is_a_problem() -> None:
    (found,) = problems("jobs:\n  a: {run: x\n")
    assert found.startswith("p.yml:3:1: YAML syntax error")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "p.yml: expected a mapping with a jobs: key at the top level, got an empty file"),
        ("- a", "p.yml: expected a mapping with a jobs: key at the top level, got list"),
        ("name: x", "p.yml:1:1: missing key jobs (a mapping of job name -> job)"),
        ("jobs: {}", "p.yml:1:7: jobs: no jobs defined (add at least one)"),
        ("jobs: []", "p.yml:1:7: jobs: expected a mapping, got list"),
        ("jobs: {a: 1}", "p.yml:1:11: jobs.a: expected a job mapping (steps, needs, ...), got integer"),
        ("jobs: {a: {}}", "p.yml:1:11: jobs.a: has no steps (add steps: or run:)"),
        ("jobs: {a: {steps: []}}", "p.yml:1:19: jobs.a.steps: has no steps (add at least one command)"),
        ("jobs: {a: {steps: x}}", "p.yml:1:19: jobs.a.steps: expected a list of commands, got string"),
        ("jobs: {a: {steps: [1]}}", "p.yml:1:20: jobs.a.steps[0]: expected a command or a mapping {name, run}, got integer"),
        ("jobs: {a: {steps: ['']}}", "p.yml:1:20: jobs.a.steps[0]: empty command"),
        ("jobs: {a: {steps: [{name: n}]}}", "p.yml:1:20: jobs.a.steps[0]: missing key run (the command to execute)"),
        ("jobs: {a: {run: x, steps: [y]}}", "p.yml:1:12: jobs.a: use either steps or run, not both"),
        ("jobs: {a: {run: x, shell: yes}}", "p.yml:1:27: jobs.a.shell: expected a string, got boolean (YAML reads yes as a boolean: quote it)"),
        ("jobs: {a: {run: x, shell: zsh}}", 'p.yml:1:27: jobs.a.shell: unknown shell "zsh" (use bash or sh)'),
        ("jobs: {a: {run: x, timeout: 10x}}", 'p.yml:1:29: jobs.a.timeout: "10x" is not a duration like "90s", "10m" or "1h30m"'),
        ("jobs: {a: {run: x, timeout: 0}}", "p.yml:1:29: jobs.a.timeout: must be more than zero, got 0"),
        ("jobs: {a: {run: x, timeout: [1]}}", 'p.yml:1:29: jobs.a.timeout: expected a duration like "90s", "10m" or "1h30m", got list'),
        ("jobs: {a: {run: x, retry: 11}}", "p.yml:1:27: jobs.a.retry: must be between 0 and 10, got 11"),
        ("jobs: {a: {run: x, retry: x}}", "p.yml:1:27: jobs.a.retry: expected an integer or a mapping {max, when, delay}, got string"),
        ("jobs: {a: {run: x, retry: {when: failure}}}", "p.yml:1:27: jobs.a.retry: missing key max (how many retries)"),
        ("jobs: {a: {run: x, retry: {max: 1, when: [oops]}}}", "p.yml:1:43: jobs.a.retry.when: expected failure, timeout, runner_system_failure, runner_interrupted or an exit code 0-255, got 'oops'"),
        ("jobs: {a: {run: x, env: {A: true}}}", "p.yml:1:29: jobs.a.env.A: expected a string, got boolean (YAML reads true as a boolean: quote it)"),
        ("jobs: {a: {run: x, secrets: [a-b]}}", 'p.yml:1:30: jobs.a.secrets: "a-b" is not a variable name (use A-Z, 0-9, _)'),
        ("jobs: {a: {run: x, needs: 1}}", "p.yml:1:27: jobs.a.needs: expected a list of job names, got integer"),
        ("jobs: {a: {run: x, needs: [1]}}", "p.yml:1:28: jobs.a.needs[0]: expected a job name, got integer"),
        ("jobs: {a: {run: x, needs: [{optional: true}]}}", "p.yml:1:28: jobs.a.needs[0]: missing key job (the name of the job)"),
        ("jobs: {a: {run: x, needs: [a]}}", "p.yml:1:28: jobs.a.needs: needs form a cycle: a -> a (remove one of these needs)"),
        ("jobs: {a: {run: x, when: {status: fail}}}", 'p.yml:1:35: jobs.a.when.status: unknown status "fail" (did you mean "failure"?) (use success, failure, always)'),
        ("jobs: {a: {run: x, when: {if: '$A =='}}}", "p.yml:1:31: jobs.a.when.if: expression ends too early (a value is missing) at column 6 of the expression"),
        ("jobs: {a: {run: x, when: {on: [pushh]}}}", 'p.yml:1:32: jobs.a.when.on: unknown event "pushh" (did you mean "push"?) (use push, tag, manual, schedule, merge_request_event, pull_request)'),
        ("jobs: {a: {run: x, manual: true, when: {status: always}}}", "p.yml:1:49: jobs.a.when.status: a manual job runs when played, not on always (drop one)"),
        ("on: []\njobs: {a: {run: x}}", "p.yml:1:5: on: lists no events (remove it to allow every event)"),
        ("jobs: {a: {run: x, when: {iff: x}}}", 'p.yml:1:27: jobs.a.when: unknown key "iff" (did you mean "if"?)'),
        ("jobs: {a: {run: x, matrix: {}}}", "p.yml:1:28: jobs.a.matrix: is empty (map a variable name to a list of values)"),
        ("jobs: {a: {run: x, matrix: {A: []}}}", "p.yml:1:32: jobs.a.matrix.A: has no values (list at least one)"),
        ("jobs: {a: {run: x, artifacts: {exclude: [x]}}}", "p.yml:1:31: jobs.a.artifacts: missing key paths"),
        ("jobs: {a: {run: x, artifacts: {paths: [x], when: never}}}", 'p.yml:1:50: jobs.a.artifacts.when: unknown value "never" (use on_success, on_failure, always)'),
        ("jobs: {a: {run: x, artifacts: 3}}", "p.yml:1:31: jobs.a.artifacts: expected a mapping, got integer"),
        ("concurrency: 0\njobs: {a: {run: x}}", "p.yml:1:14: concurrency: must be 1 or more, got 0"),
        ("stages: build\njobs: {a: {run: x}}", "p.yml:1:9: stages: expected a list of strings, got string"),
        ("stages: [b]\njobs: {a: {run: x, stage: bb}}", 'p.yml:2:27: jobs.a.stage: stage "bb" is not in stages (did you mean "b"?)'),
        ("defaults: {shel: sh}\njobs: {a: {run: x}}", 'p.yml:1:12: defaults: unknown key "shel" (did you mean "shell"?)'),
        ("jobs: {a: {run: x}}\nflavour: 1", 'p.yml:2:1: top level: unknown key "flavour"'),
    ],
)  # fmt: skip
def test_single_problem(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_duplicate_names_after_matrix_expansion() -> None:
    found = problems(
        """
        jobs:
          "t [A=1]": {run: x}
          t: {run: x, matrix: {A: ["1", "2"]}}
        """
    )
    assert found == [
        'p.yml:4:6: jobs.t: job name "t [A=1]" is defined twice (first at line 3; rename one)'
    ]


def test_cycle_is_named() -> None:
    found = problems(
        """
        jobs:
          a: {run: x, needs: [c]}
          b: {run: x, needs: [a]}
          c: {run: x, needs: [b]}
        """
    )
    assert found == [
        "p.yml:3:23: jobs.a.needs: needs form a cycle: a -> c -> b -> a (remove one of these needs)"
    ]


def test_need_on_job_excluded_by_on() -> None:
    found = problems(
        """
        on: [push, tag]
        jobs:
          build: {run: x, when: {on: push}}
          release: {run: x, needs: [build]}
        """
    )
    assert found == [
        'p.yml:5:29: jobs.release.needs: job "release" runs on tag but the job it needs, '
        '"build", does not (make the need optional: {job: "build", optional: true}, '
        "or align their when.on)"
    ]


def test_optional_need_on_excluded_job_is_fine() -> None:
    pipeline = parse_native(
        "jobs:\n  b: {run: x, when: {on: push}}\n  r: {run: x, needs: [{job: b, optional: true}]}\n",
        "p.yml",
    )
    assert [job.name for job in pipeline.jobs] == ["b", "r"]


def test_need_within_events_is_fine() -> None:
    pipeline = parse_native(
        "on: push\njobs:\n  b: {run: x, when: {on: [push, tag]}}\n  r: {run: x, needs: [b]}\n",
        "p.yml",
    )
    assert len(pipeline.jobs) == 2


def test_matrix_too_large() -> None:
    values = list(range(20))
    (found,) = problems(f"jobs: {{a: {{run: x, matrix: {{A: {values}, B: {values}}}}}}}")
    assert "makes 400 jobs (at most 256; split it)" in found


def test_need_on_later_stage() -> None:
    found = problems(
        """
        stages: [build, deploy]
        jobs:
          b: {stage: build, run: x, needs: [d]}
          d: {stage: deploy, run: x}
        """
    )
    assert found == [
        'p.yml:4:37: jobs.b.needs: job "b" (stage build) needs "d" of the later stage deploy '
        "(move one of them to another stage)"
    ]


def test_duplicate_job_key_is_reported() -> None:
    found = problems("jobs:\n  a: {run: x}\n  a: {run: y}\n")
    assert found == ['p.yml:3:3: key "a" is written twice in this mapping (remove one)']
