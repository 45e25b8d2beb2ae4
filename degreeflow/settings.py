"""All settings in one place, read from the environment (DEGREEFLOW_*) and overridable by CLI options."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEGREEFLOW_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/degreeflow.db",
        description="Database URL: sqlite:///path/to/file.db (default) or postgresql://user@host:5432/dbname",
    )
    now: datetime | None = Field(
        default=None,
        description="Fixed current time (ISO 8601, Asia/Shanghai if no offset) for scripted deadline scenarios",
    )
