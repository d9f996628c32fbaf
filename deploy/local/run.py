"""`make run`: Kafka, FerretDB and the five services on this machine; Ctrl-C stops them all.

Infrastructure and services run in sessions of their own, so the terminal's Ctrl-C reaches
only this supervisor, which then stops things in order: services first (they finish their
in-flight messages and commit), then the database and the broker.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
SERVICES = {"intake": 8081, "routing": 8082, "followup": 8083, "survey": 8084, "metrics": 8085}


def parse_args() -> argparse.Namespace:
    """Ports and data directory, from flags or LEXCARE_* variables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--kafka-port", type=int, default=int(os.environ.get("LEXCARE_KAFKA_PORT", 9092))
    )
    parser.add_argument(
        "--mongo-port", type=int, default=int(os.environ.get("LEXCARE_MONGO_PORT", 27017))
    )
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("LEXCARE_RUN_DIR", ROOT / ".run"))
    )
    parser.add_argument(
        "--port-offset", type=int, default=0, help="added to every service's HTTP port"
    )
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    return parser.parse_args()


def infra(script: str, *args: str) -> None:
    """Run a deploy/local script in a session of its own (Ctrl-C does not reach it)."""
    subprocess.run(["bash", str(LOCAL / script), *args], check=True, start_new_session=True)


def ready(port: int) -> bool:
    """True when the service on `port` answers /readyz with 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def log_env() -> dict[str, str]:
    """Services write to this terminal: readable coloured lines on one, JSON otherwise."""
    if not sys.stdout.isatty():
        return {"LEXCARE_LOG_FORMAT": os.environ.get("LEXCARE_LOG_FORMAT", "json")}
    return {
        "LEXCARE_LOG_FORMAT": os.environ.get("LEXCARE_LOG_FORMAT", "console"),
        "FORCE_COLOR": "1",
    }


def stop_services(procs: dict[str, subprocess.Popen], grace: float = 30.0) -> None:
    """SIGTERM every service, wait for them to finish in-flight work, SIGKILL stragglers."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"[run] {name} did not stop in {grace:.0f}s: killing", flush=True)
            proc.kill()
            proc.wait()


def main() -> int:
    """Start everything, print where it listens, wait for Ctrl-C, stop everything."""
    args = parse_args()
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    data = args.data.resolve()
    kafka = f"127.0.0.1:{args.kafka_port}"
    mongo = f"mongodb://127.0.0.1:{args.mongo_port}/"
    procs: dict[str, subprocess.Popen] = {}
    started_infra: list[tuple[str, Path]] = []
    try:
        for script, port in (("kafka.sh", args.kafka_port), ("ferretdb.sh", args.mongo_port)):
            infra(script, "start", str(data / script.removesuffix(".sh")), str(port))
            started_infra.append((script, data / script.removesuffix(".sh")))
        env = {
            **os.environ,
            "LEXCARE_KAFKA": kafka,
            "LEXCARE_MONGO_URL": mongo,
            "PYTHONPATH": str(ROOT),
            **log_env(),
        }
        for name, port in SERVICES.items():
            service_env = {**env, "LEXCARE_HTTP_PORT": str(port + args.port_offset)}
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                cwd=ROOT,
                env=service_env,
                start_new_session=True,
            )
        deadline = time.monotonic() + args.ready_timeout
        waiting = dict(SERVICES)
        while waiting and not stopping:
            for name, port in list(waiting.items()):
                if procs[name].poll() is not None:
                    print(f"[run] {name} exited with {procs[name].returncode}", flush=True)
                    return 1
                if ready(port + args.port_offset):
                    del waiting[name]
            if time.monotonic() > deadline:
                print(f"[run] not ready after {args.ready_timeout:.0f}s: {sorted(waiting)}")
                return 1
            time.sleep(0.3)
        if stopping:
            return 0
        lines = [
            "",
            "lexcare is running. Ctrl-C stops everything.",
            f"  Kafka      {kafka}   (topics: contact.received, case.classified, ...)",
            f"  MongoDB    {mongo}   (FerretDB, data in {data})",
        ]
        for name, port in SERVICES.items():
            url = f"http://127.0.0.1:{port + args.port_offset}"
            lines.append(f"  {name:<10} {url}/healthz  /readyz  /metrics")
        lines.append(f"  KPIs       http://127.0.0.1:{SERVICES['metrics'] + args.port_offset}/kpis")
        print("\n".join(lines), flush=True)
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"[run] {name} exited with {proc.returncode}; stopping", flush=True)
                    stopping = True
            time.sleep(0.5)
        return 0
    finally:
        print("\n[run] stopping services ...", flush=True)
        stop_services(procs)
        for script, path in reversed(started_infra):
            subprocess.run(["bash", str(LOCAL / script), "stop", str(path)], check=False)
        print("[run] stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
