"""departments

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Departments inside a unit (authentication lead and verification departments, colleges, managing departments)
and, on users, the department and the contact details of the registration forms (seed 001 annexes 2-3).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("levels", sa.JSON(), nullable=False),
        sa.Column("years", sa.JSON(), nullable=False),
        sa.Column("forms", sa.JSON(), nullable=False),
        sa.Column("head_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("unit_id", "name", name="uq_departments_unit_name"),
    )
    op.create_index(op.f("ix_departments_unit_id"), "departments", ["unit_id"], unique=False)
    text = {"phone": 32, "mobile": 32, "fax": 32, "address": 200}
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column in place (a batch copy of users would drop a table others refer to).
        op.execute("ALTER TABLE users ADD COLUMN department_id INTEGER REFERENCES departments (id)")
        for name, length in text.items():
            op.execute(f"ALTER TABLE users ADD COLUMN {name} VARCHAR({length}) NOT NULL DEFAULT ''")
    else:
        op.add_column("users", sa.Column("department_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_users_department_id", "users", "departments", ["department_id"], ["id"])
        for name, length in text.items():
            op.add_column("users", sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length),
                                             nullable=False, server_default=""))  # fmt: skip
            op.alter_column("users", name, server_default=None)  # the defaults filled the existing rows
    op.create_index(op.f("ix_users_department_id"), "users", ["department_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_users_department_id"), table_name="users")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_users_department_id", "users", type_="foreignkey")
    for name in ("address", "fax", "mobile", "phone", "department_id"):
        op.drop_column("users", name)
    op.drop_index(op.f("ix_departments_unit_id"), table_name="departments")
    op.drop_table("departments")
