"""Test-suite plugins: `tests.postgres` (a real PostgreSQL server for the store tests) and
`tests.redis` (a real redis-server for the fleet's tests)."""

pytest_plugins = ["tests.postgres", "tests.redis"]
