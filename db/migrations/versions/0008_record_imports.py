"""record_imports, record_import_confirmations, degree_records.import_id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

* `record_imports`: every import of a record file — who, when, the organisation, the file's name and SHA-256,
  rows accepted and refused, what kind of import it was and its status as imported (public, working, pending,
  refused). Append-only once complete: written before the import's records (they refer to it) as 'importing' and
  completed in the same transaction.
* `record_import_confirmations`: the second person's confirmation of a unit's import of its filed data, one per
  import. Append-only.
* `degree_records.import_id`: the import that brought a record (NULL for a record filed by a case, and for the
  records already there, which stay as they are).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The confirmations are append-only; an import's audit row is written before its records (they refer to it) and
# completed once, in the same transaction: it may change only while its status is still 'importing'.
SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS record_import_confirmations_no_update BEFORE UPDATE ON record_import_confirmations
        BEGIN SELECT RAISE(ABORT, 'record_import_confirmations is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS record_import_confirmations_no_delete BEFORE DELETE ON record_import_confirmations
        BEGIN SELECT RAISE(ABORT, 'record_import_confirmations is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS record_imports_no_update BEFORE UPDATE ON record_imports
        WHEN OLD.status <> 'importing' BEGIN SELECT RAISE(ABORT, 'record_imports is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS record_imports_no_delete BEFORE DELETE ON record_imports
        BEGIN SELECT RAISE(ABORT, 'record_imports is append-only'); END""",
]
PG_TRIGGERS = [
    """CREATE TRIGGER record_import_confirmations_append_only BEFORE UPDATE OR DELETE ON record_import_confirmations
        FOR EACH ROW EXECUTE FUNCTION degreeflow_append_only()""",
    """CREATE OR REPLACE FUNCTION degreeflow_import_audit() RETURNS trigger AS $$
       BEGIN
         IF TG_OP = 'UPDATE' AND OLD.status = 'importing' THEN RETURN NEW; END IF;
         RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
       END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER record_imports_append_only BEFORE UPDATE OR DELETE ON record_imports
        FOR EACH ROW EXECUTE FUNCTION degreeflow_import_audit()""",
]


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "record_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", text(length=5), nullable=False),
        sa.Column("filename", text(length=200), nullable=False),
        sa.Column("sha256", text(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("kind", text(length=16), nullable=False),
        sa.Column("status", text(length=16), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("message", text(length=500), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_record_imports_unit_at", "record_imports", ["unit_code", "at"], unique=False)
    op.create_table(
        "record_import_confirmations",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["record_imports.id"]),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("import_id"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # In place: a batch copy of a table others refer to would drop it. SQLite adds a REFERENCES clause to a
        # column added by ALTER TABLE only when its default is NULL, which it is.
        op.execute("ALTER TABLE degree_records ADD COLUMN import_id INTEGER REFERENCES record_imports (id)")
    else:
        op.add_column("degree_records", sa.Column("import_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "degree_records_import_id_fkey", "degree_records", "record_imports", ["import_id"], ["id"]
        )
    for statement in SQLITE_TRIGGERS if sqlite else PG_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        with op.batch_alter_table("degree_records", schema=None) as batch_op:
            batch_op.drop_column("import_id")
    else:
        op.drop_constraint("degree_records_import_id_fkey", "degree_records", type_="foreignkey")
        op.drop_column("degree_records", "import_id")
    op.drop_table("record_import_confirmations")
    op.drop_index("ix_record_imports_unit_at", table_name="record_imports")
    op.drop_table("record_imports")
    if not sqlite:
        op.execute("DROP FUNCTION IF EXISTS degreeflow_import_audit()")
