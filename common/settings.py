"""Connection settings shared by the services, read from `SENTIMENT_*` environment variables.

Each service has one settings class built from these mixins (see `consumer.settings`,
`producer.settings`), so the same variable configures every service that needs it.
Defaults point at the embedded stack (`python -m devstack up`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "SENTIMENT_"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"


class KafkaSettings(ServiceSettings):
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    posts_topic: str = "posts"
    dead_letter_topic: str = "posts.dlq"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = Field(default=None, description="CA bundle for SSL/SASL_SSL")

    def kafka_client_options(self) -> dict[str, Any]:
        """Options common to kafka-python's producer, consumer and admin clients."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap_servers.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_cafile:
            options["ssl_cafile"] = self.kafka_ssl_cafile
        return options


class RedisSettings(ServiceSettings):
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        description="May carry a password (redis://:PASSWORD@host:port/db), hence secret.",
    )
    cache_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)


class PostgresSettings(ServiceSettings):
    postgres_dsn: SecretStr = Field(
        default=SecretStr("postgresql://sentiment:sentiment-dev@127.0.0.1:5432/sentiment"),
        description="libpq connection string; carries the password, hence secret.",
    )
