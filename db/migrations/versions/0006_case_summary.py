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
        text = "CAST(json_extract(payload, '$.{}') AS TEXT)".format
        kind, length = "json_type(payload, '$.{}')".format, "json_array_length(payload, '$.{}')".format
    else:
        text, kind, length = (
            "payload->>'{}'".format,
            "json_typeof(payload->'{}')".format,
            "json_array_length(payload->'{}')".format,
        )
    names = [f"NULLIF({text(key)}, '')" for key in FIELDS]
    counts = [
        f"CASE WHEN {kind(key)} = 'array' AND {length(key)} > 0 THEN {length(key)} || ' 条' END"
        for key in LISTS
    ]
    return f"substr(COALESCE({', '.join(names + counts)}, ''), 1, 100)"


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
