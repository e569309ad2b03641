from pathlib import PurePosixPath

from conveyor.model import (
    ChangeRequest,
    Event,
    EventKind,
    Job,
    Mark,
    Pipeline,
    PlannedJob,
    Step,
    When,
)
from conveyor.variables import job_variables, merged, pipeline_variables, ref_slug

MARK = Mark(".gitlab-ci.yml", 1, 1)
SHA = "0123456789abcdef0123456789abcdef01234567"


def _pipeline(flavor: str) -> Pipeline:
    return Pipeline(name="p", file=".gitlab-ci.yml", jobs=(), flavor=flavor)


def _planned(job: Job) -> PlannedJob:
    return PlannedJob(
        job=job, depends_on=(), artifacts_from=(), when=When.ON_SUCCESS, allow_failure=False
    )


def test_ref_slug_follows_gitlab() -> None:
    assert ref_slug("Feature/Big_Thing") == "feature-big-thing"
    assert ref_slug("-x-") == "x"
    assert len(ref_slug("a" * 100)) == 63


def test_native_pipeline_has_conveyor_variables_only() -> None:
    event = Event(kind=EventKind.PUSH, ref="main", sha=SHA)
    values = pipeline_variables(_pipeline("native"), event)
    assert values == {
        "CI": "true",
        "CONVEYOR_EVENT": "push",
        "CONVEYOR_REF": "main",
        "CONVEYOR_SHA": SHA,
    }


def test_gitlab_push_sets_branch_not_tag() -> None:
    event = Event(
        kind=EventKind.PUSH,
        ref="main",
        sha=SHA,
        repo="group/sub/app",
        message="Fix it\n\nbody",
        default_branch="main",
    )
    values = pipeline_variables(_pipeline("gitlab"), event)
    assert values["CI_COMMIT_BRANCH"] == "main"
    assert "CI_COMMIT_TAG" not in values
    assert values["CI_PIPELINE_SOURCE"] == "push"
    assert values["CI_COMMIT_SHORT_SHA"] == SHA[:8]
    assert values["CI_COMMIT_TITLE"] == "Fix it"
    assert values["CI_PROJECT_NAMESPACE"] == "group/sub"
    assert values["CI_PROJECT_NAME"] == "app"
    assert values["CI_COMMIT_BEFORE_SHA"] == "0" * 40


def test_gitlab_tag_sets_tag_not_branch() -> None:
    values = pipeline_variables(_pipeline("gitlab"), Event(kind=EventKind.TAG, ref="v1.0"))
    assert values["CI_COMMIT_TAG"] == "v1.0"
    assert "CI_COMMIT_BRANCH" not in values
    assert values["CI_PIPELINE_SOURCE"] == "push"


def test_gitlab_manual_is_web_and_merge_request_has_no_branch() -> None:
    manual = pipeline_variables(_pipeline("gitlab"), Event(kind=EventKind.MANUAL, ref="main"))
    assert manual["CI_PIPELINE_SOURCE"] == "web"
    mr = pipeline_variables(_pipeline("gitlab"), Event(kind=EventKind.MERGE_REQUEST, ref="f"))
    assert mr["CI_PIPELINE_SOURCE"] == "merge_request_event"
    assert "CI_COMMIT_BRANCH" not in mr
    assert mr["CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"] == "f"


def test_gitlab_job_variables_include_ids_and_parallel_index() -> None:
    job = Job(
        name="test 2/3",
        stage="test",
        steps=(Step("script", "true"),),
        mark=MARK,
        node_index=2,
        node_total=3,
        environment="prod",
    )
    values = job_variables(
        _pipeline("gitlab"),
        _planned(job),
        run_id="r1",
        pipeline_number=7,
        job_number=42,
        attempt=1,
        project_dir=str(PurePosixPath("/w")),
    )
    assert values["CI_PIPELINE_ID"] == "7"
    assert values["CI_JOB_ID"] == "42"
    assert values["CI_JOB_NAME"] == "test 2/3"
    assert values["CI_NODE_INDEX"] == "2"
    assert values["CI_NODE_TOTAL"] == "3"
    assert values["CI_ENVIRONMENT_NAME"] == "prod"
    assert values["CONVEYOR_ATTEMPT"] == "1"


def test_gitlab_job_without_parallel_has_node_total_one() -> None:
    job = Job(name="a", stage="test", steps=(), mark=MARK)
    values = job_variables(
        _pipeline("gitlab"),
        _planned(job),
        run_id="r",
        pipeline_number=1,
        job_number=1,
        attempt=1,
        project_dir="/w",
    )
    assert values["CI_NODE_TOTAL"] == "1"
    assert "CI_NODE_INDEX" not in values


def test_native_job_variables() -> None:
    job = Job(name="a", stage="test", steps=(), mark=MARK)
    values = job_variables(
        _pipeline("native"),
        _planned(job),
        run_id="r",
        pipeline_number=1,
        job_number=1,
        attempt=3,
        project_dir="/w",
    )
    assert values == {"CONVEYOR_RUN_ID": "r", "CONVEYOR_JOB": "a", "CONVEYOR_ATTEMPT": "3"}


def test_merged_later_layers_win() -> None:
    assert merged({"A": "1", "B": "1"}, {"B": "2"}) == {"A": "1", "B": "2"}


_CHANGE = ChangeRequest(
    number=12,
    source_branch="feature/x",
    target_branch="main",
    title='Fix "it" $(id)',
    is_fork=True,
    source_repo="stranger/app",
    labels=("bug", "ci"),
    diff_base_sha="d" * 40,
)


def test_merge_request_pipeline_has_gitlabs_merge_request_variables() -> None:
    event = Event(
        kind=EventKind.MERGE_REQUEST, ref="feature/x", sha="a" * 40, repo="g/app", change=_CHANGE
    )
    values = pipeline_variables(_pipeline("gitlab"), event)
    expected = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "12",
        "CI_MERGE_REQUEST_TITLE": 'Fix "it" $(id)',
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/x",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_MERGE_REQUEST_LABELS": "bug,ci",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": "d" * 40,
        "CI_MERGE_REQUEST_EVENT_TYPE": "detached",
        "CI_MERGE_REQUEST_PROJECT_PATH": "g/app",
        "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH": "stranger/app",
        "CI_MERGE_REQUEST_REF_PATH": "refs/merge-requests/12/head",
    }
    assert {k: values.get(k) for k in expected} == expected
    assert "CI_COMMIT_BRANCH" not in values


def test_github_pull_request_is_a_merge_request_pipeline_for_gitlab_rules() -> None:
    event = Event(kind=EventKind.PULL_REQUEST, ref="feature/x", sha="a" * 40, change=_CHANGE)
    values = pipeline_variables(_pipeline("gitlab"), event)
    assert values["CI_PIPELINE_SOURCE"] == "merge_request_event"
    assert values["CI_MERGE_REQUEST_REF_PATH"] == "refs/pull/12/head"


def test_merge_request_without_labels_has_no_labels_variable() -> None:
    event = Event(
        kind=EventKind.MERGE_REQUEST,
        ref="f",
        sha="a" * 40,
        change=ChangeRequest(number=1, source_branch="f", target_branch="main"),
    )
    values = pipeline_variables(_pipeline("gitlab"), event)
    assert "CI_MERGE_REQUEST_LABELS" not in values
    assert "CI_MERGE_REQUEST_DIFF_BASE_SHA" not in values


def test_native_pull_request_has_the_pr_facts() -> None:
    event = Event(kind=EventKind.PULL_REQUEST, ref="feature/x", sha="a" * 40, change=_CHANGE)
    values = pipeline_variables(_pipeline("native"), event)
    assert {k: v for k, v in values.items() if k.startswith("CONVEYOR_PR_")} == {
        "CONVEYOR_PR_NUMBER": "12",
        "CONVEYOR_PR_SOURCE_BRANCH": "feature/x",
        "CONVEYOR_PR_TARGET_BRANCH": "main",
        "CONVEYOR_PR_TITLE": 'Fix "it" $(id)',
        "CONVEYOR_PR_IS_FORK": "true",
        "CONVEYOR_PR_LABELS": "bug,ci",
    }
    assert values["CONVEYOR_EVENT"] == "pull_request"
