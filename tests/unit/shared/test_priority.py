"""A service's CPU priority: taken at start, in its own session group when it leads one.

/proc/self/autogroup reads empty for a process still in the boot's default group (a
container's first session): that is printed as "-", like a kernel without autogroups.
"""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared import priority
from shared.priority import AUTOGROUP

ROOT = Path(__file__).resolve().parents[3]
PROBE = (
    "import os, sys; from shared.priority import take_priority; take_priority(int(sys.argv[1]));"
    "g = '/proc/self/autogroup'; print(os.getpriority(os.PRIO_PROCESS, 0));"
    "print((open(g).read().split() or ['-'])[-1] if os.path.exists(g) else '-')"
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
    before = (AUTOGROUP.read_text().split() or ["-"])[-1] if AUTOGROUP.exists() else "-"
    priority, group = probe(10, own_session=False)
    assert priority == 10
    assert group == before


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no Unix priorities here")
def test_zero_leaves_the_priority_as_it_was() -> None:
    priority, group = probe(0, own_session=True)
    assert priority == os.getpriority(os.PRIO_PROCESS, 0)
    assert group in ("0", "-")


class BusyGroup:
    """An autogroup file the kernel refuses `busy` times with EAGAIN, as it does for an
    unprivileged user who sets another group's niceness within 100 ms."""

    def __init__(self, busy: int, error: int = errno.EAGAIN) -> None:
        self.busy, self.error, self.written = busy, error, []

    def write_text(self, text: str) -> None:
        if self.busy:
            self.busy -= 1
            raise OSError(self.error, os.strerror(self.error))
        self.written.append(text)


def test_a_busy_group_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    group = BusyGroup(busy=3)
    monkeypatch.setattr(priority, "AUTOGROUP", group)
    assert priority._set_group_nice(10, pause=0)
    assert group.written == ["10"]


def test_a_refused_group_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for group, tries in ((BusyGroup(busy=1, error=errno.EPERM), 5), (BusyGroup(busy=9), 5)):
        monkeypatch.setattr(priority, "AUTOGROUP", group)
        assert not priority._set_group_nice(10, tries=tries, pause=0)
        assert group.written == []
