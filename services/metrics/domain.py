"""Metrics' rules: what each event records about its case, and which KPI facts a case yields.

A case's *sheet* is the set of its entries (one per event, keyed by event id, so a
duplicate changes nothing). `case_facts(sheet)` is a pure function of that set: the KPI
contributions of the case. `case_change(sheet, entry)` gives what one more entry changes
(facts retracted, facts added), so arrival order never matters and a late event moves its
contribution into the window of its own occurred_at.

One rule looks beyond the case: a contract's revenue is *returning* when its customer had
signed another contract before it (by occurred_at, then event id). A case's revenue facts
count every contract as new and name it (`ref`); the totals, which know each customer's
first contract, split them when they add them to the cells (services.metrics.engine).
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from shared.events import (
    CareContactCompleted,
    CareOutcome,
    CaseAssigned,
    CaseClassified,
    CaseResolved,
    ContractSigned,
    CustomerMerged,
    Event,
    FeeQuoted,
    SlaBreached,
    SlaMet,
    SurveyExpired,
    SurveyReminded,
    SurveyRequested,
    SurveyScored,
)

BusinessSeconds = Callable[[datetime, datetime], float]
"""Seconds between two instants counted only inside the care windows."""

FRT_BUCKETS: tuple[tuple[str, int], ...] = (
    ("0-1h", 3_600_000),
    ("1-4h", 4 * 3_600_000),
    ("4-8h", 8 * 3_600_000),
    ("8-24h", 24 * 3_600_000),
)
"""FRT buckets by their exclusive upper bound in milliseconds; longer is `>24h`."""


def frt_bucket(ms: int) -> str:
    """The FRT bucket a first-response time falls in."""
    return next((name for name, bound in FRT_BUCKETS if ms < bound), ">24h")


class EntryKind(StrEnum):
    """What an event records on its case's sheet."""

    CONTACT = "contact"
    ASSIGNED = "assigned"
    QUOTED = "quoted"
    CONTRACT = "contract"
    RESOLVED = "resolved"
    REACHED = "reached"
    SURVEY_REQUESTED = "survey_requested"
    SURVEY_REMINDED = "survey_reminded"
    SURVEY_EXPIRED = "survey_expired"
    SURVEY_SCORED = "survey_scored"
    SLA_MET = "sla_met"
    SLA_BREACHED = "sla_breached"
    CORRECTED = "corrected"


@dataclass(frozen=True, slots=True)
class CaseEntry:
    """One event's KPI-relevant content (no personal data), recorded on its case."""

    id: str
    case_id: str
    kind: EntryKind
    at: datetime
    channel: str | None = None
    legal_field: str | None = None
    lawyer_id: str | None = None
    customer_id: str | None = None
    complaint: bool = False
    legal_aid: bool = False
    new_case: bool = False
    ref: str | None = None
    """Contract id or survey id."""
    amount: int = 0
    """VND: a contract's amount, or a quote's highest price (0 for a legal-aid quote)."""
    nps: int | None = None
    csat: int | None = None
    ces: int | None = None


@dataclass(frozen=True)
class CustomerMerge:
    """Customers proved to be one person (customer.merged)."""

    id: str
    survivor: str
    merged: tuple[str, ...]


def _base(event: Event, kind: EntryKind, case_id: str) -> dict:
    return {"id": str(event.event_id), "case_id": case_id, "kind": kind, "at": event.occurred_at}


def entry_of(event: Event) -> CaseEntry | CustomerMerge | None:
    """What `event` records for the KPIs; None when it counts for nothing."""
    match event:
        case CaseClassified(correction=True):
            return CaseEntry(
                **_base(event, EntryKind.CORRECTED, event.case_id),
                channel=event.channel,
                legal_field=event.legal_field,
                ref=event.corrected_from,
            )
        case CaseClassified():
            return CaseEntry(
                **_base(event, EntryKind.CONTACT, event.case_id),
                channel=event.channel,
                legal_field=event.legal_field,
                customer_id=event.customer_id,
                complaint=event.is_complaint,
                legal_aid=event.legal_aid,
                new_case=event.new_case,
            )
        case CaseAssigned():
            return CaseEntry(
                **_base(event, EntryKind.ASSIGNED, event.case_id),
                lawyer_id=event.assignee_id,
                legal_field=event.legal_field,
            )
        case FeeQuoted():
            return CaseEntry(
                **_base(event, EntryKind.QUOTED, event.case_id),
                legal_field=event.legal_field,
                legal_aid=event.legal_aid,
                amount=max(event.prices_vnd.values(), default=0),
            )
        case ContractSigned():
            return CaseEntry(
                **_base(event, EntryKind.CONTRACT, event.case_id),
                ref=event.contract_id,
                amount=event.amount_vnd,
            )
        case CaseResolved():
            return CaseEntry(
                **_base(event, EntryKind.RESOLVED, event.case_id), lawyer_id=event.lawyer_id
            )
        case CareContactCompleted(outcome=CareOutcome.REACHED):
            return CaseEntry(**_base(event, EntryKind.REACHED, event.case_id))
        case SlaMet() | SlaBreached():
            kind = EntryKind.SLA_MET if isinstance(event, SlaMet) else EntryKind.SLA_BREACHED
            return CaseEntry(
                **_base(event, kind, event.case_id),
                ref=str(event.target),
                channel=event.channel,
                legal_field=event.legal_field,
                lawyer_id=event.assignee_id,
            )
        case SurveyRequested() | SurveyReminded() | SurveyExpired():
            kind = {
                SurveyRequested: EntryKind.SURVEY_REQUESTED,
                SurveyReminded: EntryKind.SURVEY_REMINDED,
                SurveyExpired: EntryKind.SURVEY_EXPIRED,
            }[type(event)]
            return CaseEntry(
                **_base(event, kind, event.case_id),
                channel=event.channel,
                ref=event.survey_id,
                legal_field=getattr(event, "legal_field", None),
                lawyer_id=getattr(event, "lawyer_id", None),
            )
        case SurveyScored():
            return CaseEntry(
                **_base(event, EntryKind.SURVEY_SCORED, event.case_id),
                ref=event.survey_id,
                channel=event.channel,
                legal_field=event.legal_field,
                lawyer_id=event.lawyer_id,
                nps=event.nps,
                csat=event.csat,
                ces=event.ces,
            )
        case CustomerMerged():
            return CustomerMerge(
                id=str(event.event_id),
                survivor=event.customer_id,
                merged=tuple(event.merged_customer_ids),
            )
    return None


Dims = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Fact:
    """One contribution to a KPI: counted in every period containing `at`, per dimension.

    `at` None means all-time only (a gauge such as open cases now). Durations are in
    integer milliseconds so sums stay exact under retraction and replay.
    """

    kpi: str
    at: datetime | None
    dims: Dims
    numerator: int = 0
    denominator: int = 0
    parts: tuple[tuple[str, int], ...] = ()
    sample_ms: int | None = None
    ref: str | None = None
    """A revenue fact's contract event id (its split into new and returning depends on it)."""


_MILLISECOND = timedelta(milliseconds=1)


def _ms(start: datetime, end: datetime) -> int:
    return max(0, (end - start) // _MILLISECOND)


def _first(entries: Iterable[CaseEntry]) -> CaseEntry | None:
    return next(iter(entries), None)


def _first_per_ref(entries: list[CaseEntry]) -> list[CaseEntry]:
    seen: dict[str | None, CaseEntry] = {}
    for e in entries:
        seen.setdefault(e.ref, e)
    return list(seen.values())


@dataclass
class _CaseView:
    """A case as its sheet tells it: entries by kind in (occurred_at, id) order."""

    by_kind: dict[EntryKind, list[CaseEntry]] = field(default_factory=lambda: defaultdict(list))

    def __getitem__(self, kind: EntryKind) -> list[CaseEntry]:
        return self.by_kind[kind]

    def first_value(self, attr: str, *kinds: EntryKind) -> str | None:
        for kind in kinds:
            for entry in self.by_kind[kind]:
                value = getattr(entry, attr)
                if value is not None:
                    return value
        return None


def _view(entries: Iterable[CaseEntry]) -> _CaseView:
    view = _CaseView()
    for entry in sorted(entries, key=lambda e: (e.at, e.id)):
        view.by_kind[entry.kind].append(entry)
    return view


def case_dims(view: _CaseView, opening: CaseEntry | None) -> dict[str, str]:
    """The case's channel, legal field and lawyer, from the best source the sheet has."""
    K = EntryKind
    channel = (opening.channel if opening else None) or view.first_value(
        "channel", K.CONTACT, K.SURVEY_SCORED, K.SURVEY_REQUESTED, K.SURVEY_EXPIRED
    )
    corrections = view[K.CORRECTED]
    corrected = corrections[-1].legal_field if corrections else None
    legal_field = (
        corrected
        or (opening.legal_field if opening else None)
        or view.first_value(
            "legal_field",
            K.CONTACT,
            K.ASSIGNED,
            K.QUOTED,
            K.SURVEY_SCORED,
            K.SURVEY_REQUESTED,
            K.SURVEY_EXPIRED,
        )
    )
    assignments = view[K.ASSIGNED]
    lawyer = (assignments[-1].lawyer_id if assignments else None) or view.first_value(
        "lawyer_id", K.RESOLVED, K.SURVEY_SCORED, K.SURVEY_REQUESTED, K.SURVEY_EXPIRED
    )
    dims = {"channel": channel, "legal_field": legal_field, "lawyer": lawyer}
    return {k: v for k, v in dims.items() if v is not None}


def _origin(view: _CaseView) -> tuple[CaseEntry | None, CaseEntry | None]:
    """The contact that opened the case, and the one the case runs from (else the first)."""
    contacts = view[EntryKind.CONTACT]
    opening = next((c for c in contacts if c.new_case), None)
    return opening, opening or _first(contacts)


def signed_contracts(entries: Iterable[CaseEntry]) -> tuple[str | None, list[CaseEntry]]:
    """The case's customer (from the contact it runs from) and its contracts, once each."""
    return _signed(_view(entries))


def _signed(view: _CaseView) -> tuple[str | None, list[CaseEntry]]:
    _, origin = _origin(view)
    return (origin.customer_id if origin else None), _first_per_ref(view[EntryKind.CONTRACT])


def case_facts(
    entries: Iterable[CaseEntry], business_seconds: BusinessSeconds | None = None
) -> Counter[Fact]:
    """Every KPI contribution of one case, from its sheet (order-independent); revenue
    counted as new, its contract named by `ref`."""
    return _facts(_view(entries), business_seconds)


def _facts(view: _CaseView, business_seconds: BusinessSeconds | None) -> Counter[Fact]:
    K = EntryKind
    contacts = view[K.CONTACT]
    opening, origin = _origin(view)
    dims = case_dims(view, opening)
    case = tuple(sorted(dims.items()))
    facts: Counter[Fact] = Counter()

    def add(kpi: str, at: datetime | None, **kw: object) -> None:
        facts[Fact(kpi, at, kw.pop("dims", case), **kw)] += 1  # type: ignore[arg-type]

    for c in contacts:
        contact_dims = tuple(sorted({**dims, "channel": c.channel or ""}.items()))
        add("tft", c.at, dims=contact_dims, numerator=1)
        add("complaint_rate", c.at, dims=contact_dims, numerator=int(c.complaint), denominator=1)
    if opening:
        add("resolution_rate", opening.at, denominator=1)
        # Corrections by the field the classifier gave (where it errs), counted once per
        # case in the period the case opened.
        classified = dict(case)
        if opening.legal_field:
            classified["legal_field"] = opening.legal_field
        corrected = int(bool(view[K.CORRECTED]))
        add(
            "reclassification_rate",
            opening.at,
            dims=tuple(sorted(classified.items())),
            numerator=corrected,
            denominator=1,
        )
    resolved = _first(view[K.RESOLVED])
    assigned = _first(a for a in view[K.ASSIGNED] if a.lawyer_id)
    if resolved:
        add("resolution_rate", resolved.at, numerator=1)
        add("resolved_cases", resolved.at, numerator=1)
        if origin:
            ms = _ms(origin.at, resolved.at)
            add("ttr", resolved.at, numerator=ms, denominator=1, sample_ms=ms)
        if assigned and assigned.at <= resolved.at:
            ms = _ms(assigned.at, resolved.at)
            add("atht", resolved.at, numerator=ms, denominator=1, sample_ms=ms)
    elif opening or view[K.ASSIGNED]:
        add("open_cases", None, numerator=1)
    # Conversion is counted at the case's first priced quote, so a period's value is the
    # share of its quotes that converted, whenever the contract came (never above 1).
    quote = _first(q for q in view[K.QUOTED] if q.amount > 0)
    contracts = _first_per_ref(view[K.CONTRACT])
    if quote:
        add("quote_conversion", quote.at, numerator=int(bool(contracts)), denominator=1)
    aid = sorted((e for e in (*contacts, *view[K.QUOTED]) if e.legal_aid), key=_order)
    if aid:
        add("legal_aid_referrals", aid[0].at, numerator=1)
    for contract in contracts:
        parts = (("new", contract.amount),)
        add("revenue_vnd", contract.at, numerator=contract.amount, parts=parts, ref=contract.id)
    reached = _first(view[K.REACHED])
    if reached and origin:
        ms = _ms(origin.at, reached.at)
        bucket = ((frt_bucket(ms), 1),)
        add("frt", reached.at, numerator=ms, denominator=1, sample_ms=ms, parts=bucket)
        if business_seconds is not None:
            bms = max(0, round(business_seconds(origin.at, reached.at) * 1000))
            parts = ((frt_bucket(bms), 1),)
            add(
                "frt_business", reached.at, numerator=bms, denominator=1, sample_ms=bms, parts=parts
            )
    _survey_facts(view, add)
    _sla_facts(view, dims, add)
    return facts


def _order(entry: CaseEntry) -> tuple[datetime, str]:
    return (entry.at, entry.id)


def _survey_facts(view: _CaseView, add: Callable[..., None]) -> None:
    K = EntryKind
    for sent in _first_per_ref(view[K.SURVEY_REQUESTED]):
        add("survey_response_rate", sent.at, denominator=1)
    for kind, part in ((K.SURVEY_REMINDED, "reminded"), (K.SURVEY_EXPIRED, "expired")):
        for e in _first_per_ref(view[kind]):
            add("survey_response_rate", e.at, parts=((part, 1),))
    for answer in _first_per_ref(view[K.SURVEY_SCORED]):
        add("survey_response_rate", answer.at, numerator=1)
        if answer.nps is not None:
            group = nps_group(answer.nps)
            score = {"promoters": 1, "detractors": -1}.get(group, 0)
            add("nps", answer.at, numerator=score, denominator=1, parts=((group, 1),))
        if answer.csat is not None:
            add("csat", answer.at, numerator=int(answer.csat >= 4), denominator=1)
            add("csat_mean", answer.at, numerator=answer.csat, denominator=1)
        if answer.ces is not None:
            add("ces", answer.at, numerator=answer.ces, denominator=1)


SLA_KPIS = {"first_response": "sla_first_response_met", "resolution": "sla_resolution_met"}
"""The KPI of each SLA clock (sla.met / sla.breached `target`)."""


def _sla_facts(view: _CaseView, dims: dict[str, str], add: Callable[..., None]) -> None:
    """Each clock's outcome (its first, should both come): met or not, counted where it
    ended, by the lawyer who held the case then; breaches counted by clock."""
    outcomes = sorted((*view[EntryKind.SLA_MET], *view[EntryKind.SLA_BREACHED]), key=_order)
    for outcome in _first_per_ref(outcomes):
        held = {"channel": outcome.channel, "legal_field": outcome.legal_field}
        held["lawyer"] = outcome.lawyer_id
        own = tuple(sorted({**dims, **{k: v for k, v in held.items() if v}}.items()))
        met = outcome.kind is EntryKind.SLA_MET
        kpi = SLA_KPIS.get(outcome.ref or "")
        if kpi is None:
            continue
        add(kpi, outcome.at, dims=own, numerator=int(met), denominator=1)
        if not met:
            add("sla_breaches", outcome.at, dims=own, numerator=1, parts=((outcome.ref, 1),))


def nps_group(score: int) -> str:
    """promoters (9–10), passives (7–8) or detractors (0–6)."""
    if score >= 9:
        return "promoters"
    return "passives" if score >= 7 else "detractors"


@dataclass(frozen=True, slots=True)
class CaseChange:
    """What one entry changes of its case's KPI contributions (revenue not split yet)."""

    case_id: str
    retract: tuple[tuple[Fact, int], ...]
    add: tuple[tuple[Fact, int], ...]
    customer_before: str | None
    """The customer the case ran from before the entry (its retracted revenue's)."""
    customer_after: str | None
    contracts: tuple[CaseEntry, ...] = ()
    """The case's contracts once each, offered as its customer's first (when it has one)."""
    contact: tuple[str, date] | None = None
    """(customer, local day) of a new contact, for retention."""


def case_change(
    sheet: Mapping[str, CaseEntry],
    entry: CaseEntry,
    *,
    tz: ZoneInfo,
    business_seconds: BusinessSeconds | None = None,
    before: Counter[Fact] | None = None,
) -> tuple[CaseChange, Counter[Fact]] | None:
    """What `entry` changes of its case, and the case's facts after it (None: already on
    the sheet). `before`: the facts last counted for the case, when kept (else computed
    again: the same unless the care calendar changed since)."""
    if entry.id in sheet:
        return None
    after_view = _view([*sheet.values(), entry])
    customer, contracts = _signed(after_view)
    before_customer = customer  # the contact a case runs from moves only with a contact
    if entry.kind is EntryKind.CONTACT:
        before_customer, _ = signed_contracts(sheet.values())
    if before is None:
        before = case_facts(sheet.values(), business_seconds) if sheet else Counter()
    after = _facts(after_view, business_seconds)
    retract, add = before - after, after - before
    if before_customer != customer:  # its revenue is split again for the other customer
        kept = Counter({f: n for f, n in (before & after).items() if f.kpi == "revenue_vnd"})
        retract, add = retract + kept, add + kept
    contact = None
    if entry.kind is EntryKind.CONTACT and entry.customer_id:
        contact = (entry.customer_id, entry.at.astimezone(tz).date())
    change = CaseChange(
        case_id=entry.case_id,
        retract=tuple(retract.items()),
        add=tuple(add.items()),
        customer_before=before_customer,
        customer_after=customer,
        contracts=tuple(contracts) if customer else (),
        contact=contact,
    )
    return change, after
