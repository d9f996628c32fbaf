"""The process's CPU priority: the services off the way from a contact to its lawyer yield."""

import errno
import os
import time
from pathlib import Path

import structlog

log = structlog.get_logger("lexcare.priority")
AUTOGROUP = Path("/proc/self/autogroup")


def take_priority(nice: int) -> None:
    """Run this process at niceness `nice` (never raises its priority).

    Linux with autogroup scheduling (`kernel.sched_autogroup_enabled`) shares the CPU
    between sessions first, and niceness only orders the processes of one session. A
    process that leads its own session (`make run`'s supervisor, the tests and the
    benchmark start each service so) is one group, so its group's niceness is set too;
    in a shared session the group is left alone (it would slow its other processes).
    In containers the runtime's CPU shares decide (docs/operations.md).

    Linux lets an unprivileged user set one group's niceness per 100 ms (EAGAIN
    otherwise), and `make run` starts the services together: the write is tried again.
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    if os.getpriority(os.PRIO_PROCESS, 0) < nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    group = os.getsid(0) == os.getpid() and AUTOGROUP.exists() and _set_group_nice(nice)
    log.info("cpu_priority", nice=os.getpriority(os.PRIO_PROCESS, 0), autogroup=group)


def _set_group_nice(nice: int, *, tries: int = 30, pause: float = 0.11) -> bool:
    """Write the session group's niceness; False when the kernel refuses it for good."""
    for _ in range(tries):
        try:
            AUTOGROUP.write_text(str(nice))
        except OSError as error:
            if error.errno != errno.EAGAIN:
                return False
            time.sleep(pause)
        else:
            return True
    return False
