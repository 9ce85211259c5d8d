"""Input bounds are enforced before any expensive work (parsing, cleaning, the model)."""

from __future__ import annotations

import json
import socket
import time
from unittest.mock import MagicMock

import pytest
from prometheus_client import CollectorRegistry

from consumer.batch import Envelope, split_batch
from consumer.http import (
    MAX_BODY_BYTES,
    MAX_PREDICT_TEXTS,
    OpsServer,
    PredictError,
    parse_predict_body,
)
from consumer.metrics import Metrics
from schemas.decode import decode_post
from schemas.messages import MAX_POST_BYTES, MAX_TEXT_CHARS, DeadLetterReason
from textclean import CleaningConfig


def test_an_oversized_message_is_refused_without_parsing_it() -> None:
    raw = b'{"post_id": "a", "text": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    started = time.perf_counter()
    outcome = decode_post(raw)
    elapsed = time.perf_counter() - started
    assert getattr(outcome, "reason", None) == DeadLetterReason.TOO_LARGE
    assert elapsed < 0.01  # a length check, not a 10 MB JSON parse


def test_the_limits_are_the_documented_ones() -> None:
    assert MAX_POST_BYTES == 64 * 1024
    assert MAX_TEXT_CHARS == 5_000
    assert MAX_BODY_BYTES <= 1024 * 1024
    too_long = json.dumps({"post_id": "a", "text": "y" * (MAX_TEXT_CHARS + 1)}).encode()
    assert getattr(decode_post(too_long), "reason", None) == DeadLetterReason.TEXT_TOO_LONG


def test_refused_messages_never_reach_cleaning_or_the_model() -> None:
    cleaned: list[str] = []

    def clean(text: str) -> str:
        cleaned.append(text)
        return text

    values = [
        b"\xff" * 100,
        b"x" * (MAX_POST_BYTES + 1),
        b"{not json",
        json.dumps({"post_id": "a", "text": "z" * (MAX_TEXT_CHARS + 1)}).encode(),
        json.dumps({"post_id": "ok", "text": "fine"}).encode(),
    ]
    envelopes = [Envelope("posts", 0, i, 0, None, v) for i, v in enumerate(values)]
    accepted, rejected = split_batch(envelopes, clean)
    assert [a.post.post_id for a in accepted] == ["ok"]
    assert len(rejected) == 4
    assert cleaned == ["fine"]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"texts": ["a"] * (MAX_PREDICT_TEXTS + 1)}).encode(),
        json.dumps({"text": "b" * (MAX_TEXT_CHARS + 1)}).encode(),
        json.dumps({"texts": [""]}).encode(),
        json.dumps({"texts": [5]}).encode(),
        b"\xff\xfe",
        b'{"text": "x", "n": ' + b"9" * 5000 + b"}",
        b"[" * 100_000,
        b'{"text": "half a pair \\ud800"}',
    ],
    ids=[
        "too many texts",
        "too long",
        "empty",
        "not a string",
        "not UTF-8",
        "5,000-digit number",
        "deep nesting",
        "lone surrogate",
    ],
)
def test_predict_refuses_unbounded_input(body: bytes) -> None:
    with pytest.raises(PredictError):
        parse_predict_body(body)


@pytest.mark.parametrize(
    "content_length",
    ["-1", "abc", "1e3", "²", "9" * 5000, None],
    ids=["negative", "word", "float", "superscript", "5,000 digits", "missing"],
)
def test_predict_refuses_an_unusable_content_length(content_length: str | None) -> None:
    # A negative length read the body to the end of the stream, however long.
    server = OpsServer(
        "127.0.0.1",
        0,
        MagicMock(),
        CleaningConfig(),
        lambda: {},
        Metrics(CollectorRegistry()),
        CollectorRegistry(),
    )
    server.start()
    try:
        header = "" if content_length is None else f"Content-Length: {content_length}\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
            connection.sendall(f"POST /predict HTTP/1.1\r\n{header}\r\n".encode() + b"x" * 1000)
            status_line = connection.makefile("rb").readline()
        assert b" 400 " in status_line
    finally:
        server.stop()
