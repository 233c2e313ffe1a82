"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from vigil.migrate import apply_frozen_sql

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_frozen_sql(revision)


def downgrade() -> None:
    raise NotImplementedError("Vigil migrations are forward-only; restore a backup instead")
