"""Prometheus instruments every service exposes on /metrics."""

from prometheus_client import Counter, Gauge, Histogram

HANDLED = Counter("lexcare_events_handled_total", "Messages handled successfully.", ["topic"])
FAILED = Counter("lexcare_events_failed_total", "Handler failures (each try).", ["topic"])
HANDED_OFF = Counter(
    "lexcare_runtime_handed_off_total",
    "Events to the service's own internal topics run in the cycle that emitted them.",
    ["topic"],
)
DEAD_LETTERS = Counter("lexcare_dead_letters_total", "Messages sent to a DLQ.", ["topic"])
LATENCY = Histogram(
    "lexcare_handler_seconds",
    "Handler latency.",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RUNTIME_PHASE = Histogram(
    "lexcare_runtime_phase_seconds",
    "Time one runtime cycle spends per phase: wait (the poll), rules, persist, publish, commit.",
    ["phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "lexcare_consumer_lag", "Messages behind the end of the partition.", ["topic", "partition"]
)
TIMERS_DUE = Gauge("lexcare_timers_due", "Durable timers due and not fired yet.")
RUNTIME_ROUND_TRIPS = Gauge(
    "lexcare_runtime_db_round_trips", "Database round trips of the stateful runtime since start."
)
RUNTIME_CONSUMED = Gauge(
    "lexcare_runtime_records_consumed", "Records the stateful runtime consumed since start."
)
RUNTIME_RESTORE = Gauge(
    "lexcare_runtime_restore_seconds",
    "Time the last assignment took to restore its new partitions' state (values, timers, ledger).",
)
RUNTIME_KEYS = Gauge(
    "lexcare_runtime_keys_in_memory", "Values the owned partitions hold in memory."
)
RUNTIME_TIMERS = Gauge(
    "lexcare_runtime_timers_pending",
    "Timers the owned partitions hold in memory (those due within the timer horizon).",
)
RUNTIME_LEDGER = Gauge(
    "lexcare_runtime_ledger_ids",
    "Handled event ids the owned partitions remember (LEXCARE_RUNTIME_LEDGER_SIZE each at most).",
)
RUNTIME_RELOADS = Gauge(
    "lexcare_runtime_keys_reloaded",
    "Keys brought back from the owned partitions' cold stores (a rule needed a value).",
)
