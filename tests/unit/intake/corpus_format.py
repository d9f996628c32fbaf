"""The line format shared by the intake corpora and the frozen blind set (data/README.md)."""

from shared.events import LegalField

KEYS = {"id", "text", "legal_field", "also_accept", "is_dispute", "is_complaint", "styles"}
"""Every line's keys."""
FIELDS = {field.value for field in LegalField}
STYLES = {
    "unaccented",
    "chat",
    "email",
    "one_liner",
    "southern",
    "northern",
    "english_mixed",
    "amounts",
    "no_keywords",
    "hard_negative",
    "plain",
}
"""How a message is written (a line may have several)."""
