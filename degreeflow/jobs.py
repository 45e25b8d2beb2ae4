"""Jobs the scheduler runs. Referenced by name ("degreeflow.jobs:sweep_job") so the job store can persist them."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache

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
