"""Wiring: settings -> database engine -> clock -> service."""

from __future__ import annotations

from datetime import datetime

from cases.service import DegreeFlow
from db import FixedClock, SystemClock, make_engine
from degreeflow.settings import Settings


def build(database_url: str | None = None, now: datetime | None = None) -> DegreeFlow:
    settings = Settings()
    url = database_url or settings.database_url
    at = now or settings.now
    clock = FixedClock(at) if at else SystemClock()
    return DegreeFlow(make_engine(url), clock)
