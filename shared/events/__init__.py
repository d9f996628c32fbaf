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
)
from .metrics import KpiUpdated
from .routing import CaseAssigned, FeeQuoted, RosterPerson, RosterUpdated
from .staff import CaseResolved, ContractSigned
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
        CareContactRequested,
        CareContactCompleted,
        SurveyRequested,
        SurveyReminded,
        SurveyExpired,
        SurveyAnswered,
        SurveyScored,
        KpiUpdated,
        DeliveryAttempted,
    )
}
"""Every event model by its event type (= topic)."""

EXTERNAL_EVENTS: tuple[type[Event], ...] = (
    ContactReceived,
    ContractSigned,
    CaseResolved,
    CareContactCompleted,
    SurveyAnswered,
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
    "CaseResolved",
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
    "SurveyAnswered",
    "SurveyExpired",
    "SurveyReminded",
    "SurveyRequested",
    "SurveyScored",
    "derived_event_id",
]
