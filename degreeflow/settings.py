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
    reminder_working_days: int = Field(
        default=3, ge=0, description="Remind this many working days before a deadline"
    )
    sweep_interval_seconds: int = Field(
        default=60, ge=1, description="How often the scheduler runs the sweep"
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for e-mail notifications (off if unset)"
    )
    smtp_port: int = Field(default=25, description="SMTP port")
    smtp_from: str = Field(default="degreeflow@localhost", description="Sender address of notifications")
    smtp_user: str | None = Field(default=None, description="SMTP login (optional)")
    smtp_password: str | None = Field(default=None, description="SMTP password (optional)")
    smtp_starttls: bool = Field(default=False, description="Use STARTTLS")
    query_limit_per_minute: int = Field(
        default=10, ge=1, description="Online certificate queries an anonymous caller may make per minute"
    )
    letter_fonts: str = Field(
        default='FangSong, "仿宋_GB2312", "Noto Serif CJK SC"',
        description="Font family stack of letter bodies (the first installed one is used)",
    )
    letter_title_fonts: str = Field(
        default='"方正小标宋简体", "FZXiaoBiaoSong-B05S", "Noto Serif CJK SC"',
        description="Font family stack of organ marks and titles",
    )
