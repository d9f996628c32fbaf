"""JSON Schema of every event: `python -m shared.schemas DIR` writes DIR/schemas/<type>.json."""

import json
import sys
from pathlib import Path
from typing import Any

from shared.events import EVENT_MODELS, EXTERNAL_EVENTS


def event_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each event type, as it is accepted on the wire."""
    external = {model.TOPIC for model in EXTERNAL_EVENTS}
    schemas = {}
    for event_type, model in sorted(EVENT_MODELS.items()):
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://lexcare.local/schemas/{event_type}.json"
        schema["x-topic"] = event_type
        schema["x-direction"] = (
            "in (published by adapters and staff tools)"
            if (event_type in external)
            else "out (published by lexcare)"
        )
        schemas[event_type] = schema
    return schemas


def render(schema: dict[str, Any]) -> str:
    """Stable, diff-friendly JSON text."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    """Write every event's schema under `directory`/schemas; return the files written."""
    target = directory / "schemas"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in event_schemas().items():
        path = target / f"{event_type}.json"
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    files = write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
    print(f"wrote {len(files)} schemas to {files[0].parent}")
