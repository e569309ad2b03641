"""GitLab `tags:` (job and `default:`): parsed into Job.tags, no longer warned about."""

from __future__ import annotations

from .helpers import errors_of, parse


def test_tags_are_parsed_in_order_without_a_warning() -> None:
    pipeline = parse("job:\n  tags: [linux, docker, linux]\n  script: echo\n")
    assert pipeline.job("job").tags == ("linux", "docker")
    assert pipeline.warnings == ()
    assert pipeline.job("job").unsupported == {}


def test_default_tags_reach_jobs_that_set_none() -> None:
    pipeline = parse(
        """
        default:
          tags: [linux]
        a:
          script: echo
        b:
          tags: [gpu]
          script: echo
        c:
          inherit:
            default: false
          script: echo
        """
    )
    assert [pipeline.job(name).tags for name in ("a", "b", "c")] == [("linux",), ("gpu",), ()]


def test_tags_keep_variables_as_written() -> None:
    job = parse("job:\n  tags: [$RUNNER, 'os-${OS}']\n  script: echo\n").job("job")
    assert job.tags == ("$RUNNER", "os-${OS}")


def test_tags_from_references_are_flattened() -> None:
    pipeline = parse(
        """
        .linux:
          tags: [linux, x86]
        job:
          tags: [!reference [.linux, tags], docker]
          script: echo
        """
    )
    assert pipeline.job("job").tags == ("linux", "x86", "docker")


def test_tags_must_be_a_list_of_non_empty_strings() -> None:
    for value in ("linux", "[linux, 3]", "[linux, '']", "{a: b}"):
        assert errors_of(f"job:\n  tags: {value}\n  script: echo\n") == [
            '.gitlab-ci.yml:2:9: job "job": tags must be a list of non-empty strings'
        ], value


def test_tags_over_gitlabs_limit_are_refused() -> None:
    tags = ", ".join(f"t{n}" for n in range(50))
    assert errors_of(f"job:\n  tags: [{tags}]\n  script: echo\n") == [
        '.gitlab-ci.yml:2:9: job "job": tags has 50 tags, more than 49 (GitLab\'s limit)'
    ]
