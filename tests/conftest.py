"""Test-suite plugins: `tests.postgres` (a real PostgreSQL server for the store tests)."""

pytest_plugins = ["tests.postgres"]
