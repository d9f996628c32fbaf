"""Intake's settings and wiring: the one place that builds its clients."""

from datetime import timedelta
from pathlib import Path

import yaml
from faststream.asgi import AsgiFastStream

from services.intake.domain import IntakePolicy, Lexicon, SegmentPolicy
from services.intake.handlers import build_router
from services.intake.store import IntakeStore
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings

DEFAULT_LEXICON = Path(__file__).with_name("lexicon.yaml")


class IntakeSettings(LexcareSettings):
    """Intake's settings (env prefix LEXCARE_)."""

    service_name: str = "intake"
    http_port: int = 8081
    lexicon_path: str = str(DEFAULT_LEXICON)
    """The classifier's vocabulary (YAML): phrases, weights, abbreviations."""
    confidence_threshold: float = 0.35
    """Below this classifier confidence a case is `other` and flagged for triage."""
    attach_window_days: int = 30
    """A contact joins the customer's open case of the same field opened this recently."""
    loyal_contracts: int = 3
    """Signed contracts that make a customer `loyal`."""
    lapsed_after_days: int = 365
    """Days without activity after which a returning customer is `lapsed`."""
    elderly_age: int = 60
    """Age from which a customer is eligible for legal aid as elderly."""

    def policy(self) -> IntakePolicy:
        """The rule thresholds these settings configure."""
        return IntakePolicy(
            confidence_threshold=self.confidence_threshold,
            attach_window=timedelta(days=self.attach_window_days),
            elderly_age=self.elderly_age,
            segments=SegmentPolicy(
                loyal_contracts=self.loyal_contracts,
                lapsed_after=timedelta(days=self.lapsed_after_days),
            ),
        )


def load_lexicon(path: str | Path = DEFAULT_LEXICON) -> Lexicon:
    """Read the classifier's lexicon from a YAML file."""
    return Lexicon.from_mapping(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def create_app(settings: IntakeSettings) -> AsgiFastStream:
    """Build intake: broker, database, handlers and HTTP endpoints."""
    parts = plumbing(settings)
    store = IntakeStore(parts.db)
    router = build_router(
        settings, store, lexicon=load_lexicon(settings.lexicon_path), policy=settings.policy()
    )
    parts.broker.include_router(router)
    return build_app(parts, on_startup=[store.prepare], forget=[store.processed.forget_before])
