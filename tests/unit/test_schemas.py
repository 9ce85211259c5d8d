from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas import ClassificationResult, DeadLetterReason, IncomingPost
from schemas.decode import Rejection, decode_post
from schemas.export_json import JSON_DIR, MODELS, render

SCHEMA = DeadLetterReason.SCHEMA_VIOLATION


def post_bytes(**fields: object) -> bytes:
    import json

    return json.dumps({"post_id": "p-1", "text": "what a lovely day", **fields}).encode()


def test_valid_post_decodes_with_all_optional_fields() -> None:
    post = decode_post(
        post_bytes(
            author="alice",
            source="twitter",
            lang="en",
            created_at="2026-11-22T10:00:00+00:00",
            metadata={"retweets": 3, "verified": True},
        )
    )
    assert isinstance(post, IncomingPost)
    assert post.created_at == datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert post.metadata == {"retweets": 3, "verified": True}


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b'{"text": "hello"}', DeadLetterReason.SCHEMA_VIOLATION, "post_id"),
        (post_bytes(text=""), DeadLetterReason.EMPTY_TEXT, "text"),
        (post_bytes(text="   \n"), DeadLetterReason.EMPTY_TEXT, "text"),
        (post_bytes(text="x" * 5001), DeadLetterReason.TEXT_TOO_LONG, "text"),
        (post_bytes(text=42), DeadLetterReason.SCHEMA_VIOLATION, "text"),
        (post_bytes(post_id="has space"), DeadLetterReason.SCHEMA_VIOLATION, "post_id"),
        (post_bytes(post_id=7), DeadLetterReason.SCHEMA_VIOLATION, "post_id"),
        (
            post_bytes(created_at="2026-11-22T10:00:00"),
            DeadLetterReason.SCHEMA_VIOLATION,
            "created_at",
        ),
        (post_bytes(surprise=1), DeadLetterReason.SCHEMA_VIOLATION, "surprise"),
        (b"\xff\xfe\x00binary", DeadLetterReason.INVALID_UTF8, "UTF-8"),
        (b'{"post_id": "p", "text": "caf\xe9"}', DeadLetterReason.INVALID_UTF8, "UTF-8"),
        (b"{not json", DeadLetterReason.MALFORMED_JSON, "JSON"),
        (b"", DeadLetterReason.MALFORMED_JSON, "empty"),
        (None, DeadLetterReason.MALFORMED_JSON, "null"),
        (b"[1, 2]", DeadLetterReason.SCHEMA_VIOLATION, "object"),
        (b'{"a": "' + b"x" * 70_000 + b'"}', DeadLetterReason.TOO_LARGE, "limit"),
        # What PostgreSQL would refuse, stalling the partition: refused here instead.
        (b'{"post_id": "p", "text": "x", "metadata": {"k": NaN}}', SCHEMA, "finite"),
        (b'{"post_id": "p", "text": "x", "metadata": {"k": -Infinity}}', SCHEMA, "finite"),
        (b'{"post_id": "p", "text": "x", "metadata": {"k": 1e400}}', SCHEMA, "finite"),
        (post_bytes(created_at="2026-11-22T10:00:00+16:00"), SCHEMA, "offset"),
        (post_bytes(created_at="2026-11-22T10:00:00-20:30"), SCHEMA, "offset"),
    ],
)
def test_bad_input_is_rejected_with_a_reason_naming_the_field(
    raw: bytes | None, reason: DeadLetterReason, field: str
) -> None:
    rejection = decode_post(raw)
    assert isinstance(rejection, Rejection)
    assert rejection.reason is reason
    assert field in rejection.detail


# Every character str.isspace() accepts, and characters around those ranges that it does not.
SPACES = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
NOT_SPACES = ["\x1b", "\x20\u200b", "\x7f", "\u180e", "\u2060", "\ufeff", "."]


def test_a_text_of_nothing_but_whitespace_is_empty_text_whatever_the_whitespace() -> None:
    assert len(SPACES) == 29  # \t-\r, \x1c-\x1f, space, \x85, \xa0, U+1680, U+2000-U+3000
    for space in SPACES:
        rejection = decode_post(post_bytes(text=f"{space} {space}"))
        assert isinstance(rejection, Rejection), repr(space)
        assert rejection.reason is DeadLetterReason.EMPTY_TEXT
    rejection = decode_post(post_bytes(text=SPACES))
    assert isinstance(rejection, Rejection) and rejection.reason is DeadLetterReason.EMPTY_TEXT


@pytest.mark.parametrize("character", NOT_SPACES)
def test_a_text_with_anything_but_whitespace_is_accepted(character: str) -> None:
    assert isinstance(decode_post(post_bytes(text=f"{SPACES}{character}{SPACES}")), IncomingPost)


def test_a_nul_in_a_metadata_key_is_escaped_in_the_reason() -> None:
    # The reason names the field, metadata keys included, and goes into a text column.
    rejection = decode_post(b'{"post_id": "p", "text": "x", "metadata": {"\\u0000": [1]}}')
    assert isinstance(rejection, Rejection)
    assert "\x00" not in rejection.detail
    assert "metadata.\\x00" in rejection.detail


def test_real_time_zone_offsets_are_accepted() -> None:
    for offset in ("+14:00", "-12:00", "+05:45", "+15:59"):
        post = decode_post(post_bytes(created_at=f"2026-11-22T10:00:00{offset}"))
        assert not isinstance(post, Rejection), offset


def test_models_are_frozen() -> None:
    post = IncomingPost(post_id="p-1", text="hi")
    with pytest.raises(ValidationError):
        post.text = "changed"  # type: ignore[misc]


def test_result_probabilities_are_bounded() -> None:
    fields = dict(
        post_id="p-1",
        label="positive",
        confidence=0.9,
        model_version="v1",
        processed_at=datetime.now(UTC),
        cached=False,
    )
    ClassificationResult(positive_probability=0.9, **fields)
    with pytest.raises(ValidationError, match="positive_probability"):
        ClassificationResult(positive_probability=1.5, **fields)
    with pytest.raises(ValidationError, match="label"):
        ClassificationResult(**{**fields, "label": "angry"}, positive_probability=0.5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_checked_in_json_schema_matches_the_model(name: str) -> None:
    checked_in = (JSON_DIR / f"{name}.schema.json").read_text()
    assert checked_in == render(MODELS[name]), "run `python -m schemas json` and commit the result"
