"""The one place where configuration is read from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Platform settings; every variable is prefixed ``ALLIANCE_``."""

    model_config = SettingsConfigDict(env_prefix="ALLIANCE_", extra="ignore")

    kafka_bootstrap: str | None = Field(
        None, description="host:port of a Kafka broker; unset starts the embedded one"
    )
    redis_url: str | None = Field(
        None, description="redis:// URL; unset starts a redis-server child process"
    )
    data_dir: Path = Field(Path(".alliance"), description="journal and embedded data")
    topic_prefix: str = "alliance"
    redis_prefix: str = "ga"
    partitions: int = Field(3, ge=1, le=64)
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    request_timeout_s: float = Field(5.0, gt=0)
    suggestion_limit: int = Field(20, ge=1, le=100)
    journal_path: Path | None = Field(
        None, description="journal of accepted events; set by the runtime when embedded"
    )
    match_expiry_check_s: float = Field(
        300.0, gt=0, description="how often the API expires matches 30 days unanswered"
    )
    log_level: str = "INFO"

    @property
    def embedded_broker(self) -> bool:
        return self.kafka_bootstrap is None
