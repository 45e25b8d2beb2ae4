"""queue index covers its filters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

ix_cases_queue gains type, state and org_id, so that reading the work queue in due order tests each open case's
type, state and organisation in the index, before reading the case row (bench/bench_web.py: the province's
queue at 100,000 cases).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_cases_queue", table_name="cases")
    op.create_index(
        "ix_cases_queue", "cases", ["closed_at", "next_due_at", "id", "type", "state", "org_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_cases_queue", table_name="cases")
    op.create_index("ix_cases_queue", "cases", ["closed_at", "next_due_at", "id"], unique=False)
