"""label provenance: the terms a teacher label was produced under, and who produced each training
item's label

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("labels", sa.Column("terms", sa.JSON(), nullable=True))
    op.add_column("dataset_items", sa.Column("labeller", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataset_items") as batch:
        batch.drop_column("labeller")
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("terms")
