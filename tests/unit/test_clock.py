"""The Clock contract, held by the system clock and the fake."""

from __future__ import annotations

from datetime import UTC

import pytest

from conveyor.clock import SYSTEM_CLOCK, Clock
from tests.fakes.clock import FakeClock


@pytest.fixture(params=["system", "fake"])
def clock(request: pytest.FixtureRequest) -> Clock:
    return SYSTEM_CLOCK if request.param == "system" else FakeClock()


def test_clock_now_is_aware_utc(clock: Clock) -> None:
    assert clock.now().utcoffset() == UTC.utcoffset(None)


def test_clock_monotonic_never_goes_back(clock: Clock) -> None:
    first = clock.monotonic()
    assert clock.monotonic() >= first


def test_fake_clock_jumps_both_clocks() -> None:
    clock = FakeClock()
    before, ticks = clock.now(), clock.monotonic()
    clock.advance(90)
    assert ((clock.now() - before).total_seconds(), clock.monotonic() - ticks) == (90.0, 90.0)
