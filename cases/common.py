"""Pieces shared by the case types."""

from __future__ import annotations

from workflow import FieldRule

REASON = FieldRule("reason", "理由", from_note=True, fresh=True, hint="可用 --note 填写")

STATE_LABELS = {
    "draft": "草稿",
    "applied": "已提交申请（待省级审核）",
    "rejected": "已驳回",
    "recorded": "已办结入库",
}
