"""Settings every service shares; each service extends them (env prefix LEXCARE_)."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LexcareSettings(BaseSettings):
    """Connection, delivery and logging settings with local-run defaults."""

    model_config = SettingsConfigDict(env_prefix="LEXCARE_", extra="ignore")

    service_name: str = "lexcare"
    kafka: str = "127.0.0.1:9092"
    """Kafka bootstrap servers, comma separated."""
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_pool_size: int = 20
    """Connections per service process (handlers of a batch share them)."""
    mongo_db_prefix: str = "lexcare"
    """Each service owns the database `<prefix>_<service>`."""
    topic_prefix: str = ""
    """Prepended to every topic name: lets environments or tests share one cluster."""
    partitions: int = 3
    replication_factor: int = 1
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    timezone: str = "Asia/Ho_Chi_Minh"
    nice: int = Field(default=0, ge=0, le=19)
    """CPU priority the process takes at start (Unix niceness, 0–19): when the CPU is short,
    a higher value yields it to the others first. The services off the way from a contact
    to its lawyer (followup, survey, metrics) default to 10; they use idle CPU all the same."""

    gc_young_threshold: int = Field(default=20_000, ge=100)
    """New objects between two young collections of Python's garbage collector (CPython's
    default: 700). Set at start by `shared/collector.py`, with `gc_full_every_s`."""
    gc_full_every_s: float = Field(default=600.0, ge=0)
    """Python's full garbage collections scan only what came since the last one, and
    everything once per this many seconds (0: CPython's collector as it is). A full scan of
    a large state in memory paused a service for hundreds of milliseconds."""

    max_attempts: int = 3
    """Tries of a failing message before it goes to the dead-letter topic."""
    retry_backoff_s: float = 0.2
    """Pause before a failed message is redelivered; doubles per try, capped at 5 s."""
    graceful_timeout_s: float = 20.0
    """On SIGTERM, how long in-flight handlers may run before they are cancelled."""
    linger_ms: int = 5
    """Producer batching delay of the FastStream publishers (one event at a time)."""
    batch_max_records: int = 200
    """Records consumed per poll and committed together (ledger marks written once per batch)."""
    batch_timeout_ms: int = 50
    """How long a poll waits for records before it hands over what it has."""
    batch_concurrency: int = 16
    """Keys (cases, surveys, customers) of a batch handled at once; one key is in order."""

    runtime_max_keys: int = Field(default=100_000, gt=0)
    """Values a stateful service keeps in memory per partition; idle ones past it leave."""
    runtime_keep_recent_s: float = Field(default=10.0, ge=0)
    """Seconds a value used stays in memory even past `runtime_max_keys` (0: the cap alone),
    so rules that touch more keys than the cap never read back what the last batch let go."""
    runtime_spill_dir: str = ""
    """Where values past `runtime_max_keys` go on local disk, a SQLite file per partition,
    read back from there when a rule needs one ("": the system's temporary directory).
    A cache of what storage holds, deleted with the process."""
    runtime_ledger_size: int = Field(default=100_000, ge=0)
    """Handled event ids a stateful service remembers per partition to drop duplicates."""
    runtime_compact_every_s: float = Field(default=5.0, gt=0)
    """How often a stateful service checks whether a partition's storage needs a snapshot."""
    runtime_snapshot_min_docs: int = Field(default=10_000, gt=0)
    """Documents a partition stores after its snapshot before the next (or as many as keys)."""
    runtime_snapshot_max_docs: int = Field(default=200_000, gt=0)
    """Versions after which a partition is snapshotted however many keys it has: bounds what
    a restore reads after the snapshot (each snapshot rewrites the partition's state)."""
    runtime_commit_interval_ms: int = Field(default=1_000, ge=0)
    """How often a stateful service commits its offsets while records keep coming (at once
    when idle, on a rebalance and on stop): the stored checkpoint, not the commit, is what
    keeps a batch from running twice, so a commit per poll only costs the broker."""
    runtime_fetch_wait_ms: int = Field(default=0, ge=0)
    """How long the broker may hold a stateful service's fetch to gather more records (0:
    answer with the first record). Larger batches cost less CPU per event: the services off
    the way from a contact to its lawyer (followup, survey, metrics) default to 100 ms."""
    runtime_linger_ms: int = Field(default=0, ge=0)
    """The runtime's producer batching delay: a poll's events are sent at once and awaited
    together, so lingering only delays them (measured: docs/benchmarks.md, session 12)."""
    runtime_timer_horizon_s: float = Field(default=172_800.0, ge=60)
    """Timers due further ahead than this stay in storage only, brought into memory as they
    come within it (checked every cycle, read every half horizon)."""

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None

    @property
    def mongo_db(self) -> str:
        """The database this service owns."""
        return f"{self.mongo_db_prefix}_{self.service_name}"

    def topic(self, name: str) -> str:
        """The full name of topic `name` in this environment."""
        return f"{self.topic_prefix}{name}"

    @property
    def consumer_group(self) -> str:
        """Kafka consumer group of this service (namespaced like its topics)."""
        return f"lexcare-{self.topic_prefix}{self.service_name}"
