"""Fakes that stand in for conveyor's boundaries in tests; each passes its Protocol's
conformance suite (e.g. tests/integration/store/test_conformance.py for MemoryRunStore)."""
