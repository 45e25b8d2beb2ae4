"""cases.notice, attachments.purpose, document_voids

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

* `cases.notice`: a warning lists and pages show with a case (e.g. 本地学位信息库无此记录), kept by the engine.
* `attachments.purpose`: what an uploaded file is for, so a step can require the one its letter lists.
* `document_voids`: documents voided by a later step (withdrawal, send-back, cancellation); append-only, like
  the documents themselves, which stay as issued with their numbers.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS document_voids_no_update BEFORE UPDATE ON document_voids
        BEGIN SELECT RAISE(ABORT, 'document_voids is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS document_voids_no_delete BEFORE DELETE ON document_voids
        BEGIN SELECT RAISE(ABORT, 'document_voids is append-only'); END""",
]
PG_TRIGGERS = [
    """CREATE TRIGGER document_voids_append_only BEFORE UPDATE OR DELETE ON document_voids
        FOR EACH ROW EXECUTE FUNCTION degreeflow_append_only()""",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column, length in (("cases", "notice", 100), ("attachments", "purpose", 32)):
        if sqlite:
            # In place: a batch copy of a table others refer to would drop it.
            op.execute(f"ALTER TABLE {table} ADD COLUMN {column} VARCHAR({length}) NOT NULL DEFAULT ''")
        else:
            op.add_column(table, sa.Column(column, sqlmodel.sql.sqltypes.AutoString(length=length),
                                           nullable=False, server_default=""))  # fmt: skip
    op.create_table(
        "document_voids",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
        sa.ForeignKeyConstraint(["event_id"], ["case_events.id"]),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("document_id"),
    )
    op.create_index(op.f("ix_document_voids_event_id"), "document_voids", ["event_id"], unique=False)
    for statement in SQLITE_TRIGGERS if sqlite else PG_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index(op.f("ix_document_voids_event_id"), table_name="document_voids")
    op.drop_table("document_voids")
    for table, column in (("attachments", "purpose"), ("cases", "notice")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
