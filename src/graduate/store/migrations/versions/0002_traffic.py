"""traffic: one row per item answered by graduate serve

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traffic",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("endpoint", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("student_label", sa.String(length=200), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("probs", sa.JSON(), nullable=True),
        sa.Column("teacher_label", sa.String(length=200), nullable=True),
        sa.Column("teacher_call_id", sa.Integer(), nullable=True),
        sa.Column("teacher_error", sa.Text(), nullable=True),
        sa.Column("agree", sa.Boolean(), nullable=True),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("teacher_latency_ms", sa.Float(), nullable=True),
        sa.Column("student", sa.String(length=300), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("client", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "item", name="uq_traffic_request_item"),
    )
    with op.batch_alter_table("traffic", schema=None) as batch_op:
        batch_op.create_index("ix_traffic_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("traffic", schema=None) as batch_op:
        batch_op.drop_index("ix_traffic_created_at")
    op.drop_table("traffic")
