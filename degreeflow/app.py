"""Wiring: settings -> database engine -> clock -> service."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cases.service import DegreeFlow
from db import FixedClock, SystemClock, make_engine
from degreeflow.settings import Settings
from scheduler.notify import SmtpSettings


def build(
    database_url: str | None = None, now: datetime | None = None, settings: Settings | None = None
) -> DegreeFlow:
    settings = settings or Settings()
    url = database_url or settings.database_url
    at = now or settings.now
    clock = FixedClock(at) if at else SystemClock()
    smtp = None
    if settings.smtp_host:
        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    return DegreeFlow(
        make_engine(url),
        clock,
        reminder_days=settings.reminder_working_days,
        smtp=smtp,
        query_limit=settings.query_limit_per_minute,
        attachments_dir=Path(settings.data_dir) / "attachments",
        require_registry_record=settings.require_registry_record,
    )
