"""leases: graduate label --ray claims calls with a lease, and spends from budget slices

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("teacher_calls", sa.Column("lease_owner", sa.String(length=64), nullable=True))
    op.add_column("teacher_calls", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "budget_slices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("reserved_usd", sa.Float(), nullable=False),
        sa.Column("used_usd", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("budget_slices")
    with op.batch_alter_table("teacher_calls") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
