"""Fixtures of the end-to-end tests."""

from collections.abc import Callable, Iterator

import pytest

from tests.e2e.runs import Run, launch


@pytest.fixture
def start_run() -> Iterator[Callable[..., Run]]:
    """`launch`, with whatever it started stopped and deleted at the end of the test."""
    runs: list[Run] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> Run:
        runs.append(launch(*flags, env=env))
        return runs[-1]

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.stop()
        run.cleanup()
