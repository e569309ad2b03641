"""Real `.gitlab-ci.yml` files of public projects (tests/gitlab_real/, see its README and
manifest.json): each must validate and plan, through the CLI, for a push to the default
branch, a tag, a merge request and a schedule, with exit 0 and no traceback, and warn only
about what a host cannot do (images, services, tags, triggers, ...) or cannot read (includes
of a GitLab server). Offline: no fetcher reaches the network, as a CI machine has none."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conveyor.cli import main

CORPUS = Path(__file__).resolve().parents[2] / "gitlab_real"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))

EVENTS = {
    "push": ["--event", "push", "--ref", "main"],
    "tag": ["--event", "tag", "--ref", "v1.2.3"],
    "merge_request": ["--event", "merge_request_event", "--ref", "feature/x"],
    "schedule": ["--event", "schedule", "--ref", "main"],
}

# What a warning of a real file may be about: what a local host cannot do or read.
ALLOWED_WARNINGS = re.compile(
    r"warning: ("
    r"(image|services|tags|trigger|environment|release|pages|coverage|resource_group"
    r"|secrets|id_tokens|interruptible|hooks|identity|dast_configuration|manual_confirmation"
    r"|workflow:auto_cancel|auto_cancel|artifacts:\S+|inherit:\S+|\S+:kubernetes)\b"
    r"|include:(template|project|component|remote) .* cannot be read here"
    r"|job \".*\" is left out: "
    r"|no job is left: "
    r"|include:rules are not evaluated"
    r")"
)


def _entries() -> list[object]:
    return [pytest.param(entry, id=entry["dir"]) for entry in MANIFEST]


def test_manifest_has_forty_real_projects_with_source_commit_and_licence() -> None:
    assert len(MANIFEST) >= 40
    for entry in MANIFEST:
        assert entry["repository"].startswith("https://github.com/")
        assert re.fullmatch(r"[0-9a-f]{40}", entry["commit"])
        assert entry["licence"]
        assert all((CORPUS / entry["dir"] / path).is_file() for path in entry["files"])


def _conveyor(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of the project's files outside any git repository."""
    entry = request.param
    copy = tmp_path / entry["dir"]
    shutil.copytree(CORPUS / entry["dir"], copy)
    return copy


@pytest.mark.parametrize("project", _entries(), indirect=True)
def test_real_file_validates_and_plans_for_every_event(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("CONVEYOR_HOME", str(project.parent / "home"))
    monkeypatch.setenv("CONVEYOR_OFFLINE", "1")  # the documented offline mode
    results = {"validate": _conveyor(["validate"], capsys)}
    for name, args in EVENTS.items():
        results[name] = _conveyor(["plan", "--json", *args], capsys)
    failed = {name: err for name, (code, _, err) in results.items() if code != 0}
    assert failed == {}
    for name in EVENTS:
        json.loads(results[name][1])  # a plan, whatever it holds
    warnings = {line for _, _, err in results.values() for line in err.splitlines()}
    assert sorted(w for w in warnings if not ALLOWED_WARNINGS.search(w)) == []
