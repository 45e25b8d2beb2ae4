"""APScheduler (3.x) wiring: one interval job that runs the sweep, its job store in the application database.

Each process that runs a scheduler starts its own APScheduler (apscheduler #160): that is safe because the
sweep is idempotent and claims rows in the database. A job missed while the process was down runs once at
start (coalesced), and the sweep's own conditions catch up on everything that fell due meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

JOB_ID = "degreeflow-deadline-sweep"
log = logging.getLogger("degreeflow.scheduler")


def _job_store(db: Engine):  # type: ignore[no-untyped-def]
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    return SQLAlchemyJobStore(engine=db, tablename="apscheduler_jobs")


def ensure_job_table(db: Engine) -> None:
    """Create APScheduler's job table with the rest of the schema, so that two schedulers starting at the same
    moment do not race to create it."""
    _job_store(db).jobs_t.create(db, checkfirst=True)


def build_scheduler(
    db: Engine, job: str, interval_seconds: int, kwargs: dict[str, Any], *, blocking: bool = True
):  # type: ignore[no-untyped-def]
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    kind = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = kind(
        jobstores={"default": _job_store(db)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone="Asia/Shanghai",
    )
    scheduler.add_job(
        job,
        "interval",
        seconds=interval_seconds,
        id=JOB_ID,
        name="deadline sweep",
        replace_existing=True,
        kwargs=kwargs,
        next_run_time=datetime.now().astimezone(),  # run once at start: catch up after downtime
    )
    return scheduler
