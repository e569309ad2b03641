"""Unit tests of conveyor.suggest, the one did-you-mean."""

from __future__ import annotations

from conveyor.suggest import closest_name, did_you_mean


def test_did_you_mean_close_and_far() -> None:
    assert did_you_mean("biuld", ["build", "test"]) == ' (did you mean "build"?)'
    assert did_you_mean("zzz", ["build", "test"]) == ""


def test_closest_name_suggests_matrix_job() -> None:
    names = ["build", "test [PY=3.12]"]
    assert (closest_name("test [PY=3.21]", names), closest_name("zzz", names)) == (
        "test [PY=3.12]",
        None,
    )


def test_closest_name_is_the_same_whatever_the_order() -> None:
    names = ["stage", "stages", "state"]
    assert closest_name("stag", names) == closest_name("stag", reversed(names))


def test_closest_name_cutoff_narrows_the_choice() -> None:
    assert (closest_name("scrpt", ["script"]), closest_name("sc", ["script"], cutoff=0.8)) == (
        "script",
        None,
    )
