"""Secrets through `conveyor run`, `play`, `logs` and `show`: a declared secret echoed on
stdout and stderr, inside a longer word, in a failing command's reason, in an artifact file
name and passed again as a `--var` value must be `[MASKED]` in every output and in
everything stored (run records, JSONL logs, the SQLite file).

Decided, as GitLab does (it masks exact values only): a secret split across two lines or
transformed (base64) is not recognised; the halves and the encoded form show as written.
Tests pin that, so a change of the rule is a decision, not an accident.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.leaks.scan import base64_of, conveyor, env_for, find_leaks, plant, tree_bytes

PIPELINE = """\
name: leaks
jobs:
  echo:
    secrets: [TOK]
    steps:
      - echo "out $TOK"
      - echo "err $TOK" >&2
      - echo "word xx${TOK}yy and $EXTRA"
      - mkdir -p out && touch "out/file-$TOK.txt"
    artifacts: [out/**]
  fail:
    needs: [echo]
    secrets: [TOK]
    run: echo "$TOK" >&2; ls "/nonexistent/$TOK"
  later:
    needs: [echo]
    manual: true
    secrets: [TOK]
    run: echo "played $TOK $EXTRA"
"""


def _project(tmp_path: Path, text: str = PIPELINE) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".conveyor.yml").write_text(text)
    return project


def test_leaks_cli_run_play_logs_show_mask_every_output(tmp_path: Path) -> None:
    token = plant("tokRun")
    project = _project(tmp_path)
    env = env_for(project / ".home", TOK=token)
    ran = conveyor(project, "run", "--json", "--var", f"EXTRA={token}", env=env)
    assert ran.returncode == 1, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    played = conveyor(project, "play", run_id, "later", env=env)
    outputs = [ran.stdout, ran.stderr, played.stdout, played.stderr]
    for args in (["show", run_id], ["show", run_id, "--json"], ["runs"], ["runs", "--json"]):
        done = conveyor(project, *args, env=env)
        outputs += [done.stdout, done.stderr]
    for job in ("echo", "fail", "later"):
        for extra in ([], ["--json"]):
            done = conveyor(project, "logs", run_id, job, *extra, env=env)
            assert done.returncode == 0, done.stderr
            outputs += [done.stdout, done.stderr]
    assert find_leaks([token], *outputs) == []
    assert "[echo] word xx[MASKED]yy and [MASKED]" in ran.stderr
    assert "[later] played [MASKED] [MASKED]" in played.stdout


def test_leaks_cli_run_stores_no_secret(tmp_path: Path) -> None:
    token = plant("tokStore")
    project = _project(tmp_path)
    env = env_for(project / ".home", TOK=token)
    ran = conveyor(project, "run", "--json", "--var", f"EXTRA={token}", env=env)
    assert ran.returncode == 1, ran.stderr
    # The artifact keeps the file the job made (its name is data, as in GitLab); everything
    # else conveyor writes (records, logs, the database) holds the mask only.
    stored = tree_bytes(project / ".home").replace(f"file-{token}".encode(), b"")
    assert find_leaks([token], stored) == []


def test_leaks_cli_play_gets_the_secret_variable_back(tmp_path: Path) -> None:
    token = plant("tokPlay")
    project = _project(
        tmp_path, PIPELINE.replace('echo "played $TOK $EXTRA"', 'test "$EXTRA" = "$TOK"')
    )
    env = env_for(project / ".home", TOK=token)
    ran = conveyor(project, "run", "--json", "--var", f"EXTRA={token}", env=env)
    run_id = json.loads(ran.stdout)["run_id"]
    played = conveyor(project, "play", run_id, "later", "--json", env=env)
    jobs = {job["name"]: job["status"] for job in json.loads(played.stdout)["jobs"]}
    assert jobs["later"] == "success", played.stderr


def test_leaks_cli_split_and_encoded_secrets_are_not_recognised(tmp_path: Path) -> None:
    token = plant("tokSplit")
    text = """\
name: split
jobs:
  split:
    secrets: [TOK]
    run: |
      printf '%s\\n' "${TOK:0:20}" "${TOK:20}"
      printf '%s' "$TOK" | base64 -w0; echo
"""
    project = _project(tmp_path, text)
    ran = conveyor(project, "run", env=env_for(project / ".home", TOK=token))
    assert ran.returncode == 0, ran.stderr
    assert find_leaks([token], ran.stdout, ran.stderr) == []
    shown = [f"[split] {token[:20]}", f"[split] {token[20:]}", f"[split] {base64_of(token)}"]
    assert shown == [line for line in ran.stdout.splitlines() if line in shown]
