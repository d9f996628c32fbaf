"""The envelope every lexcare event carries (SPEC §7)."""

import uuid
from datetime import datetime
from typing import Any, ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

EVENT_ID_NAMESPACE = uuid.UUID("5b6f1c1e-3a51-4d61-9c8e-6c65786361ee")


def derived_event_id(cause_id: uuid.UUID | str, *parts: str) -> uuid.UUID:
    """A deterministic event id for an event caused by `cause_id`.

    A redelivered cause yields the same ids, so consumers deduplicate what a retry
    publishes again.
    """
    return uuid.uuid5(EVENT_ID_NAMESPACE, "/".join((str(cause_id), *parts)))


class Event(BaseModel):
    """Envelope fields shared by every event; subclasses add the payload."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_max_length=100_000)

    TOPIC: ClassVar[str] = ""

    event_id: uuid.UUID = Field(
        description="Unique id of this event, set by its producer; consumers deduplicate on it.",
        examples=["0f8fad5b-d9cb-469f-a165-70867728950e"],
    )
    event_type: str = Field(description="The event's type, equal to its topic name.")
    schema_version: int = Field(
        default=1, ge=1, description="Version of this event type's payload schema.", examples=[1]
    )
    occurred_at: AwareDatetime = Field(
        description="Business time of the event, ISO 8601 with offset; KPI windows use it.",
        examples=["2026-11-23T09:15:00+07:00"],
    )
    producer: str = Field(
        min_length=1,
        max_length=200,
        description="Who published the event: a service or channel adapter name.",
        examples=["zalo-adapter"],
    )
    correlation_id: str = Field(
        default="",
        max_length=200,
        description="Id shared by every event of one contact's story; defaults to event_id.",
        examples=["0f8fad5b-d9cb-469f-a165-70867728950e"],
    )
    case_id: str | None = Field(
        default=None,
        max_length=200,
        description="The case this event is about, where there is one.",
        examples=["case-7d1c2a40"],
    )

    @model_validator(mode="before")
    @classmethod
    def _default_correlation(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("correlation_id") and data.get("event_id"):
            data = {**data, "correlation_id": str(data["event_id"])}
        return data

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields.get("event_type")
        if field is not None and isinstance(field.default, str):
            cls.TOPIC = field.default

    @classmethod
    def caused_by(
        cls,
        cause: "Event",
        *,
        producer: str,
        occurred_at: datetime | None = None,
        discriminator: str = "",
        **payload: Any,
    ) -> Self:
        """Build this event as a consequence of `cause`: same correlation, derived id."""
        payload.setdefault("case_id", cause.case_id)
        return cls(
            event_id=derived_event_id(cause.event_id, cls.TOPIC, discriminator),
            correlation_id=cause.correlation_id,
            occurred_at=occurred_at or cause.occurred_at,
            producer=producer,
            **payload,
        )

    def partition_key(self) -> bytes:
        """Kafka message key: the case id, else the event's own id."""
        return (self.case_id or str(self.event_id)).encode()

    def to_bytes(self) -> bytes:
        """The event as JSON bytes, as it goes on the wire."""
        return self.model_dump_json(exclude_none=False).encode()
