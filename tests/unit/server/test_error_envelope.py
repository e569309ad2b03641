"""The one error envelope answers any ConveyorError by its class attributes."""

from __future__ import annotations

from conveyor.errors import ConflictError, GitError, StoreError
from conveyor.server.errors import ApiError, envelope_of


def test_envelope_of_a_tree_error_uses_its_class_attributes() -> None:
    assert envelope_of(ConflictError("run 7: the run is stopping")) == (
        409,
        "conflict",
        "run 7: the run is stopping",
    )
    assert envelope_of(GitError("checkout acme/app: no branch named 'x'"))[:2] == (
        502,
        "git_failed",
    )


def test_envelope_of_a_store_error_hides_its_message() -> None:
    status, code, message = envelope_of(StoreError("/srv/home/conveyor.db: disk I/O error"))
    assert (status, code) == (503, "store_unavailable")
    assert "conveyor.db" not in message


def test_api_error_sets_its_status_and_code_per_answer() -> None:
    error = ApiError(404, "job_not_found", "Run 'r' has no job 'x'.")
    assert envelope_of(error) == (404, "job_not_found", "Run 'r' has no job 'x'.")
