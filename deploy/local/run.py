"""`make run`: Kafka, FerretDB and the services on this machine; Ctrl-C stops them all.

Infrastructure and services run in sessions of their own, so the terminal's Ctrl-C reaches
only this supervisor, which then stops things in order: services first (they finish their
in-flight messages and commit), then the database and the broker. A service that dies is
started again after a backoff; one that crashes too often in a short time stops everything.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from supervisor import GaveUp, RestartPolicy, Service, say, stop_all, watch

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
SERVICES = {
    "intake": 8081,
    "routing": 8082,
    "followup": 8083,
    "survey": 8084,
    "metrics": 8085,
    "gateway": 8086,
    "desk": 8087,
}
MAIL_PORT = 8025
"""The gateway's SMTP listener for the care mailbox (plus the port offset)."""
DEV_CARE_MAILBOX = "cskh@lexcare.example.vn"


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
    parser.add_argument(
        "--restart-backoff",
        type=float,
        default=float(os.environ.get("LEXCARE_RESTART_BACKOFF_S", 1.0)),
        help="seconds before a dead service starts again; doubles with each recent crash",
    )
    parser.add_argument(
        "--restart-backoff-max",
        type=float,
        default=float(os.environ.get("LEXCARE_RESTART_BACKOFF_MAX_S", 30.0)),
    )
    parser.add_argument(
        "--max-crashes",
        type=int,
        default=int(os.environ.get("LEXCARE_MAX_CRASHES", 5)),
        help="crashes of one service within --crash-window that stop everything",
    )
    parser.add_argument(
        "--crash-window", type=float, default=float(os.environ.get("LEXCARE_CRASH_WINDOW_S", 60.0))
    )
    return parser.parse_args()


def restart_policy(args: argparse.Namespace) -> RestartPolicy:
    """The restart policy the flags describe."""
    return RestartPolicy(
        backoff_s=args.restart_backoff,
        backoff_max_s=args.restart_backoff_max,
        max_crashes=args.max_crashes,
        window_s=args.crash_window,
    )


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


def announce_recovered(services: list[Service]) -> None:
    """Say when a restarted service answers /readyz again."""
    for service in services:
        if service.recovering and ready(service.port):
            service.recovering = False
            say(f"{service.name} is ready again")


def banner(kafka: str, mongo: str, data: Path, port_offset: int, mail: str) -> str:
    """Where everything listens: the last lines `make run` prints on start."""
    lines = [
        "",
        "lexcare is running. Ctrl-C stops everything.",
        f"  Kafka      {kafka}   (topics: contact.received, case.classified, ...)",
        f"  MongoDB    {mongo}   (FerretDB, data in {data})",
    ]
    for name, port in SERVICES.items():
        url = f"http://127.0.0.1:{port + port_offset}"
        lines.append(f"  {name:<10} {url}/healthz  /readyz  /metrics")
    lines.append(f"  KPIs       http://127.0.0.1:{SERVICES['metrics'] + port_offset}/kpis")
    gateway = f"http://127.0.0.1:{SERVICES['gateway'] + port_offset}"
    lines.append(f"  Webhooks   {gateway}/webhooks/{{facebook,zalo,call}}  {gateway}/forms/contact")
    lines.append(f"  Surveys    {gateway}/s/<token>   (the survey_url of survey.requested)")
    lines.append(f"  Mail in    {mail}")
    desk = f"http://127.0.0.1:{SERVICES['desk'] + port_offset}"
    lines.append(f"  Care desk  {desk}/   dev sign-ins (not for production): see README")
    return "\n".join(lines)


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
    policy = restart_policy(args)
    services: list[Service] = []
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
        # Survey links point at this run's gateway (unless the caller set an address).
        gateway_url = f"http://127.0.0.1:{SERVICES['gateway'] + args.port_offset}"
        env.setdefault("LEXCARE_SURVEY_BASE_URL", gateway_url)
        # The desk's dashboard reads this run's metrics.
        metrics_url = f"http://127.0.0.1:{SERVICES['metrics'] + args.port_offset}"
        env.setdefault("LEXCARE_METRICS_URL", metrics_url)
        # The care mailbox's listener: mail to the development care address is a contact.
        env.setdefault("LEXCARE_GATEWAY_SMTP_PORT", str(MAIL_PORT + args.port_offset))
        env.setdefault("LEXCARE_CARE_MAILBOXES", f'["{DEV_CARE_MAILBOX}"]')
        mail = (
            f"smtp://127.0.0.1:{env['LEXCARE_GATEWAY_SMTP_PORT']}   "
            f"(for {', '.join(json.loads(env['LEXCARE_CARE_MAILBOXES'])) or 'no address'})"
        )
        for name, port in SERVICES.items():
            service_env = {**env, "LEXCARE_HTTP_PORT": str(port + args.port_offset)}
            command = [sys.executable, "-m", f"services.{name}"]
            services.append(Service(name, command, service_env, ROOT, port + args.port_offset))
            services[-1].start()
        deadline = time.monotonic() + args.ready_timeout
        waiting = list(services)
        while waiting and not stopping:
            watch(services, policy, time.monotonic())
            waiting = [service for service in services if not ready(service.port)]
            if time.monotonic() > deadline:
                say(f"not ready after {args.ready_timeout:.0f}s: {[s.name for s in waiting]}")
                return 1
            time.sleep(0.3)
        if stopping:
            return 0
        for service in services:
            service.recovering = False
        print(banner(kafka, mongo, data, args.port_offset, mail), flush=True)
        while not stopping:
            watch(services, policy, time.monotonic())
            announce_recovered(services)
            time.sleep(0.5)
        return 0
    except GaveUp as error:
        say(f"{error}: stopping everything")
        return 1
    finally:
        print("\n[run] stopping services ...", flush=True)
        stop_all(services)
        for script, path in reversed(started_infra):
            subprocess.run(["bash", str(LOCAL / script), "stop", str(path)], check=False)
        print("[run] stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
