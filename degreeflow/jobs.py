"""Jobs the scheduler runs. Referenced by name ("degreeflow.jobs:sweep_job") so the job store can persist them."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache

from sqlalchemy import Engine

from cases.service import DegreeFlow
from degreeflow import app as wiring

log = logging.getLogger("degreeflow.scheduler")


@cache
def _service(database_url: str, now: str | None) -> DegreeFlow:
    return wiring.build(database_url, datetime.fromisoformat(now) if now else None)


def sweep_job(database_url: str, now: str | None = None) -> dict[str, object]:
    flow = _service(database_url, now)
    report, delivery = flow.sweep()
    summary = {k: v for k, v in report.to_dict().items() if k != "findings"}
    if delivery is not None:
        summary["emailed"] = delivery.sent
    log.info("deadline sweep: %s", summary)
    return summary


def sweep_scheduler(db: Engine, interval_seconds: int, now: datetime | None, *, blocking: bool):  # type: ignore[no-untyped-def]
    """The APScheduler that runs `sweep_job` every `interval_seconds` on this database (its job store too)."""
    from scheduler.runner import build_scheduler

    kwargs = {
        "database_url": db.url.render_as_string(hide_password=False),
        "now": now.isoformat() if now else None,
    }
    return build_scheduler(db, "degreeflow.jobs:sweep_job", interval_seconds, kwargs, blocking=blocking)
