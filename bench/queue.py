"""Routing's queue under a backlog: what one freed slot costs as more cases wait.

`python -m bench.queue [--waiting 0,1000,4000] [--freed 100]` (≈ 1 min, in memory, no
broker or database; not part of `make bench`). Routing's rules run under the unit tests'
harness: twenty people, ten who know family law and ten land law, five slots each. Family
is full and `--waiting` family cases wait; land is full with `--freed` land cases waiting
behind them. Then land cases resolve one at a time: each frees a slot that the queue must
give to the oldest waiting land case, past every waiting family case. Prints the time per
freed slot at each backlog (the harness's own cost is the same at each).
"""

import argparse
import time
from pathlib import Path

import yaml

from services.routing import domain
from services.routing.app import RoutingSettings, roster_file_step
from services.routing.handlers import routing_runtime
from services.routing.state import ROSTER_KEY
from shared import topics
from shared.clock import FakeClock
from shared.logging import configure_logging
from tests.runtime_harness import NO_DATABASE, RuleHarness
from tests.unit.routing.factories import T0, classified, person, resolved

SLOTS = 5
PEOPLE_PER_FIELD = 10


def per_freed_slot(waiting: int, freed: int) -> tuple[float, int]:
    """Seconds per freed land slot with `waiting` family cases queued ahead; and how many
    land cases the freed slots reached (each should reach one)."""
    settings = RoutingSettings()
    fees = domain.parse_fee_schedule(yaml.safe_load(Path(settings.fees_file).read_text()))
    harness = RuleHarness(routing_runtime(settings, NO_DATABASE, fees=fees), FakeClock(T0))
    people = [
        person(f"{field}-{n}", legal_fields=[field], capacity=SLOTS)
        for field in ("family", "land")
        for n in range(PEOPLE_PER_FIELD)
    ]
    harness.send(roster_file_step(people), key=ROSTER_KEY)
    busy = SLOTS * PEOPLE_PER_FIELD

    def deliver(topic: str, event: dict) -> None:
        harness.send_raw(topic, event, key=event["case_id"])

    for n in range(busy + waiting):
        deliver(topics.CASE_CLASSIFIED, classified(f"fam-{n}", "family", minute=n % 60))
    for n in range(busy + freed):
        deliver(topics.CASE_CLASSIFIED, classified(f"land-{n}", "land", minute=60 + n % 60))
    before = len(harness.out[topics.CASE_ASSIGNED])
    began = time.perf_counter()
    for n in range(freed):
        deliver(topics.CASE_RESOLVED, resolved(f"land-{n}"))
    took = time.perf_counter() - began
    reached = sum(
        1
        for e in harness.out[topics.CASE_ASSIGNED][before:]
        if e["assignee_id"] and e["case_id"].startswith("land-")
    )
    return took / freed, reached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", default="0,1000,4000")
    parser.add_argument("--freed", type=int, default=100)
    args = parser.parse_args()
    configure_logging("routing", level="WARNING")
    base: float | None = None
    print(f"{'family cases waiting':>22} {'ms per freed land slot':>24} {'× none waiting':>15}")
    for waiting in (int(w) for w in args.waiting.split(",")):
        seconds, reached = per_freed_slot(waiting, args.freed)
        base = base or seconds
        print(f"{waiting:>22,} {seconds * 1000:>24.2f} {seconds / base:>15.1f}")
        if reached != args.freed:
            print(f"    (only {reached} of {args.freed} freed slots reached a waiting case)")


if __name__ == "__main__":
    main()
