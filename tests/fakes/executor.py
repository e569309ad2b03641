"""A scripted Executor: runs no process. Each line of a step's script is one of

    echo TEXT        a stdout line ($NAME and ${NAME} expanded from the step's environment)
    echo TEXT >&2    a stderr line
    sleep SECONDS    waits (the attempt's time limit and cancel messages apply)
    exit CODE        ends the step with CODE

It keeps every spec it was given (`specs`) and every cancel message (`cancels`), so
scheduler tests can check what crossed the boundary. tests/integration/engine/
test_executor_conformance.py holds it to the same contract as LocalExecutor.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from conveyor.engine.env import step_environment
from conveyor.engine.executor import AttemptResult, AttemptSpec, OutputSink
from conveyor.masking import Masker
from conveyor.model import LogRecord, Status, Step, StepRecord, Stream

__all__ = ["ScriptedExecutor"]

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _now() -> datetime:
    return datetime.now(UTC)


class _TimedOut(Exception):
    pass


class ScriptedExecutor:
    def __init__(self, worker: str = "fake") -> None:
        self.worker = worker
        self.specs: list[AttemptSpec] = []
        self.cancels: list[tuple[str, str]] = []
        self._running: dict[tuple[str, str], asyncio.Task[AttemptResult]] = {}

    async def run(self, spec: AttemptSpec, on_output: OutputSink) -> AttemptResult:
        self.specs.append(spec)
        progress: dict[str, object] = {"line": spec.first_line - 1, "steps": []}
        task = asyncio.ensure_future(self._run(spec, on_output, progress))
        self._running[(spec.run_id, spec.job)] = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return self._result(progress, Status.CANCELED)
        finally:
            self._running.pop((spec.run_id, spec.job), None)

    def cancel(self, run_id: str, job: str) -> None:
        self.cancels.append((run_id, job))
        task = self._running.get((run_id, job))
        if task is not None:
            task.cancel()

    def _result(
        self,
        progress: dict[str, object],
        status: Status,
        *,
        exit_code: int | None = None,
        timed_out: bool = False,
        reason: str | None = None,
    ) -> AttemptResult:
        steps = progress["steps"]
        assert isinstance(steps, list)
        line = progress["line"]
        assert isinstance(line, int)
        return AttemptResult(
            status=status,
            steps=tuple(steps),
            last_line=line,
            exit_code=0 if status is Status.SUCCESS else exit_code,
            timed_out=timed_out,
            reason=reason,
            worker=self.worker,
        )

    async def _run(
        self, spec: AttemptSpec, on_output: OutputSink, progress: dict[str, object]
    ) -> AttemptResult:
        masker = Masker(spec.mask)

        def emit(step: str, stream: Stream, text: str) -> None:
            line = progress["line"]
            assert isinstance(line, int)
            record = LogRecord(
                _now(), spec.run_id, spec.job, step, stream, line + 1, masker.mask(text)
            )
            progress["line"] = line + 1
            on_output([record])

        deadline = time.monotonic() + spec.timeout_s
        failure: tuple[int | None, bool, str] | None = None
        for step in spec.steps:
            code, timed_out = await self._step(spec, step, emit, deadline, progress, record=True)
            if code != 0:
                reason = (
                    f"job timed out after {spec.timeout_s:g}s"
                    if timed_out
                    else f"step {step.name!r} exited with code {code}"
                )
                emit(step.name, Stream.SYSTEM, reason)
                failure = (code, timed_out, reason)
                break
        for step in spec.after_steps:
            code, _ = await self._step(
                spec, step, emit, time.monotonic() + 300, progress, record=False
            )
            if code != 0:
                break
        if failure is None:
            return self._result(progress, Status.SUCCESS)
        code, timed_out, reason = failure
        return self._result(
            progress, Status.FAILED, exit_code=code, timed_out=timed_out, reason=masker.mask(reason)
        )

    async def _step(
        self,
        spec: AttemptSpec,
        step: Step,
        emit: object,
        deadline: float,
        progress: dict[str, object],
        *,
        record: bool,
    ) -> tuple[int | None, bool]:
        assert callable(emit)
        env = step_environment(
            spec.env, step, event_variables=spec.event_variables, secrets=spec.secrets
        )
        started_at = _now()
        code: int | None = 0
        timed_out = False
        try:
            for line in step.run.splitlines():
                code = await self._line(line.strip(), step.name, env, emit, deadline)
                if code != 0:
                    break
        except _TimedOut:
            code, timed_out = None, True
        if record:
            steps = progress["steps"]
            assert isinstance(steps, list)
            status = Status.SUCCESS if code == 0 else Status.FAILED
            steps.append(StepRecord(step.name, status, code, started_at, _now()))
        return code, timed_out

    async def _line(
        self, line: str, step: str, env: Mapping[str, str], emit: object, deadline: float
    ) -> int:
        assert callable(emit)
        verb, _, rest = line.partition(" ")
        if verb == "echo":
            stream = Stream.STDOUT
            if rest.endswith(">&2"):
                stream, rest = Stream.STDERR, rest.removesuffix(">&2").rstrip()
            emit(step, stream, _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), rest))
            return 0
        if verb == "sleep":
            left = deadline - time.monotonic()
            if float(rest) > left:
                await asyncio.sleep(max(0.0, left))
                raise _TimedOut
            await asyncio.sleep(float(rest))
            return 0
        if verb == "exit":
            return int(rest)
        if not line:
            return 0
        raise ValueError(f"ScriptedExecutor: unknown script line {line!r}")
