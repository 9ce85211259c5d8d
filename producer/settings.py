"""Producer settings, from the same `SENTIMENT_*` variables as the consumer's Kafka ones."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from common.settings import KafkaSettings


class ProducerSettings(KafkaSettings):
    producer_acks: Literal["0", "1", "all"] = "all"
    producer_linger_ms: int = Field(default=5, ge=0)
    producer_batch_bytes: int = Field(default=256 * 1024, ge=1024)
