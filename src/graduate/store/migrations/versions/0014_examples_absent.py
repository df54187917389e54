"""examples absent: when a later load of a data file no longer holds an item (its row deleted, its
id changed), the item is marked, not deleted: builds, test sets and selections leave it out, its
labels and teacher calls stay, and it counts again when the file holds it again

Revision ID: 0014
Revises: 0013
"""

from alembic import op
import sqlalchemy as sa


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("examples", sa.Column("absent_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("examples") as batch:
        batch.drop_column("absent_since")
