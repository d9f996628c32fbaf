"""A service on the runtime as AsyncAPI sees it: a broker that declares what the runtime
consumes and publishes, for the document only (it is never started)."""

from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker

from shared.events import Event
from shared.runtime.engine import Runtime
from shared.settings import LexcareSettings

Publishes = Sequence[tuple[str, type[Event], str]]
"""(topic, event model, description) of each topic the service publishes."""


def specification_broker(
    settings: LexcareSettings, runtime: Runtime[Any], publishes: Publishes
) -> KafkaBroker:
    """The runtime's input topics as subscribers and `publishes` as publishers (internal
    re-keying topics left out: nobody else reads or writes them)."""
    broker = KafkaBroker(settings.kafka, description=f"lexcare {settings.service_name} service")
    for topic, route in runtime.routes.items():
        if topic not in runtime.internal:
            rule = getattr(route.rule, "func", route.rule)  # a rule bound with partial
            broker.subscriber(topic, group_id=settings.consumer_group, description=rule.__doc__)(
                _documented(route.model, rule.__name__)
            )
    for topic, model, description in publishes:
        broker.publisher(settings.topic(topic), schema=model, description=description)
    return broker


def _documented(model: type[Event], name: str) -> Any:
    async def handler(event: model) -> None:  # type: ignore[valid-type]
        """Declared for the document only."""

    handler.__name__ = name
    return handler
