"""Write the JSON Schema of each message model to `schemas/json/` (checked in; a test compares)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.messages import ClassificationResult, DeadLetterHeaders, IncomingPost

JSON_DIR = Path(__file__).with_name("json")
MODELS: dict[str, type[BaseModel]] = {
    "incoming_post": IncomingPost,
    "classification_result": ClassificationResult,
    "dead_letter_headers": DeadLetterHeaders,
}


def render(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def write_all(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(exist_ok=True)
    written = []
    for name, model in MODELS.items():
        path = directory / f"{name}.schema.json"
        path.write_text(render(model))
        written.append(path)
    return written
