"""wide labels: label columns become TEXT, so a multi-label set of many labels (stored as one
';'-joined string) fits on PostgreSQL, which enforces VARCHAR lengths (SQLite never did)

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = {
    "labels": ["label"],
    "label_changes": ["old_label", "new_label"],
    "dataset_items": ["label"],
    "predictions": ["label"],
    "traffic": ["label", "student_label", "teacher_label"],
}
NOT_NULL = {("dataset_items", "label")}


def upgrade() -> None:
    for table, cols in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for col in cols:
                batch.alter_column(col, existing_type=sa.String(length=200), type_=sa.Text(), existing_nullable=(table, col) not in NOT_NULL)


def downgrade() -> None:
    for table, cols in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for col in cols:
                batch.alter_column(col, existing_type=sa.Text(), type_=sa.String(length=200), existing_nullable=(table, col) not in NOT_NULL)
