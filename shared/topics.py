"""Kafka topic names: one per event type (SPEC §7); no topic literal lives anywhere else."""

from typing import Final

CONTACT_RECEIVED: Final = "contact.received"
CASE_CLASSIFIED: Final = "case.classified"
CUSTOMER_MERGED: Final = "customer.merged"
CUSTOMER_SEGMENT_CHANGED: Final = "customer.segment_changed"
CASE_ASSIGNED: Final = "case.assigned"
FEE_QUOTED: Final = "fee.quoted"
ROSTER_UPDATED: Final = "roster.updated"
CONTRACT_SIGNED: Final = "contract.signed"
CASE_RESOLVED: Final = "case.resolved"
CASE_RECLASSIFIED: Final = "case.reclassified"
CARE_CONTACT_REQUESTED: Final = "care.contact.requested"
CARE_CONTACT_COMPLETED: Final = "care.contact.completed"
SURVEY_REQUESTED: Final = "survey.requested"
SURVEY_REMINDED: Final = "survey.reminded"
SURVEY_EXPIRED: Final = "survey.expired"
SURVEY_ANSWERED: Final = "survey.answered"
SURVEY_SCORED: Final = "survey.scored"
CASE_WAITING_ON_CUSTOMER: Final = "case.waiting_on_customer"
CASE_CUSTOMER_REPLIED: Final = "case.customer_replied"
SLA_WARNING: Final = "sla.warning"
SLA_BREACHED: Final = "sla.breached"
SLA_MET: Final = "sla.met"
CASE_ESCALATED: Final = "case.escalated"
DELIVERY_ATTEMPTED: Final = "delivery.attempted"
METRICS_KPI: Final = "metrics.kpi"

EVENT_TOPICS: Final = (
    CONTACT_RECEIVED,
    CASE_CLASSIFIED,
    CUSTOMER_MERGED,
    CUSTOMER_SEGMENT_CHANGED,
    CASE_ASSIGNED,
    FEE_QUOTED,
    ROSTER_UPDATED,
    CONTRACT_SIGNED,
    CASE_RESOLVED,
    CASE_RECLASSIFIED,
    CARE_CONTACT_REQUESTED,
    CARE_CONTACT_COMPLETED,
    SURVEY_REQUESTED,
    SURVEY_REMINDED,
    SURVEY_EXPIRED,
    SURVEY_ANSWERED,
    SURVEY_SCORED,
    CASE_WAITING_ON_CUSTOMER,
    CASE_CUSTOMER_REPLIED,
    SLA_WARNING,
    SLA_BREACHED,
    SLA_MET,
    CASE_ESCALATED,
    DELIVERY_ATTEMPTED,
)
"""Every business event topic; each has a dead-letter twin."""

COMPACTED_TOPICS: Final = (METRICS_KPI,)

FOLLOWUP_CUSTOMER: Final = "followup.customer"
"""Internal to followup: what a case's partition learned about its customer, re-keyed by
customer id (shared/runtime creates it; not in ALL_TOPICS: no other service reads it)."""

FOLLOWUP_SLA_POLICY: Final = "followup.sla_policy"
"""Internal to followup: the service-level policy and calendar as read at start or reload,
one record per partition, so each partition re-plans the clocks it owns."""

ROUTING_DECIDE: Final = "routing.decide"
"""Internal to routing: every input that needs the roster, re-keyed by one constant key so
one partition owns the roster, the lawyers' slots and the queue (one writer for capacity)."""

REPLAYED_TOPICS: Final = EVENT_TOPICS
"""Topics whose whole history a service reads again, so they are never trimmed.

metrics rebuilds its KPIs from its input topics (`python -m services.metrics rebuild`); the
other services' state is to be restorable from their input topics the same way: the log is
the system's record.
Their dead-letter twins are not replayed and keep the broker's default retention.
"""


def dlq(topic: str) -> str:
    """The dead-letter topic of `topic`."""
    return f"{topic}.dlq"


ALL_TOPICS: Final = (*EVENT_TOPICS, *COMPACTED_TOPICS, *(dlq(t) for t in EVENT_TOPICS))
