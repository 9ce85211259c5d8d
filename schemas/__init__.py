"""The message contract of sentiment-stream: incoming posts, results, dead letters, SQL schema."""

from schemas.messages import (
    MAX_POST_BYTES,
    MAX_TEXT_CHARS,
    ClassificationResult,
    DeadLetterReason,
    IncomingPost,
    Label,
)

__all__ = [
    "MAX_POST_BYTES",
    "MAX_TEXT_CHARS",
    "ClassificationResult",
    "DeadLetterReason",
    "IncomingPost",
    "Label",
]
