"""Closed vocabularies of the event contracts (SPEC §1–§7)."""

from enum import StrEnum


class Channel(StrEnum):
    """Where a customer reached the firm."""

    FACEBOOK = "facebook"
    ZALO = "zalo"
    WEBSITE = "website"
    PHONE = "phone"
    EMAIL = "email"
    WALK_IN = "walk_in"


class ContactKind(StrEnum):
    """What a contact is about, as the channel adapter saw it."""

    INQUIRY = "inquiry"
    COMPLAINT = "complaint"
    FOLLOW_UP = "follow_up"


class LegalField(StrEnum):
    """Lĩnh vực: the legal field a case belongs to."""

    TRAFFIC = "traffic"
    FAMILY = "family"
    CIVIL_COMMERCIAL = "civil_commercial"
    LAND = "land"
    LABOR = "labor"
    CRIMINAL = "criminal"
    ENTERPRISE = "enterprise"
    ADMINISTRATIVE = "administrative"
    INTELLECTUAL_PROPERTY = "intellectual_property"
    OTHER = "other"


class LegalAidCategory(StrEnum):
    """Groups eligible for free advice from the state Legal Aid Center."""

    POLICY_FAMILY = "policy_family"
    POOR_HOUSEHOLD = "poor_household"
    ELDERLY = "elderly"
    DISABLED = "disabled"
    ETHNIC_MINORITY = "ethnic_minority"


class IncomeTier(StrEnum):
    """The customer's income tier, when a form asked for it."""

    BUDGET = "budget"
    MID = "mid"
    PREMIUM = "premium"


class Segment(StrEnum):
    """Customer segment at the time of an event."""

    NEW = "new"
    POTENTIAL = "potential"
    CUSTOMER = "customer"
    LOYAL = "loyal"
    LAPSED = "lapsed"


class AgeBand(StrEnum):
    """Age band from a known birth date."""

    UNDER_15 = "<15"
    FROM_15_TO_22 = "15-22"
    FROM_22_TO_50 = "22-50"
    OVER_50 = ">50"


class Role(StrEnum):
    """A roster person's role."""

    LAWYER = "lawyer"
    CONSULTANT = "consultant"


class AssignmentReason(StrEnum):
    """Why a case.assigned has (or lacks) its assignee."""

    ASSIGNED = "assigned"
    REASSIGNED = "reassigned"
    NO_EXPERT = "no_expert"
    NO_CAPACITY = "no_capacity"


class DeliveryMethod(StrEnum):
    """How advice is delivered."""

    PHONE = "phone"
    LETTER = "letter"
    OFFICE = "office"
    ONSITE = "onsite"


class ResolutionOutcome(StrEnum):
    """How a case ended."""

    ADVISED = "advised"
    SETTLED = "settled"
    WON = "won"
    LOST = "lost"
    WITHDRAWN = "withdrawn"
    REFERRED = "referred"


class CareOutcome(StrEnum):
    """What happened when the care team tried to reach a customer."""

    REACHED = "reached"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    DECLINED = "declined"


class CareKind(StrEnum):
    """Why the care team contacts a customer."""

    FIRST_CONTACT = "first_contact"
    CARE = "care"
    APOLOGY = "apology"
    CHECK_IN = "check_in"
    BIRTHDAY = "birthday"
    LOYALTY_OFFER = "loyalty_offer"


class DeliveryOutcome(StrEnum):
    """What came of one try to deliver a request on its channel."""

    SENT = "sent"
    QUEUED = "queued"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"


class Priority(StrEnum):
    """How urgently an outbound contact should be worked."""

    HIGH = "high"
    NORMAL = "normal"


class KpiWindow(StrEnum):
    """KPI aggregation windows (Asia/Ho_Chi_Minh calendar)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    ALL = "all"


class KpiDimension(StrEnum):
    """KPI breakdowns."""

    ALL = "all"
    CHANNEL = "channel"
    LEGAL_FIELD = "legal_field"
    LAWYER = "lawyer"


class KpiUnit(StrEnum):
    """What a KPI value measures, so readers need not guess its scale."""

    PERCENT = "percent"
    """0–100 (NPS −100..100)."""
    RATIO = "ratio"
    """A share 0–1 (a rate that can exceed 1 when its parts fall in different periods)."""
    SECONDS = "seconds"
    COUNT = "count"
    VND = "vnd"
    SCORE = "score"
    """A mean answer on the survey's scale (CSAT 1–5, CES 1–7)."""


class SlaPriority(StrEnum):
    """The service level a case is held to (SPEC §11): complaints first, then disputes."""

    COMPLAINT = "complaint"
    DISPUTE = "dispute"
    NORMAL = "normal"


class SlaTarget(StrEnum):
    """Which service-level clock: opened → first reached contact, or opened → resolved."""

    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class EscalationReason(StrEnum):
    """Why a breached case went to the managers instead of another lawyer."""

    NO_EXPERT = "no_expert"
    NO_CAPACITY = "no_capacity"
