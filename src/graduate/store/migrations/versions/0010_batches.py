"""batches: graduate batch's Batch API batches, and the batch each batch-sent call was last sent in

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input_path", sa.Text(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("reserved_usd", sa.Float(), nullable=False),
        sa.Column("input_file_id", sa.String(length=200), nullable=True),
        sa.Column("remote_id", sa.String(length=200), nullable=True),
        sa.Column("remote_status", sa.String(length=32), nullable=True),
        sa.Column("output_file_id", sa.String(length=200), nullable=True),
        sa.Column("error_file_id", sa.String(length=200), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid"),
        sa.UniqueConstraint("remote_id"),
    )
    op.add_column("teacher_calls", sa.Column("batch_id", sa.Integer(), nullable=True))
    op.create_index("ix_teacher_calls_batch", "teacher_calls", ["batch_id", "external_id"])


def downgrade() -> None:
    op.drop_index("ix_teacher_calls_batch", table_name="teacher_calls")
    with op.batch_alter_table("teacher_calls") as batch:
        batch.drop_column("batch_id")
    op.drop_table("batches")
