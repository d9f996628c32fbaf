"""Model files: versioned `model-v<N>.npz` in the operator's model directory.

A file holds arrays only (vocabularies as string arrays, weights, idf) and its metadata as a
JSON string, and is read with `numpy.load(allow_pickle=False)`: loading a model never runs
code from the file. The directory is still the operator's to guard (a changed model changes
every decision). The newest version is the accepted one: `train` writes a file only when it
accepts it.
"""

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from services.intake.model import Classifier, View
from shared.events import LegalField

_NAME = re.compile(r"^model-v(\d{4,})\.npz$")


class NoModel(FileNotFoundError):
    """The model directory holds no model file."""


def versions(directory: Path) -> list[tuple[int, Path]]:
    """The model files in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def newest(directory: Path) -> Path | None:
    """The newest model file in `directory`, or None."""
    found = versions(directory)
    return found[-1][1] if found else None


def save(classifier: Classifier, directory: Path, *, report: dict[str, Any]) -> Path:
    """Write the classifier as the next version (written aside, then renamed into place)."""
    directory.mkdir(parents=True, exist_ok=True)
    found = versions(directory)
    version = found[-1][0] + 1 if found else 1
    path = directory / f"model-v{version:04d}.npz"
    meta = {
        "version": version,
        "classes": [c.value for c in classifier.classes],
        "temperature": classifier.temperature,
        "threshold": classifier.threshold,
        "views": [
            {"name": v.name, "text": v.text, "analyzer": v.analyzer, "ngrams": list(v.ngrams)}
            for v in classifier.views
        ],
        "report": report,
    }
    arrays: dict[str, np.ndarray] = {
        "meta": np.array(json.dumps(meta, ensure_ascii=False)),
        "coef": classifier.coef.astype(np.float32),
        "intercept": classifier.intercept,
    }
    if classifier.dispute_coef is not None:
        arrays["dispute.coef"] = classifier.dispute_coef.astype(np.float32)
        arrays["dispute.intercept"] = np.array(classifier.dispute_intercept)
    for view in classifier.views:
        terms = sorted(view.vocabulary, key=view.vocabulary.__getitem__)
        arrays[f"{view.name}.terms"] = np.array(terms, dtype=str)
        arrays[f"{view.name}.idf"] = view.idf
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(handle, "wb") as out:
        np.savez_compressed(out, **arrays)
    os.replace(temporary, path)
    return path


def load(path: Path) -> tuple[Classifier, dict[str, Any]]:
    """The classifier stored at `path` and its metadata (arrays only, nothing unpickled)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        views, offset = [], 0
        for v in meta["views"]:
            terms = data[f"{v['name']}.terms"].tolist()
            views.append(
                View(
                    name=v["name"],
                    text=v["text"],
                    analyzer=v["analyzer"],
                    ngrams=(int(v["ngrams"][0]), int(v["ngrams"][1])),
                    vocabulary={t: i for i, t in enumerate(terms)},
                    idf=data[f"{v['name']}.idf"].astype(np.float64),
                    offset=offset,
                )
            )
            offset += len(terms)
        classifier = Classifier(
            views=tuple(views),
            classes=tuple(LegalField(c) for c in meta["classes"]),
            coef=np.ascontiguousarray(data["coef"], dtype=np.float64),
            intercept=data["intercept"].astype(np.float64),
            temperature=float(meta["temperature"]),
            threshold=float(meta["threshold"]),
            dispute_coef=(
                data["dispute.coef"].astype(np.float64) if "dispute.coef" in data.files else None
            ),
            dispute_intercept=(
                float(data["dispute.intercept"]) if "dispute.intercept" in data.files else 0.0
            ),
        )
    return classifier, meta


def load_newest(directory: Path) -> tuple[Classifier, dict[str, Any]]:
    """The newest accepted classifier in `directory`; NoModel when there is none."""
    path = newest(directory)
    if path is None:
        raise NoModel(f"no model-v<N>.npz in {directory}: run python -m services.intake train")
    return load(path)
