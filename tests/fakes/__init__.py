"""Fakes that stand in for conveyor's boundaries in tests; each passes its Protocol's
conformance suite (tests/integration/store/test_conformance.py for MemoryRunStore,
tests/integration/store/test_log_conformance.py for MemoryLogs)."""
