"""Event contracts (SPEC §7): the envelope, every event model, and the type registry."""

from .base import Event, derived_event_id
from .care import CareContactCompleted, CareContactRequested
from .contact import (
    CaseClassified,
    ContactPoint,
    ContactReceived,
    CustomerDetails,
    CustomerMerged,
    CustomerSegmentChanged,
)
from .delivery import DeliveryAttempted
from .enums import (
    AgeBand,
    AssignmentReason,
    CareKind,
    CareOutcome,
    Channel,
    ContactKind,
    DeliveryMethod,
    DeliveryOutcome,
    EscalationReason,
    IncomeTier,
    KpiDimension,
    KpiUnit,
    KpiWindow,
    LegalAidCategory,
    LegalField,
    Priority,
    ResolutionOutcome,
    Role,
    Segment,
    SlaPriority,
    SlaTarget,
)
from .metrics import KpiUpdated
from .routing import CaseAssigned, CaseEscalated, FeeQuoted, RosterPerson, RosterUpdated
from .sla import SlaBreached, SlaEvent, SlaMet, SlaWarning
from .staff import (
    CaseCustomerReplied,
    CaseReclassified,
    CaseResolved,
    CaseWaitingOnCustomer,
    ContractSigned,
)
from .survey import SurveyAnswered, SurveyExpired, SurveyReminded, SurveyRequested, SurveyScored

EVENT_MODELS: dict[str, type[Event]] = {
    model.TOPIC: model
    for model in (
        ContactReceived,
        CaseClassified,
        CustomerMerged,
        CustomerSegmentChanged,
        CaseAssigned,
        FeeQuoted,
        RosterUpdated,
        ContractSigned,
        CaseResolved,
        CaseReclassified,
        CareContactRequested,
        CareContactCompleted,
        SurveyRequested,
        SurveyReminded,
        SurveyExpired,
        SurveyAnswered,
        SurveyScored,
        KpiUpdated,
        CaseWaitingOnCustomer,
        CaseCustomerReplied,
        SlaWarning,
        SlaBreached,
        SlaMet,
        CaseEscalated,
        DeliveryAttempted,
    )
}
"""Every event model by its event type (= topic)."""

EXTERNAL_EVENTS: tuple[type[Event], ...] = (
    ContactReceived,
    ContractSigned,
    CaseResolved,
    CaseReclassified,
    CareContactCompleted,
    SurveyAnswered,
    CaseWaitingOnCustomer,
    CaseCustomerReplied,
)
"""Events channel adapters and staff tools publish into lexcare."""

__all__ = [
    "EVENT_MODELS",
    "EXTERNAL_EVENTS",
    "AgeBand",
    "AssignmentReason",
    "CareContactCompleted",
    "CareContactRequested",
    "CareKind",
    "CareOutcome",
    "CaseAssigned",
    "CaseClassified",
    "CaseCustomerReplied",
    "CaseEscalated",
    "CaseReclassified",
    "CaseResolved",
    "CaseWaitingOnCustomer",
    "Channel",
    "ContactKind",
    "ContactPoint",
    "ContactReceived",
    "ContractSigned",
    "CustomerDetails",
    "CustomerMerged",
    "CustomerSegmentChanged",
    "DeliveryAttempted",
    "DeliveryMethod",
    "DeliveryOutcome",
    "EscalationReason",
    "Event",
    "FeeQuoted",
    "IncomeTier",
    "KpiDimension",
    "KpiUnit",
    "KpiUpdated",
    "KpiWindow",
    "LegalAidCategory",
    "LegalField",
    "Priority",
    "ResolutionOutcome",
    "Role",
    "RosterPerson",
    "RosterUpdated",
    "Segment",
    "SlaBreached",
    "SlaEvent",
    "SlaMet",
    "SlaPriority",
    "SlaTarget",
    "SlaWarning",
    "SurveyAnswered",
    "SurveyExpired",
    "SurveyReminded",
    "SurveyRequested",
    "SurveyScored",
    "derived_event_id",
]
