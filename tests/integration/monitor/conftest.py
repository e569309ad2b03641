"""Fixtures for the monitor's integration tests: a fake upstream on loopback seeded with a
few pipelines per provider (helpers live in tests.fakes.upstreams.scenario).

The repository root goes on sys.path so `tests.fakes.upstreams` imports whatever way pytest
was started.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.fakes.upstreams import FakeUpstream  # noqa: E402
from tests.fakes.upstreams.scenario import seed  # noqa: E402


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    seed(upstream)
    await upstream.start()
    yield upstream
    await upstream.stop()
