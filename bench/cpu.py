"""Where the machine's CPU goes during a phase: each service, the broker, the database,
the benchmark itself, and the rest, as a share of one core.

Read from /proc: a process's user + system time (`/proc/<pid>/stat`), the machine's busy
time (`/proc/stat`). Processes are found by their command line, so a Kafka or FerretDB
the benchmark did not start (LEXCARE_KAFKA / LEXCARE_MONGO_URL) is counted too; a second
broker on the machine (a test run) would be counted with it.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.infra import cpu_seconds

TICK = os.sysconf("SC_CLK_TCK")
GROUPS = {
    "kafka": lambda cmd, comm: "kafka.Kafka" in cmd,
    "ferretdb": lambda cmd, comm: comm == "ferretdb",
    "postgres": lambda cmd, comm: comm.startswith("postgres"),
}
"""The infrastructure's processes, by command line (`\\0`-joined) and name."""


@dataclass(frozen=True)
class CpuReading:
    """CPU seconds each process used so far (pid → group, seconds), at a monotonic instant."""

    at: float
    processes: dict[int, tuple[str, float]]
    machine: float

    @property
    def used(self) -> dict[str, float]:
        """CPU seconds so far by group."""
        out: dict[str, float] = {}
        for group, seconds in self.processes.values():
            out[group] = out.get(group, 0.0) + seconds
        return out


def machine_busy() -> float:
    """Seconds every core of the machine spent busy (not idle, not waiting on I/O)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def _infrastructure() -> dict[int, tuple[str, float]]:
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        for group, matches in GROUPS.items():
            if matches(cmd, comm):
                found[int(entry.name)] = (group, cpu_seconds(int(entry.name)) or 0.0)
                break
    return found


def read(services: dict[str, int]) -> CpuReading:
    """CPU used so far by each service (name → pid), the infrastructure and this process."""
    processes = _infrastructure()
    processes |= {pid: (name, cpu_seconds(pid) or 0.0) for name, pid in services.items()}
    processes[os.getpid()] = ("benchmark", cpu_seconds(os.getpid()) or 0.0)
    return CpuReading(time.monotonic(), processes, machine_busy())


def shares(before: CpuReading, after: CpuReading) -> dict[str, float]:
    """Percent of one core each group used between two readings; `other` is the rest of
    the machine's busy time, `machine` all of it (200 % = both cores of this machine).

    A process is counted by what it used between the readings (all of it when it started
    in between); one that ended in between is lost to `other` (PostgreSQL's backends come
    and go with the database connections)."""
    wall = after.at - before.at
    if wall <= 0:
        return {}
    used: dict[str, float] = dict.fromkeys([*before.used, *GROUPS, "benchmark"], 0.0)
    for pid, (group, seconds) in after.processes.items():
        earlier = before.processes.get(pid)
        spent = seconds - earlier[1] if earlier is not None and earlier[0] == group else seconds
        used[group] = used.get(group, 0.0) + max(0.0, spent)
    out = {group: round(seconds / wall * 100, 1) for group, seconds in used.items()}
    machine = (after.machine - before.machine) / wall * 100
    out["other"] = round(max(0.0, machine - sum(out.values())), 1)
    out["machine"] = round(machine, 1)
    return out
