"""Notifications: the inbox, and e-mail through a real (local) SMTP server started by the test."""

from __future__ import annotations

import email
import socket
from datetime import datetime
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller

from db.clock import SHANGHAI
from scheduler.notify import SmtpSettings
from tests.helpers import fire, open_case


class Collect:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, handler
    controller.stop()


def test_breach_is_emailed_once_to_the_people_with_addresses(flow, clock, smtp_server):
    controller, handler = smtp_server
    flow.smtp = SmtpSettings(host=controller.hostname, port=controller.port, sender="degreeflow@xwb.example")
    flow.add_user("prov45b", "韦晓", "reviewer", "45", email="weixiao@gxedu.example")
    flow.add_user("xwb02", "王芳", "officer", "XWB", email="wangfang@xwb.example")
    clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI))
    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector")
    clock.set(datetime(2026, 12, 22, 9, 0, tzinfo=SHANGHAI))
    report, delivery = flow.sweep()
    assert report.breaches == 1
    assert (delivery.sent, delivery.failed) == (2, 0), delivery
    by_recipient = {tuple(rcpt): message for rcpt, message in handler.received}
    assert set(by_recipient) == {("weixiao@gxedu.example",), ("wangfang@xwb.example",)}
    breach = by_recipient[("weixiao@gxedu.example",)]
    assert breach["Subject"].startswith("已超期：补报案件")
    assert "广西大学" in breach.get_content() and "2026-12-21" in breach.get_content()
    assert by_recipient[("wangfang@xwb.example",)]["Subject"].startswith("超期督办")
    # Nothing is sent twice; the inbox shows the message as e-mailed.
    report, delivery = flow.sweep()
    assert (report.breaches, delivery.sent) == (0, 0)
    assert len(handler.received) == 2
    assert flow.inbox("prov45b")[0]["emailed"] is True


def test_unreachable_smtp_keeps_the_message_for_a_retry(flow, clock):
    flow.smtp = SmtpSettings(host="127.0.0.1", port=_free_port(), timeout=2)
    flow.add_user("prov45b", "韦晓", "reviewer", "45", email="weixiao@gxedu.example")
    clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI))
    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector")
    clock.set(datetime(2026, 12, 22, 9, 0, tzinfo=SHANGHAI))
    _, delivery = flow.sweep()
    assert delivery.failed == 1
    message = next(m for m in flow.inbox("prov45b") if m["kind"] == "breach")
    assert message["emailed"] is False  # still in the inbox, and retried next time


def test_bad_email_is_refused(flow):
    from workflow import InvalidPayload

    with pytest.raises(InvalidPayload) as refused:
        flow.add_user("u1", "甲", "collector", "10593", email="not-an-address")
    assert refused.value.field == "email"
