"""Notifications: the outbox is every user's inbox; messages are also e-mailed when SMTP is configured.

Delivery is at-least-once: a message is marked sent in the same transaction that claimed it, after the SMTP
server accepted it; a crash between the two may send it again, never lose it.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Engine, or_, select, update

from db.engine import transaction
from db.models import OutboxMessage, User

OUTBOX = OutboxMessage.__table__
USERS = User.__table__
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "degreeflow@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0


@dataclass
class DeliveryReport:
    sent: int = 0
    no_address: int = 0
    failed: int = 0


def deliver(db: Engine, smtp: SmtpSettings, now: datetime, limit: int = 200) -> DeliveryReport:
    report = DeliveryReport()
    with transaction(db) as conn:
        query = (
            select(OUTBOX)
            .where(OUTBOX.c.sent_at.is_(None), OUTBOX.c.attempts < MAX_ATTEMPTS)
            .order_by(OUTBOX.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        messages = conn.execute(query).all()
        if not messages:
            return report
        client: smtplib.SMTP | None = None
        try:
            for message in messages:
                recipients = _addresses(conn, message)
                if not recipients:
                    conn.execute(
                        update(OUTBOX)
                        .where(OUTBOX.c.id == message.id)
                        .values(sent_at=now, last_error="收件人没有登记邮箱（消息仍在站内收件箱）")
                    )
                    report.no_address += 1
                    continue
                try:
                    if client is None:
                        client = _connect(smtp)
                    client.send_message(_email(smtp, message, recipients))
                except (OSError, smtplib.SMTPException) as error:
                    conn.execute(
                        update(OUTBOX)
                        .where(OUTBOX.c.id == message.id)
                        .values(attempts=OUTBOX.c.attempts + 1, last_error=str(error)[:500])
                    )
                    report.failed += 1
                    client = None
                    continue
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id == message.id)
                    .values(sent_at=now, attempts=OUTBOX.c.attempts + 1, last_error="")
                )
                report.sent += 1
        finally:
            if client is not None:
                try:
                    client.quit()
                except (OSError, smtplib.SMTPException):
                    pass
    return report


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    if smtp.starttls:
        client.starttls()
    if smtp.user:
        client.login(smtp.user, smtp.password or "")
    return client


def _addresses(conn: Any, message: Any) -> list[str]:
    query = select(USERS.c.email).where(
        USERS.c.active.is_(True), USERS.c.email.is_not(None), USERS.c.email != ""
    )
    if message.recipient_user_id is not None:
        query = query.where(USERS.c.id == message.recipient_user_id)
    else:
        query = query.where(USERS.c.org_id == message.recipient_org_id)
    return sorted({row.email for row in conn.execute(query)})


def _email(smtp: SmtpSettings, message: Any, recipients: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = smtp.sender
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = message.subject
    mail.set_content(message.body + (f"\n\n案件编号：{message.case_id}" if message.case_id else ""))
    return mail


def inbox_query(user_id: int, org_id: int) -> Any:
    return (
        select(OUTBOX)
        .where(or_(OUTBOX.c.recipient_user_id == user_id, OUTBOX.c.recipient_org_id == org_id))
        .order_by(OUTBOX.c.id.desc())
    )
