"""`python -m services.intake train`: retrain on the corpus and the staff's corrections, compare
with the current model on the frozen blind set, and keep the new model only if it is no worse.
"""

import argparse
import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pymongo.errors import PyMongoError

from services.intake import model, models
from services.intake.state import Correction, Value
from shared.events import LegalField
from shared.mongo import make_mongo, service_db
from shared.runtime.storage import ChangeStore

DATA = Path(__file__).with_name("data")
CORPUS_GLOB = "corpus*.jsonl"
LEXICON_CORPUS = Path(__file__).parents[2] / "tests" / "data" / "intake_corpus.jsonl"
"""The corpus the lexicon was tuned on: labelled messages too (never blind-set lines)."""
BLIND = DATA / "blind.jsonl"


def default_corpus() -> list[Path]:
    """The training corpus: services/intake/data/corpus*.jsonl and the lexicon's corpus."""
    return [*sorted(DATA.glob(CORPUS_GLOB)), LEXICON_CORPUS]


def read_examples(paths: Iterable[Path]) -> list[model.Example]:
    """Labelled messages from JSON-lines files ({text, legal_field, also_accept, styles})."""
    examples = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            examples.append(
                model.Example(
                    text=row["text"],
                    legal_field=LegalField(row["legal_field"]),
                    also_accept=tuple(LegalField(f) for f in row.get("also_accept", [])),
                    styles=tuple(row.get("styles", [])),
                    is_dispute=row.get("is_dispute"),
                )
            )
    return examples


def corrections_as_examples(corrections: Iterable[Correction]) -> list[model.Example]:
    """Each staff correction as a labelled example (its text is stored without identity)."""
    return [
        model.Example(c.text, c.legal_field, styles=("correction",)) for c in corrections if c.text
    ]


async def stored_corrections(db: Any, partitions: int) -> list[Correction]:
    """Every `correction/<case_id>` intake's runtime stored in `db`, from all its partitions
    (each restored read-only, as its next owner would)."""
    store = ChangeStore(db, "state")
    decode = TypeAdapter(Value).validate_python
    found: list[Correction] = []
    for partition in range(partitions):
        restored = await store.restore(partition)
        for key, (value, _) in restored.values.items():
            if key.startswith("correction/"):
                correction = decode(value)
                if isinstance(correction, Correction):
                    found.append(correction)
    return found


async def corrections_of(settings: Any) -> list[Correction]:
    """The corrections in the database `settings` name (intake's own)."""
    client = make_mongo(settings)
    try:
        return await stored_corrections(service_db(client, settings), settings.partitions)
    finally:
        await client.close()


def report_lines(label: str, scores: model.Scores | None) -> list[str]:
    """A model's blind-set scores as printable lines."""
    if scores is None:
        return [f"{label}: none"]
    dispute = "" if scores.dispute is None else f", dispute head {scores.dispute:.1%}"
    lines = [
        f"{label}: accuracy {scores.accuracy:.1%} on {scores.count}, "
        f"triage rate on legal questions {scores.triage_rate:.1%}{dispute}"
    ]
    lines += [f"  style {s:<22}{v:>7.1%}" for s, v in scores.per_style.items()]
    lines += [f"  field {f:<22}{v:>7.1%}" for f, v in scores.per_field.items()]
    return lines


def run(
    *,
    corpus: Sequence[Path],
    blind: Path,
    model_dir: Path,
    corrections: Sequence[Correction] = (),
    max_triage: float = model.MAX_TRIAGE,
) -> tuple[int, str]:
    """Train, compare on the blind set, save when no worse: (exit code, what happened)."""
    examples = read_examples(corpus) + corrections_as_examples(corrections)
    if not examples:
        return 2, f"no training examples in {', '.join(map(str, corpus)) or 'no corpus file'}"
    blind_set = read_examples([blind])
    trained = model.train(examples, max_triage=max_triage)
    chosen = trained.cross_validated
    print(
        f"trained on {len(examples)} examples ({len(corrections)} corrections); threshold "
        f"{chosen.threshold:.2f} chosen by 5-fold cross-validation: precision "
        f"{chosen.precision:.1%}, triage rate on legal questions {chosen.triage_rate:.1%}, "
        f"accuracy {chosen.accuracy:.1%}"
    )
    current_path = models.newest(model_dir)
    current = models.load(current_path)[0] if current_path else None
    before = model.evaluate(current, blind_set) if current else None
    after = model.evaluate(trained.classifier, blind_set)
    print("\n".join(report_lines(f"before ({current_path or 'no model'})", before)))
    print("\n".join(report_lines("after", after)))
    reason = model.refusal(after, before)
    if reason:
        return 1, f"refused: {reason}; {current_path} stays"
    report = {
        "examples": len(examples),
        "corrections": len(corrections),
        "cross_validated": asdict(chosen),
        "blind": asdict(after),
    }
    path = models.save(trained.classifier, model_dir, report=report)
    return 0, f"accepted: {path}"


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The train command's options."""
    p = argparse.ArgumentParser(prog="python -m services.intake train", description=__doc__)
    p.add_argument(
        "--corpus", type=Path, nargs="*", help="default: data/corpus*.jsonl + the lexicon's"
    )
    p.add_argument("--blind", type=Path, default=BLIND, help="the frozen blind set")
    p.add_argument("--model-dir", type=Path, help="default: LEXCARE_INTAKE_MODEL_DIR")
    p.add_argument(
        "--no-corrections", action="store_true", help="skip the corrections in the database"
    )
    p.add_argument("--if-missing", action="store_true", help="only when no model exists yet")
    return p.parse_args(list(argv))


def main(argv: Sequence[str], settings: Any) -> int:
    """Run the train command; the exit code says whether a new model was accepted."""
    args = parse(argv)
    model_dir = args.model_dir or Path(settings.intake_model_dir)
    if args.if_missing and models.newest(model_dir):
        print(f"model present: {models.newest(model_dir)}")
        return 0
    corpus = args.corpus or default_corpus()
    try:
        corrections = [] if args.no_corrections else asyncio.run(corrections_of(settings))
    except PyMongoError as e:
        print(f"cannot read the corrections ({type(e).__name__}); --no-corrections skips them")
        return 2
    code, outcome = run(
        corpus=corpus, blind=args.blind, model_dir=model_dir, corrections=corrections
    )
    print(outcome)
    return code
