"""redactions: what privacy.redact replaced in a call or traffic row before storing it, per type

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("teacher_calls", sa.Column("redactions", sa.JSON(), nullable=True))
    op.add_column("traffic", sa.Column("redactions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("traffic") as batch:
        batch.drop_column("redactions")
    with op.batch_alter_table("teacher_calls") as batch:
        batch.drop_column("redactions")
