"""Helpers of the seeded chaos test (tests/reliability/test_chaos.py)."""
