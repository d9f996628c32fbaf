"""Intake's classifier alone, in memory: microseconds to classify one message.

`python -m bench.classifier` prints it; `python -m bench` adds it to its table. Messages:
the frozen blind set (as customers write: one-liners to long e-mails), each classified as
intake does (the trained model for the field, the lexicon for flags and explanation).
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from services.intake import domain, models, training
from services.intake.app import IntakeSettings, load_classifier, load_lexicon
from shared.events import ContactKind


@dataclass(frozen=True)
class ClassifierTiming:
    """Per-message cost of classifying, median of repeated passes over the messages."""

    messages: int
    model_us: float
    """The trained model alone (features, weights, calibrated probability)."""
    classify_us: float
    """What intake's rule does: the model, then the lexicon's flags and explanation."""
    model_version: str


def measure(*, repeats: int = 5, messages: Path = training.BLIND) -> ClassifierTiming | None:
    """Time the newest model of LEXCARE_INTAKE_MODEL_DIR; None when there is no model."""
    settings = IntakeSettings()
    classifier = load_classifier(settings.intake_model_dir)
    if classifier is None:
        return None
    lexicon = load_lexicon(settings.lexicon_path)
    texts = [e.text for e in training.read_examples([messages])]

    def whole(text: str) -> domain.Classification:
        return domain.classify(
            message=text,
            kind=ContactKind.INQUIRY,
            form_field=None,
            lexicon=lexicon,
            threshold=classifier.threshold,
            prediction=classifier.predict(text),
        )

    def per_message(run: Callable[[str], object]) -> float:
        passes = []
        for _ in range(repeats):
            began = time.perf_counter()
            for text in texts:
                run(text)
            passes.append((time.perf_counter() - began) / len(texts) * 1e6)
        return statistics.median(passes)

    newest = models.newest(Path(settings.intake_model_dir))
    return ClassifierTiming(
        messages=len(texts),
        model_us=per_message(classifier.predict),
        classify_us=per_message(whole),
        model_version=newest.name if newest else "",
    )


if __name__ == "__main__":
    timing = measure()
    print(asdict(timing) if timing else "no model: run python -m services.intake train")
