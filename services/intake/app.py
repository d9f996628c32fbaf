"""Intake's settings and wiring: the one place that builds its clients."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
import yaml
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker

from services.intake import models
from services.intake.domain import IntakePolicy, Lexicon, SegmentPolicy
from services.intake.handlers import intake_runtime
from services.intake.model import Classifier
from shared import topics
from shared.clock import Clock
from shared.events import CaseClassified, CustomerMerged, CustomerSegmentChanged
from shared.mongo import make_mongo, service_db
from shared.runtime import Runtime
from shared.runtime.spec import Publishes, specification_broker
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings

DEFAULT_LEXICON = Path(__file__).with_name("lexicon.yaml")
DEFAULT_MODEL_DIR = Path(__file__).with_name("models")
LEXICON_THRESHOLD = 0.35
"""The lexicon's own triage threshold, when no model file is there."""

log = structlog.get_logger("lexcare.intake")


class IntakeSettings(LexcareSettings):
    """Intake's settings (env prefix LEXCARE_)."""

    service_name: str = "intake"
    http_port: int = 8081
    lexicon_path: str = str(DEFAULT_LEXICON)
    """The classifier's vocabulary (YAML): phrases, weights, abbreviations."""
    intake_model_dir: str = str(DEFAULT_MODEL_DIR)
    """Where the trained classifier's versioned files are (the newest is loaded at start);
    the operator's directory: a model file decides every case."""
    confidence_threshold: float | None = None
    """Below this classifier confidence a case is `other` and flagged for triage; unset:
    the threshold the model was trained with (0.35 for the lexicon without a model)."""
    attach_window_days: int = 30
    """A contact joins the customer's open case of the same field opened this recently."""
    loyal_contracts: int = 3
    """Signed contracts that make a customer `loyal`."""
    lapsed_after_days: int = 365
    """Days without activity after which a returning customer is `lapsed`."""
    elderly_age: int = 60
    """Age from which a customer is eligible for legal aid as elderly."""

    def policy(self, classifier: Classifier | None = None) -> IntakePolicy:
        """The rule thresholds these settings configure (the model's own threshold unless
        one is set)."""
        threshold = self.confidence_threshold
        if threshold is None:
            threshold = classifier.threshold if classifier else LEXICON_THRESHOLD
        return IntakePolicy(
            confidence_threshold=threshold,
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


def load_classifier(directory: str | Path) -> Classifier | None:
    """The newest accepted model in `directory`, or None (the lexicon decides) when none."""
    try:
        classifier, meta = models.load_newest(Path(directory))
    except models.NoModel as e:
        log.warning("classifier_model_missing", detail=str(e))
        return None
    classifier.predict("")  # builds its lookup tables now, not on the first contact
    log.info("classifier_model_loaded", version=meta["version"], threshold=classifier.threshold)
    return classifier


def runtime_of(
    settings: IntakeSettings, db: Any, *, clock: Clock | None = None, **options: Any
) -> Runtime[Any]:
    """Intake's rules on a runtime, configured by `settings`."""
    classifier = load_classifier(settings.intake_model_dir)
    return intake_runtime(
        settings,
        db,
        lexicon=load_lexicon(settings.lexicon_path),
        policy=settings.policy(classifier),
        classifier=classifier,
        clock=clock,
        **options,
    )


def create_app(settings: IntakeSettings, clock: Clock | None = None) -> AsgiFastStream:
    """Build intake: its rules on the stateful runtime, HTTP endpoints, AsyncAPI."""
    parts = plumbing(settings)
    runtime = runtime_of(settings, parts.db, clock=clock)
    return build_app(
        parts, on_startup=[runtime.start], on_shutdown=[runtime.stop], gauges=runtime.observe
    )


PUBLISHES: Publishes = (
    (
        topics.CASE_CLASSIFIED,
        CaseClassified,
        "A contact recorded on a case and classified (SPEC §2); key: case id.",
    ),
    (
        topics.CUSTOMER_MERGED,
        CustomerMerged,
        "A contact proved known customers to be one; key: surviving customer id.",
    ),
    (
        topics.CUSTOMER_SEGMENT_CHANGED,
        CustomerSegmentChanged,
        "A customer moved to another segment (e.g. became loyal); key: case id.",
    ),
)


def specification(settings: IntakeSettings) -> KafkaBroker:
    """What intake consumes and publishes, for its AsyncAPI document."""
    return specification_broker(
        settings, runtime_of(settings, service_db(make_mongo(settings), settings)), PUBLISHES
    )
