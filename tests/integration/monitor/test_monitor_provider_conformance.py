"""The Provider protocol, checked the same way for GitLab, GitHub and Jenkins against the
fake upstream: shown pipelines newest first, a memo that makes the next fetch cheap, a 404
for an unknown repo, and a retry the upstream records."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.fakes.upstreams import FakeUpstream
from tests.fakes.upstreams.apis import jenkins_build
from tests.fakes.upstreams.scenario import ENV, targets_for

from conveyor.errors import UpstreamError
from conveyor.model import Status
from conveyor.monitor.providers.base import Memo, Provider
from conveyor.monitor.providers.github import GitHub
from conveyor.monitor.providers.gitlab import GitLab
from conveyor.monitor.providers.jenkins import Jenkins
from conveyor.monitor.upstream import Upstream, open_monitor_client, retry_policy
from conveyor.settings.monitor import MonitorSettings, Target, resolve_targets

PROVIDERS = {"gitlab": GitLab, "github": GitHub, "jenkins": Jenkins}
REPOS = {"gitlab": "group/sub/app", "github": "octo/api", "jenkins": "folder/app"}


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    from datetime import UTC, datetime

    client = open_monitor_client(4, timeout_s=2, max_body_bytes=100_000)
    yield Upstream(
        client,
        clock=lambda: datetime.now(UTC),
        on_response=lambda *_: None,
        retry=retry_policy(2, 0),
    )
    await client.aclose()


def _target(fake: FakeUpstream, provider: str, repo: str | None = None) -> Target:
    settings = MonitorSettings.model_validate({"targets": targets_for(fake.url)})
    target = next(t for t in resolve_targets(settings, ENV) if t.provider == provider)
    if repo is None:
        return target
    return Target(target.provider, repo, "main", target.base_url, target.token, target.user)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_provider_fetch_shows_newest_first(
    fake: FakeUpstream, upstream: Upstream, name: str
) -> None:
    provider: Provider = PROVIDERS[name](upstream, include_canceled=False)
    fetched = await provider.fetch(_target(fake, name), Memo())
    created = [p.created_at for p in fetched.pipelines]
    assert fetched.pipelines and fetched.dropped == 0
    assert created == sorted(created, reverse=True)  # type: ignore[type-var]
    assert {p.status for p in fetched.pipelines} <= {Status.RUNNING, Status.SUCCESS, Status.FAILED}
    assert fetched.memo.pipelines == fetched.pipelines


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_provider_refetch_with_memo_keeps_pipelines(
    fake: FakeUpstream, upstream: Upstream, name: str
) -> None:
    provider: Provider = PROVIDERS[name](upstream, include_canceled=False)
    first = await provider.fetch(_target(fake, name), Memo())
    second = await provider.fetch(_target(fake, name), first.memo)
    assert first.pipelines == second.pipelines
    assert second.not_modified  # GitLab by its watermark, GitHub by ETag, Jenkins by digest
    assert second.pipelines is first.pipelines


async def test_jenkins_refetch_of_a_changed_body_parses_it_again(
    fake: FakeUpstream, upstream: Upstream
) -> None:
    provider = Jenkins(upstream, include_canceled=False)
    first = await provider.fetch(_target(fake, "jenkins"), Memo())
    fake.jenkins["folder/app/main"] = [
        jenkins_build(3, result="SUCCESS"),
        *fake.jenkins["folder/app/main"],
    ]
    second = await provider.fetch(_target(fake, "jenkins"), first.memo)
    assert not second.not_modified
    assert second.pipelines[0].id == 3
    assert second.memo.digest not in (None, first.memo.digest)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_provider_unknown_repo_is_404(
    fake: FakeUpstream, upstream: Upstream, name: str
) -> None:
    provider: Provider = PROVIDERS[name](upstream, include_canceled=False)
    with pytest.raises(UpstreamError) as caught:
        await provider.fetch(_target(fake, name, "nobody/nothing"), Memo())
    assert (caught.value.reason, caught.value.status_code) == ("upstream 404", 404)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_provider_retry_reaches_the_upstream(
    fake: FakeUpstream, upstream: Upstream, name: str
) -> None:
    provider: Provider = PROVIDERS[name](upstream, include_canceled=False)
    fetched = await provider.fetch(_target(fake, name), Memo())
    await provider.retry(_target(fake, name), fetched.pipelines[0])
    assert [name] == [kind for kind, _ in fake.retries]


@pytest.mark.parametrize(
    ("settings", "data_key"),
    [
        ({"repo": "team/app", "branch": "feature/x"}, "team/app/feature%2Fx"),
        ({"job": "folder/plain"}, "folder/plain"),
    ],
)
async def test_jenkins_fetches_branch_jobs_and_plain_jobs(
    fake: FakeUpstream, upstream: Upstream, settings: dict[str, str], data_key: str
) -> None:
    from tests.fakes.upstreams.apis import jenkins_build

    fake.jenkins[data_key] = [jenkins_build(7, result="SUCCESS")]
    spec = {"provider": "jenkins", "url": fake.url, **settings}
    spec |= {"user_env": "JENKINS_USER", "token_env": "JENKINS_TOKEN"}
    (target,) = resolve_targets(MonitorSettings.model_validate({"targets": [spec]}), ENV)
    fetched = await Jenkins(upstream, include_canceled=False).fetch(target, Memo())
    assert [p.id for p in fetched.pipelines] == [7]
