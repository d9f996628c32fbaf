"""A service's CPU priority: taken at start, in its own session group when it leads one."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.priority import AUTOGROUP

ROOT = Path(__file__).resolve().parents[3]
PROBE = (
    "import os, sys; from shared.priority import take_priority; take_priority(int(sys.argv[1]));"
    "g = '/proc/self/autogroup'; print(os.getpriority(os.PRIO_PROCESS, 0));"
    "print(open(g).read().split()[-1] if os.path.exists(g) else '-')"
)


def probe(nice: int, *, own_session: bool) -> tuple[int, str]:
    """Niceness and autogroup niceness of a child that took `nice`."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(nice)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=own_session,
        capture_output=True,
        text=True,
        check=True,
    )
    priority, group = done.stdout.split()[-2:]  # after the log line
    return int(priority), group


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no Unix priorities here")
def test_a_session_leader_yields_with_its_group() -> None:
    priority, group = probe(10, own_session=True)
    assert priority == 10
    if AUTOGROUP.exists():
        assert group == "10"


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no Unix priorities here")
def test_in_a_shared_session_only_the_process_yields() -> None:
    before = AUTOGROUP.read_text().split()[-1] if AUTOGROUP.exists() else "-"
    priority, group = probe(10, own_session=False)
    assert priority == 10
    assert group == before


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no Unix priorities here")
def test_zero_leaves_the_priority_as_it_was() -> None:
    priority, group = probe(0, own_session=True)
    assert priority == os.getpriority(os.PRIO_PROCESS, 0)
    assert group in ("0", "-")
