"""`make run` (deploy/local/run.py) as the end-to-end tests start it: free ports, a
temporary run directory holding all of its state, JSON logs in a file."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.infra import ROOT, free_ports


@dataclass
class Run:
    """run.py started on free ports, its output in a log file under `data`."""

    proc: subprocess.Popen
    data: Path
    log: Path
    kafka: str
    port_offset: int

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float, *, after: int = 0) -> re.Match:
        """The first match of `pattern` in the log past offset `after`, polled to a deadline."""
        deadline = time.monotonic() + timeout
        while not (found := re.compile(pattern, re.M).search(self.text(), after)):
            assert self.proc.poll() is None, f"run.py exited early:\n{what_went_wrong(self.log)}"
            assert time.monotonic() < deadline, (
                f"no {pattern!r} in {timeout}s:\n{what_went_wrong(self.log)}"
            )
            time.sleep(0.3)
        return found

    def stop(self) -> int:
        """Ctrl-C, as a terminal sends it; run.py's exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=90)

    def cleanup(self) -> None:
        """Stop whatever run.py left, delete the run directory (all of its state is in it)."""
        for name in ("ferretdb", "kafka"):
            script, state = ROOT / "deploy" / "local" / f"{name}.sh", self.data / "state" / name
            subprocess.run(["bash", str(script), "stop", str(state)], check=False)
        shutil.rmtree(self.data, ignore_errors=True)


def launch(*flags: str, env: dict[str, str] | None = None) -> Run:
    """Start deploy/local/run.py on free ports in a temporary directory."""
    data = Path(tempfile.mkdtemp(prefix="lexcare-run-"))
    # Kafka's two ports, the database's, one per service (8081..8087) and the mail port,
    # none of them in use yet: drawn apart from one another.
    kafka_port, mongo_port, services, smtp = free_ports(2, 1, 7, 1)
    offset = services - 8081
    log = data / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "deploy/local/run.py", "--data", str(data / "state")),
                *("--kafka-port", str(kafka_port), "--mongo-port", str(mongo_port)),
                *("--port-offset", str(offset), *flags),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "LEXCARE_LOG_FORMAT": "json",
                "LEXCARE_GATEWAY_SMTP_PORT": str(smtp),
                **(env or {}),
            },
        )
    return Run(proc, data, log, f"127.0.0.1:{kafka_port}", offset)


def what_went_wrong(log: Path) -> str:
    """run.py's own lines, every error or warning line and the runtime's partition lines
    first (the shutdown that follows buries them)."""
    lines = log.read_text(errors="replace").splitlines()
    marks = ("error", "warning", "traceback", "partitions_", "runtime")
    telling = [
        line for line in lines if line.startswith("[run]") or any(m in line.lower() for m in marks)
    ]
    return "\n".join([*telling[-80:], "--- last lines ---", *lines[-15:]])
