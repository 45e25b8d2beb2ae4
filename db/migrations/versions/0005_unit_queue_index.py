"""a unit's work queue: its open cases in due order

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

With a million cases over a hundred units, a unit holds ten thousand and has a few thousand waiting; its queue
read them all by (organisation, type, state) and sorted them (9 ms on PostgreSQL). This index gives them in due
order: on SQLite as (org_id, closed_at, next_due_at, ...), on PostgreSQL as a partial index of open cases
(PostgreSQL does not take `closed_at IS NULL` as fixing a column for the order; see 0004).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ["org_id", "next_due_at", "id", "type", "state"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_cases_unit_queue_open",
            "cases",
            COLUMNS,
            unique=False,
            postgresql_where=sa.text("closed_at IS NULL"),
        )
    else:
        op.create_index("ix_cases_unit_queue", "cases", ["org_id", "closed_at", *COLUMNS[1:]], unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_cases_unit_queue_open", table_name="cases")
    else:
        op.drop_index("ix_cases_unit_queue", table_name="cases")
