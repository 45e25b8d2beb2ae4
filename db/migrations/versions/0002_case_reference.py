"""case reference

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

cases.reference: the certificate number of amendment, errata, revocation and authentication cases, copied from
the payload on every step and indexed, so finding a case by its certificate number does not read every case.
Existing cases get theirs from their payload.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_cases_reference"), ["reference"], unique=False)
    cert_no = (
        "json_extract(payload, '$.cert_no')"
        if op.get_bind().dialect.name == "sqlite"
        else "payload->>'cert_no'"
    )
    op.execute(
        f"UPDATE cases SET reference = substr({cert_no}, 1, 64) "
        "WHERE type IN ('amendment', 'errata', 'revocation', 'authentication')"
    )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_reference"))
        batch_op.drop_column("reference")
