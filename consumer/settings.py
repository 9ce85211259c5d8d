"""Every knob of the consumer, from `SENTIMENT_*` environment variables (see README)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from common.settings import KafkaSettings, PostgresSettings, RedisSettings


def _default_bundle() -> Path:
    from inference import DEFAULT_BUNDLE_PATH

    return Path(DEFAULT_BUNDLE_PATH)


class ConsumerSettings(KafkaSettings, RedisSettings, PostgresSettings):
    group_id: str = "sentiment-consumers"
    results_topic: str | None = Field(
        default=None, description="Publish each result here too (off when unset)."
    )
    # Each batch pays fixed costs (thread hand-overs, a Redis round trip, a transaction, a
    # commit): 1,024 stored 29-35 % more posts/s than 256 at saturation (docs/performance.md).
    # Below saturation the wait closes batches long before they are full.
    batch_max_size: int = Field(default=1024, ge=1, le=10_000)
    batch_max_wait_ms: int = Field(default=50, ge=0, le=60_000)

    bundle_path: Path = Field(default_factory=_default_bundle)
    model_quantized: bool = Field(default=False, description="Use the bundle's INT8 model.")
    onnx_threads: int = Field(default=1, ge=1, description="onnxruntime threads per process.")
    inference_thread: bool = Field(
        default=True,
        description="Classify each batch on a thread of its own while the next one is decoded.",
    )

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535, description="0 picks a free port.")

    cache_enabled: bool = True
    cache_admission: Literal["repeats", "all"] = Field(
        default="repeats",
        description="repeats: write a result to Redis once this process has seen its text "
        "before (most texts never repeat); all: write every new result.",
    )
    cache_retry_after_seconds: float = Field(
        default=5.0, gt=0, description="After a Redis error, skip the cache this long."
    )
    redis_timeout_seconds: float = Field(default=0.25, gt=0)

    migrate_on_start: bool = True
    database_retry_max_seconds: float = Field(default=5.0, gt=0)

    max_poll_interval_ms: int = Field(default=300_000, ge=1_000)
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    shutdown_timeout_seconds: float = Field(default=20.0, gt=0)
