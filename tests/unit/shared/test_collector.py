"""Python's collector, as a service sets it: survivors of each full collection frozen,
everything scanned again once per `full_every_s`."""

import subprocess
import sys
from pathlib import Path

from shared.collector import Collector

ROOT = Path(__file__).resolve().parents[3]


class FakeGc:
    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def collector(self, full_every_s: float) -> Collector:
        return Collector(
            full_every_s=full_every_s,
            clock=lambda: self.now,
            freeze=lambda: self.calls.append("freeze"),
            unfreeze=lambda: self.calls.append("unfreeze"),
        )


def full_collection(collector: Collector, *, generation: int = 2) -> None:
    collector("start", {"generation": generation})
    collector("stop", {"generation": generation, "collected": 0, "uncollectable": 0})


def test_each_full_collection_freezes_its_survivors_and_one_in_a_while_scans_all():
    fake = FakeGc()
    collector = fake.collector(full_every_s=600)
    for at in (10, 200, 590):
        fake.now = at
        full_collection(collector)
    full_collection(collector, generation=1)  # a younger one changes nothing
    assert fake.calls == ["freeze"] * 3
    fake.now = 601
    full_collection(collector)  # due: the next one reaches everything
    assert fake.calls[-1] == "unfreeze" and collector.full
    fake.now = 605
    full_collection(collector)
    assert fake.calls[-1] == "freeze" and not collector.full
    assert collector.next_full == 1201


PROBE = """
import gc, sys, weakref
from shared.collector import Collector, tune_collector

class Node:
    pass

tune_collector(young=20_000, full_every_s=3600)
assert gc.get_threshold()[0] == 20_000
assert gc.get_freeze_count() > 1000, "start-up objects frozen"
held = [[n] for n in range(5000)]
before = gc.get_freeze_count()
gc.collect()
assert gc.get_freeze_count() >= before + 5000, "survivors frozen"
node = Node()
node.me = node  # a reference cycle, frozen by the next collection
gone = weakref.ref(node)
gc.collect()
del node
if sys.argv[1] == "due":  # the hour has passed
    [collector] = [c for c in gc.callbacks if isinstance(c, Collector)]
    collector.next_full = 0
for _ in range(3):
    gc.collect()
print("reclaimed" if gone() is None else "held")
"""


def probe(when: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, when],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()[-1]


def test_a_cycle_let_go_among_frozen_objects_waits_for_the_next_full_scan():
    assert probe("within the hour") == "held"
    assert probe("due") == "reclaimed"
