"""dataset builds: a later build of a stored dataset version that kept the same items through other
steps (more items dropped, say) keeps its own recipe, so the recipe always names every item removed

Revision ID: 0013
Revises: 0012
"""

from alembic import op
import sqlalchemy as sa


revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_builds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dataset_builds_dataset_id", "dataset_builds", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_dataset_builds_dataset_id", table_name="dataset_builds")
    op.drop_table("dataset_builds")
