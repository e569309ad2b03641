"""Fixtures of the security tests: the server tests' real app on loopback."""

from __future__ import annotations

from tests.integration.server.conftest import remote

__all__ = ["remote"]
