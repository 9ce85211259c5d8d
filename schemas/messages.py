"""Strict, frozen pydantic models for what crosses the bus.

`IncomingPost` is what producers publish to the posts topic; `ClassificationResult` is what
the consumer stores (and optionally publishes). Sizes are bounded so that bad input is refused
with a reason naming the field, before any expensive work.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_TEXT_CHARS = 5_000
"""Longest text accepted. Tweets are ≤ 280 characters; longer posts are allowed but bounded."""

MAX_POST_BYTES = 64 * 1024
"""Largest encoded message accepted; checked before JSON parsing."""

MAX_UTC_OFFSET = timedelta(hours=16)

POST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"

Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")

LanguageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")]
PostId = Annotated[str, StringConstraints(pattern=POST_ID_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MetadataValue = str | int | float | bool | None


class _Frozen(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class IncomingPost(_Frozen):
    """A social-media post to classify."""

    post_id: PostId = Field(description="Stable id; re-publishing the same id never adds a row.")
    # Not blank: a character that str.isspace() refuses (Unicode White_Space, and the
    # separators U+001C-U+001F that Python counts as space too). A pattern rather than a Python
    # validator: checked without a call into Python per post, and visible in the JSON Schema.
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, pattern=r"[^\s\x1c-\x1f]")
    author: ShortText | None = None
    source: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")] | None = (
        Field(default=None, description="Where the post comes from, e.g. 'twitter'.")
    )
    lang: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")] | None
    ) = None
    created_at: AwareDatetime | None = Field(
        default=None,
        description="When the post was written; end-to-end latency starts here.",
    )
    metadata: dict[Annotated[str, StringConstraints(max_length=64)], MetadataValue] = Field(
        default_factory=dict, max_length=32
    )

    @field_validator("metadata")
    @classmethod
    def _metadata_values_bounded(
        cls, metadata: dict[str, MetadataValue]
    ) -> dict[str, MetadataValue]:
        for key, value in metadata.items():
            if isinstance(value, str) and len(value) > 1024:
                raise ValueError(f"metadata value for {key!r} is longer than 1024 characters")
            # JSON parsers take NaN, Infinity and 1e400 (inf); PostgreSQL's jsonb refuses them.
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"metadata value for {key!r} is not a finite number")
        return metadata

    @field_validator("created_at")
    @classmethod
    def _offset_storable(cls, created_at: datetime | None) -> datetime | None:
        # Real offsets lie within ±14:00; PostgreSQL refuses any of 16 hours or more.
        offset = created_at.utcoffset() if created_at is not None else None
        if offset is not None and abs(offset) >= MAX_UTC_OFFSET:
            raise ValueError("time-zone offset must be less than 16 hours")
        return created_at


class ClassificationResult(_Frozen):
    """The service's verdict on one post."""

    post_id: PostId
    label: Label
    positive_probability: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0, description="Probability of the chosen label.")
    model_version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    processed_at: AwareDatetime
    cached: bool = Field(description="True when the answer came from the Redis cache.")


class DeadLetterReason(StrEnum):
    """Why a message went to the dead-letter topic (a bounded set: it is a metric label)."""

    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    MALFORMED_JSON = "malformed_json"
    SCHEMA_VIOLATION = "schema_violation"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"


class DeadLetterHeaders(_Frozen):
    """Headers put on a dead letter; its value is the original bytes, untouched."""

    reason: DeadLetterReason
    detail: Annotated[str, StringConstraints(max_length=2048)]
    source_topic: str
    source_partition: int
    source_offset: int
    failed_at: datetime
