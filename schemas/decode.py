"""Turn the raw bytes of a Kafka message into an `IncomingPost`, or a reason why not.

Pure: no I/O. Checks run cheapest first, so oversized or binary input costs almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from schemas.messages import MAX_POST_BYTES, MAX_TEXT_CHARS, DeadLetterReason, IncomingPost


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: DeadLetterReason
    detail: str


_VALIDATE_JSON = IncomingPost.__pydantic_validator__.validate_json


def decode_post(raw: bytes | None) -> IncomingPost | Rejection:
    if raw is None:
        return Rejection(DeadLetterReason.MALFORMED_JSON, "null message value (a tombstone)")
    if len(raw) == 0:
        return Rejection(DeadLetterReason.MALFORMED_JSON, "empty message value")
    if len(raw) > MAX_POST_BYTES:
        return Rejection(
            DeadLetterReason.TOO_LARGE, f"message is {len(raw)} bytes, limit {MAX_POST_BYTES}"
        )
    try:
        # The model's own validator on the bytes: no str copy, no Python wrapper (a third less
        # time than `IncomingPost.model_validate_json(raw.decode())` for a tweet).
        return _VALIDATE_JSON(raw)
    except ValidationError as error:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad_bytes:
            return Rejection(
                DeadLetterReason.INVALID_UTF8,
                f"not UTF-8: {bad_bytes.reason} at byte {bad_bytes.start}",
            )
        return _rejection_from(error)


def _rejection_from(error: ValidationError) -> Rejection:
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return Rejection(DeadLetterReason.MALFORMED_JSON, f"malformed JSON: {first['msg']}"[:2048])
    if first["type"] == "model_type":
        return Rejection(DeadLetterReason.SCHEMA_VIOLATION, "expected a JSON object")
    # A metadata key is part of the location, and may hold a NUL, which PostgreSQL cannot store.
    field = ".".join(str(part) for part in first["loc"]).replace("\x00", "\\x00") or "message"
    detail = f"{field}: {first['msg']}"
    if len(error.errors()) > 1:
        detail += f" (and {len(error.errors()) - 1} more)"
    if field == "text":
        if first["type"] == "string_too_long":
            return Rejection(
                DeadLetterReason.TEXT_TOO_LONG, f"text: longer than {MAX_TEXT_CHARS} characters"
            )
        if first["type"] in {"string_too_short", "string_pattern_mismatch"}:
            return Rejection(DeadLetterReason.EMPTY_TEXT, "text: empty or blank")
    return Rejection(DeadLetterReason.SCHEMA_VIOLATION, detail[:2048])
