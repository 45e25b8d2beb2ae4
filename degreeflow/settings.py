"""All settings in one place, read from the environment (DEGREEFLOW_*) and overridable by CLI options."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me"


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
    require_registry_record: bool = Field(
        default=False,
        description="Refuse amendment, errata, revocation, photo and authentication cases whose certificate the "
        "local registry does not hold (by default such a case is flagged 本地学位信息库无此记录 instead)",
    )
    spot_check_percent: float = Field(
        default=5.0,
        ge=0,
        le=100,
        description="Share of a month's finished authentication reports spot-checked (%)",
    )
    secret_key: str = Field(
        default=PLACEHOLDER_SECRET,
        description="Key that signs session cookies (web). `degreeflow serve` refuses the placeholder outside demo mode",
    )
    demo: bool = Field(
        default=False, description="Demo mode: demo accounts and the placeholder secret are allowed"
    )
    host: str = Field(default="127.0.0.1", description="Address `degreeflow serve` listens on")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `degreeflow serve` listens on")
    cookie_secure: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (set behind TLS)"
    )
    session_hours: int = Field(default=8, ge=1, le=72, description="Hours a web session lasts")
    data_dir: str = Field(default="var", description="Directory for uploaded attachments and import files")
    max_upload_mb: int = Field(default=20, ge=1, le=500, description="Largest accepted upload (MB)")
    web_threads: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Writes and file downloads (PDF, XLSX) one web process works on at once, beside the reads",
    )
    web_reads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Page and API reads one web process computes at once; the others wait their turn in arrival order",
    )
    letter_fonts: str = Field(
        default='FangSong, "仿宋_GB2312", "Noto Serif CJK SC"',
        description="Font family stack of letter bodies (the first installed one is used)",
    )
    letter_title_fonts: str = Field(
        default='"方正小标宋简体", "FZXiaoBiaoSong-B05S", "Noto Serif CJK SC"',
        description="Font family stack of organ marks and titles",
    )

    def secret_problem(self) -> str | None:
        """Why the web application must not start with this secret, or None."""
        if self.demo:
            return None
        if self.secret_key == PLACEHOLDER_SECRET or len(self.secret_key) < 32:
            return (
                "DEGREEFLOW_SECRET_KEY 仍为占位值或短于 32 个字符：请设置随机密钥"
                "（如 python -c 'import secrets; print(secrets.token_urlsafe(48))'），或以演示模式运行（--demo）"
            )
        return None
