"""Pieces shared by the case types."""

from __future__ import annotations

from workflow import DeadlineEffect, FieldRule, Step

REASON = FieldRule("reason", "理由", from_note=True, fresh=True, hint="可用 --note 填写")

STATE_LABELS = {
    "draft": "草稿",
    "applied": "已提交申请（待省级审核）",
    "rejected": "已驳回",
    "recorded": "已办结入库",
    "cancelled": "已作废",
}

# Mistakes undone on the record (our design where the seeds are silent): every one is an audited step with a
# reason; the documents of the round it undoes become void (cases.voids), their numbers are never reused.
CANCELLED = "cancelled"
# Who of a unit may withdraw or cancel its case: the staff who work on cases (not a level-2 checker, not the
# leader who only gives authorization codes).
UNIT_STAFF = ("collector", "verifier", "admin")
# Fields of their own: `reason` is what a rejection letter states (and a revocation report's reason), so an
# undo's reason must not take its place in a later letter.
WITHDRAW_REASON = FieldRule(
    "withdraw_reason", "撤回理由", from_note=True, fresh=True, hint="可用 --note 填写"
)
CANCEL_REASON = FieldRule("cancel_reason", "作废理由", from_note=True, fresh=True, hint="可用 --note 填写")
RETURN_REASON = FieldRule("return_reason", "退回理由", from_note=True, fresh=True, hint="可用 --note 填写")
UNDO_REASONS = tuple(rule.name for rule in (WITHDRAW_REASON, CANCEL_REASON, RETURN_REASON))


def cancel_deadlines(*names: str) -> tuple[DeadlineEffect, ...]:
    """Close the named deadlines as cancelled (whatever their state): no reminder or escalation follows."""
    return tuple(DeadlineEffect("cancel", name) for name in names)


def withdraw(source: str, unit: str, *, deadlines: tuple[str, ...] = (), dest: str = "draft") -> Step:
    """撤回: the unit takes back what it sent before the next level acted (`source` is the state waiting on
    that level; once it acts the case has left it and the step is refused). A new round starts (the collector
    may collect again, a second person checks again); the documents sent become void; the waiting level's
    deadlines are cancelled."""
    return Step(
        "withdraw", source, dest, (unit,), label="撤回（省级办理前）", roles=UNIT_STAFF,
        requires=(WITHDRAW_REASON,), sends_back=True, voids_letters=True, deadlines=cancel_deadlines(*deadlines),
    )  # fmt: skip


def cancel(source: str, unit: str, *, deadlines: tuple[str, ...] = ()) -> Step:
    """作废: a case opened by mistake ends in `cancelled`, with a reason; all its deadlines are cancelled."""
    return Step(
        "cancel", source, CANCELLED, (unit,), label="作废本案件", roles=UNIT_STAFF,
        requires=(CANCEL_REASON,), voids_letters=True, deadlines=cancel_deadlines(*deadlines),
    )  # fmt: skip
