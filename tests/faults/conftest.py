"""The faults tier: services killed, stopped, flooded with bad input (SPEC §8 proofs)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the tier's marker."""
    config.addinivalue_line("markers", "faults: fault injection over the real broker and database")
