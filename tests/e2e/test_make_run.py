"""`make run` end to end: the whole system starts, takes a contact, and Ctrl-C stops it all."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import pytest

from tests.infra import ROOT, free_port
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.e2e


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"run.py exited early:\n{_what_went_wrong(log)}"
        assert time.monotonic() < deadline, f"no {text!r} in {timeout}s:\n{_what_went_wrong(log)}"
        time.sleep(0.3)


def _what_went_wrong(log: Path) -> str:
    """run.py's own lines and every error line first (the shutdown that follows buries them)."""
    lines = log.read_text(errors="replace").splitlines()
    telling = [
        line
        for line in lines
        if line.startswith("[run]") or "error" in line.lower() or "Traceback" in line
    ]
    return "\n".join([*telling[-40:], "--- last lines ---", *lines[-15:]])


def _unreadable_lines(text: str) -> list[str]:
    """Service lines that are not one JSON event, show a Python dict, or report an error."""
    bad = []
    for line in text.splitlines():
        if not line.startswith("{"):
            # run.py's own lines, the infra scripts' and the banner: never a service's.
            if "{'" in line or not (line == "" or line.startswith(("[", "  ", "lexcare is"))):
                bad.append(line)
            continue
        try:
            level = orjson.loads(line)["level"]
        except (orjson.JSONDecodeError, KeyError):
            bad.append(line)
            continue
        if level in {"error", "critical"} or "{'" in line:
            bad.append(line)
    return bad


def _pids_using(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


async def test_the_whole_system_starts_takes_a_contact_and_stops_on_ctrl_c():
    data = Path(tempfile.mkdtemp(prefix="lexcare-run-"))
    kafka_port, mongo_port = free_port(span=2), free_port()
    offset = free_port(span=6) - 8081
    log = data / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "deploy/local/run.py",
                "--kafka-port",
                str(kafka_port),
                "--mongo-port",
                str(mongo_port),
                "--data",
                str(data / "state"),
                "--port-offset",
                str(offset),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "LEXCARE_LOG_FORMAT": "json"},
        )
    try:
        _wait_for_line(log, "lexcare is running", proc, timeout=180)
        async with RawKafka(f"127.0.0.1:{kafka_port}", "") as kafka:
            event_id = str(uuid.uuid4())
            await kafka.send(
                "contact.received",
                {
                    "event_id": event_id,
                    "event_type": "contact.received",
                    "occurred_at": "2026-11-23T09:15:00+07:00",
                    "producer": "e2e",
                    "channel": "website",
                    "sender_id": "web-42",
                    "message": "xin tư vấn",
                    "customer": {"email": "Khach.Hang@Example.VN"},
                },
                key="web-42",
            )
            events = await kafka.read(
                "case.classified",
                until=lambda records: any(event_id.encode() in r.value for r in records),
                timeout=60,
            )
            assert any(event_id.encode() in r.value for r in events)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=90)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "[run] stopped" in text
    assert _pids_using(str(data)) == []
    assert "Khach.Hang@Example.VN".lower() not in text.lower()
    # A healthy start, one contact and a clean stop: JSON lines only, no error among them.
    assert _unreadable_lines(text) == []
    subprocess.run(
        [
            "bash",
            str(ROOT / "deploy/local/ferretdb.sh"),
            "stop",
            str(data / "state" / "ferretdb"),
            "--purge",
        ],
        check=False,
    )
