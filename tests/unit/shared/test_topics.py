"""Which topics keep their whole history, and the configuration they are created with."""

from services.metrics.handlers import CONSUMED
from shared import topics
from shared.kafka import KEEP_FOREVER, topic_configs


def test_every_topic_metrics_rebuilds_from_is_replayed():
    assert {model.TOPIC for model in CONSUMED} <= set(topics.REPLAYED_TOPICS)


def test_replayed_topics_are_created_to_keep_everything():
    assert KEEP_FOREVER == {"retention.ms": "-1", "retention.bytes": "-1"}
    for name in topics.REPLAYED_TOPICS:
        assert topic_configs(name) == KEEP_FOREVER, name


def test_metrics_kpi_stays_compacted_and_dead_letters_take_the_brokers_default():
    assert topic_configs(topics.METRICS_KPI) == {"cleanup.policy": "compact"}
    for name in topics.EVENT_TOPICS:
        assert topics.dlq(name) not in topics.REPLAYED_TOPICS
        assert topic_configs(topics.dlq(name)) == {}, name
