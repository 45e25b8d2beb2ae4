"""cases.summary: what lists show as a case's subject

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

Work queues and case lists showed a case's subject (a name, or "N 条" for a batch) by reading its whole payload,
which for a filing or supplement batch holds thousands of records (megabytes of JSON per listed case). The
engine now copies the subject to `cases.summary` on every step (`ProcessDefinition.summary_of`); this fills it
for the cases already there, by the same rule.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FIELDS = ("name", "applicant_name")
LISTS = ("records", "people", "changes")


def _rule(dialect: str) -> str:
    """`ProcessDefinition.summary_of` in SQL."""
    if dialect == "sqlite":
        text = [f"NULLIF(CAST(json_extract(payload, '$.{key}') AS TEXT), '')" for key in FIELDS]
        count = [
            f"CASE WHEN json_type(payload, '$.{key}') = 'array' AND json_array_length(payload, '$.{key}') > 0 "
            f"THEN json_array_length(payload, '$.{key}') || ' 条' END"
            for key in LISTS
        ]
    else:
        text = [f"NULLIF(payload->>'{key}', '')" for key in FIELDS]
        count = [
            f"CASE WHEN json_typeof(payload->'{key}') = 'array' AND json_array_length(payload->'{key}') > 0 "
            f"THEN json_array_length(payload->'{key}') || ' 条' END"
            for key in LISTS
        ]
    return f"substr(COALESCE({', '.join(text + count)}, ''), 1, 100)"


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "summary", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default=""
            )
        )
    op.execute(f"UPDATE cases SET summary = {_rule(op.get_bind().dialect.name)}")


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("summary")
